"""The Joey NMT 2.3.0 half of the seqkit-vs-Joey benchmark: install, data, training, decoding.

bench/run.py imports this module; every Joey process runs in its own virtualenv (bench/.venv-joey) and is
measured by bench/measure.py. `python bench/joey.py --minutes 1` is a smoke test of the whole path.

Joey is started through this same file (`--launch`, run by the Joey venv's python), a thin wrapper around
`python -m joeynmt` that changes nothing Joey computes. It only
  - sets torch's intra-op threads (Joey has no option for it; OMP_NUM_THREADS/MKL_NUM_THREADS are set too),
  - stops training `minutes` after the training loop starts (SIGALRM raising KeyboardInterrupt, the same as
    Ctrl-C), so that, like seqkit's max_minutes, the budget excludes start-up and data loading. Joey catches
    KeyboardInterrupt in its training loop and saves the current weights as `{steps}.ckpt` (latest.ckpt),
  - times the training loop, the validations and that last save, and prints the counters at the end.

Quirks worked around (Joey 2.3.0 with torch 2.13.0):
  - `scheduling: plateau` passes `verbose=` that ReduceLROnPlateau no longer accepts, and leaving
    `scheduling` out is an error, so the rate is held constant with `exponential` and `decrease_factor: 1.0`.
  - the data loader gets `num_workers: 0`; `--skip-test`, since the test after training loads best.ckpt,
    which does not exist if training stopped before the first validation.
  - text is given as SentencePiece pieces joined by spaces with `level: word`, and the vocabulary file
    lists the SentencePiece model's pieces, so both toolkits see the same 8k vocabulary. Joey's reader
    drops empty lines of each side separately (silently misaligning pairs) and splits on every Unicode
    line break, so prepare_data drops empty pairs and checks the line counts.
  - `normalization: tokens`: Joey's default ("batch") divides the summed loss by sentences, not by target
    tokens as seqkit does; with clipping at norm 1.0 that would change the updates, not just the scale.
"""

from __future__ import annotations

import gzip
import json
import math
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
TORCH, JOEYNMT = "2.13.0", "2.3.0"
SRC, TGT = "es", "en"
MAX_LENGTH = 100  # pieces, either side; longer training pairs are skipped (Joey: `length > max_length`)
VALID_EVERY = 500  # steps between validations (greedy, on the dev set prepare_data wrote)
DECODE_BATCH = 64  # sentences per decoding batch, validation included (seqkit's decode.batch_size)
BEAM_ALPHA = 1.0  # length penalty ((5 + len) / 6) ** alpha for beam search, as seqkit's default
RESULT_MARK = "BENCH_RESULT "


def install(venv: Path) -> Path:
    """A virtualenv with torch and joeynmt at the pinned versions; returns its python."""
    venv = Path(venv).absolute()
    python, stamp = venv / "bin" / "python", venv / ".bench-installed"
    # joeynmt 2.3.0 imports importlib_metadata without declaring it (newer dependencies stopped pulling it in)
    packages = (
        f"torch=={TORCH}",
        f"joeynmt=={JOEYNMT}",
        "importlib-metadata",
    )  # torch first, as in the Makefile
    wanted = " ".join(packages) + "\n"
    if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    env = {**os.environ, "PIP_CONSTRAINT": str(CONSTRAINTS), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True, env=env)
    for package in packages:
        subprocess.run([str(python), "-m", "pip", "install", "-q", package], check=True, env=env)
    stamp.write_text(wanted)
    return python


def _read_gz(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as f:  # "\n" alone ends a line
        return [line.rstrip("\n") for line in f]


def prepare_data(spm_model: Path, corpus: Path, work: Path, dev_sentences: int) -> dict:
    """SentencePiece pieces, one sentence per line, as Joey's plain-text data (`{prefix}.es/.en`), and a
    vocabulary file of the model's pieces. Unknown characters become Joey's `<unk>` token."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    out = Path(work).absolute() / "joey-data"
    out.mkdir(parents=True, exist_ok=True)

    def pieces(lines: list[str]) -> list[str]:
        unk = sp.unk_id()
        return [" ".join("<unk>" if i == unk else sp.id_to_piece(i) for i in ids) for ids in sp.encode(lines)]

    info: dict = {"spm_model": Path(spm_model).absolute(), "src_lang": SRC, "tgt_lang": TGT}
    for split in ("train", "dev", "test"):
        src, tgt = (_read_gz(Path(corpus) / f"{split}.{lang}.gz") for lang in (SRC, TGT))
        assert len(src) == len(tgt), (split, len(src), len(tgt))
        if split == "dev":
            src, tgt = src[:dev_sentences], tgt[:dev_sentences]
        src, tgt = pieces(src), pieces(tgt)
        keep = [i for i in range(len(src)) if src[i] and tgt[i]]
        if split != "train":
            assert len(keep) == len(src), f"{split}: empty lines; every {split} sentence must be kept"
        for lang, lines in ((SRC, src), (TGT, tgt)):
            text = "".join(lines[i] + "\n" for i in keep)
            assert len(text.splitlines()) == len(keep), f"{split}.{lang}: a piece holds a line break"
            (out / f"{split}.{lang}").write_text(text, encoding="utf-8")
        info[split] = out / split
        info[f"{split}_sentences"] = len(keep)
        if split == "train":
            info["train_empty_skipped"] = len(src) - len(keep)
            info["train_too_long"] = sum(
                max(len(src[i].split()), len(tgt[i].split())) > MAX_LENGTH for i in keep
            )
    info["test_source"] = Path(corpus).absolute() / f"test.{SRC}.gz"
    info["test_reference"] = Path(corpus).absolute() / f"test.{TGT}.gz"

    # Joey puts <unk> <pad> <s> </s> first and skips tokens it already has: 4 + the ordinary pieces.
    vocab = [
        sp.id_to_piece(i)
        for i in range(sp.get_piece_size())
        if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i))
    ]
    assert all(p and " " not in p and len(p.splitlines()) == 1 for p in vocab)
    (out / "vocab.txt").write_text("".join(p + "\n" for p in vocab), encoding="utf-8")
    info["vocab"] = out / "vocab.txt"
    info["vocab_size"] = len(vocab) + 4
    return info


def _config(
    data: dict, model_dir: Path, seed: int, testing: dict, with_train_dev: bool, vocabulary: str = "model"
) -> dict:
    """A Joey config (written as JSON, which YAML reads) for the benchmark workload. `vocabulary`: "model",
    the SentencePiece model's pieces (the bench's: the same model as the other toolkits), or "data", the
    pieces the training data has on each side, as Joey builds by default (../shared/peers/joey-config.yaml)."""
    side = {"level": "word", "lowercase": False, "normalize": False}
    if vocabulary == "model":
        side["voc_file"] = str(data["vocab"])
    else:
        side.update(voc_limit=10000, voc_min_freq=1)
    embeddings = {"embedding_dim": 256, "dropout": 0.2}
    return {
        "name": "bench",
        "joeynmt_version": JOEYNMT,
        "model_dir": str(model_dir),
        "use_cuda": False,
        "fp16": False,
        "random_seed": seed,
        "num_workers": 0,
        "data": {
            **(
                {"train": str(data["train"]), "dev": str(data["dev"])}
                if with_train_dev
                else {"test": str(data["test"])}
            ),
            "dataset_type": "plain",
            "src": {"lang": SRC, "max_length": MAX_LENGTH, **side},
            "trg": {"lang": TGT, "max_length": MAX_LENGTH, **side},
        },
        "model": {
            "encoder": {
                "type": "recurrent",
                "rnn_type": "gru",
                "hidden_size": 256,
                "bidirectional": True,
                "num_layers": 1,
                "dropout": 0.2,
                "embeddings": embeddings,
            },
            "decoder": {
                "type": "recurrent",
                "rnn_type": "gru",
                "hidden_size": 512,
                "num_layers": 1,
                "attention": "bahdanau",
                "input_feeding": True,
                "init_hidden": "bridge",
                "dropout": 0.2,
                "hidden_dropout": 0.2,
                "embeddings": embeddings,
            },
        },
        "training": {
            "optimizer": "adam",
            "learning_rate": 0.001,
            "scheduling": "exponential",
            "decrease_factor": 1.0,  # constant rate (see module docstring)
            "clip_grad_norm": 1.0,
            "loss": "crossentropy",
            "label_smoothing": 0.0,
            "normalization": "tokens",
            "batch_type": "token",
            "batch_size": 3000,
            "batch_multiplier": 1,
            "shuffle": True,
            "epochs": 100_000,
            "validation_freq": VALID_EVERY,
            "logging_freq": math.gcd(50, VALID_EVERY),
            "early_stopping_metric": "bleu",
            "keep_best_ckpts": 1,
            "print_valid_sents": [],
            "overwrite": True,
        },
        "testing": {
            "batch_type": "sentence",
            "batch_size": DECODE_BATCH,
            "max_output_length": -1,
            "eval_metrics": ["bleu", "chrf"],
            "beam_size": 1,
            **testing,
        },
    }


def _floats(tree) -> list[float]:
    if isinstance(tree, dict):
        tree = list(tree.values())
    if isinstance(tree, list):
        return [f for item in tree for f in _floats(item)]
    return [tree] if isinstance(tree, float) else []


def _env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def _run_joey(
    python: Path,
    mode: str,
    config: dict,
    run_dir: Path,
    threads: int,
    extra: list[str],
    stop_after_s: float | None = None,
) -> tuple[dict, dict]:
    """Run Joey (`--launch`) measured; returns the measure figures and the launcher's result line."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path, log = run_dir / "config.yaml", run_dir / f"{mode}.out"
    assert "e" not in json.dumps(_floats(config)), "PyYAML (YAML 1.1) reads JSON's 1e-08 as a string"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    command = [
        str(python),
        str(Path(__file__).resolve()),
        "--launch",
        mode,
        str(config_path),
        "--threads",
        str(threads),
        *extra,
    ]
    cpu_before = os.times()
    # Training stops itself `stop_after_s` into its loop; the SIGINT from measure is only a backstop
    # for a start-up that hangs (Joey treats it the same way).
    backstop = None if stop_after_s is None else stop_after_s + 600
    measured = measure_run(command, log, env=_env(threads), stop_after_s=backstop, stop_signal=signal.SIGINT)
    cpu_after = os.times()
    text = log.read_text(encoding="utf-8", errors="replace")
    results = [line[len(RESULT_MARK) :] for line in text.splitlines() if line.startswith(RESULT_MARK)]
    if measured.returncode != 0 or not results:
        tail = "\n".join(text.splitlines()[-25:])
        raise RuntimeError(f"joeynmt {mode} failed (exit {measured.returncode}); {log}:\n{tail}")
    figures = {
        "returncode": measured.returncode,
        "wall_s": round(measured.wall_s, 2),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "cpu_s": round(
            cpu_after.children_user
            + cpu_after.children_system
            - cpu_before.children_user
            - cpu_before.children_system,
            2,
        ),
        "log": log,
        "config": config_path,
    }
    figures["cpu_per_wall"] = round(figures["cpu_s"] / measured.wall_s, 2)  # about `threads` if they all work
    return figures, {**json.loads(results[-1]), "log_text": text}


def _validations(path: Path) -> list[dict]:
    """Joey's validations.txt: `Steps: 500<TAB>loss: ...<TAB>bleu: ...<TAB>LR: ...<TAB>*`."""
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            fields = dict(f.split(": ", 1) for f in line.split("\t") if ": " in f)
            rows.append({k.lower(): float(v) for k, v in fields.items()} | {"best": line.endswith("*")})
    return rows


def train(
    python: Path, data: dict, work: Path, minutes: float, threads: int, seed: int, vocabulary: str = "model"
) -> dict:
    """Train for `minutes` of wall time from the start of Joey's training loop (validations included,
    start-up and data loading not), then stop it as Ctrl-C would; Joey then saves the current weights.

    target_tokens is Joey's own counter (stats.total_tokens): the sum over trained batches of the
    non-padding target positions after BOS, that is every target piece plus EOS.
    train_s is the training loop's time less validations and the final checkpoint save."""
    run_dir = Path(work).absolute() / "joey-train"
    model_dir = run_dir / "model"  # Joey recreates it (`overwrite: True`)
    config = _config(data, model_dir, seed, {}, with_train_dev=True, vocabulary=vocabulary)
    figures, result = _run_joey(
        python,
        "train",
        config,
        run_dir,
        threads,
        ["--stop-after-s", str(minutes * 60)],
        stop_after_s=minutes * 60,
    )
    latest, best = model_dir / "latest.ckpt", model_dir / "best.ckpt"
    if not latest.exists():
        raise RuntimeError(f"joeynmt saved no checkpoint; see {figures['log']}")
    train_s = result["loop_s"] - result["valid_s"] - result["final_save_s"]
    params = re.search(r"Total params: (\d+)", result["log_text"])
    return {
        "steps": result["steps"],
        "epochs": result["epochs"],
        "stopped_by": "time limit (KeyboardInterrupt)" if result["interrupted"] else "training ended",
        **{k: figures[k] for k in ("wall_s", "peak_rss_mb", "cpu_s", "cpu_per_wall")},
        "loop_s": round(result["loop_s"], 2),
        "valid_s": round(result["valid_s"], 2),
        "validations": _validations(model_dir / "validations.txt"),
        "final_save_s": round(result["final_save_s"], 2),
        "train_s": round(train_s, 2),
        "target_tokens": result["total_tokens"],
        "target_tokens_per_s": round(result["total_tokens"] / train_s, 1),
        "threads": result["torch_threads"],
        "parameters": int(params.group(1)) if params else None,
        "checkpoint": latest.resolve(),  # the weights at the stop
        "best_checkpoint": best.resolve() if best.exists() else None,  # best greedy dev BLEU, if validated
        "log": figures["log"],
        "joey_log": model_dir / "train.log",
        "config": figures["config"],
    }


def translate(python: Path, data: dict, work: Path, checkpoint: Path, beam_size: int, threads: int) -> dict:
    """Decode the test set with Joey's `test` mode (greedy if beam_size == 1) and detokenize it.

    decode_s is Joey's own "Generation took" figure: batching, search and turning ids into pieces,
    not start-up, data or model loading, and not writing the output."""
    import sentencepiece as spm

    run_dir = Path(work).absolute() / f"joey-decode-beam{beam_size}"
    testing = {"load_model": str(Path(checkpoint).absolute()), "beam_size": beam_size, "eval_metrics": []}
    if beam_size > 1:
        testing["beam_alpha"] = BEAM_ALPHA
    config = _config(data, run_dir, seed=1, testing=testing, with_train_dev=False)
    output = run_dir / "hyp"
    figures, result = _run_joey(python, "test", config, run_dir, threads, ["-o", str(output)])
    decode = re.findall(r"Generation took ([0-9.]+)\[sec\]", result["log_text"])
    decode_s = float(decode[-1])
    raw = Path(f"{output}.test").read_text(encoding="utf-8").splitlines()
    assert len(raw) == data["test_sentences"], (len(raw), data["test_sentences"])
    sp = spm.SentencePieceProcessor(model_file=str(data["spm_model"]))
    hypothesis = run_dir / "hyp.detok.en"
    hypothesis.write_text("".join(sp.decode(line.split()) + "\n" for line in raw), encoding="utf-8")
    output_pieces = sum(len(line.split()) for line in raw)
    return {
        "beam_size": beam_size,
        "hypothesis": hypothesis,
        "raw_output": Path(f"{output}.test"),
        **{k: figures[k] for k in ("wall_s", "peak_rss_mb", "cpu_s", "cpu_per_wall")},
        "decode_s": decode_s,
        "sentences": len(raw),
        "output_pieces": output_pieces,  # pieces in Joey's output: no EOS; an empty output reads "<unk>"
        "sentences_per_s": round(len(raw) / decode_s, 2),
        "pieces_per_s": round(output_pieces / decode_s, 1),
        "threads": result["torch_threads"],
        "log": figures["log"],
    }


def _launch(argv: list[str]) -> None:
    """Run inside the Joey venv: `joey.py --launch train|test CONFIG --threads N [--stop-after-s S] ...`."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["train", "test"])
    parser.add_argument("config")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--stop-after-s", type=float)
    parser.add_argument("-o", "--output")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from joeynmt import training
    from joeynmt.__main__ import main

    result = {
        "torch_threads": torch.get_num_threads(),
        "valid_s": 0.0,
        "final_save_s": 0.0,
        "interrupted": False,
    }
    manager = training.TrainManager
    inner_validate, inner_save, inner_loop = (
        manager._validate,
        manager._save_checkpoint,
        manager.train_and_validate,
    )
    state = {"validating": False}

    def validate(self, *a, **k):
        start, state["validating"] = time.monotonic(), True
        try:
            inner_validate(self, *a, **k)
        finally:
            state["validating"] = False
            result["valid_s"] += time.monotonic() - start

    def save_checkpoint(self, *a, **k):
        start = time.monotonic()
        inner_save(self, *a, **k)
        if not state["validating"]:
            result["final_save_s"] += time.monotonic() - start

    def train_and_validate(self, *a, **k):
        if args.stop_after_s is not None:  # Ctrl-C, as far as Joey can tell
            signal.signal(signal.SIGALRM, signal.default_int_handler)
            signal.setitimer(signal.ITIMER_REAL, args.stop_after_s)
        original_info, start = training.logger.info, time.monotonic()

        def info(msg, *fmt, **kw):  # Joey logs this line when it catches KeyboardInterrupt
            if str(msg).startswith("Interrupt at epoch"):
                result["interrupted"] = True
            return original_info(msg, *fmt, **kw)

        training.logger.info = info
        try:
            inner_loop(self, *a, **k)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            training.logger.info = original_info
            result.update(
                loop_s=time.monotonic() - start,
                steps=self.stats.steps,
                total_tokens=self.stats.total_tokens,
                epochs=self.stats.epochs,
            )

    manager._validate, manager._save_checkpoint = validate, save_checkpoint
    manager.train_and_validate = train_and_validate
    sys.argv = ["joeynmt", args.mode, args.config]
    sys.argv += ["--skip-test"] if args.mode == "train" else ["-o", args.output]
    main()
    print(RESULT_MARK + json.dumps(result), flush=True)


def _smoke(argv: list[str]) -> None:
    """install, a SentencePiece model, prepare_data, train `--minutes`, greedy and beam-5 test decoding."""
    import argparse

    global VALID_EVERY
    parser = argparse.ArgumentParser(description=_smoke.__doc__)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "joey-smoke")
    parser.add_argument("--venv", type=Path, default=REPO / "bench" / ".venv-joey")
    parser.add_argument("--corpus", type=Path, default=REPO / "corpora" / "bible-es-en")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--valid-every", type=int, default=VALID_EVERY, help="for trying validation out")
    args = parser.parse_args(argv)
    VALID_EVERY = args.valid_every
    report: dict = {}

    start = time.monotonic()
    python = install(args.venv)
    report["install_s"] = round(time.monotonic() - start, 1)

    spm_model = args.work / "spm.model"
    if not spm_model.is_file():  # a joint 8k unigram model with seqkit's special ids
        import sentencepiece as spm

        args.work.mkdir(parents=True, exist_ok=True)
        lines = [
            line for lang in (SRC, TGT) for line in _read_gz(args.corpus / f"train.{lang}.gz") if line.strip()
        ]
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_prefix=str(spm_model.with_suffix("")),
            vocab_size=8000,
            model_type="unigram",
            character_coverage=1.0,
            pad_id=0,
            unk_id=1,
            bos_id=2,
            eos_id=3,
            hard_vocab_limit=False,
            num_threads=args.threads,
            minloglevel=2,
        )
    report["data"] = data = prepare_data(spm_model, args.corpus, args.work, dev_sentences=300)
    report["train"] = trained = train(python, data, args.work, args.minutes, args.threads, args.seed)
    for beam in (1, 5):
        report[f"beam{beam}"] = decoded = translate(
            python, data, args.work, trained["checkpoint"], beam, args.threads
        )
        try:
            import sacrebleu

            hyps = decoded["hypothesis"].read_text(encoding="utf-8").splitlines()
            decoded["bleu"] = round(sacrebleu.corpus_bleu(hyps, [_read_gz(data["test_reference"])]).score, 2)
        except ImportError:
            pass
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--launch"]:
        _launch(sys.argv[2:])
    else:
        _smoke(sys.argv[1:])
