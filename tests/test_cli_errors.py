"""Bad input: one `error:` line naming the file/line/option and the fix, a non-zero exit, nothing half-written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import seqkit
from seqkit.errors import ModelDirError
from tests.helpers import assert_one_line_error, seqkit_here, write_toy


@pytest.fixture
def toy(tmp_path) -> Path:
    return Path(write_toy(tmp_path / "data", "copy", train_count=50, dev_count=5))


def _train(toy: Path, out: Path, *extra: str, run=seqkit_here):
    return run(
        "train",
        "--output",
        out,
        "--max-steps",
        "2",
        "--set",
        f"data.train={toy}/train",
        "--set",
        f"data.dev={toy}/dev",
        "--set",
        "data.src_lang=src",
        "--set",
        "data.tgt_lang=tgt",
        "--set",
        "tokenizer.vocab_size=16",
        "--set",
        "model.embedding_size=8",
        "--set",
        "model.encoder_hidden_size=8",
        "--set",
        "model.decoder_hidden_size=8",
        *extra,
    )


def test_tiny_training_run_succeeds_and_prints_nothing_on_stdout(toy, tmp_path):
    # (how a real process's stdout and stderr part: test_own_data's run with stderr in a file)
    result = _train(toy, tmp_path / "model")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""  # stdout is for results; progress and logs go to stderr
    assert "stopped by max_steps after 2 steps" in result.stderr.decode()
    assert "best BLEU" in result.stderr.decode()
    assert {p.name for p in (tmp_path / "model").iterdir()} == {
        "config.toml",
        "spm.model",
        "model.safetensors",
        "train_log.jsonl",
        "checkpoints",
        "vocab_counts.json",
        "shortlist.npz",  # translate --shortlist
        "cache",
        ".seqkit",  # the marker: a directory seqkit owns
        ".seqkit.lock",  # held while a training runs
    }


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--set", "model.hiden_size=8"], ["unknown key model.hiden_size"]),
        (["--set", "model.cell=transformer"], ["bad choice 'transformer'", "valid: rnn, gru, lstm"]),
        (["--set", "modle.cell=gru"], ["unknown section [modle] (did you mean model?)"]),  # brackets survive
        (
            ["--set", "data.train=/nonexistent/train"],
            ["data.train", "/nonexistent/train.src", "check the path"],
        ),
        (["--config", "/nonexistent/run.toml"], ["/nonexistent/run.toml", "config file not found"]),
    ],
    ids=["unknown-key", "bad-choice", "unknown-section", "missing-corpus", "missing-config"],
)
def test_train_refuses_bad_config_and_writes_nothing(toy, tmp_path, extra, fragments):
    out = tmp_path / "new" / "runs" / "model"  # the folders it made above the run went too (they stayed)
    assert_one_line_error(_train(toy, out, *extra), *fragments)
    assert not (tmp_path / "new").exists()


def test_train_refuses_mismatched_and_non_utf8_corpora(toy, tmp_path):
    with open(toy / "train.tgt", "a") as f:
        f.write("extra line\n")
    assert_one_line_error(_train(toy, tmp_path / "m1"), "train.src has 50 lines", "train.tgt has 51")
    (toy / "train.tgt").write_bytes(b"a b\n" * 10 + b"caf\xe9\n" + b"a b\n" * 39)
    assert_one_line_error(_train(toy, tmp_path / "m2"), "train.tgt:11: not valid UTF-8")
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()


def test_rerunning_a_finished_run_continues_it_instead_of_overwriting(toy, tmp_path):
    assert _train(toy, tmp_path / "model").returncode == 0
    before = (tmp_path / "model" / "model.safetensors").read_bytes()
    again = _train(toy, tmp_path / "model")  # same command: resumes, the limit is already reached
    assert again.returncode == 0 and "resuming" in again.stderr.decode()
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == before
    assert_one_line_error(
        _train(toy, tmp_path / "model", "--set", "model.decoder_hidden_size=12", "--max-steps", "4"),
        "a resumed run keeps its data, tokenizer, model, batches, seed, starting weights and best_metric "
        "(model.decoder_hidden_size: 8 -> 12)",
    )
    # the metric of its saved best score, and the weights it started from (read at the start only)
    for setting, change in (
        ("train.best_metric=ppl", "train.best_metric: 'auto' -> 'ppl'"),
        (f"train.init_from={tmp_path / 'model'}", f"train.init_from: '' -> '{tmp_path / 'model'}'"),
    ):
        assert_one_line_error(_train(toy, tmp_path / "model", "--set", setting, "--max-steps", "4"), change)
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == before
    # naming the metric "auto" already meant is no change
    same = _train(toy, tmp_path / "model", "--set", "train.best_metric=bleu", "--max-steps", "4")
    assert same.returncode == 0, same.stderr.decode()


def test_translate_bad_model_directories(reverse_model, tmp_path):
    assert_one_line_error(
        seqkit_here("translate", tmp_path / "nope", stdin="a\n"), "nope: no such model directory"
    )
    (tmp_path / "keep.en").write_text("a\n")  # an input file given first, say: it exists
    for command in (("translate",), ("info",), ("plot", "--terminal")):
        assert_one_line_error(
            seqkit_here(command[0], tmp_path / "keep.en", *command[1:], stdin="a\n"),
            "keep.en: a file, not a model directory",
        )
    damaged = tmp_path / "damaged"
    shutil.copytree(reverse_model, damaged)
    # emptied files: sentencepiece took no bytes for a model and failed at the first line (a traceback in
    # a training, the weights blamed when loading), and an empty config loaded as the defaults
    for name, said in (
        ("spm.model", "empty, not a SentencePiece model"),
        ("config.toml", "has no [model] table"),
    ):
        kept = (damaged / name).read_bytes()
        (damaged / name).write_bytes(b"")
        with pytest.raises(ModelDirError, match=f"{name}: {re.escape(said)}"):
            seqkit.load(damaged)
        (damaged / name).write_bytes(kept)
    # an spm.model of another vocabulary (one cut short can load so, with fewer pieces): the weights alone
    # were blamed for it
    import io

    import sentencepiece as spm

    smaller = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["a b c d e f g"] * 20), model_writer=smaller,
                                   vocab_size=12, hard_vocab_limit=False, minloglevel=2)  # fmt: skip
    kept = (damaged / "spm.model").read_bytes()
    (damaged / "spm.model").write_bytes(smaller.getvalue())
    with pytest.raises(
        ModelDirError, match=r"the tokenizer \(spm.model\) gives \d+ pieces where model.safetensors has"
    ):
        seqkit.load(damaged)
    (damaged / "spm.model").write_bytes(kept)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert_one_line_error(
        seqkit_here("translate", damaged, stdin="a\n"), "model.safetensors: damaged", "retrain or restore"
    )
    weights.unlink()
    assert_one_line_error(seqkit_here("translate", damaged, stdin="a\n"), "no model.safetensors")
    (damaged / "spm.model").unlink()
    assert_one_line_error(seqkit_here("translate", damaged, stdin="a\n"), "no spm.model", "(the tokenizer)")
    (damaged / "config.toml").write_text("[model]\ncell = 'gru'\nbogus = 1\n")
    assert_one_line_error(seqkit_here("translate", damaged, stdin="a\n"), "unknown key model.bogus")


def test_translate_bad_input_leaves_no_output_file(reverse_model, tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes(b"a b\nc \xff d\n")
    out = tmp_path / "out.txt"
    assert_one_line_error(
        seqkit_here("translate", reverse_model, source, "-o", out), "in.txt:2: not valid UTF-8"
    )
    assert not out.exists() and list(tmp_path.iterdir()) == [source]
    assert_one_line_error(
        seqkit_here("translate", reverse_model, tmp_path / "missing.txt"), "missing.txt: no such file"
    )
    assert_one_line_error(
        seqkit_here("translate", reverse_model, "--batch-size", "0", stdin="a\n"),
        "decode.batch_size",
        "positive",
    )


def test_an_output_file_named_as_a_directory_or_dash_is_refused(reverse_model, tmp_path, monkeypatch):
    """Path() drops a trailing / and /. : `-o results/` replaced the file results, where the shell says
    "Is a directory"; `-o -` wrote a file named -."""
    monkeypatch.chdir(tmp_path)  # (where a file named - was written)
    notes = tmp_path / "results"
    notes.write_text("my notes\n")
    for written in (f"{notes}/", f"{notes}/.", "-"):
        for command in (
            ("translate", reverse_model, "-o", written),
            ("plot", reverse_model, "-o", written),
            ("evaluate", "--model", reverse_model, "--data", notes, "--plot", written),
        ):
            result = seqkit_here(*command, stdin="a b\n")
            assert result.returncode == 2 and b"Invalid value for" in result.stderr, command
    assert notes.read_text() == "my notes\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_input_files_are_read_in_the_order_given_and_columns_count_from_one(reverse_model, tmp_path):
    # (torchrun's processes read every input as one stream: sorted, b.txt a.txt wrote a's lines first)
    from seqkit.cli.line_io import input_lines

    (tmp_path / "b.txt").write_text("b1\nb2\n")
    (tmp_path / "a.txt").write_text("a1\ta2\n")
    assert list(input_lines([tmp_path / "b.txt", tmp_path / "a.txt"])) == ["b1", "b2", "a1\ta2"]
    assert list(input_lines([tmp_path / "a.txt"], column=2)) == ["a2"]
    # --column 0 read the last column (Python's index -1)
    result = seqkit_here("translate", reverse_model, tmp_path / "a.txt", "--column", "0")
    assert_one_line_error(result, "--column 0: columns count from 1")


def test_a_model_too_large_for_memory_is_one_line(tmp_path, lm_data):
    from seqkit import configfile
    from tests.helpers import lm_config

    config = tmp_path / "lm.toml"
    config.write_bytes(configfile.to_toml(lm_config(lm_data)))
    # a typo's size (100,000,000 for 100): torch's allocator refused it in a traceback of about 60 lines
    result = seqkit_here(
        "train", "-c", config, "-o", tmp_path / "run", "--set", "model.decoder_hidden_size=100000000"
    )
    # refused before any allocation: counted on the meta device (a translation model of that size took
    # 44 s and 13 GB before the allocator gave up)
    assert_one_line_error(
        result, "out of memory: ", " parameters take ", " GiB to train (weights, gradients and Adam's moments), "
        "more than this machine's ", "this machine needs a smaller model (model.*_size"
    )  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_out_of_memory_is_told_from_other_errors_and_its_size_and_fix_are_the_commands():
    # (mutation review: only a CPU allocation in `train` was tested, and only for "GiB asked for at once")
    import torch
    import typer

    from seqkit.cli import MEMORY_FIXES, user_errors
    from seqkit.errors import memory_message, out_of_memory

    cpu = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to "
        "allocate 5368709120 bytes. Error code 12 (Cannot allocate memory)"
    )
    gpu = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.15 GiB total)")
    assert out_of_memory(cpu) and out_of_memory(gpu) and out_of_memory(MemoryError())
    assert not out_of_memory(RuntimeError("Expected all tensors to be on the same device"))
    assert not out_of_memory(ValueError("can't allocate memory"))
    assert memory_message(cpu, MEMORY_FIXES.get("train", "a smaller model or batch")) == (
        "out of memory (5.0 GiB asked for at once); this machine needs a smaller model (model.*_size, "
        "tokenizer.vocab_size) or a smaller train.batch_tokens"
    )
    huge = RuntimeError(
        "DefaultCPUAllocator: can't allocate memory: you tried to allocate 400000000000 bytes"
    )
    assert memory_message(huge, MEMORY_FIXES.get("translate", "a smaller model or batch")) == (
        "out of memory (373 GiB asked for at once); this machine needs a smaller --batch-size or --beam-size"
    )
    assert (
        memory_message(gpu, MEMORY_FIXES.get("predict", "a smaller model or batch"))
        == "out of memory; this machine needs a smaller --batch-size"
    )
    assert memory_message(MemoryError(), MEMORY_FIXES.get("generate", "a smaller model or batch")).endswith(
        "a smaller --num-samples or --max-tokens"
    )
    assert memory_message(MemoryError(), MEMORY_FIXES.get("evaluate", "a smaller model or batch")).endswith(
        "a smaller decode.batch_size in the model's config.toml"
    )
    assert memory_message(MemoryError(), MEMORY_FIXES.get("average", "a smaller model or batch")).endswith(
        "needs a smaller model or batch"
    )

    # a RuntimeError that is no allocation stays a bug's traceback; an allocation is exit 1
    @user_errors
    def translate():
        raise RuntimeError("Expected all tensors to be on the same device")

    with pytest.raises(RuntimeError, match="same device"):
        translate()

    @user_errors
    def generate():
        raise MemoryError()

    with pytest.raises(typer.Exit) as stopped:
        generate()
    assert stopped.value.exit_code == 1
