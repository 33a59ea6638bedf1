"""What `seqkit evaluate` computes from files: metric rows for several systems against references (a
model's perplexity: `model_types.perplexity`)."""

from __future__ import annotations

from pathlib import Path

from seqkit.data.formats import iter_column
from seqkit.data.text import read_lines
from seqkit.errors import DataError
from seqkit.scoring.metrics import METRICS, Score, corpus_score
from seqkit.wording import counted


def parse_metrics(texts: list[str]) -> list[str]:
    """Metric names as sacrebleu takes them: `-m bleu chrf`, `-m bleu,chrf`, or both."""
    chosen = [m.strip().lower() for text in texts for m in text.split(",") if m.strip()]
    for metric in chosen:
        if metric not in METRICS:
            raise DataError(f"--metrics: unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    if not chosen:
        raise DataError(f"--metrics is empty; give some of: {', '.join(METRICS)}")
    return chosen


def _reference_lines(path: Path, column: int | None) -> list[str]:
    return list(iter_column(path, column)) if column else read_lines(path)


def score_systems(
    hypotheses: list[Path],
    references: list[Path],
    names: list[str],
    metrics: list[str],
    ref_column: int | None = None,
) -> list[tuple[str, list[Score]]]:
    """One row of scores per hypothesis file (`-` is stdin); every file must have the references' line
    count. `ref_column`: the references are that column of TSV files."""
    chosen = parse_metrics(metrics)
    if names and len(names) != len(hypotheses):
        raise DataError(
            f"--name given {counted(len(names), 'time')} for {counted(len(hypotheses), '--hyp file')}; give one per --hyp"
        )
    ref_streams = [_reference_lines(path, ref_column) for path in references]
    expected = len(ref_streams[0])
    if expected == 0:
        raise DataError(f"{references[0]} has no lines: nothing to score; give the references of a test set")
    for path, stream in zip(references, ref_streams, strict=True):
        if len(stream) != expected:
            raise DataError(
                f"{path} has {counted(len(stream), 'line')} but {references[0]} has {expected:,}; references must align"
            )
    rows = []
    for i, path in enumerate(hypotheses):
        lines = read_lines(path)
        if len(lines) != expected:
            said = "the standard input" if str(path) == "-" else path
            raise DataError(
                f"{said} has {counted(len(lines), 'line')} but {references[0]} has {expected:,}; "
                "hypotheses and references must have one line per segment"
            )
        name = names[i] if names else "stdin" if str(path) == "-" else str(path)
        rows.append((name, [corpus_score(m, lines, ref_streams) for m in chosen]))
    return rows
