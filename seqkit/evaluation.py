"""What `seqkit evaluate` computes: metric rows for several systems, and a model's perplexity."""

from __future__ import annotations

from pathlib import Path

from seqkit.data.text import read_lines, read_parallel
from seqkit.errors import DataError
from seqkit.metrics import METRICS, Score, corpus_score, perplexity


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


def model_perplexity(model_dir: Path, source: Path | None, reference: Path, device: str = "cpu") -> dict:
    """Perplexity of `reference` under the model (on `device`): given `source` for seq2seq; per token and per
    character (bits) for a language model."""
    from seqkit import modeldir

    cfg, tokenizer, model = modeldir.load(model_dir, device)
    if cfg.model.type == "lm":
        from seqkit.train_lm import score_text

        lines = [line for line in read_lines(reference) if line.strip()]
        if not lines:
            raise DataError(f"{reference}: no non-empty lines to score")
        scores = score_text(model, tokenizer, lines, cfg.train.bptt_length)
        return {
            "model": str(model_dir),
            "perplexity": scores["ppl"],
            "bits_per_char": scores["bpc"],
            "nll_per_token": scores["nll_per_token"],
            "tokens": scores["tokens"],
        }
    from seqkit.train_seq2seq import corpus_nll, tokenize_parallel

    if source is None:
        raise DataError("--model with a seq2seq model needs --source: the source side of the --ref file")
    data = tokenize_parallel(tokenizer, *read_parallel(source, reference), max_length=None)
    if not data.src:
        raise DataError(f"{source}: no non-empty sentence pairs to score")
    nll, tokens = corpus_nll(model, data, cfg.decode.batch_size)
    return {
        "model": str(model_dir),
        "perplexity": perplexity(nll, tokens),
        "nll_per_token": nll / tokens,
        "tokens": tokens,
    }
