"""What `seqkit evaluate` computes from files: metric rows for several systems against references (a
model's perplexity: `model_types.perplexity`)."""

from __future__ import annotations

from pathlib import Path

from seqkit.data.text import read_lines
from seqkit.errors import DataError
from seqkit.scoring.metrics import METRICS, Score, corpus_score


def parse_metrics(text: str) -> list[str]:
    chosen = [m.strip().lower() for m in text.split(",") if m.strip()]
    for metric in chosen:
        if metric not in METRICS:
            raise DataError(f"--metrics: unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    if not chosen:
        raise DataError(f"--metrics is empty; give some of: {', '.join(METRICS)}")
    return chosen


def score_systems(
    hypotheses: list[Path], references: list[Path], names: list[str], metrics: str
) -> list[tuple[str, list[Score]]]:
    """One row of scores per hypothesis file; every file must have the references' line count."""
    chosen = parse_metrics(metrics)
    if names and len(names) != len(hypotheses):
        raise DataError(
            f"--name given {len(names)} times for {len(hypotheses)} --hyp files; give one per --hyp"
        )
    ref_streams = [read_lines(path) for path in references]
    expected = len(ref_streams[0])
    for path, stream in zip(references, ref_streams, strict=True):
        if len(stream) != expected:
            raise DataError(
                f"{path} has {len(stream)} lines but {references[0]} has {expected}; references must align"
            )
    rows = []
    for i, path in enumerate(hypotheses):
        lines = read_lines(path)
        if len(lines) != expected:
            raise DataError(
                f"{path} has {len(lines)} lines but {references[0]} has {expected}; "
                "hypotheses and references must have one line per segment"
            )
        rows.append((names[i] if names else str(path), [corpus_score(m, lines, ref_streams) for m in chosen]))
    return rows
