"""`make bench-scale`: seqkit training on corpora of 30k, 300k, 1M and 3M pairs.

Each corpus is the bundled training set repeated, every copy's lines suffixed with their line number so
that no two pairs are equal. For each size, one `seqkit train` of the benchmark workload (bench/
workload.toml, a fixed 8k SentencePiece model, 50 steps) measures:

    first_step_s     from the process's start to its first training step written to the log (reading,
                     cleaning, tokenizing into token arrays, batching, building the model)
    peak_rss_mb      the process's peak resident memory over the run (50 steps and one short validation)
    tokens_per_s     target tokens per second of training steps 11-50 (the log's intervals 20-50)

and a second run on the same directory with more steps measures `cached_first_step_s`: the resumed run
opens the token arrays instead of tokenizing. Results: bench/results-scale.{json,md} (`--name NAME`:
bench/results-NAME.*).

    python bench/scale.py [--sizes 30000 300000 1000000 3000000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import measure  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpora" / "bible-es-en"
WORK = REPO / "bench" / "work" / "scale"
PYTHON = sys.executable
SIZES = (30_000, 300_000, 1_000_000, 3_000_000)
STEPS = 50


def build_corpus(pairs: int) -> Path:
    """{WORK}/corpus-{pairs}.{es,en}: the bundled training pairs repeated to `pairs`, with line numbers."""
    prefix = WORK / f"corpus-{pairs}"
    if Path(f"{prefix}.en").is_file():
        return prefix
    sides = {
        lang: gzip.open(CORPUS / f"train.{lang}.gz", "rt", encoding="utf-8").read().splitlines()
        for lang in ("es", "en")
    }
    for lang, lines in sides.items():
        tmp = Path(f"{prefix}.{lang}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for number in range(pairs):
                f.write(f"{lines[number % len(lines)]} {number}\n")
        tmp.rename(f"{prefix}.{lang}")
    return prefix


def sentencepiece_model() -> Path:
    """One 8k joint unigram model of the bundled training text, trained once and given to every run."""
    path = WORK / "spm.model"
    if not path.is_file():
        from seqkit.config import TokenizerConfig
        from seqkit.data.text import read_lines
        from seqkit.data.tokenizer import train_sentencepiece

        lines = read_lines(CORPUS / "train.es.gz") + read_lines(CORPUS / "train.en.gz")
        path.write_bytes(train_sentencepiece(lines, TokenizerConfig(vocab_size=8000), seed=1))
    return path


def train(prefix: Path, spm: Path, run_dir: Path, steps: int) -> dict:
    command = [
        PYTHON, "-m", "seqkit", "train", "--config", str(REPO / "bench" / "workload.toml"), "-o", str(run_dir),
        "--set", f"data.train={prefix}", "--set", f"data.dev={CORPUS / 'dev'}", "--set", f"tokenizer.model={spm}",
        "--set", "train.log_every=10", "--set", f"train.valid_every={steps}", "--set", "train.valid_max_sentences=20",
        "--max-steps", str(steps), "--device", "cpu",
    ]  # fmt: skip
    log = run_dir / "train_log.jsonl"
    seen = log.read_text().count('"kind": "grad"') if log.is_file() else 0  # a resumed run's earlier steps
    watch: dict = {}

    def first_step(elapsed: float) -> None:  # the first grad record this run writes: its first step done
        if "first_step_s" not in watch and log.is_file() and log.read_text().count('"kind": "grad"') > seen:
            watch["first_step_s"] = elapsed

    result = measure.run(command, run_dir.with_suffix(".stderr"), on_poll=first_step)
    if result.returncode != 0:
        raise RuntimeError(f"seqkit train failed; see {run_dir.with_suffix('.stderr')}")
    from seqkit.training import log as training_log

    records = training_log.read(run_dir)
    intervals = [r for r in training_log.of_kind(records, training_log.TrainRecord) if r.step > 10]
    seconds = sum(r.tokens / r.target_tokens_per_s for r in intervals)
    return {
        "first_step_s": round(watch["first_step_s"], 1),
        "peak_rss_mb": round(result.peak_rss_mb, 1),
        "tokens_per_s": round(sum(r.tokens for r in intervals) / seconds, 1),
        "wall_s": round(result.wall_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--name", default="scale", help="results in bench/results-NAME.{json,md}")
    args = parser.parse_args()
    out = REPO / "bench" / f"results-{args.name}"
    WORK.mkdir(parents=True, exist_ok=True)
    spm = sentencepiece_model()
    results = []
    for pairs in args.sizes:
        prefix = build_corpus(pairs)
        run_dir = WORK / f"run-{pairs}"
        shutil.rmtree(run_dir, ignore_errors=True)
        fresh = train(prefix, spm, run_dir, STEPS)
        cached = train(prefix, spm, run_dir, STEPS + 10)  # resumes: the token arrays are there
        row = {"pairs": pairs, **fresh, "cached_first_step_s": cached["first_step_s"]}
        results.append(row)
        print(json.dumps(row), flush=True)
    base = results[0]["tokens_per_s"]
    for row in results:
        row["tokens_per_s_vs_first"] = round(row["tokens_per_s"] / base, 3)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "| pairs | first step (s) | first step, cached (s) | peak RSS (MB) | target tokens/s, steps 11-50 | vs first |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results:
        lines.append(
            f"| {row['pairs']:,} | {row['first_step_s']} | {row['cached_first_step_s']} | {row['peak_rss_mb']:,} "
            f"| {row['tokens_per_s']:,} | {row['tokens_per_s_vs_first']} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
