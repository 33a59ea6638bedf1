"""`make bench-onnx`: the demo model decoding the bundled test set (1,000 verses) four ways, greedy and
beam 5: torch float32, torch `--quantize` (int8 linear and GRU layers), onnxruntime float32
(`seqkit export`) and onnxruntime int8 (`seqkit export --quantize`, its dynamic quantization).

Each measurement runs in a process of its own (one thread pool at a time: onnxruntime's spinning
threads would otherwise take time from the torch runs after them), loads the model, then times the
search alone. Timings on this shared 2-core machine move by up to 1.8x between runs, so every
measurement is taken `--repeats` times (3), the variants in turn within each round, and the median is
reported with the range. Reported: sentences/s and output pieces/s of decoding, load seconds, BLEU and
chrF against the references, and the share of lines equal to torch float32's output.

    python bench/onnx.py MODEL_DIR            # writes bench/results-onnx.{json,md}
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import measure  # bench/ is this script's folder, first on sys.path

REPO = Path(__file__).resolve().parent.parent
TEST = REPO / "corpora" / "bible-es-en" / "test"
VARIANTS = {  # name -> (which directory, load options)
    "torch fp32": ("model", {"device": "cpu"}),
    "torch --quantize": ("model", {"device": "cpu", "quantize": True}),
    "onnxruntime fp32": ("onnx-fp32", {}),
    "onnxruntime int8": ("onnx-int8", {}),
}


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def worker(model_dir: Path, options: dict, beam_size: int) -> dict:
    """One variant, one beam size, in this process -> timings and the outputs."""
    from seqkit.decoding.search import decode_corpus

    model, load_s = measure.load_model(model_dir, options)
    sources = _lines(TEST.with_suffix(".es.gz"))
    settings = model.decode_settings(beam_size=beam_size)
    ids = model.tokenizer.encode_src(sources)
    began = time.perf_counter()
    best = [options[0].tokens for options in decode_corpus(model.steps, ids, settings)]
    seconds = time.perf_counter() - began
    return {
        "load_s": round(load_s, 2),
        "decode_s": round(seconds, 2),
        "sentences_per_s": round(len(sources) / seconds, 1),
        "pieces_per_s": round(sum(map(len, best)) / seconds, 1),
        "output_pieces": sum(map(len, best)),
        "outputs": model.tokenizer.decode_tgt(best),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "onnx")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=3, metavar=("DIR", "OPTIONS", "BEAM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        directory, options, beam = args.worker
        print(json.dumps(worker(Path(directory), json.loads(options), int(beam))))
        return

    import sacrebleu

    seqkit = [sys.executable, "-m", "seqkit"]
    directories = {"model": args.model_dir, "onnx-fp32": args.work / "fp32", "onnx-int8": args.work / "int8"}
    for name, extra in (("onnx-fp32", []), ("onnx-int8", ["--quantize"])):
        subprocess.run([*seqkit, "export", args.model_dir, "-o", directories[name], *extra], check=True)
    references = _lines(TEST.with_suffix(".en.gz"))
    results: dict = {
        "model": str(args.model_dir),
        "sentences": len(references),
        "repeats": args.repeats,
        "runs": {},
    }
    for beam in (1, 5):
        commands = {
            name: [
                sys.executable,
                __file__,
                args.model_dir,
                "--worker",
                directories[directory],
                json.dumps(options),
                str(beam),
            ]  # fmt: skip
            for name, (directory, options) in VARIANTS.items()
        }
        rounds = measure.interleaved(commands, args.repeats)
        baseline = rounds["torch fp32"][0]["outputs"]
        for name, runs in rounds.items():
            outputs = runs[0]["outputs"]  # the same in every round (tested: search is deterministic)
            run = measure.median_run(runs, "sentences_per_s", leave_out=("outputs",))
            run["bleu"] = round(sacrebleu.corpus_bleu(outputs, [references]).score, 2)
            run["chrf"] = round(sacrebleu.corpus_chrf(outputs, [references]).score, 2)
            run["equal_to_torch_fp32"] = round(
                sum(a == b for a, b in zip(outputs, baseline, strict=True)) / len(outputs), 4
            )
            results["runs"][f"{name}, beam {beam}"] = run
            print(f"{name}, beam {beam}: {json.dumps(run)}", file=sys.stderr)
    (REPO / "bench" / "results-onnx.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = ["| variant | sentences/s, median (range) | pieces/s | load s | BLEU | chrF | lines equal to torch fp32 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for name, run in results["runs"].items():
        rows.append(
            f"| {name} | {run['sentences_per_s']} ({run['sentences_per_s_range'][0]}-{run['sentences_per_s_range'][1]}) "
            f"| {run['pieces_per_s']:,.0f} | {run['load_s']} | {run['bleu']} "
            f"| {run['chrf']} | {run['equal_to_torch_fp32']:.1%} |"
        )
    (REPO / "bench" / "results-onnx.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
