"""What a careful and an unlucky user do (issue 14), each reproduced: a user's files are never deleted or
replaced, special files and links are not replaced or followed out of a run, a second training of a
directory is refused, every OSError is one line, and nonsense is refused rather than silently obeyed."""

from __future__ import annotations

import errno
import gzip
import json
import os
import pickle
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from seqkit import config as config_lib
from seqkit import configfile, model_types, modeldir, outputs
from seqkit.errors import ConfigError, ModelDirError
from seqkit.training import checkpoint
from seqkit.training import log as training_log
from seqkit.training.log import EndRecord
from tests.helpers import (
    assert_one_line_error,
    data_parallel_train_args,
    keep,
    kept,
    seqkit_here,
    write_text,
    write_toy,
)


def _train(data_dir: str, out: Path, *extra: str, steps: int = 2):
    """A tiny training run in this process (two steps: a checkpoint and weights)."""
    return seqkit_here(*data_parallel_train_args(data_dir, out, steps, valid_every=steps), *extra)


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def _copy_run(model_dir: Path, to: Path) -> Path:
    shutil.copytree(model_dir, to)
    return to


# --- 1. a user's files ------------------------------------------------------------------------------------


def test_a_directory_of_somebody_elses_files_is_refused_whatever_they_are_called(tmp_path, reverse_data):
    theirs = tmp_path / "theirs"
    (theirs / "checkpoints").mkdir(parents=True)
    for name in (
        "config.toml",
        "model.safetensors",
        "spm.model",
        "train_log.jsonl",
        "chars.json",
        "notes.txt",
    ):
        (theirs / name).write_text(f"the user's {name}\n")
    (theirs / "checkpoints" / "mine.txt").write_text("mine\n")
    before = _snapshot(theirs)
    for extra in ((), ("--overwrite",)):  # --overwrite replaces seqkit's files only: there are none
        assert_one_line_error(_train(reverse_data, theirs, *extra), f"--output {theirs}", "did not write",
                              "choose a new or empty --output")  # fmt: skip
        assert _snapshot(theirs) == before


def test_pictures_refuse_a_users_directory(tmp_path, reverse_model):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "line-000001.png").write_bytes(b"my own picture")
    result = seqkit_here("translate", reverse_model, "--attention", mine, stdin="c a b\n")
    assert_one_line_error(result, f"--attention {mine}", "did not write")
    result = seqkit_here("inspect", reverse_model, "--text", "c a b", "--output", mine)
    assert_one_line_error(result, f"--output {mine}", "did not write")
    assert (mine / "line-000001.png").read_bytes() == b"my own picture"
    # a directory seqkit wrote is written again (its own files replaced)
    assert (
        seqkit_here("translate", reverse_model, "--attention", tmp_path / "att", stdin="c a b\n").returncode
        == 0
    )
    assert (
        seqkit_here("translate", reverse_model, "--attention", tmp_path / "att", stdin="b a\n").returncode
        == 0
    )
    rewritten = json.loads((tmp_path / "att" / "line-000001.json").read_text())
    assert "".join(rewritten["source"][:-1]).replace("\u2581", " ").split() == ["b", "a"]
    # a marker that cannot be read is no marker of pictures: refused, not written into
    (tmp_path / "att" / outputs.MARKER).write_bytes(b"\x00damaged")
    result = seqkit_here("translate", reverse_model, "--attention", tmp_path / "att", stdin="c a b\n")
    assert_one_line_error(result, f"--attention {tmp_path / 'att'}")


def test_a_run_refuses_a_directory_of_pictures(tmp_path, reverse_data, reverse_model):
    # (a run's files landed among the pictures, which inspect -o then refused to write again)
    pictures = tmp_path / "att"
    assert seqkit_here("translate", reverse_model, "--attention", pictures, stdin="c a b\n").returncode == 0
    before = _snapshot(pictures)
    assert_one_line_error(_train(reverse_data, pictures), f"--output {pictures}", "not a training run")
    assert _snapshot(pictures) == before


def test_a_trained_model_is_never_replaced_without_overwrite(tmp_path, reverse_data, reverse_model):
    run = tmp_path / "run"
    assert _train(reverse_data, run).returncode == 0
    (run / "notes.txt").write_text("the user's notes\n")
    (run / "checkpoints" / "mine.txt").write_text("mine\n")
    # a copy kept aside from pruning, named like the checkpoints (a new run deleted it), and a killed
    # save's leftover, which is seqkit's
    shutil.copytree(run / "checkpoints" / "step-00000002", run / "checkpoints" / "step-00000002-keep")
    (run / "checkpoints" / "step-notes.txt").write_text("mine\n")
    (run / "checkpoints" / ".step-00000009.4242.tmp").mkdir()
    shutil.rmtree(run / "checkpoints" / "step-00000002")
    (run / "checkpoints" / "latest").unlink()  # the user removed the checkpoints: still a trained model
    weights = (run / "model.safetensors").read_bytes()
    assert_one_line_error(
        _train(reverse_data, run), "holds a trained model (model.safetensors)", "--overwrite"
    )
    assert (run / "model.safetensors").read_bytes() == weights
    # an averaged model (no checkpoints at all) is a trained model too
    averaged = tmp_path / "averaged"
    assert seqkit_here("average", reverse_model, "-o", averaged).returncode == 0
    averaged_weights = (averaged / "model.safetensors").read_bytes()
    assert_one_line_error(_train(reverse_data, averaged), "holds a trained model", "--overwrite")
    assert (averaged / "model.safetensors").read_bytes() == averaged_weights
    # --resume of it: the fix is a new run from its weights (it said "start a run with --output" it)
    assert_one_line_error(
        seqkit_here("train", "--resume", averaged),
        "no checkpoint to resume",
        f"seqkit train --config {averaged / 'config.toml'} --set train.init_from={averaged} --output NEW_DIR",
    )
    # average of it, or of a folder of the user's: the fix fits what the folder holds (it said "train with
    # --output DIR first", which --overwrite would have done over the model)
    assert_one_line_error(seqkit_here("average", averaged, "-o", tmp_path / "a2"), "no checkpoints to average",
                          "a trained model without checkpoints; average the run it was trained in")  # fmt: skip
    assert_one_line_error(seqkit_here("average", reverse_data, "-o", tmp_path / "a2"),
                          "no checkpoints to average", "files that are not seqkit's: give a run's directory")  # fmt: skip
    # --overwrite starts over, replacing seqkit's files and no others
    again = _train(reverse_data, run, "--overwrite", "--set", "train.seed=5")
    assert again.returncode == 0, again.stderr.decode()
    assert (run / "model.safetensors").read_bytes() != weights
    assert (run / "notes.txt").read_text() == "the user's notes\n"
    assert (run / "checkpoints" / "mine.txt").read_text() == "mine\n"
    assert (run / "checkpoints" / "step-notes.txt").read_text() == "mine\n"
    assert (run / "checkpoints" / "step-00000002-keep" / checkpoint.WEIGHTS).is_file()
    assert not (run / "checkpoints" / ".step-00000009.4242.tmp").exists()
    assert checkpoint.latest(run).name == "step-00000002"


def test_a_failed_new_run_leaves_no_directory_and_an_existing_output_file_is_refused(tmp_path, reverse_data):
    result = _train(reverse_data, tmp_path / "new", "--set", "data.train=/nonexistent/train")
    assert_one_line_error(result, "/nonexistent/train")
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("mine\n")
    assert_one_line_error(_train(reverse_data, tmp_path / "file"), "exists and is not a directory")
    assert (tmp_path / "file").read_text() == "mine\n"
    (tmp_path / "empty").mkdir()  # a user's empty directory stays empty
    result = _train(reverse_data, tmp_path / "empty", "--set", "data.train=/nonexistent/train")
    assert_one_line_error(result, "/nonexistent/train")
    assert list((tmp_path / "empty").iterdir()) == []


def test_init_from_is_an_error_for_a_new_run_of_another_type_and_kept_in_a_stored_one(tmp_path):
    # it was read by the encoder-decoder's trainer only: the others trained from scratch, silently
    from seqkit.training.run import run_training

    lm = config_lib.from_dict({"model": {"type": "lm"}, "train": {"init_from": "runs/lm"}}, "test")
    with pytest.raises(ConfigError, match="model.type = lm trains from scratch: drop train.init_from"):
        run_training(lambda *args: None, lm, tmp_path / "run", None, False, False)  # type: ignore[arg-type]
    assert not (tmp_path / "run").exists()
    # a run of such a config, stored while the key was ignored, still loads
    (tmp_path / "stored").mkdir()
    (tmp_path / "stored" / "config.toml").write_bytes(configfile.to_toml(lm))
    assert modeldir.load_config(tmp_path / "stored").train.init_from == "runs/lm"


def test_a_run_without_a_stopping_limit_is_refused_before_anything_is_written(tmp_path):
    # (mutation review: no test gave a config without any limit, which trains until it is killed)
    from seqkit.training.run import run_training

    endless = config_lib.from_dict({"train": {"max_steps": 0, "max_epochs": 0, "max_minutes": 0}}, "test")
    with pytest.raises(
        ConfigError, match=r"^no stopping limit: set train.max_steps, train.max_epochs or train"
    ):
        run_training(lambda *args: pytest.fail("trained"), endless, tmp_path / "run", None, False, False)  # type: ignore[arg-type]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"model": {"type": "lm", "attention": "luong"}}, "model.attention: a model of model.type = lm has no part"),
        ({"model": {"type": "lm", "encoder_layers": 3}}, "model.encoder_layers: a model of model.type = lm"),
        ({"model": {"type": "classifier", "decoder_layers": 4}}, "model.decoder_layers: a model of model.type = classifier"),
        ({"tokenizer": {"type": "char", "vocab_size": 5000}}, "tokenizer.vocab_size: it sets the SentencePiece model seqkit trains, and tokenizer.type = char trains none"),
        ({"tokenizer": {"model": "my.model", "model_type": "bpe"}}, "tokenizer.model_type: it sets the SentencePiece model seqkit trains, and the config names your own"),
        ({"model": {"type": "classifier"}, "data": {"column": "rain"}}, "data.column: it sets how a series is cut into windows, and data.series names none"),
        ({"model": {"type": "lm"}, "data": {"dedupe": True}}, "data.dedupe: it chooses a translation model's training pairs, and model.type = lm reads none"),
        ({"model": {"type": "classifier"}, "data": {"max_length": 5}}, "data.max_length: it chooses a translation model's training pairs, and model.type = classifier reads none"),
        ({"model": {"type": "lm", "bidirectional": False}}, "model.bidirectional: a model of model.type = lm"),
        ({"model": {"type": "classifier", "attention": "luong"}}, "model.attention: a model of model.type = classifier"),
        ({"model": {"type": "classifier", "tie_embeddings": True}}, "model.tie_embeddings: a model of model.type = classifier"),
        ({"data": {"window": 3}}, "data.window: it sets how a series is cut into windows"),
        ({"tokenizer": {"type": "char", "character_coverage": 0.95}}, "tokenizer.character_coverage: it sets the SentencePiece model"),
        ({"tokenizer": {"type": "char", "joint": False}}, "tokenizer.joint: it sets the SentencePiece model seqkit trains, and tokenizer.type = char"),
        ({"tokenizer": {"joint": False, "src_model": "a", "tgt_model": "b", "model_type": "bpe"}},
         "tokenizer.model_type: it sets the SentencePiece model seqkit trains, and the config names your own"),
    ],
)  # fmt: skip
def test_a_key_the_new_run_would_not_read_is_said(values, said):
    """A language model with model.attention = luong, a character tokenizer's vocab_size: each trained
    past unsaid, and config.toml then described a model that was not the one trained."""
    from seqkit.training.run import unread_warnings

    (line,) = unread_warnings(config_lib.from_dict(values, "test"))
    assert line.startswith(said) and line.endswith("; it is not read (drop it from the config)")


def test_a_new_run_warns_of_a_key_it_does_not_read_and_its_resume_does_not(tmp_path):
    text = write_text(tmp_path / "text")
    command = ["train", "-o", tmp_path / "lm", "--set", "model.type=lm", "--set", "tokenizer.type=char",
               "--set", f"data.train={text}/train", "--set", f"data.dev={text}/dev", "--set", "data.tgt_lang=txt",
               "--set", "model.embedding_size=8", "--set", "model.decoder_hidden_size=8",
               "--set", "model.attention=luong"]  # fmt: skip
    first = seqkit_here(*command, "--max-steps", 1)
    assert first.returncode == 0, first.stderr.decode()
    assert b"warning: model.attention: a model of model.type = lm has no part it sets" in first.stderr
    resumed = seqkit_here(*command, "--max-steps", 2)
    assert resumed.returncode == 0 and b"model.attention" not in resumed.stderr, resumed.stderr.decode()


def test_a_model_to_start_from_that_does_not_fit_leaves_no_directory(tmp_path, reverse_data, reverse_model):
    # found when its weights are loaded, which now comes before the run writes its config and tokenizer
    result = _train(reverse_data, tmp_path / "new", "--set", f"train.init_from={reverse_model}",
                    "--set", "model.cell=lstm")  # fmt: skip
    assert_one_line_error(result, "train.init_from", "model.cell is 'gru' there and 'lstm' here")
    assert not (tmp_path / "new").exists()
    # the tokenizer it keeps: a config that says another would be stored beside the one used
    from seqkit.training.seq2seq import _init_tokenizer

    own = modeldir.load_config(reverse_model)
    assert _init_tokenizer(own, reverse_model) is not None
    other = config_lib.with_overrides(own, {"tokenizer": {"type": "char"}}, "test")
    with pytest.raises(ConfigError, match="tokenizer.type is 'sentencepiece' there and 'char' here"):
        _init_tokenizer(other, reverse_model)


# --- 2. special files and links ---------------------------------------------------------------------------


def test_a_fifo_output_is_written_through_not_replaced(tmp_path, reverse_model):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = seqkit_here("translate", reverse_model, "-o", fifo, "--beam-size", "1", stdin="c a b\n\nb a\n")
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert received == [b"b a c\n\na b\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still the FIFO


def test_a_device_output_is_written_through(tmp_path, reverse_model):
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        pytest.skip("creating a device node needs root")
    result = seqkit_here("translate", reverse_model, "-o", device, stdin="c a b\n")
    assert result.returncode == 0, result.stderr.decode()
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]  # no temporary file beside it


def test_a_link_to_a_regular_file_stays_a_link(tmp_path, reverse_model):
    (tmp_path / "target.txt").write_text("old\n")
    (tmp_path / "link.txt").symlink_to("target.txt")
    result = seqkit_here(
        "translate", reverse_model, "-o", tmp_path / "link.txt", "--beam-size", "1", stdin="c a b\n"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "target.txt").read_text() == "b a c\n"
    # and a picture (plot, evaluate --plot, --attention's files) written through a link, the same
    (tmp_path / "picture.png").symlink_to("target.png")
    outputs.write_bytes(tmp_path / "picture.png", b"a picture")
    assert (tmp_path / "picture.png").is_symlink() and (tmp_path / "target.png").read_bytes() == b"a picture"


@pytest.mark.parametrize("name", ["x" * 250 + ".txt", "語" * 80 + ".txt"])  # 254 and 244 bytes
def test_a_file_name_near_the_systems_limit_is_written(tmp_path, reverse_model, name):
    # its temporary file's name must be shorter, in bytes
    result = seqkit_here("translate", reverse_model, "-o", tmp_path / name, stdin="c a b\n")
    assert result.returncode == 0, result.stderr.decode()
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_a_replaced_output_keeps_its_permissions(tmp_path, reverse_model):
    private = tmp_path / "private.txt"
    private.write_text("old\n")
    private.chmod(0o600)
    result = seqkit_here("translate", reverse_model, "-o", private, "--beam-size", "1", stdin="c a b\n")
    assert result.returncode == 0, result.stderr.decode()
    assert private.read_text() == "b a c\n" and stat.S_IMODE(private.stat().st_mode) == 0o600
    outputs.atomic_write(tmp_path / "new.bin", b"x")  # a new file: the umask decides, as for any file
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o666 & ~_umask()


def test_a_write_protected_output_is_refused_before_any_work(tmp_path, reverse_model, monkeypatch):
    """As the shell's `>` refuses it: the temporary file and rename replaced it (the suite runs as root,
    which may write anything: os.access answers as for another user)."""
    guarded = tmp_path / "guard.txt"
    guarded.write_text("keep\n")
    guarded.chmod(0o444)
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode, **kw: False if Path(path) == guarded else real_access(path, mode, **kw),
    )
    result = seqkit_here("translate", reverse_model, "-o", guarded, stdin="c a b\n")
    assert_one_line_error(result, f"{guarded}: Permission denied")
    assert guarded.read_text() == "keep\n"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("linked", ["checkpoints", "train_log.jsonl", "spm.model"])
def test_links_in_a_run_directory_are_refused(tmp_path, reverse_model, reverse_data, linked):
    run = _copy_run(reverse_model, tmp_path / "run")
    victim = tmp_path / "victim"
    if (run / linked).is_dir():
        shutil.move(run / linked, victim)
        (victim / "step-00000001").mkdir()
        (victim / "step-00000001" / "important.txt").write_text("keep\n")
    else:
        shutil.move(run / linked, victim)
    (run / linked).symlink_to(victim)
    before = _snapshot(victim) if victim.is_dir() else victim.read_bytes()
    result = seqkit_here("train", "--resume", run, "--max-steps", "700", "--quiet")
    assert_one_line_error(result, f"{run / linked} is a symbolic link", "never follows a link")
    assert (_snapshot(victim) if victim.is_dir() else victim.read_bytes()) == before


def test_latest_naming_a_path_out_of_the_run_is_refused(tmp_path, reverse_model, reverse_data):
    run = _copy_run(reverse_model, tmp_path / "run")
    elsewhere = _copy_run(
        reverse_model / "checkpoints" / checkpoint.latest(reverse_model).name, tmp_path / "x"
    )
    for named in ("../../x", str(elsewhere)):
        (run / "checkpoints" / "latest").write_text(named)
        result = seqkit_here("train", "--resume", run, "--max-steps", "700", "--quiet")
        assert_one_line_error(result, "not a checkpoint of this run", "delete the file")


def test_info_counts_a_link_without_walking_it(tmp_path, reverse_model):
    run = _copy_run(reverse_model, tmp_path / "run")
    (run / "usr").symlink_to("/usr")
    (run / "proc").symlink_to("/proc")
    result = seqkit_here("info", run, "--json")
    assert result.returncode == 0, result.stderr.decode()
    sizes = json.loads(result.stdout)["files"]
    assert sizes["usr"] == len("/usr") and sizes["proc"] == len("/proc")  # the links' own sizes


# --- 3. one training per directory ------------------------------------------------------------------------

_HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
from seqkit import outputs
with outputs.locked(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_training_of_a_directory_is_refused_until_the_first_ends(
    tmp_path, reverse_model, reverse_data
):
    run = _copy_run(reverse_model, tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_THE_LOCK, str(run)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        before = _snapshot(run)
        result = seqkit_here("train", "--resume", run, "--max-steps", "700", "--quiet")
        assert_one_line_error(result, f"{run} is being trained by another process (pid {holder.pid})")
        assert _snapshot(run) == before
        # a run in its first steps has no checkpoint yet: its training is what --resume says, not "no
        # checkpoint to resume; start a run with --output"
        young = tmp_path / "young"
        outputs.claim_directory(young, "run", "--output")
        young_holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_THE_LOCK, str(young)], stdout=subprocess.PIPE
        )
        try:
            assert young_holder.stdout.readline() == b"held\n"
            early = seqkit_here("train", "--resume", young, "--max-steps", "7", "--quiet")
            assert_one_line_error(
                early, f"{young} is being trained by another process (pid {young_holder.pid})"
            )
        finally:
            young_holder.send_signal(signal.SIGKILL)
            young_holder.wait()
        # reading a directory being trained goes on, and reads what an unlocked copy of it reads
        unlocked = tmp_path / "unlocked"
        shutil.copytree(run, unlocked, ignore=shutil.ignore_patterns(outputs.LOCK))
        while_held, copied = (seqkit_here("translate", d, stdin="c a b\nb a\n") for d in (run, unlocked))
        assert while_held.returncode == 0 and while_held.stdout == copied.stdout != b""
        assert seqkit_here("info", run).returncode == 0
        assert seqkit_here("plot", run, "--terminal").returncode == 0
    finally:
        holder.send_signal(signal.SIGKILL)  # no handler runs: the kernel releases the lock
        holder.wait()
    with outputs.locked(run):  # free again
        pass


# --- 4. every OSError is one line ---------------------------------------------------------------------------

OS_ERRORS = [errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EISDIR, errno.ENOTDIR]


def _failing(monkeypatch, number: int, when=lambda source: True):
    """os.replace and os.rename (every file and folder seqkit writes ends in one) fail with `number`."""
    real_replace, real_rename = os.replace, os.rename

    def fail(real):
        def call(source, target, *args, **kwargs):
            if when(str(source)):
                raise OSError(number, os.strerror(number), str(target))
            return real(source, target, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "replace", fail(real_replace))
    monkeypatch.setattr(os, "rename", fail(real_rename))


def _no_temporary_files(root: Path) -> None:
    assert [p for p in root.rglob("*") if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("number", OS_ERRORS, ids=errno.errorcode.get)
def test_every_command_turns_an_os_error_into_one_line(
    tmp_path, monkeypatch, reverse_model, reverse_data, number
):
    words = os.strerror(number)
    commands = {
        "train": data_parallel_train_args(reverse_data, tmp_path / "run", 2, 2),
        "translate": ["translate", reverse_model, f"{reverse_data}/dev.src", "-o", tmp_path / "out.txt"],
        "average": ["average", reverse_model, "-o", tmp_path / "avg"],
        "plot": ["plot", reverse_model, "-o", tmp_path / "curves.png"],
        "inspect": ["inspect", reverse_model, "--text", "c a b", "-o", tmp_path / "look"],
        "attention": ["translate", reverse_model, "--attention", tmp_path / "att"],
    }
    _failing(monkeypatch, number, when=lambda source: not source.endswith(outputs.MARKER + ".tmp")
             and ".seqkit." not in source)  # fmt: skip
    for name, arguments in commands.items():
        result = seqkit_here(*arguments, stdin="c a b\n")
        line = assert_one_line_error(result, words)
        assert "Traceback" not in line, name
        if name == "train" and number == errno.ENOSPC:
            assert "run the same command again to resume" in line
    _no_temporary_files(tmp_path)


def test_no_space_while_saving_a_checkpoint_leaves_no_half_checkpoint_and_the_run_resumes(
    tmp_path, monkeypatch, reverse_data
):
    run = tmp_path / "run"
    assert _train(reverse_data, run, steps=2).returncode == 0
    _failing(monkeypatch, errno.ENOSPC, when=lambda source: Path(source).name.startswith(".step-"))
    line = assert_one_line_error(_train(reverse_data, run, "--quiet", steps=4), "No space left on device")
    assert "to resume" in line
    _no_temporary_files(run)
    # a file inside the checkpoint's temporary folder failing: named as the checkpoint, not the folder gone
    monkeypatch.undo()
    _failing(monkeypatch, errno.ENOSPC, when=lambda source: Path(source).parent.name.startswith(".step-"))
    line = assert_one_line_error(_train(reverse_data, run, "--quiet", steps=4), "No space left on device")
    assert f"{run / 'checkpoints' / 'step-00000004'}: No space" in line, line
    _no_temporary_files(run)
    monkeypatch.undo()
    assert (
        _train(reverse_data, run, steps=4).returncode == 0 and checkpoint.latest(run).name == "step-00000004"
    )


def test_disk_full_on_a_small_tmpfs(tmp_path, reverse_model):
    """The real thing where the machine lets us mount one (root, in a container that allows it)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip() or mounted.returncode}")
    try:
        line = assert_one_line_error(
            seqkit_here("average", reverse_model, "-o", disk / "avg"), "No space left"
        )
        assert "free space" in line
        assert list(disk.iterdir()) == []  # the partial folder removed
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _standard_output_on_a_full_device_and_a_closed_pipe(directory: Path, reverse_model: Path) -> None:
    """(In the background process: eight real processes.) What the test below checks."""
    runs = {"full": subprocess.run(f"{sys.executable} -m seqkit config > /dev/full", shell=True,
                                   capture_output=True)}  # fmt: skip
    # a reader that has gone (`... | head -1` once head has its line): the pipe's read end is closed
    # before seqkit writes, so its first write fails whatever the pipe's buffer holds
    for name, args, stdin in (
        ("info", ["info", str(reverse_model)], b""),
        ("translate", ["translate", str(reverse_model)], b"a b c\n" * 50),
        # through -o /dev/stdout: it was "error: --output /dev/stdout: Broken pipe", exit 1
        ("translate -o", ["translate", str(reverse_model), "-o", "/dev/stdout"], b"a b c\n"),
        (
            "--version",
            ["--version"],
            b"",
        ),  # (written at the interpreter's exit, it was exit 120 and a warning)
    ):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            runs[f"closed {name}"] = subprocess.run([sys.executable, "-m", "seqkit", *args], input=stdin,
                                                    stdout=write_end, stderr=subprocess.PIPE)  # fmt: skip
        finally:
            os.close(write_end)
    # and as a pipeline meets it: `head -1` leaves after its line, while 110 KB more are to come (more
    # than a pipe's buffer holds, so a later write fails)
    many = directory / "many-lines.txt"
    many.write_text("c a b d e f g\n" * 8000)
    runs["head"] = subprocess.run(["bash", "-c", f"{sys.executable} -m seqkit translate {reverse_model} {many} "
                                   "| head -1; exit ${PIPESTATUS[0]}"], capture_output=True)  # fmt: skip
    # --version and --help outside every command's handler: a traceback on a full device
    for flag in ("--version", "--help"):
        runs[f"full {flag}"] = subprocess.run(f"{sys.executable} -m seqkit {flag} > /dev/full", shell=True,
                                              capture_output=True)  # fmt: skip
    keep(directory / "runs", runs)


@pytest.mark.prepared_in_background(
    "_standard_output_on_a_full_device_and_a_closed_pipe", uses=["reverse_model"]
)
def test_standard_output_on_a_full_device_and_a_closed_pipe(background_model):
    """The real process: stdout's errors meet the CLI's handlers, not the interpreter's exit."""
    runs = kept(background_model.model_dir / "runs")
    no_space = ["error: standard output: No space left on device; free space and run the same command again"]
    for name in ("full", "full --version", "full --help"):
        assert runs[name].returncode == 1, name
        assert runs[name].stderr.decode().splitlines() == no_space, name
    for name in ("closed info", "closed translate", "closed translate -o", "closed --version"):
        assert runs[name].returncode == 0, (name, runs[name].stderr.decode())
        assert runs[name].stderr == b"", name
    head = runs["head"]
    assert head.returncode == 0 and head.stderr == b"", head.stderr.decode()
    assert head.stdout == b"g f e d b a c\n"


def test_a_process_started_with_its_standard_streams_closed(tmp_path):
    """`<&-`, `>&-` (a daemon, a cron job): Python's sys.stdin or sys.stdout is None, and the first use
    was a traceback after the work, exit 1 (`average ... >&-` wrote its model, then `None.flush()`).
    (evaluate: a command that reads files and writes stdout without importing torch.)"""
    text = tmp_path / "hyp.txt"
    text.write_text("the cat sat\n")
    scoring = f"{sys.executable} -m seqkit evaluate -i {text} -r {text} --name 語"
    for closed in (">&-", "<&-"):
        run = subprocess.run(f"{scoring} {closed}", shell=True, capture_output=True)
        assert run.returncode == 0 and run.stderr == b"", (closed, run.stderr.decode())
    # results are UTF-8 whatever the locale's encoding (a name latin-1 cannot write: a traceback)
    shown = subprocess.run(
        scoring, shell=True, capture_output=True, env={**os.environ, "PYTHONIOENCODING": "latin-1"}
    )
    assert shown.returncode == 0 and "語" in shown.stdout.decode("utf-8"), shown.stderr.decode()
    # and a name of bytes that are not UTF-8 (a file name) is written back as given (made UTF-8, stdout
    # lost its surrogateescape: a traceback)
    raw = subprocess.run([sys.executable, "-m", "seqkit", "evaluate", "-i", text, "-r", text, "--name", b"x\xff"],
                         capture_output=True)  # fmt: skip
    assert raw.returncode == 0 and b"x\xff" in raw.stdout, raw.stderr.decode()


def _a_training_whose_log_reader_leaves(directory: Path) -> None:
    """(In the background process.) `seqkit train ... 2>&1 | head -1`."""
    args = [
        *data_parallel_train_args(
            write_toy(directory / "data", "reverse"), directory / "run", 30, valid_every=30
        ),
        "--set",
        "train.log_every=1",
    ]
    command = " ".join(shlex.quote(str(a)) for a in [sys.executable, "-m", "seqkit", *args])
    pipeline = f"{command} 2>&1 | head -1; exit ${{PIPESTATUS[0]}}"
    keep(directory / "closed", subprocess.run(["bash", "-c", pipeline], capture_output=True))


@pytest.mark.prepared_in_background("_a_training_whose_log_reader_leaves")
def test_a_training_outlives_the_reader_of_its_log(background_model):
    # it stopped at its next line, with exit 0 and no weights
    closed = kept(background_model.model_dir / "closed")
    assert closed.returncode == 0, closed.stdout.decode()
    assert len(closed.stdout.splitlines()) == 1
    end = training_log.of_kind(training_log.read(background_model.model_dir / "run"), EndRecord)
    assert (
        end and end[-1].steps == 30 and (background_model.model_dir / "run" / "model.safetensors").is_file()
    )


def test_config_and_tokenizer_paths_that_are_directories(tmp_path, reverse_data):
    assert_one_line_error(seqkit_here("train", "--config", tmp_path, "-o", tmp_path / "r"), str(tmp_path),
                          "Is a directory")  # fmt: skip
    # (vocab_size back to its default: with a model of one's own it is not read, and a warning says so)
    result = _train(
        reverse_data,
        tmp_path / "r",
        "--set",
        f"tokenizer.model={tmp_path}",
        "--set",
        "tokenizer.vocab_size=8000",
    )
    assert_one_line_error(result, "tokenizer.model", "Is a directory")
    for side in ("src", "tgt"):
        (tmp_path / f"d.{side}").mkdir()
    result = _train(reverse_data, tmp_path / "r", "--set", f"data.train={tmp_path / 'd'}")
    assert_one_line_error(result, "data.train", f"{tmp_path / 'd.src'} is not a file")  # not "neither exists"


def test_a_corpus_with_cr_line_endings_is_refused_with_the_fix(tmp_path, reverse_data):
    for side in ("src", "tgt"):
        text = Path(f"{reverse_data}/train.{side}").read_text()
        (tmp_path / f"train.{side}").write_text(text.replace("\n", "\r"), newline="")
    result = _train(reverse_data, tmp_path / "r", "--set", f"data.train={tmp_path}/train")
    assert_one_line_error(result, "train.src", "carriage return alone", "tr '\\r' '\\n'")


def test_evaluate_of_empty_files(tmp_path):
    (tmp_path / "hyp").write_text("")
    (tmp_path / "ref").write_text("")
    result = seqkit_here("evaluate", "-i", tmp_path / "hyp", "-r", tmp_path / "ref")
    assert_one_line_error(result, f"{tmp_path / 'ref'} has no lines", "nothing to score")
    # the hypotheses of an empty pipe, and an old Mac file there: named as the standard input (not "-"),
    # the fix not as "tr < <stdin>"
    (tmp_path / "ref").write_text("a\n")
    result = seqkit_here("evaluate", "-r", tmp_path / "ref", stdin="")
    assert_one_line_error(result, "the standard input has 0 lines but")
    result = seqkit_here("evaluate", "-r", tmp_path / "ref", stdin="a\rb\rc")
    assert_one_line_error(
        result, "<stdin>: lines end in a carriage return alone", "tr '\\r' '\\n' < FILE > NEW"
    )


class _WritesAMarker:
    """A pickle payload: unpickling it would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def test_no_command_unpickles_anything(tmp_path, reverse_model, reverse_data):
    """A payload in each file seqkit reads weights or state from: refused unread, never run, and torch's
    advice to load it with weights_only=False never passed on."""
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_WritesAMarker(marker))
    run = _copy_run(reverse_model, tmp_path / "run")
    latest = checkpoint.latest(run)
    (latest / checkpoint.STATE).write_bytes(payload)
    (run / "model.safetensors").write_bytes(payload)
    older = _copy_run(reverse_model, tmp_path / "older")
    (checkpoint.latest(older) / checkpoint.WEIGHTS).write_bytes(payload)
    refused = {
        "resume": seqkit_here("train", "--resume", run, "--max-steps", "700", "--quiet"),
        "translate": seqkit_here("translate", run, stdin="c a b\n"),
        "average": seqkit_here("average", older, "-o", tmp_path / "avg", "--last", "1"),
        "ppl": seqkit_here(
            "evaluate", "--model", run, "-s", f"{reverse_data}/dev.src", "-r", f"{reverse_data}/dev.tgt"
        ),  # fmt: skip
    }
    seqkit_here("info", run)
    assert not marker.exists()
    for name, result in refused.items():
        line = assert_one_line_error(result, "")
        assert "weights_only" not in line, name
    assert "objects other than tensors" in refused["resume"].stderr.decode()


def test_a_damaged_checkpoint_in_average_and_a_damaged_log(tmp_path, reverse_model):
    run = _copy_run(reverse_model, tmp_path / "run")
    (checkpoint.latest(run) / checkpoint.WEIGHTS).write_bytes(b"\x00" * 64)
    assert_one_line_error(seqkit_here("average", run, "-o", tmp_path / "avg"), "damaged")
    assert not (tmp_path / "avg").exists()
    with open(run / "train_log.jsonl", "ab") as log:
        log.write(b'{"kind": "train", "step": 1\xff\xfe}\n')
    for command in (["info", run], ["plot", run, "-o", tmp_path / "c.png"]):
        assert_one_line_error(seqkit_here(*command), "train_log.jsonl:", "not UTF-8")


# --- 5. nonsense refused ------------------------------------------------------------------------------------


def test_weights_with_nan_are_refused_naming_the_tensor(tmp_path, reverse_model):
    run = _copy_run(reverse_model, tmp_path / "run")
    weights = load_file(run / "model.safetensors")
    name = sorted(weights)[0]
    weights[name][0] = float("nan")
    save_file(weights, run / "model.safetensors")
    assert_one_line_error(seqkit_here("translate", run, stdin="c a b\n"), f"tensor {name}", "NaN")
    with pytest.raises(ModelDirError):
        model_types.load(run)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-length-ratio", "inf"), ("--max-length-ratio", "1e30"), ("--max-length-ratio", "nan")],
)
def test_absurd_decoding_limits_are_errors(reverse_model, option, value):
    assert_one_line_error(
        seqkit_here("translate", reverse_model, option, value, stdin="c a b\n"), "max_length_ratio"
    )


@pytest.mark.parametrize("value", ["inf", "nan", "1e300"])
def test_absurd_temperatures_are_errors(char_lm, value):
    assert_one_line_error(
        seqkit_here("generate", char_lm, "--temperature", value, stdin="the\n"), "temperature"
    )


def test_a_line_longer_than_the_input_limit_is_an_error_naming_it(reverse_model):
    lines = "c a b\n" + "a b " * 600 + "\n"
    result = seqkit_here("translate", reverse_model, "--max-input-pieces", "100", stdin=lines)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines()[-1].startswith("error: input line 2 has 2,400 pieces")
    assert "more than decode.max_input_pieces = 100" in result.stderr.decode()
    assert result.stdout == b""  # its chunk is not translated (stdout has the chunks before it, if any)


@pytest.mark.parametrize("where", ["missing/out.txt", "."])
def test_an_output_that_cannot_be_written_fails_before_any_translation(tmp_path, reverse_model, where):
    # the first line alone would fail the translation: the --output error comes first, not after the work
    stdin = "a b " * 600 + "\n"
    result = seqkit_here(
        "translate", reverse_model, "--max-input-pieces", "100", "-o", tmp_path / where, stdin=stdin
    )
    assert_one_line_error(
        result, f"--output {tmp_path / where}", "check the path" if "/" in where else "give a file"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_output_that_is_also_an_input_is_refused(tmp_path, reverse_model):
    source = tmp_path / "in.txt"
    source.write_text("c a b\n")
    (tmp_path / "link.txt").symlink_to("in.txt")
    for output in (source, tmp_path / "link.txt"):
        result = seqkit_here("translate", reverse_model, source, "-o", output)
        assert_one_line_error(
            result, f"--output {output} is also an input file", "write the results elsewhere"
        )
    assert source.read_text() == "c a b\n"
    # nor a file of the model read: the weights were replaced by the translations
    model_dir = tmp_path / "model"
    shutil.copytree(reverse_model, model_dir)
    for name in ("model.safetensors", "config.toml", "checkpoints/latest"):
        result = seqkit_here("translate", model_dir, source, "-o", model_dir / name)
        assert_one_line_error(result, f"--output {model_dir / name} is a file of the model directory")
    assert seqkit_here("translate", model_dir, source, "-o", model_dir / "test.hyp").returncode == 0
    assert (model_dir / "model.safetensors").read_bytes() == (
        reverse_model / "model.safetensors"
    ).read_bytes()


def test_a_line_over_the_limit_is_named_by_its_file_and_line(tmp_path, reverse_model):
    (tmp_path / "first.txt").write_text("c a b\nb a\n")
    (tmp_path / "second.txt").write_text("a b\n" + "a b " * 600 + "\n")
    result = seqkit_here(
        "translate", reverse_model, tmp_path / "first.txt", tmp_path / "second.txt",
        "--max-input-pieces", "100", "-o", tmp_path / "out.txt",
    )  # fmt: skip
    assert_one_line_error(result, f"{tmp_path / 'second.txt'}:2 has 2,400 pieces")
    assert not (tmp_path / "out.txt").exists()
    # the first file's lines were written (streamed) before the failure: the user's file stays as it was
    (tmp_path / "out.txt").write_text("mine\n")
    result = seqkit_here(
        "translate", reverse_model, tmp_path / "first.txt", tmp_path / "second.txt",
        "--max-input-pieces", "100", "--batch-size", "1", "-o", tmp_path / "out.txt",
    )  # fmt: skip
    assert_one_line_error(result, "second.txt:2")
    assert (tmp_path / "out.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.txt", "out.txt", "second.txt"]


def test_the_character_tokenizer_drops_control_characters_and_counts_them(tmp_path):
    from seqkit.data.tokenizer import CharTokenizer

    tokenizer = CharTokenizer.train(["a\x00b", "\ufeffab", "a\rb", "ab\t"])
    assert tokenizer.chars == ["\t", " ", "a", "b"]
    assert tokenizer.encode_src(["a\x00b"]) == tokenizer.encode_src(["ab"])
    # a CR or a form feed inside a line separates words, as SentencePiece reads it (they were joined)
    assert tokenizer.decode_tgt(tokenizer.encode_src(["ab\rba\x0cb"])) == ["ab ba b"]
    (tmp_path / "train.txt").write_text("".join(f"line {i}\x00 with a NUL\n" for i in range(30)))
    (tmp_path / "dev.txt").write_text("line\n")
    result = seqkit_here("train", "-o", tmp_path / "lm", "--max-steps", "1", "--set", "model.type=lm",
                         "--set", "tokenizer.type=char", "--set", f"data.train={tmp_path}/train",
                         "--set", f"data.dev={tmp_path}/dev", "--set", "data.tgt_lang=txt")  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert "control characters removed from 30 lines" in result.stderr.decode()


# --- found in review ------------------------------------------------------------------------------------


def test_an_inherited_descriptor_is_written_through_never_reopened(tmp_path):
    """`-o /dev/stdout >> log` (or /dev/fd/N, /proc/self/fd/N, a link to one): the shell's file keeps what
    it had; reopening it would truncate it, renaming over it would replace it."""
    log = tmp_path / "log.txt"
    log.write_text("old\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        (tmp_path / "link").symlink_to(f"/proc/self/fd/{fd}")
        for name in (f"/dev/fd/{fd}", f"/proc/self/fd/{fd}", str(tmp_path / "link")):
            outputs.write_bytes(Path(name), b"new\n")
        with outputs.writing(Path(f"/dev/fd/{fd}")) as stream:
            stream.write(b"streamed\n")
    finally:
        os.close(fd)
    assert log.read_text() == "old\nnew\nnew\nnew\nstreamed\n"
    assert (tmp_path / "link").is_symlink()


def test_a_write_error_names_the_file_not_its_temporary_name(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a real write's error: no file named

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as raised:
        outputs.atomic_write(tmp_path / "weights.bin", b"x" * 10)
    assert raised.value.filename == str(tmp_path / "weights.bin")
    assert "standard output" not in outputs.describe(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_latest_pointer_falls_back_to_the_newest_complete_checkpoint(tmp_path, reverse_model):
    run = _copy_run(reverse_model, tmp_path / "run")
    newest = checkpoint.latest(run)
    (run / "checkpoints" / "latest").unlink()  # as the error for a bad pointer advises
    assert checkpoint.latest(run) == newest
    (newest / checkpoint.STATE).unlink()  # an incomplete one is passed over
    assert checkpoint.latest(run) not in (None, newest)


def test_an_incomplete_checkpoint_of_the_same_step_is_replaced(tmp_path):
    run = tmp_path / "run"
    final = run / "checkpoints" / "step-00000002"
    final.mkdir(parents=True)
    (final / checkpoint.WEIGHTS).write_bytes(b"half")
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    checkpoint.save(run, model, optimizer, {"progress": {"step": 2}}, keep=2)
    assert sorted(p.name for p in final.iterdir()) == [checkpoint.STATE, checkpoint.WEIGHTS]
    assert checkpoint.latest(run) == final


def test_a_state_that_is_not_seqkits_is_one_line(tmp_path, reverse_model):
    run = _copy_run(reverse_model, tmp_path / "run")
    torch.save([1, 2, 3], checkpoint.latest(run) / checkpoint.STATE)  # tensors and numbers, not a state
    result = seqkit_here("train", "--resume", run, "--max-steps", "700", "--quiet")
    assert_one_line_error(result, "checkpoint cannot be restored", "not a checkpoint state")


def test_a_state_whose_counters_are_not_a_dict_is_refused_by_restore(tmp_path):
    # (mutation review: a state.pt with the optimizer's state but no dict of counters was let through, to a
    # TypeError traceback in the loop; the test above has neither)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    checkpoint.save(tmp_path, model, optimizer, {"progress": {"step": 2}}, keep=1)
    path = checkpoint.latest(tmp_path)
    torch.save({"optimizer": optimizer.state_dict(), "state": [1, 2, 3]}, path / checkpoint.STATE)
    with pytest.raises(
        ModelDirError, match=r"checkpoint cannot be restored \(not a checkpoint state of seqkit's\)"
    ):
        checkpoint.restore(path, model, optimizer)


def test_a_resume_of_somebody_elses_directory_leaves_no_marker(tmp_path, reverse_data):
    from seqkit.training import seq2seq as train_seq2seq
    from tests.helpers import toy_config

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.toml").write_text("the user's\n")
    with pytest.raises(ModelDirError, match="no checkpoint to resume"):
        train_seq2seq.train(toy_config(reverse_data), theirs, resume=True)
    assert sorted(p.name for p in theirs.iterdir()) == ["config.toml"]


def test_a_resume_over_changed_training_files_warns(tmp_path, reverse_data):
    # the same names, other contents: the run went on over other pairs without a word
    data = tmp_path / "data"
    shutil.copytree(reverse_data, data)
    run = tmp_path / "run"
    assert _train(str(data), run).returncode == 0
    same = seqkit_here("train", "--resume", run, "--max-steps", "3")
    assert same.returncode == 0 and b"warning" not in same.stderr, same.stderr.decode()
    for side in ("src", "tgt"):
        lines = (data / f"train.{side}").read_text().splitlines()
        (data / f"train.{side}").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    changed = seqkit_here("train", "--resume", run, "--max-steps", "4")
    assert changed.returncode == 0, changed.stderr.decode()
    warning = "warning: the training pairs are not the checkpoint's (data.train's files, the data.* keys"
    assert warning in changed.stderr.decode()
    # with no arrays of the run's first corpus left to tell (a cache deleted to save disk, or an
    # interrupted rebuild), the checkpoint still knows which pairs it was trained on
    shutil.copytree(reverse_data, data, dirs_exist_ok=True)
    shutil.rmtree(run / "cache")
    back = seqkit_here("train", "--resume", run, "--max-steps", "5")
    assert back.returncode == 0 and warning in back.stderr.decode(), back.stderr.decode()
    again = seqkit_here("train", "--resume", run, "--max-steps", "6")
    assert again.returncode == 0 and b"warning" not in again.stderr, again.stderr.decode()
    # a checkpoint of an earlier version knows no pairs: nothing to compare, nothing said
    state_file = checkpoint.latest(run) / checkpoint.STATE
    saved = torch.load(state_file, weights_only=True)
    assert saved["state"]["task"] == {"corpus": saved["state"]["task"]["corpus"]}
    saved["state"]["task"] = {}
    torch.save(saved, state_file)
    shutil.rmtree(run / "cache")
    (data / "train.src").write_text((data / "train.src").read_text().replace("a", "b", 1))
    earlier = seqkit_here("train", "--resume", run, "--max-steps", "7")
    assert earlier.returncode == 0 and b"warning" not in earlier.stderr, earlier.stderr.decode()


def test_an_output_named_gz_is_written_gzipped_as_a_gz_input_is_read(tmp_path, reverse_model):
    # it was plain text under a .gz name, which seqkit's own readers then could not read
    source = tmp_path / "in.txt"
    source.write_text("c a b\nb a\n")
    plain = seqkit_here("translate", reverse_model, source)
    result = seqkit_here("translate", reverse_model, source, "-o", tmp_path / "out.txt.gz")
    assert result.returncode == 0, result.stderr
    assert gzip.decompress((tmp_path / "out.txt.gz").read_bytes()) == plain.stdout
    again = seqkit_here("translate", reverse_model, tmp_path / "out.txt.gz", "-o", tmp_path / "back.txt")
    assert again.returncode == 0, again.stderr
    # the same lines give the same bytes: no time stamp in the gzip header (its bytes 4 to 8), which a
    # Makefile's comparison of two outputs would see
    assert (tmp_path / "out.txt.gz").read_bytes()[4:8] == bytes(4)


@pytest.mark.parametrize(
    ("signal_number", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)  # (SIGHUP: a closed terminal or ssh session, whose default action left the file too)
def test_sigterm_and_ctrl_c_remove_the_output_being_written(
    tmp_path, reverse_model, signal_number, exit_code
):
    # SIGTERM's default action ended the process on the spot and left the hidden temporary file beside OUT
    process = subprocess.Popen(
        [sys.executable, "-m", "seqkit", "translate", str(reverse_model), "-o", str(tmp_path / "out.txt")],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # the signal's default action, whatever this process was given (under nohup, SIGHUP is ignored)
        preexec_fn=lambda: signal.signal(signal_number, signal.SIG_DFL),
    )
    assert process.stdin is not None
    process.stdin.write(b"c a b\n")
    process.stdin.flush()
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.txt*.tmp")):  # writing has begun
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal_number)
    assert process.wait(timeout=60) == exit_code
    assert list(tmp_path.iterdir()) == []


def test_sigterm_while_a_shortlist_is_built_from_other_data_leaves_no_scratch_folder(tmp_path, reverse_model):
    model_dir = tmp_path / "model"
    shutil.copytree(reverse_model, model_dir)
    other = write_toy(tmp_path / "other", "reverse", train_count=300)
    # the signal arrives once the other data's arrays are in the scratch folder (in a process of its own:
    # without the fix, SIGTERM's default action ends it on the spot)
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from seqkit.training import seq2seq\n"
        "prepare = seq2seq.prepare_pairs\n"
        "def prepared_then_killed(*args, **kwargs):\n"
        "    result = prepare(*args, **kwargs)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return result\n"
        "seq2seq.prepare_pairs = prepared_then_killed\n"
        "seq2seq.build_shortlist(Path(sys.argv[1]), train=sys.argv[2])\n"
    )
    run = subprocess.run([sys.executable, "-c", script, model_dir, f"{other}/train"], capture_output=True)
    assert run.returncode in (143, -signal.SIGTERM), run.stderr.decode()
    assert not [p.name for p in model_dir.iterdir() if p.name.startswith(".shortlist-")]
    assert (model_dir / "shortlist.npz").read_bytes() == (reverse_model / "shortlist.npz").read_bytes()


# `seqkit train` in a process of its own whose cache build receives SIGTERM from itself, as a batch
# scheduler sends it, while the arrays of the training pairs are being written
_STOPPED_WHILE_PREPARING = """
import os, signal, sys
from seqkit.data import corpus
keep, writer, writing = corpus._keep, corpus.ArrayWriter, []
def stopped(*args):  # (the dev pairs are kept or not first, before the arrays are begun)
    if writing:
        os.kill(os.getpid(), signal.SIGTERM)
    return keep(*args)
def written(*args):
    writing.append(True)
    return writer(*args)
corpus._keep, corpus.ArrayWriter = stopped, written
from seqkit.cli import app
app(args=sys.argv[1:], prog_name="seqkit")
"""


def test_sigterm_while_a_run_prepares_its_data_leaves_nothing_half_made(tmp_path, reverse_data):
    # the default action ended the process on the spot: a new run's directory and the cache's
    # temporary folder were left behind
    def stopped_training(run: Path) -> subprocess.CompletedProcess:
        arguments = data_parallel_train_args(reverse_data, run, steps=2, valid_every=2)
        command = [sys.executable, "-c", _STOPPED_WHILE_PREPARING, *arguments]
        return subprocess.run(command, capture_output=True, timeout=300)

    new = tmp_path / "new"
    result = stopped_training(new)
    assert result.returncode == 143, result.stderr.decode()
    assert not new.exists()  # as after Ctrl-C or an error
    run = tmp_path / "run"
    assert _train(reverse_data, run).returncode == 0
    shutil.rmtree(run / "cache")  # a user saving disk: a resume builds the arrays again
    before = _snapshot(run)
    result = stopped_training(run)
    assert result.returncode == 143, result.stderr.decode()
    assert [p.name for p in (run / "cache").iterdir()] == [".lock"]  # (no half-written arrays)
    after = _snapshot(run)
    assert after.pop(".seqkit.lock") != before.pop(".seqkit.lock")  # (the process that held it)
    assert after.pop("cache/.lock") == b""
    assert after == before
    assert seqkit_here(*data_parallel_train_args(reverse_data, run, steps=2, valid_every=2)).returncode == 0


def test_a_long_native_call_keeps_sigterms_default_action():
    # Python's handler would run only after SentencePiece's training returns, minutes late
    with outputs.terminable():
        assert signal.getsignal(signal.SIGTERM) is outputs._sigterm
        with outputs.native_call():
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is outputs._sigterm
    with outputs.native_call():  # another handler (a training's, a server's) is left alone
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    # a thread other than the main one cannot set handlers (ValueError): it leaves them as they are
    raised: list[BaseException] = []

    def in_a_thread():
        try:
            with outputs.native_call():
                pass
        except BaseException as e:
            raised.append(e)

    with outputs.terminable():
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
        assert raised == [] and signal.getsignal(signal.SIGTERM) is outputs._sigterm
    # SentencePiece's training is such a call
    from seqkit.config import TokenizerConfig
    from seqkit.data import tokenizer

    during: list = []
    with outputs.terminable(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokenizer, "_train", lambda *args: during.append(signal.getsignal(signal.SIGTERM)))
        tokenizer.train_sentencepiece(["a b"], TokenizerConfig(), seed=1)
    assert during == [signal.SIG_DFL]
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with outputs.native_call():
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_directory_of_a_few_files_of_somebody_else_names_them_all():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        for name in "abc":
            (directory / name).write_text("theirs\n")
        with pytest.raises(ModelDirError, match=r"holds files seqkit did not write \(a, b, c\);"):
            outputs.check_claimable(directory, "--output")
        (directory / "d").write_text("theirs\n")
        with pytest.raises(ModelDirError, match=r"\(a, b, c, \.\.\.\);"):
            outputs.check_claimable(directory, "--output")


def test_claiming_a_directory_seqkit_owns_leaves_its_marker_as_it_is(tmp_path):
    # (the marker says which seqkit wrote the directory first; a later run must not claim it again)
    earlier = json.dumps({"written_by": "seqkit 0.1", "kind": "run"}).encode()
    (tmp_path / outputs.MARKER).write_bytes(earlier)
    outputs.claim_directory(tmp_path, "run", "--output")
    assert (tmp_path / outputs.MARKER).read_bytes() == earlier


_TAKES_THE_LOCK = """
import sys
from pathlib import Path
from seqkit import outputs
with outputs.locked(Path(sys.argv[1])):
    pass
"""


def test_the_lock_is_held_for_the_block_named_by_its_holder_and_taken_again_after(tmp_path):
    def another_process_locks() -> subprocess.CompletedProcess:
        command = [sys.executable, "-c", _TAKES_THE_LOCK, str(tmp_path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    (tmp_path / outputs.LOCK).write_text("99999999999\n")  # a holder of long ago: its pid is replaced
    with outputs.locked(tmp_path):
        assert (tmp_path / outputs.LOCK).read_text() == f"{os.getpid()}\n"
        with outputs.locked(tmp_path):  # re-entrant in one process (the CLI and the trainer it calls)
            pass
        refused = another_process_locks()
        assert refused.returncode != 0 and f"by another process (pid {os.getpid()})" in refused.stderr
    assert another_process_locks().returncode == 0
    with outputs.locked(tmp_path):  # taken again, and held again: not a stale re-entry
        refused = another_process_locks()
        assert refused.returncode != 0 and "is being trained by another process" in refused.stderr


def test_max_length_ratio_is_said_unread_outside_a_translation_model():
    # (mutation review: the parametrized cases named dedupe and max_length only; the third pair filter
    # could leave PAIR_FILTER_KEYS unsaid)
    from seqkit.training.run import unread_warnings

    values = {"model": {"type": "lm"}, "data": {"max_length_ratio": 3.0}}
    (line,) = unread_warnings(config_lib.from_dict(values, "test"))
    assert line.startswith(
        "data.max_length_ratio: it chooses a translation model's training pairs, and model.type = lm reads none"
    )
    assert unread_warnings(config_lib.from_dict({"data": {"max_length_ratio": 3.0}}, "test")) == []
