"""Resume and interruption: a stopped run continues exactly; no kill leaves a directory that cannot load."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from seqkit import model_types, modeldir, outputs
from seqkit.errors import ModelDirError
from seqkit.training import checkpoint
from seqkit.training import lm as train_lm
from seqkit.training import log as training_log
from seqkit.training import seq2seq as train_seq2seq
from seqkit.training.log import EndRecord, TrainRecord
from seqkit.training.loop import TrainingInterrupted
from seqkit.training.task import NullReporter
from seqkit.viz.summary import summarize
from tests.helpers import assert_one_line_error, keep, kept, lm_config, seqkit_here, toy_config, write_toy


def _last_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(checkpoint.latest(model_dir) / checkpoint.WEIGHTS)


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def _seq2seq_runs(directory: Path) -> None:
    """(In the background process.) 60 steps, and 30 steps (mid-epoch: 43 batches per epoch) resumed to 60
    across the epoch boundary; dropout makes the RNG state part of what must be restored."""
    data = write_toy(directory / "data", "reverse")
    train = {"max_steps": 60, "valid_every": 20, "log_every": 10}
    model = {"dropout": 0.3}
    train_seq2seq.train(toy_config(data, model=model, train=train), directory / "whole")
    train_seq2seq.train(toy_config(data, model=model, train={**train, "max_steps": 30}), directory / "split")
    train_seq2seq.train(toy_config(data, model=model, train=train), directory / "split", resume=True)
    copying = {**model, "copy": True, "coverage": True}
    train_seq2seq.train(toy_config(data, model=copying, train=train), directory / "copy-whole")
    split = {**train, "max_steps": 30}
    train_seq2seq.train(toy_config(data, model=copying, train=split), directory / "copy-split")
    train_seq2seq.train(toy_config(data, model=copying, train=train), directory / "copy-split", resume=True)


@pytest.mark.prepared_in_background("_seq2seq_runs")
def test_seq2seq_resume_is_bit_identical(background_model):
    tmp_path = background_model.model_dir
    assert training_log.read(tmp_path / "split")[-1].steps == 60
    _assert_identical(_last_weights(tmp_path / "whole"), _last_weights(tmp_path / "split"))
    _assert_identical(_last_weights(tmp_path / "copy-whole"), _last_weights(tmp_path / "copy-split"))
    kinds = [r.kind for r in training_log.read_all(tmp_path / "split")]
    assert kinds.count("start") == 1 and kinds.count("resume") == 1 and kinds.count("end") == 2


def test_language_model_resume_carries_the_hidden_state(tmp_path, lm_data):
    data = lm_data
    train = {"max_steps": 40, "valid_every": 20}
    model = {"dropout": 0.2}
    train_lm.train(lm_config(data, model=model, train=train), tmp_path / "whole")
    train_lm.train(lm_config(data, model=model, train={**train, "max_steps": 25}), tmp_path / "split")
    train_lm.train(lm_config(data, model=model, train=train), tmp_path / "split", resume=True)
    _assert_identical(_last_weights(tmp_path / "whole"), _last_weights(tmp_path / "split"))


def _train_command(data_dir: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "seqkit", "train", "--output", str(out),
        "--set", f"data.train={data_dir}/train", "--set", f"data.dev={data_dir}/dev",
        "--set", "data.src_lang=src", "--set", "data.tgt_lang=tgt", "--set", "tokenizer.vocab_size=16",
        "--set", "model.embedding_size=16", "--set", "model.encoder_hidden_size=16",
        "--set", "model.decoder_hidden_size=32", "--set", "train.batch_tokens=200",
        "--set", "train.valid_every=15", "--set", "train.log_every=5", "--set", "train.threads=1",
        *extra,
    ]  # fmt: skip


def _wait_for_steps(model_dir: Path, process: subprocess.Popen, steps: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if any(r.step >= steps for r in training_log.of_kind(training_log.read_all(model_dir), TrainRecord)):
            return
        time.sleep(0.1)
    raise AssertionError("training made no progress")


def _signalled_runs(directory: Path) -> None:
    """(In the background process.) SIGTERM stops a run after 20 steps, the same command resumes it,
    SIGINT stops the resumed run 20 steps later, and the same command with a nearer step limit finishes
    it; what each left is kept for the test."""
    out = directory / "model"
    command = _train_command(write_toy(directory / "data", "reverse"), out, "--max-steps", "100000")
    stopped_at, stops = 0, []
    for sent in (signal.SIGTERM, signal.SIGINT):
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait_for_steps(out, process, stopped_at + 20)
        process.send_signal(sent)
        stdout, stderr = process.communicate(timeout=60)
        stopped = training_log.read(out)[-1]
        stops.append({"signal": sent, "steps_before": stopped_at, "run": subprocess.CompletedProcess(command, process.returncode, stdout, stderr),
                      "end": stopped, "checkpoint": checkpoint.latest(out).name, "info_steps": summarize(out)["training"]["steps"]})  # fmt: skip
        stopped_at = stopped.steps
    keep(directory / "stops", stops)
    keep(directory / "again", seqkit_here(*command[3:-1], str(stopped_at + 7)))  # no signal to catch


@pytest.mark.prepared_in_background("_signalled_runs")
def test_signals_save_a_checkpoint_and_the_same_command_continues(background_model):
    """Each signal's run finished its current step, saved a checkpoint and exited 128 + the signal's
    number; the same command continued it."""
    out = background_model.model_dir / "model"
    stops = kept(background_model.model_dir / "stops")
    assert [(stop["signal"], stop["run"].returncode) for stop in stops] == [
        (signal.SIGTERM, 143),
        (signal.SIGINT, 130),
    ]
    for stop in stops:
        err, stopped = stop["run"].stderr.decode(), stop["end"]
        assert stop["run"].stdout == b""
        assert "; continue with: seqkit train --resume" in err and "checkpoint saved at step" in err
        if stop["steps_before"]:  # the second run continued the first one's checkpoint
            assert "config changes: none" in err and f"restored step {stop['steps_before']}" in err
        assert isinstance(stopped, EndRecord) and not stopped.finished
        assert stopped.kind == "interrupted" and stopped.reason == stop["signal"].name
        assert stopped.steps >= stop["steps_before"] + 20
        assert stop["checkpoint"] == f"step-{stopped.steps:08d}"
        # info's steps are the checkpoint's (they were the last logged step's, up to log_every behind)
        assert stop["info_steps"] == stopped.steps
    stopped_at = stops[-1]["end"].steps
    # the same command with a nearer limit continued from there and said what changed
    again = kept(background_model.model_dir / "again")
    assert again.returncode == 0, again.stderr.decode()
    err = again.stderr.decode()
    assert "config changes: train.max_steps: 100000 -> " in err and f"restored step {stopped_at}" in err
    end = training_log.read(out)[-1]
    assert isinstance(end, EndRecord) and end.finished and end.steps == stopped_at + 7
    # info says so (it read the first end record of the log, the signal's: "finished": false)
    training = summarize(out)["training"]
    assert training["finished"] is True and training["stopped_by"] == end.reason


def _wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"training stopped or stalled before writing {what}")
        time.sleep(0.02)


def _killed_runs(directory: Path) -> None:
    """(In the background process.) SIGKILL, which no handler sees, at chosen moments: early in the first
    run (before any checkpoint, most likely), then twice at a random moment within a validation interval
    after the running process wrote a checkpoint of its own, so that kills land amid training steps, log
    lines, checkpoint and weight writes of a resumed run. What each kill left is kept for the test, then
    the same command finishes the run."""
    out = directory / "model"
    command = _train_command(write_toy(directory / "data", "reverse"), out, "--max-steps", "100000")
    rng = random.Random(11)
    kills = []
    for attempt in range(3):
        before = checkpoint.latest(out)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt == 0:  # once the run has started its directory: the tokenizer, the first steps
            _wait_for(lambda: (out / modeldir.CONFIG).is_file(), process, "its config")
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            # a checkpoint this process wrote, not the one it resumed from
            _wait_for(lambda: checkpoint.latest(out) not in (None, before), process, "a checkpoint")  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.5))  # about one validation interval (15 steps) on a loaded machine
        had_checkpoint = checkpoint.latest(out) is not None
        process.kill()
        process.wait()
        try:
            model_types.load(out)
            load_error = None
        except ModelDirError as e:
            load_error = str(e)
        latest = checkpoint.latest(out)
        kills.append({"had_checkpoint": had_checkpoint, "load_error": load_error,
                      "checkpoint_files": latest and sorted(p.name for p in latest.iterdir())})  # fmt: skip
    keep(directory / "kills", kills)
    keep(directory / "finish", seqkit_here(*command[3:-1], "60"))  # the same command finishes the run


@pytest.mark.prepared_in_background("_killed_runs")
def test_kill_9_at_random_moments_never_leaves_a_broken_directory(background_model):
    kills = kept(background_model.model_dir / "kills")
    for kill in kills:
        assert (
            kill["load_error"] is None or "no model.safetensors" in kill["load_error"]
        )  # only ever: no weights yet
        if kill["had_checkpoint"]:  # a kill never takes a checkpoint away
            assert kill["checkpoint_files"] is not None
        assert kill["checkpoint_files"] in (None, ["state.pt", "weights.safetensors"])
    # the kills met checkpoints and weights to break
    assert sum(kill["had_checkpoint"] for kill in kills) >= 2
    assert sum(kill["load_error"] is None for kill in kills) >= 2
    finish = kept(background_model.model_dir / "finish")
    assert finish.returncode == 0, finish.stderr.decode()
    model_types.load(background_model.model_dir / "model")  # a complete, loadable model


def test_resume_errors(tmp_path):
    result = seqkit_here("train", "--resume", tmp_path)
    assert result.returncode == 1 and b"no checkpoint to resume" in result.stderr


@pytest.mark.parametrize("keep", [1, 2])
def test_a_run_keeps_the_newest_checkpoints_it_is_told(tmp_path, keep):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters())
    for step in (10, 20, 30):
        checkpoint.save(tmp_path, model, optimizer, {"progress": {"step": step}}, keep)
    kept = sorted(p.name for p in (tmp_path / checkpoint.ROOT).glob("step-*"))
    assert kept == ["step-00000020", "step-00000030"][-keep:]


def test_average_of_the_last_checkpoints(tmp_path, reverse_data):
    cfg = toy_config(reverse_data, train={"max_steps": 30, "valid_every": 10, "keep_checkpoints": 3})
    train_seq2seq.train(cfg, tmp_path / "run")
    kept = sorted(p.name for p in (tmp_path / "run" / checkpoint.ROOT).glob("step-*"))
    assert kept == ["step-00000010", "step-00000020", "step-00000030"]
    result = seqkit_here("average", tmp_path / "run", "-o", tmp_path / "avg")
    assert result.returncode == 0, result.stderr.decode()
    assert b"warning" not in result.stderr
    _, _, model = model_types.load(tmp_path / "avg")
    a = load_file(tmp_path / "run" / checkpoint.ROOT / "step-00000020" / checkpoint.WEIGHTS)
    b = load_file(tmp_path / "run" / checkpoint.ROOT / "step-00000030" / checkpoint.WEIGHTS)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, (a[name] + b[name]) / 2)
    # info credited the mean with one checkpoint's dev score ("the saved weights")
    info = seqkit_here("info", tmp_path / "avg").stdout.decode()
    assert "weights: the mean of checkpoints (seqkit average), not validated" in info
    assert "the saved weights" not in info
    assert json.loads(seqkit_here("info", tmp_path / "avg", "--json").stdout)["averaged"] is True
    # only the run's own files come along: a user's output beside them was copied into the new directory
    (tmp_path / "run" / "test.hyp").write_text("a translation\n")
    # (and more asked than the run kept: all three averaged, and said so)
    result = seqkit_here("average", tmp_path / "run", "-o", tmp_path / "avg2", "--last", "5")
    assert result.returncode == 0, result.stderr.decode()
    assert b"--last 5, but" in result.stderr and b"holds 3 complete checkpoints" in result.stderr
    assert not (tmp_path / "avg2" / "test.hyp").exists() and (tmp_path / "avg2" / "config.toml").is_file()
    # another model's checkpoint among the last: refused in one line (a traceback of tensor sizes, or,
    # with other tensor names, a mean of each name over the checkpoints that had it, divided by all)
    other = tmp_path / "run" / checkpoint.ROOT / "step-00000040"
    shutil.copytree(tmp_path / "run" / checkpoint.ROOT / "step-00000030", other)
    tensors = load_file(other / checkpoint.WEIGHTS)
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, other / checkpoint.WEIGHTS)
    refused = seqkit_here("average", tmp_path / "run", "-o", tmp_path / "avg3")
    assert_one_line_error(refused, "step-00000040: its tensors are not those of step-00000030")
    assert not (tmp_path / "avg3").exists()


def test_a_fresh_start_clears_a_checkpoint_left_unnamed_by_a_kill(tmp_path, reverse_data):
    outputs.claim_directory(tmp_path / "run", "run", "--output")  # the directory of the killed run
    stale = (
        tmp_path / "run" / checkpoint.ROOT / "step-00000010"
    )  # renamed into place, never named in `latest`
    stale.mkdir(parents=True)
    (stale / checkpoint.WEIGHTS).write_bytes(b"junk")
    cfg = toy_config(reverse_data, train={"max_steps": 10, "valid_every": 10})
    train_seq2seq.train(cfg, tmp_path / "run")
    assert (checkpoint.latest(tmp_path / "run") / checkpoint.WEIGHTS).read_bytes() != b"junk"
    longer = toy_config(reverse_data, train={"max_steps": 12, "valid_every": 10})
    assert train_seq2seq.train(longer, tmp_path / "run", resume=True).steps == 12


def test_latest_falls_back_when_the_named_checkpoint_was_deleted(tmp_path, reverse_data):
    cfg = toy_config(reverse_data, train={"max_steps": 20, "valid_every": 10})
    train_seq2seq.train(cfg, tmp_path / "run")
    import shutil

    shutil.rmtree(checkpoint.latest(tmp_path / "run"))  # as the restore error suggests
    assert checkpoint.latest(tmp_path / "run").name == "step-00000010"
    longer = toy_config(reverse_data, train={"max_steps": 25, "valid_every": 10})
    assert train_seq2seq.train(longer, tmp_path / "run", resume=True).steps == 25


class _InterruptAt(NullReporter):
    """A reporter that sends this process SIGINT (or `number`) after step `step`, as Ctrl-C would."""

    def __init__(self, step: int, number: int = signal.SIGINT):
        self.at, self.number = step, number

    def step(self, report):
        if report.step == self.at:
            os.kill(os.getpid(), self.number)


def test_a_resumed_runs_log_records_equal_the_uninterrupted_runs(tmp_path, reverse_data):
    # stopped in the middle of a log interval: the resumed run's record at step 30 covered steps 26-30, and
    # its validation's gradient statistics steps 26-40, not the interval's 10 and 20 steps
    train = {"max_steps": 40, "valid_every": 20, "log_every": 10}
    train_seq2seq.train(toy_config(reverse_data, train=train), tmp_path / "whole")
    with pytest.raises(TrainingInterrupted):
        train_seq2seq.train(toy_config(reverse_data, train=train), tmp_path / "split", _InterruptAt(25))
    train_seq2seq.train(toy_config(reverse_data, train=train), tmp_path / "split", resume=True)
    timing = {"elapsed_s", "target_tokens_per_s", "validation_s"}

    def records(run: str) -> list[dict]:
        lines = (tmp_path / run / "train_log.jsonl").read_text().splitlines()
        kept = [json.loads(line) for line in lines]
        return [
            {k: v for k, v in r.items() if k not in timing}
            for r in kept
            if r["kind"] in ("train", "valid") and r["step"] > 20
        ]

    assert records("split") == records("whole")
    assert [r["step"] for r in records("whole")] == [30, 40, 40]


def test_sighup_stops_a_run_at_a_checkpoint_as_ctrl_c_does(tmp_path, reverse_data):
    # a closed terminal or a dropped ssh session: the process was ended by the signal's default action,
    # its steps since the last validation lost, and nothing said
    before = signal.getsignal(signal.SIGHUP)
    train = {"max_steps": 100, "valid_every": 1000}
    with pytest.raises(TrainingInterrupted) as stopped:
        train_seq2seq.train(
            toy_config(reverse_data, train=train), tmp_path / "run", _InterruptAt(7, signal.SIGHUP)
        )
    assert stopped.value.signal_number == signal.SIGHUP
    assert checkpoint.latest(tmp_path / "run").name == "step-00000007"
    assert signal.getsignal(signal.SIGHUP) == before


def test_a_signal_the_process_ignores_stays_ignored(tmp_path, reverse_data):
    # `nohup seqkit train ...`: a closed terminal stopped the run (seqkit's handler replaced SIG_IGN)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        train = {"max_steps": 10, "valid_every": 1000}
        end = train_seq2seq.train(
            toy_config(reverse_data, train=train), tmp_path / "run", _InterruptAt(4, signal.SIGHUP)
        )
        assert end.reason == "max_steps" and end.steps == 10
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_checkpoint_of_the_same_step_is_replaced_by_the_newer_state(tmp_path, reverse_data):
    """Interrupted at step 12 before any validation, then finished at step 12: the validation that the
    second session runs must reach the checkpoint, or the next resume forgets the best score and takes
    any later (worse) weights for the best."""
    train = {"max_steps": 100, "valid_every": 1000, "best_metric": "ppl"}
    with pytest.raises(TrainingInterrupted):
        train_seq2seq.train(toy_config(reverse_data, train=train), tmp_path / "run", _InterruptAt(12))
    train_seq2seq.train(
        toy_config(reverse_data, train={**train, "max_steps": 12}), tmp_path / "run", resume=True
    )
    saved = torch.load(checkpoint.latest(tmp_path / "run") / checkpoint.STATE, weights_only=True)
    progress = saved["state"]["progress"]
    assert checkpoint.latest(tmp_path / "run").name == "step-00000012"
    assert progress["validated_step"] == 12 and progress["best_step"] == 12
    assert not list((tmp_path / "run" / checkpoint.ROOT).glob(".*"))  # the replaced folder is gone


def test_a_schedule_along_max_epochs_resumes_bit_identical_in_a_later_epoch(
    tmp_path, reverse_data, monkeypatch
):
    """Each epoch's bucketing makes its own number of batches (457, then 456 on a larger corpus than the
    toy): a session resumed in the second epoch counted the budget of max_epochs in that epoch's batches,
    and its linear decay took another line than the uninterrupted run's. Here every epoch is made one
    batch shorter than the one before."""
    real_task = train_seq2seq.TrainingTask

    def uneven_epochs(*args, **kwargs):
        task = real_task(*args, **kwargs)
        batches = task.batches
        task.batches = lambda epoch: list(batches(epoch))[: len(batches(epoch)) - epoch]
        return task

    monkeypatch.setattr(train_seq2seq, "TrainingTask", uneven_epochs)
    train = {"max_steps": 0, "max_epochs": 2, "lr_schedule": "linear", "valid_every": 1000}
    model = {"embedding_size": 8, "encoder_hidden_size": 8, "decoder_hidden_size": 16}
    cfg = toy_config(reverse_data, train=train, model=model)
    train_seq2seq.train(cfg, tmp_path / "whole")
    first_epoch = training_log.read_all(tmp_path / "whole")[0].steps_per_epoch
    with pytest.raises(TrainingInterrupted):
        train_seq2seq.train(cfg, tmp_path / "split", _InterruptAt(first_epoch + 3))
    train_seq2seq.train(cfg, tmp_path / "split", resume=True)
    resumed = [r for r in training_log.read_all(tmp_path / "split") if r.kind == "resume"][0]
    assert resumed.steps_per_epoch == first_epoch - 1  # the case: the second epoch has another count
    _assert_identical(_last_weights(tmp_path / "whole"), _last_weights(tmp_path / "split"))


def test_an_average_that_cannot_be_written_names_its_output_and_leaves_nothing(
    tmp_path, reverse_model, monkeypatch
):
    # a full disk was said as the source model's file ("demo/curves.png: No space left on device")
    import errno
    import shutil

    def full(source, target, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(source))

    monkeypatch.setattr(shutil, "copy2", full)
    with pytest.raises(OSError) as raised:
        checkpoint.average(reverse_model, tmp_path / "avg", 2)
    assert raised.value.filename == str(tmp_path / "avg") and raised.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def _constant_model(value: float) -> torch.nn.Linear:
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    return model


def test_an_average_over_fewer_checkpoints_than_asked_is_their_mean(tmp_path):
    # (--last 5 of a run that kept 2: the sum was divided by 5)
    (tmp_path / "run").mkdir()
    for step, value in ((10, 1.0), (20, 3.0)):
        model = _constant_model(value)
        checkpoint.save(tmp_path / "run", model, torch.optim.Adam(model.parameters()),
                        {"progress": {"step": step}}, 5)  # fmt: skip
    assert checkpoint.average(tmp_path / "run", tmp_path / "avg", 5) == ["step-00000010", "step-00000020"]
    for tensor in load_file(tmp_path / "avg" / "model.safetensors").values():
        torch.testing.assert_close(tensor, torch.full_like(tensor, 2.0))


def test_a_save_clears_what_a_killed_save_left_and_keeps_the_checkpoint_it_wrote(tmp_path):
    model = _constant_model(1.0)
    optimizer = torch.optim.Adam(model.parameters())
    root = tmp_path / checkpoint.ROOT
    root.mkdir()
    stale = root / ".step-00000003.4242.tmp"  # a save killed half-way
    stale.mkdir()
    (stale / checkpoint.WEIGHTS).write_bytes(b"half")
    checkpoint.save(tmp_path, model, optimizer, {"progress": {"step": 10}}, 1)
    assert not stale.exists()
    # a checkpoint of an earlier step than the newest (a resume from an older one) is the one kept as latest,
    # even with keep 1: the newest-named folder is not this run's present
    checkpoint.save(tmp_path, model, optimizer, {"progress": {"step": 5}}, 1)
    assert (root / "step-00000005").is_dir()
    assert checkpoint.latest(tmp_path) == root / "step-00000005"


def test_latest_takes_no_checkpoint_through_a_link(tmp_path):
    model = _constant_model(1.0)
    optimizer = torch.optim.Adam(model.parameters())
    (tmp_path / "run").mkdir()
    (tmp_path / "other").mkdir()
    checkpoint.save(tmp_path / "run", model, optimizer, {"progress": {"step": 10}}, 3)
    checkpoint.save(tmp_path / "other", model, optimizer, {"progress": {"step": 90}}, 3)
    root = tmp_path / "run" / checkpoint.ROOT
    # a folder linked in, named as a newer step, and named by `latest` too
    (root / "step-00000090").symlink_to(tmp_path / "other" / checkpoint.ROOT / "step-00000090")
    (root / checkpoint.LATEST).write_text("step-00000090")
    assert checkpoint.latest(tmp_path / "run") == root / "step-00000010"
    # a `latest` that is itself a link is not read: the newest checkpoint is taken, not the one it names
    (root / "step-00000090").unlink()
    checkpoint.save(tmp_path / "run", model, optimizer, {"progress": {"step": 20}}, 3)
    (root / checkpoint.LATEST).unlink()
    (tmp_path / "pointer").write_text("step-00000010")
    (root / checkpoint.LATEST).symlink_to(tmp_path / "pointer")
    assert checkpoint.latest(tmp_path / "run") == root / "step-00000020"


def test_the_latest_pointer_is_replaced_whole_never_rewritten_in_place(tmp_path):
    # (mutation review: a pointer written in place went unseen; a kill in the middle of that write left an
    # empty `latest`, which a resume refuses as "not a checkpoint of this run")
    model = _constant_model(1.0)
    optimizer = torch.optim.Adam(model.parameters())
    checkpoint.save(tmp_path, model, optimizer, {"progress": {"step": 10}}, 3)
    pointer = tmp_path / checkpoint.ROOT / checkpoint.LATEST
    with open(pointer, "rb") as reader:  # a reader (`info`, a resume) that opened it before the next save
        checkpoint.save(tmp_path, model, optimizer, {"progress": {"step": 20}}, 3)
        assert reader.read() == b"step-00000010"  # the file it opened is whole, not truncated and rewritten
    assert pointer.read_bytes() == b"step-00000020"


def test_checkpoints_past_step_99_999_999_are_the_newest(tmp_path):
    # (their names have a ninth digit: the run refused its own `latest`, and the fallback and the pruning,
    # which sorted by name, took step-100000000 for older than step-99999999)
    model = _constant_model(1.0)
    optimizer = torch.optim.Adam(model.parameters())
    for step in (99_999_998, 99_999_999, 100_000_000, 100_000_001):
        checkpoint.save(tmp_path, model, optimizer, {"progress": {"step": step}}, 2)
    root = tmp_path / checkpoint.ROOT
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-100000000", "step-100000001"]
    assert checkpoint.latest(tmp_path) == root / "step-100000001"
    (root / checkpoint.LATEST).unlink()  # the fallback to the newest complete checkpoint
    assert checkpoint.latest(tmp_path) == root / "step-100000001"
