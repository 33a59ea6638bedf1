"""Quality at longer budgets (issue 16 §4): the demo recipe and the bench workload, each trained for 60
minutes on the bundled es-en corpus, one after the other.

    python bench/quality.py [--minutes 60] [--early 12] [--recipes demo workload]   # `make bench-quality`
    python bench/quality.py --minutes 12 --recipes demo demo-smooth ... --name recipes12   # recipe trials

Each run keeps every checkpoint (one per validation), so one run gives both budgets: the model a
12-minute run would have kept is the best-dev checkpoint among the validations that ended within 12
minutes (the clock `train.max_minutes` reads: training and validation together). For each recipe, on
the 1,000 test verses, beam 5 and greedy, BLEU and chrF (sacrebleu) of:

- the best checkpoint within `--early` minutes;
- the best checkpoint of the whole run (the run's own model.safetensors);
- `seqkit average` of the run's last 5 checkpoints.

Also dev BLEU (greedy, 300 verses) against minutes, drawn by `seqkit plot --x time`. Writes
bench/results-NAME.{json,md,png} (NAME: --name, default quality); the runs are in bench/work/NAME/.
With --minutes equal to --early the run's own best model (its last validation ends just after the
limit) is what a run of that budget gives; "best within" is then one validation earlier.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import sacrebleu

import seqkit
from seqkit.training import log as training_log

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpora" / "bible-es-en"
WORK = REPO / "bench" / "work" / "quality"
OUT = REPO / "bench" / "results-quality"
SEQKIT = [sys.executable, "-m", "seqkit"]
AVERAGE_LAST = 5

# recipe -> (config file, settings over it). Validation is more frequent than in the recipes' own
# configs (every 1.5 to 2.5 minutes on this machine), for a finer curve and a 12-minute point close to 12. The workload is the
# one of bench/run.py, except that seqkit builds its 8k SentencePiece model itself.


def _demo_as_tried(*settings: str, valid_every: int = 150) -> tuple[Path, list[str]]:
    """A 12-minute trial of the demo recipe with `settings`, at the dropout of 0.1 that demo.toml had
    when the trials ran (it has none since 2026-12-06), so that they reproduce their recorded figures."""
    return CORPUS / "demo.toml", ["model.dropout=0.1", f"train.valid_every={valid_every}", *settings]


RECIPES = {
    "demo": (CORPUS / "demo.toml", ["train.valid_every=150"]),
    # 12-minute recipe trials on the demo's sizes (`--minutes 12 --name recipes12`): one change each
    # from the demo recipe as it was before label smoothing joined it (demo-unsmoothed)
    "demo-unsmoothed": _demo_as_tried("train.label_smoothing=0"),
    "demo-smooth": _demo_as_tried("train.label_smoothing=0.1"),
    # the smoothed demo recipe (demo.toml since 2026-12-04) with half its batch: twice the updates
    "demo-batch1000": _demo_as_tried("train.batch_tokens=1000", valid_every=300),
    "demo-smooth-linear": _demo_as_tried("train.label_smoothing=0.1", "train.lr_schedule=linear"),
    # the same mean rate as the constant 0.002, annealed to 0 at the end ("Budgeted training")
    "demo-smooth-linear4": _demo_as_tried(
        "train.label_smoothing=0.1",
        "train.lr_schedule=linear",
        "train.learning_rate=0.004",
        "train.warmup_steps=100",
    ),
    # the smoothed demo recipe with a 1.5x learning rate
    "demo-lr3": _demo_as_tried("train.learning_rate=0.003"),
    # the smoothed demo recipe with the target embedding as the output matrix (256 wide, as the decoder)
    "demo-tied": _demo_as_tried("model.embedding_size=256", "model.tie_embeddings=true"),
    # the smoothed demo recipe without dropout (3.5 epochs in 12 minutes: little to overfit yet); the
    # demo recipe since 2026-12-06
    "demo-nodropout": (CORPUS / "demo.toml", ["train.valid_every=150", "model.dropout=0"]),
    # the smoothed demo recipe with a second decoder layer (one of the issue's recipes)
    "demo-dec2": _demo_as_tried("model.decoder_layers=2"),
    # the demo recipe with dropout 0.1 for 60 minutes (`--recipes demo-dropout --name quality-demo-dropout`):
    # without dropout the demo's dev perplexity is lowest at 26 minutes and rises after
    "demo-dropout": (CORPUS / "demo.toml", ["train.valid_every=150", "model.dropout=0.1"]),
    "workload": (
        REPO / "bench" / "workload.toml",
        [f"data.train={CORPUS / 'train'}", f"data.dev={CORPUS / 'dev'}", "train.valid_every=75"],
    ),
}


def _read(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def train(recipe: str, minutes: float) -> Path:
    config, settings = RECIPES[recipe]
    run = WORK / recipe
    settings = [*settings, f"train.max_minutes={minutes}", "train.keep_checkpoints=1000", "train.threads=2"]
    command = [*SEQKIT, "train", "--config", str(config), "--output", str(run), "--overwrite"]
    for setting in settings:
        command += ["--set", setting]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)
    return run


def from_checkpoint(run: Path, step: int, output: Path) -> Path:
    """A model directory of the run's files with one checkpoint's weights as its model."""
    shutil.rmtree(output, ignore_errors=True)  # (bench/work is this script's own)
    output.mkdir(parents=True)
    for item in run.iterdir():  # (as checkpoint.average copies them, less the weights replaced below)
        if item.is_file() and not item.name.startswith(".") and item.name != "model.safetensors":
            shutil.copy2(item, output / item.name)
    shutil.copy2(
        run / "checkpoints" / f"step-{step:08d}" / "weights.safetensors", output / "model.safetensors"
    )
    return output


def test_scores(model_dir: Path, sources: list[str], references: list[str]) -> dict:
    model = seqkit.load(model_dir)
    scores = {}
    for beam in (5, 1):
        start = time.perf_counter()
        outputs = [r.text for r in model.translate(sources, beam_size=beam)]
        seconds = time.perf_counter() - start
        name = "beam5" if beam == 5 else "greedy"
        scores[name] = {
            "bleu": round(sacrebleu.corpus_bleu(outputs, [references]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(outputs, [references]).score, 2),
            "sentences_per_s": round(len(outputs) / seconds, 1),
        }
    print(model_dir, scores, flush=True)
    return scores


def measure(recipe: str, run: Path, early_minutes: float) -> dict:
    records = training_log.read(run)
    valid = training_log.of_kind(records, training_log.ValidRecord)
    end = training_log.of_kind(records, training_log.EndRecord)[-1]
    start = training_log.of_kind(records, training_log.StartRecord)[0]
    early = [r for r in valid if r.elapsed_s <= early_minutes * 60]
    if not early:
        raise SystemExit(f"{run}: no validation ended within {early_minutes:g} minutes; lower --early")
    best_early = max(early, key=lambda r: r.scores["bleu"])
    best = max(valid, key=lambda r: r.scores["bleu"])
    averaged = WORK / f"{recipe}-average{AVERAGE_LAST}"
    shutil.rmtree(averaged, ignore_errors=True)
    subprocess.run(
        [*SEQKIT, "average", str(run), "--output", str(averaged), "--last", str(AVERAGE_LAST)], check=True
    )
    at_early = from_checkpoint(run, best_early.step, WORK / f"{recipe}-at{early_minutes:g}min")
    sources, references = _read(CORPUS / "test.es.gz"), _read(CORPUS / "test.en.gz")

    def _point(r) -> dict:
        return {"step": r.step, "minutes": round(r.elapsed_s / 60, 2), "dev_bleu": round(r.scores["bleu"], 2)}

    return {
        "recipe": recipe,
        "parameters": start.parameters,
        "steps": end.steps,
        "minutes": round(end.elapsed_s / 60, 2),
        "target_tokens_per_s": round(end.target_tokens / end.step_s, 1),
        "curve": [_point(r) for r in valid],
        "models": [
            {
                "name": f"best within {early_minutes:g} min",
                **_point(best_early),
                "test": test_scores(at_early, sources, references),
            },
            {"name": "best of the run", **_point(best), "test": test_scores(run, sources, references)},
            {
                "name": f"average of the last {AVERAGE_LAST} checkpoints",
                **_point(valid[-1]),
                "test": test_scores(averaged, sources, references),
            },
        ],
    }


def write(results: dict) -> None:
    OUT.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# Quality at longer budgets ({results['date']}, {results['minutes']:g} minutes per recipe)",
        "",
        "Test set: the 1,000 bundled test verses, sacrebleu BLEU / chrF. Dev BLEU: greedy, 300 verses.",
        "",
        "| recipe | model | step | minutes | dev BLEU | test BLEU beam 5 | chrF beam 5 | test BLEU greedy | chrF greedy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in results["runs"]:
        for m in run["models"]:
            b, g = m["test"]["beam5"], m["test"]["greedy"]
            lines.append(
                f"| {run['recipe']} | {m['name']} | {m['step']:,} | {m['minutes']:.1f} | {m['dev_bleu']:.2f} "
                f"| {b['bleu']:.2f} | {b['chrf']:.2f} | {g['bleu']:.2f} | {g['chrf']:.2f} |"
            )
    lines += ["", f"Dev BLEU against minutes (picture: {OUT.name}.png):", ""]
    for run in results["runs"]:
        points = ", ".join(f"{p['minutes']:.1f}: {p['dev_bleu']:.1f}" for p in run["curve"])
        lines.append(
            f"- {run['recipe']} ({run['parameters']:,} parameters, {run['steps']:,} steps, "
            f"{run['target_tokens_per_s']:,.0f} target tokens/s): {points}"
        )
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--early", type=float, default=12.0, help="the shorter budget, in minutes")
    parser.add_argument(  # the 12-minute trials are asked for by name (`make bench-quality` runs two recipes)
        "--recipes", nargs="*", default=["demo", "workload"], choices=list(RECIPES)
    )
    parser.add_argument("--no-train", action="store_true", help="measure the runs already in bench/work")
    parser.add_argument(
        "--name", default="quality", help="runs in bench/work/NAME, results in bench/results-NAME.*"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the other recipes' runs already in results-NAME.json"
    )
    args = parser.parse_args()
    global WORK, OUT
    WORK, OUT = REPO / "bench" / "work" / args.name, REPO / "bench" / f"results-{args.name}"
    WORK.mkdir(parents=True, exist_ok=True)
    if args.no_train:
        runs = [WORK / recipe for recipe in args.recipes]
    else:  # all trainings first, then decoding
        runs = [train(recipe, args.minutes) for recipe in args.recipes]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "minutes": args.minutes,
        "early_minutes": args.early,
        "runs": [measure(recipe, run, args.early) for recipe, run in zip(args.recipes, runs, strict=True)],
    }
    if args.keep and OUT.with_suffix(".json").exists():  # earlier recipes first, in their order
        earlier = json.loads(OUT.with_suffix(".json").read_text())["runs"]
        results["runs"] = [r for r in earlier if r["recipe"] not in args.recipes] + results["runs"]
        runs = [WORK / r["recipe"] for r in results["runs"]]
    write(results)
    picture = OUT.with_suffix(".png")
    if not all(run.exists() for run in runs):  # earlier runs trained on another machine: keep their picture
        runs, picture = [run for run in runs if run.exists()], OUT.with_name(f"{OUT.name}-latest.png")
    subprocess.run([*SEQKIT, "plot", *map(str, runs), "--x", "time", "--output", str(picture)], check=True)


if __name__ == "__main__":
    main()
