"""`make bench-onnx-classify`: classifiers and forecasters predicting their test data four ways: torch
float32, torch `--quantize` (int8 linear and GRU/LSTM layers), onnxruntime float32 (`seqkit export`)
and onnxruntime int8 (`seqkit export --quantize`).

Each measurement runs in a process of its own (one thread pool at a time), loads the model, reads the
test examples, then times the prediction alone: tokenizing (or scaling numbers), the batches through
the model and the labels with their probabilities. Every measurement is taken `--repeats` times (3),
the variants in turn within each round; the median is reported with the range. Reported: examples/s,
load seconds, the scores (accuracy and macro-F1, or RMSE and MAE), and the share of labels equal to
torch float32's (a forecaster: the largest difference from its values).

    python bench/onnx_classify.py MODEL_DIR:TEST_DATA ...   # writes bench/results-onnx-classify.{json,md}
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import measure  # bench/ is this script's folder, first on sys.path

REPO = Path(__file__).resolve().parent.parent
VARIANTS = {  # name -> (which directory, load options)
    "torch fp32": ("model", {"device": "cpu"}),
    "torch --quantize": ("model", {"device": "cpu", "quantize": True}),
    "onnxruntime fp32": ("onnx-fp32", {}),
    "onnxruntime int8": ("onnx-int8", {}),
}


def worker(model_dir: Path, options: dict, data: str) -> dict:
    """One variant in this process -> timings, scores and the predictions."""
    model, load_s = measure.load_model(model_dir, options)
    import numpy as np

    from seqkit.decoding.classify import head_outputs, predictions
    from seqkit.scoring.classification import label_scores, regression_scores
    from seqkit.scoring.prediction import read_test

    test, _ = read_test(model.config, data)
    codec, batch_size = model.tokenizer, model.config.decode.batch_size
    began = time.perf_counter()
    found = predictions(codec.encoding, head_outputs(model.steps, codec.inputs(test), batch_size))
    seconds = time.perf_counter() - began
    if codec.encoding.head == "regression":
        predicted: list = [p.values for p in found]
        scores = regression_scores(test.values, np.asarray(predicted))
        kept = {"rmse": scores["rmse"], "mae": scores["mae"]}
    else:
        predicted = [p.label for p in found]
        scores = label_scores(test.labels, predicted, codec.encoding.labels)
        kept = {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}
    return {
        "load_s": round(load_s, 2),
        "predict_s": round(seconds, 3),
        "examples_per_s": round(len(found) / seconds, 1),
        **{key: round(value, 4) for key, value in kept.items()},
        "predicted": predicted,
    }


def _agreement(predicted: list, baseline: list) -> dict:
    """The share of labels equal to torch fp32's, or the largest difference from its values."""
    if predicted and isinstance(predicted[0], str):
        share = sum(a == b for a, b in zip(predicted, baseline, strict=True)) / len(predicted)
        return {"equal_to_torch_fp32": round(share, 4)}
    worst = max(
        abs(a - b)
        for row, base in zip(predicted, baseline, strict=True)
        for a, b in zip(row, base, strict=True)
    )
    return {"largest_difference_from_torch_fp32": float(f"{worst:.2g}")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", metavar="MODEL_DIR:TEST_DATA")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "onnx-classify")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=3, metavar=("DIR", "OPTIONS", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        directory, options, data = args.worker
        print(json.dumps(worker(Path(directory), json.loads(options), data)))
        return
    if not args.models:
        parser.error("give at least one MODEL_DIR:TEST_DATA")

    seqkit = [sys.executable, "-m", "seqkit"]
    results: dict = {"repeats": args.repeats, "runs": {}}
    for spec in args.models:
        model_dir, data = spec.split(":", 1)
        work = args.work / Path(model_dir).name
        directories = {"model": model_dir, "onnx-fp32": work / "fp32", "onnx-int8": work / "int8"}
        for name, extra in (("onnx-fp32", []), ("onnx-int8", ["--quantize"])):
            subprocess.run([*seqkit, "export", model_dir, "-o", directories[name], *extra], check=True)
        commands = {
            name: [
                sys.executable,
                __file__,
                "--worker",
                str(directories[directory]),
                json.dumps(options),
                data,
            ]
            for name, (directory, options) in VARIANTS.items()
        }
        rounds = measure.interleaved(commands, args.repeats)
        baseline = rounds["torch fp32"][0]["predicted"]
        for name, runs in rounds.items():
            run = measure.median_run(runs, "examples_per_s", leave_out=("predicted",))
            run["examples"] = len(baseline)
            run.update(_agreement(runs[0]["predicted"], baseline))
            results["runs"][f"{model_dir}, {name}"] = run
            print(f"{model_dir}, {name}: {json.dumps(run)}", file=sys.stderr)
    (REPO / "bench" / "results-onnx-classify.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = ["| model, variant | examples/s, median (range) | load s | scores | agreement with torch fp32 |",
            "| --- | ---: | ---: | --- | --- |"]  # fmt: skip
    for name, run in results["runs"].items():
        scores = (
            f"accuracy {run['accuracy']}, macro-F1 {run['macro_f1']}"
            if "accuracy" in run
            else f"RMSE {run['rmse']}, MAE {run['mae']}"
        )
        agreement = (
            f"{run['equal_to_torch_fp32']:.1%} of labels equal"
            if "equal_to_torch_fp32" in run
            else f"values within {run['largest_difference_from_torch_fp32']}"
        )
        low, high = run["examples_per_s_range"]
        rows.append(
            f"| {name} | {run['examples_per_s']:,} ({low:,}-{high:,}) | {run['load_s']} | {scores} | {agreement} |"
        )
    (REPO / "bench" / "results-onnx-classify.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
