"""Data-parallel training: two CPU processes as two "nodes" on 127.0.0.1 (the workers of the README's
multi-node command, the same on every machine but for --node-rank) reach the weights of one process with
the same total batch; the run resumes under torchrun, two processes on one node."""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from seqkit import outputs
from seqkit.data.formats import read_pairs
from seqkit.data.tokenizer import build_tokenizer
from seqkit.decoding.inference import TooManyPieces
from seqkit.errors import ConfigError, DataError, TrainingError
from seqkit.runtime.distributed import World
from seqkit.training import checkpoint
from seqkit.training import log as training_log
from seqkit.training.log import StartRecord, ValidRecord
from seqkit.training.run import receive_tokenizer, send_tokenizer, telling_the_others
from tests.helpers import (
    data_parallel_train_args,
    seqkit_here,
    torchrun_workers,
    toy_config,
    write_text,
    write_toy,
)

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _arguments(data_dir: str, out, steps: int = 12) -> list[str]:
    # with copy attention and coverage: their gate, attention weights and coverage state go through DDP too
    copying = ["--set", "model.copy=true", "--set", "model.coverage=true"]
    return [*data_parallel_train_args(data_dir, out, steps, valid_every=6), *copying]


def _data_parallel_runs(directory: Path) -> None:
    """(In the background process.) One process; two "nodes" of one process each, the workers `torchrun
    --nnodes 2 --node-rank R --nproc-per-node 1` starts on each machine, with their environment (the
    launchers are left out); then the two-node run resumed under torchrun itself, two processes on one
    node. Each command's exit code and stderr go to files beside the runs."""
    data = write_toy(directory / "data", "reverse")

    def keep(name: str, code: int, stderr: bytes) -> None:
        (directory / f"{name}.code").write_text(str(code))
        (directory / f"{name}.stderr").write_bytes(stderr)

    one = seqkit_here(*_arguments(data, directory / "one"))
    keep("one", one.returncode, one.stderr)
    nodes = torchrun_workers([_arguments(data, directory / f"node{rank}") for rank in (0, 1)], nodes=True)
    for rank, (code, err) in enumerate(nodes):
        keep(f"node{rank}", code, err)
    longer = [
        *TORCHRUN,
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "seqkit",
        *_arguments(data, directory / "node0", 18),
    ]
    resumed = subprocess.run(longer, capture_output=True, timeout=300)
    keep("resumed", resumed.returncode, resumed.stderr)
    # a language model trained in one process, resumed under torchrun: each process holds half the
    # streams, so the carried hidden state of all of them starts afresh
    text = write_text(directory / "lm-data")
    lm = [
        "train", "--output", str(directory / "lm"), "--set", f"data.train={text}/train",
        "--set", f"data.dev={text}/dev", "--set", "data.tgt_lang=txt", "--set", "tokenizer.type=char",
        "--set", "model.type=lm", "--set", "model.embedding_size=8", "--set", "model.decoder_hidden_size=16",
        "--set", "train.batch_tokens=64", "--set", "train.bptt_length=16", "--set", "train.threads=1",
    ]  # fmt: skip
    first = seqkit_here(*lm, "--max-steps", "3")
    keep("lm", first.returncode, first.stderr)
    lm_resumed = subprocess.run(
        [
            *TORCHRUN,
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "seqkit",
            *lm,
            "--resume",
            str(directory / "lm"),
            "--max-steps",
            "6",
        ],
        capture_output=True,
        timeout=300,
    )
    keep("lm-resumed", lm_resumed.returncode, lm_resumed.stderr)
    # classifiers of text (whose tokenizer the first process trains and sends) and of numbers (no
    # tokenizer: nothing is sent), in one process and as two "nodes"
    for inputs in ("text", "numbers"):
        data_file = _write_classification(directory / f"{inputs}-data", inputs)
        arguments = _classifier_arguments(data_file, inputs)
        one = seqkit_here(*arguments(directory / f"{inputs}-one"))
        keep(f"{inputs}-one", one.returncode, one.stderr)
        nodes = torchrun_workers(
            [arguments(directory / f"{inputs}-node{rank}") for rank in (0, 1)], nodes=True
        )
        for rank, (code, err) in enumerate(nodes):
            keep(f"{inputs}-node{rank}", code, err)


def _write_classification(directory: Path, inputs: str) -> Path:
    """{directory}/{train,dev}.tsv: a label and a text (the label: its first word); or .csv: a label and
    numbers (the label: the sign of their sum)."""
    directory.mkdir(parents=True)
    rng = random.Random(5)
    for name, count in (("train", 400), ("dev", 40)):
        rows = []
        for _ in range(count):
            if inputs == "text":
                words = [rng.choice(["w1", "w2", "w3", "w4"]) for _ in range(rng.randint(2, 6))]
                rows.append(f"{words[0]}\t{' '.join(words)}\n")
            else:
                values = [rng.uniform(-1, 1) for _ in range(rng.randint(2, 6))]
                rows.append(f"{'pos' if sum(values) > 0 else 'neg'},{','.join(f'{v:.3f}' for v in values)}\n")
        (directory / f"{name}.{'tsv' if inputs == 'text' else 'csv'}").write_text("".join(rows))
    return directory


def _classifier_arguments(data_dir: Path, inputs: str):
    suffix = "tsv" if inputs == "text" else "csv"
    # numbers: rows of 2 to 6 values in batches of at most 6, so that most batches hold a single row
    # (World.shard: the second process borrows it, weighted 0) and some two or three
    batch_tokens = 300 if inputs == "text" else 6

    def arguments(out: Path) -> list[str]:
        return [
            "train", "--output", str(out), "--max-steps", "8", "--set", f"data.train={data_dir}/train.{suffix}",
            "--set", f"data.dev={data_dir}/dev.{suffix}", "--set", "model.type=classifier",
            "--set", "tokenizer.vocab_size=12", "--set", "model.embedding_size=8",
            "--set", "model.encoder_hidden_size=8", "--set", "model.dropout=0.0", "--set", f"train.batch_tokens={batch_tokens}",
            "--set", "train.valid_every=4", "--set", "train.threads=1",
        ]  # fmt: skip

    return arguments


def _ran(directory: Path, name: str) -> str:
    stderr = (directory / f"{name}.stderr").read_text(errors="replace")
    assert (directory / f"{name}.code").read_text() == "0", stderr
    return stderr


@pytest.mark.prepared_in_background("_data_parallel_runs")
def test_two_nodes_train_like_one_process_with_the_same_total_batch_and_resume(background_model):
    runs = background_model.model_dir
    for name in ("one", "node0", "node1"):
        _ran(runs, name)
    one, two = runs / "one", runs / "node0"
    assert checkpoint.latest(runs / "node1") is None  # only the first process of all writes the run
    a = load_file(checkpoint.latest(one) / checkpoint.WEIGHTS)
    b = load_file(two / checkpoint.ROOT / "step-00000012" / checkpoint.WEIGHTS)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    starts = [training_log.read(run)[0] for run in (one, two)]
    assert all(isinstance(s, StartRecord) for s in starts) and [s.processes for s in starts] == [1, 2]
    # the same training figures, logged once (by rank 0)
    logs = [training_log.of_kind(training_log.read(run), ValidRecord) for run in (one, two)]
    assert [r.step for r in logs[1]] == [6, 12, 18]  # (the last from the resumed run)
    for x, y in zip(logs[0], logs[1][:2], strict=True):
        assert abs(x.scores["ppl"] - y.scores["ppl"]) < 1e-3 * x.scores["ppl"]
    # a distributed run resumes too, under torchrun, from rank 0's checkpoint
    assert _ran(runs, "resumed").count("restored step 12") == 1  # reported once, by rank 0
    assert checkpoint.latest(two).name == "step-00000018"
    for name in ("lm", "lm-resumed"):
        _ran(runs, name)
    assert checkpoint.latest(runs / "lm").name == "step-00000006"
    # classifiers: of text, with the first process's tokenizer; of numbers, with none, in batches most of
    # which hold one row, fewer than the processes: the same weights all the same
    for inputs in ("text", "numbers"):
        for name in ("one", "node0", "node1"):
            _ran(runs, f"{inputs}-{name}")
        a = load_file(checkpoint.latest(runs / f"{inputs}-one") / checkpoint.WEIGHTS)
        b = load_file(checkpoint.latest(runs / f"{inputs}-node0") / checkpoint.WEIGHTS)
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)


def test_a_process_without_a_share_of_a_batch_borrows_an_item_weighted_0():
    """(The weights of a run whose batches hold one item are those of one process: the test above.)"""
    assert World(rank=1, size=3).shard(list("abcde")) == (["b", "e"], 1.0)
    assert World(rank=0, size=2).shard(["a"]) == (["a"], 1.0)
    assert World(rank=1, size=2).shard(["a"]) == (["a"], 0.0)


@dataclass(frozen=True)
class _Relay(World):
    """Two processes' worlds in one: what the first broadcasts (`from_main`), the other receives."""

    sent: list = field(default_factory=list)

    def from_main(self, value: Any) -> Any:
        if self.is_main:
            self.sent.append(pickle.dumps(value))  # (as broadcast_object_list sends it)
            return value
        return pickle.loads(self.sent.pop(0))


@pytest.mark.parametrize(
    "tokenizer", [{"type": "char"}, {"vocab_size": 16}, {"joint": False, "vocab_size": 16}], ids=str
)
def test_the_other_processes_receive_the_first_process_tokenizer(tmp_path, reverse_data, tokenizer: dict):
    # (each process trained its own SentencePiece model before; the first now sends its model's files)
    cfg = toy_config(reverse_data, tokenizer=tokenizer)
    src, tgt = read_pairs(cfg.data.train, cfg.data, "data.train")
    trained = build_tokenizer(src, tgt, cfg.tokenizer, cfg.train.seed)
    sent: list = []
    send_tokenizer(_Relay(rank=0, size=2, sent=sent), trained)
    received = receive_tokenizer(_Relay(rank=1, size=2, sent=sent), tmp_path)
    assert type(received) is type(trained) and received.files() == trained.files()
    assert received.encode_src(src) == trained.encode_src(src)
    assert received.encode_tgt(tgt) == trained.encode_tgt(tgt)


@dataclass(frozen=True)
class _Gone(World):
    """A world whose other processes have gone: every broadcast fails, as gloo's does."""

    def from_main(self, value: Any) -> Any:
        raise RuntimeError("Connection closed by peer")


def test_an_error_of_the_first_process_making_the_tokenizer_reaches_the_others(tmp_path):
    sent: list = []
    first, other = _Relay(rank=0, size=2, sent=sent), _Relay(rank=1, size=2, sent=sent)
    with pytest.raises(ConfigError), telling_the_others(first):
        raise ConfigError("tokenizer.vocab_size = 9: too small")
    with pytest.raises(ConfigError, match=r"^tokenizer.vocab_size = 9: too small$"):
        receive_tokenizer(other, tmp_path)
    with pytest.raises(TooManyPieces), telling_the_others(first):  # an error class that does not unpickle
        raise TooManyPieces("input line 3", 2000, 1024)
    with pytest.raises(DataError, match=r"^input line 3 has 2,000 pieces, more than decode.max_input_pieces"):
        receive_tokenizer(other, tmp_path)
    with pytest.raises(ZeroDivisionError), telling_the_others(first):
        print(1 / 0)
    # the others gone too (the broadcast fails): this process's own error is the one raised
    with pytest.raises(ConfigError, match="too small"), telling_the_others(_Gone(rank=0, size=2)):
        raise ConfigError("tokenizer.vocab_size = 9: too small")
    with pytest.raises(
        TrainingError, match=r"^the first process stopped \(ZeroDivisionError\); its error is on its stderr$"
    ):
        receive_tokenizer(other, tmp_path)


@pytest.mark.parametrize("fault", ["a missing tokenizer.model", "a run another training holds"])
def test_an_error_only_the_first_process_meets_is_each_process_one_line_error_not_a_wait(
    tmp_path, fault: str
):
    # only the first process locks the run directory and reads tokenizer.model: the second waited for
    # what never came, and died of the broken connection (a gloo traceback)
    data = write_toy(tmp_path / "data", "reverse")
    output, missing = tmp_path / "run", tmp_path / "missing.model"
    model = ["--set", "model.type=seq2seq", "--set", "data.tgt_lang=tgt", "--set", "tokenizer.type=char"]
    held = contextlib.nullcontext()
    if fault == "a missing tokenizer.model":  # (of a language model's tokenizer)
        model = [
            "--set",
            "model.type=lm",
            "--set",
            "data.tgt_lang=src",
            "--set",
            f"tokenizer.model={missing}",
        ]
        expected = f"error: tokenizer.model = {str(missing)!r}: no such file; check the path"
    else:  # this process holds the run's lock, as a training of it would
        output.mkdir()
        outputs.claim_directory(output, "run", "--output")
        held = outputs.locked(output)
        expected = f"error: {output} is being trained by another process (pid {os.getpid()})"
    arguments = [
        "train", "--output", str(output), "--max-steps", "2", "--set", f"data.train={data}/train",
        "--set", f"data.dev={data}/dev", "--set", "data.src_lang=src", *model, "--set", "train.threads=1",
    ]  # fmt: skip
    with held:
        ended = torchrun_workers([arguments, arguments])
    last = [err.decode().strip().splitlines()[-1] for _, err in ended]
    assert [code for code, _ in ended] == [1, 1], last
    assert last[0] == last[1] and last[0].startswith(expected), last
