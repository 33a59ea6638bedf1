"""The OpenNMT-py 3.5.1 half of the benchmark: install, config, training, decoding.

bench/run.py imports this module; OpenNMT-py runs in its own virtualenv (bench/.venv-onmt) and every run is
measured by bench/measure.py. It reads the same pre-encoded pieces as Joey NMT (joey.prepare_data) and the
same vocabulary (the SentencePiece model's pieces), so the three toolkits train the same model.

OpenNMT-py is started through this same file (`--launch-train`, run by the OpenNMT-py venv's python), a
thin wrapper around `onmt.bin.train` that changes nothing it computes. It only
  - sets torch's intra-op threads,
  - stops training `minutes` after the training loop starts (SIGALRM raising KeyboardInterrupt). OpenNMT-py
    has no interrupt handler, so the process ends there and the last checkpoint saved (every 50 steps,
    `save_checkpoint_steps`) is the one evaluated, as a user who stops it would,
  - counts the target tokens trained (OpenNMT-py's own Statistics.n_words, every target piece plus EOS) and
    times the loop and the checkpoint saves, and prints the counters.

Known facts, kept as a user gets them (../shared/peers/README.md):
  - it declares torch<2.3, so it is installed with `--no-deps` and its runtime imports added by hand;
  - its checkpoints hold pickled objects: loading them under torch >= 2.6 needs
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1;
  - `num_workers: 0` (its default two loader processes would compete for the two cores);
  - its default `bucket_size` (262,144 examples) fills a bucket of examples before the first batch: that
    costs about 17 s of the loop and most of its memory. The default is kept.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

if __package__:
    from .measure import run as measure_run
else:
    from measure import run as measure_run

REPO = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO / ".ci" / "constraints.txt"
TORCH, OPENNMT = "2.13.0", "3.5.1"
# OpenNMT-py's runtime imports that its torch<2.3 pin keeps pip from installing (peers/README.md)
RUNTIME = (
    "configargparse",
    "tensorboard",
    "pyyaml",
    "sacrebleu",
    "six",
    "numpy",
    "sentencepiece",
    "pyonmttok>=1.37,<2",
    "spacy",
    "rapidfuzz",
    "pyahocorasick",
    "fasttext-wheel",
)
SAVE_EVERY = 50  # steps between checkpoints: it has no interrupt handler (10 for budgets under 5 minutes)
DECODE_BATCH = 64  # sentences per decoding batch (seqkit's decode.batch_size, Joey's in the bench)
BEAM_ALPHA = 1.0  # GNMT length penalty ((5 + len) / 6) ** alpha, as seqkit and Joey in the bench
MAX_LENGTH = 200  # output pieces at most
RESULT_MARK = "BENCH_RESULT "
LOAD_ENV = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}


def install(venv: Path) -> Path:
    """A virtualenv with torch and OpenNMT-py at the pinned versions; returns its python."""
    venv = Path(venv).absolute()
    python, stamp = venv / "bin" / "python", venv / ".bench-installed"
    wanted = f"torch=={TORCH} opennmt-py=={OPENNMT} {' '.join(RUNTIME)}\n"
    if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    env = {**os.environ, "PIP_CONSTRAINT": str(CONSTRAINTS), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True, env=env)
    subprocess.run([*pip, f"torch=={TORCH}"], check=True, env=env)
    subprocess.run([*pip, "--no-deps", f"opennmt-py=={OPENNMT}"], check=True, env=env)
    subprocess.run([*pip, *RUNTIME], check=True, env=env)
    stamp.write_text(wanted)
    return python


def _config(data: dict, run_dir: Path, seed: int, save_every: int, vocabulary: str = "model") -> dict:
    """The benchmark workload as an OpenNMT-py config (../shared/peers/onmt-config.yaml); JSON, which YAML
    reads. `vocabulary`: "model", the SentencePiece model's pieces (the bench's: the same model as the
    other toolkits), or "data", what `onmt_build_vocab` finds in the training data (the standalone run's)."""
    own = vocabulary == "data"
    return {
        "save_data": str(run_dir / "data"),
        "src_vocab": str(run_dir / "vocab.src") if own else str(data["vocab"]),
        "tgt_vocab": str(run_dir / "vocab.tgt") if own else str(data["vocab"]),
        "src_vocab_size": 10000,  # every piece of the file
        "tgt_vocab_size": 10000,
        "share_vocab": False,
        "overwrite": True,
        "data": {
            "corpus_1": {"path_src": f"{data['train']}.es", "path_tgt": f"{data['train']}.en"},
            "valid": {"path_src": f"{data['dev']}.es", "path_tgt": f"{data['dev']}.en"},
        },
        "save_model": str(run_dir / "model"),
        "save_checkpoint_steps": save_every,
        "keep_checkpoint": 2,
        "seed": seed,
        "train_steps": 1000000,  # stopped by the time limit
        "valid_steps": 1000000,  # no validation inside the budget (its validation is dev loss only)
        "report_every": 50,
        "log_file": str(run_dir / "train.log"),
        "num_workers": 0,
        "model_type": "text",
        "encoder_type": "brnn",  # bidirectional: enc_hid_size is split across directions (256 each)
        "decoder_type": "rnn",
        "rnn_type": "GRU",
        "word_vec_size": 256,
        "enc_hid_size": 512,
        "dec_hid_size": 512,
        "enc_layers": 1,
        "dec_layers": 1,
        "global_attention": "mlp",  # Bahdanau
        "global_attention_function": "softmax",
        "input_feed": 1,
        "bridge": True,
        "dropout": [0.2],
        "attention_dropout": [0.0],
        "param_init": 0.0,
        "param_init_glorot": True,
        "optim": "adam",
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "learning_rate": 0.001,
        "decay_method": "none",
        "start_decay_steps": 100000000,
        "max_grad_norm": 1.0,
        "batch_type": "tokens",
        "batch_size": 3000,
        "normalization": "tokens",
        "accum_count": [1],
        "label_smoothing": 0.0,
    }


def _env(threads: int) -> dict:
    return {**os.environ, **LOAD_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def _result(log: Path) -> dict:
    text = log.read_text(encoding="utf-8", errors="replace")
    results = [line[len(RESULT_MARK) :] for line in text.splitlines() if line.startswith(RESULT_MARK)]
    if not results:
        tail = "\n".join(text.splitlines()[-25:])
        raise RuntimeError(f"OpenNMT-py reported no result; {log}:\n{tail}")
    return {**json.loads(results[-1]), "log_text": text}


def train(
    python: Path, data: dict, work: Path, minutes: float, threads: int, seed: int, vocabulary: str = "model"
) -> dict:
    """Train for `minutes` from the start of OpenNMT-py's training loop, then stop it; the last checkpoint
    saved is the trained model. train_s is the loop's time less the checkpoint saves."""
    run_dir = Path(work).absolute() / "onmt-train"
    run_dir.mkdir(parents=True, exist_ok=True)
    for old in run_dir.glob("model_step_*.pt"):
        old.unlink()
    config_path, log = run_dir / "config.yaml", run_dir / "train.out"
    save_every = SAVE_EVERY if minutes >= 5 else 10
    config = _config(data, run_dir, seed, save_every, vocabulary)
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if vocabulary == "data":  # untimed, as in the standalone run
        build = [str(python), "-m", "onmt.bin.build_vocab", "-config", str(config_path), "-n_sample", "-1"]
        subprocess.run(
            build, check=True, env=_env(threads), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    command = [str(python), str(Path(__file__).resolve()), "--launch-train", str(config_path)]
    command += ["--threads", str(threads), "--stop-after-s", str(minutes * 60)]
    measured = measure_run(command, log, env=_env(threads), stop_after_s=minutes * 60 + 600)
    result = _result(log)
    if not result["saved_steps"]:
        raise RuntimeError(f"OpenNMT-py saved no checkpoint; see {log}")
    last = max(result["saved_steps"])
    train_s = result["loop_s"] - result["save_s"]
    params = re.search(r"number of parameters: (\d+)", result["log_text"])
    return {
        "steps": result["steps"],
        "checkpoint_step": last,
        "save_every": save_every,
        "stopped_by": "time limit (KeyboardInterrupt)" if result["interrupted"] else "training ended",
        "returncode": measured.returncode,
        "wall_s": round(measured.wall_s, 2),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "loop_s": round(result["loop_s"], 2),
        "save_s": round(result["save_s"], 2),
        "valid_s": 0.0,
        "train_s": round(train_s, 2),
        "target_tokens": result["target_tokens"],
        "target_tokens_per_s": round(result["target_tokens"] / train_s, 1),
        "threads": result["torch_threads"],
        "parameters": int(params.group(1)) if params else None,
        "checkpoint": run_dir / f"model_step_{last}.pt",
        "log": log,
        "config": config_path,
    }


def translate(python: Path, data: dict, work: Path, checkpoint: Path, beam_size: int, threads: int) -> dict:
    """Decode the test pieces with `onmt_translate` and detokenize them. decode_s is its own "Total
    translation time" (search and batching, not start-up or model loading)."""
    import sentencepiece as spm

    run_dir = Path(work).absolute() / f"onmt-decode-beam{beam_size}"
    run_dir.mkdir(parents=True, exist_ok=True)
    output, log = run_dir / "hyp", run_dir / "translate.out"
    command = [
        str(python), "-m", "onmt.bin.translate", "-model", str(checkpoint), "-src", f"{data['test']}.es",
        "-output", str(output), "-beam_size", str(beam_size), "-batch_size", str(DECODE_BATCH),
        "-batch_type", "sents", "-max_length", str(MAX_LENGTH), "-length_penalty", "wu",
        "-alpha", str(BEAM_ALPHA if beam_size > 1 else 0.0), "-report_time", "-seed", "1",
    ]  # fmt: skip
    measured = measure_run(command, log, env=_env(threads))
    text = log.read_text(encoding="utf-8", errors="replace")
    decode = re.findall(r"Total translation time \(s\): ([0-9.]+)", text)
    if measured.returncode != 0 or not decode:
        tail = "\n".join(text.splitlines()[-25:])
        raise RuntimeError(f"onmt_translate failed (exit {measured.returncode}); {log}:\n{tail}")
    decode_s = float(decode[-1])
    raw = output.read_text(encoding="utf-8").splitlines()
    assert len(raw) == data["test_sentences"], (len(raw), data["test_sentences"])
    sp = spm.SentencePieceProcessor(model_file=str(data["spm_model"]))
    hypothesis = run_dir / "hyp.detok.en"
    hypothesis.write_text("".join(sp.decode(line.split()) + "\n" for line in raw), encoding="utf-8")
    output_pieces = sum(len(line.split()) for line in raw)
    return {
        "beam_size": beam_size,
        "hypothesis": hypothesis,
        "raw_output": output,
        "wall_s": round(measured.wall_s, 2),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "decode_s": decode_s,
        "sentences": len(raw),
        "output_pieces": output_pieces,
        "sentences_per_s": round(len(raw) / decode_s, 2),
        "pieces_per_s": round(output_pieces / decode_s, 1),
        "log": log,
    }


def _launch_train(argv: list[str]) -> None:
    """Inside the OpenNMT-py venv: `opennmt.py --launch-train CONFIG --threads N --stop-after-s S`."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--stop-after-s", type=float, required=True)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from onmt import trainer
    from onmt.bin.train import main
    from onmt.models import model_saver

    result = {
        "torch_threads": torch.get_num_threads(),
        "save_s": 0.0,
        "steps": 0,
        "saved_steps": [],
        "interrupted": False,
    }
    counted: dict = {}
    inner_accumulate, inner_train, inner_save = (
        trainer.Trainer._gradient_accumulation,
        trainer.Trainer.train,
        model_saver.ModelSaverBase.save,
    )

    def accumulate(self, batches, normalization, total_stats, report_stats):
        counted["total"] = total_stats  # OpenNMT-py's own running count of the target tokens trained
        inner_accumulate(self, batches, normalization, total_stats, report_stats)
        result["steps"] += 1

    def save(self, step, *a, **k):
        start = time.monotonic()
        try:
            inner_save(self, step, *a, **k)
            result["saved_steps"].append(step)  # complete: a stop inside a save leaves half a file
        finally:
            result["save_s"] += time.monotonic() - start

    def report() -> None:
        total = counted.get("total")
        result["target_tokens"] = int(total.n_words) if total is not None else 0
        print(RESULT_MARK + json.dumps(result), flush=True)

    def train(self, *a, **k):
        signal.signal(signal.SIGALRM, signal.default_int_handler)  # Ctrl-C, as far as it can tell
        signal.setitimer(signal.ITIMER_REAL, args.stop_after_s)
        start = time.monotonic()
        try:
            return inner_train(self, *a, **k)
        except KeyboardInterrupt:
            result["interrupted"] = True
            result["loop_s"] = time.monotonic() - start
            report()
            os._exit(0)  # as the interrupted process ends: no final save
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            result.setdefault("loop_s", time.monotonic() - start)

    trainer.Trainer._gradient_accumulation = accumulate
    trainer.Trainer.train = train
    model_saver.ModelSaverBase.save = save
    sys.argv = ["onmt_train", "-config", args.config]
    main()
    report()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--launch-train":
        _launch_train(sys.argv[2:])
    else:
        sys.exit("bench/opennmt.py is used by bench/run.py (python bench/run.py --mode quick)")
