"""A model directory reloads into the same model; writes are atomic."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seqkit import model_types, modeldir
from seqkit.config import DecodeConfig
from seqkit.data.corpus import CACHE
from seqkit.data.text import read_lines
from seqkit.decoding.inference import translate_lines
from seqkit.decoding.torch_steps import steps_of
from seqkit.errors import ModelDirError
from seqkit.training import log as training_log
from seqkit.training.log import Restored, StartRecord, TrainRecord


def test_reload_gives_identical_weights_and_translations(reverse_model, reverse_data, tmp_path):
    cfg, tokenizer, model = model_types.load(reverse_model)
    copy_dir = tmp_path / "copy"
    modeldir.start(copy_dir, cfg, tokenizer, resume=False)
    modeldir.save_weights(copy_dir, model)
    cfg2, tokenizer2, model2 = model_types.load(copy_dir)
    assert cfg2 == cfg
    for (name, a), (name2, b) in zip(model.state_dict().items(), model2.state_dict().items(), strict=True):
        assert name == name2 and torch.equal(a, b)
    sources = read_lines(f"{reverse_data}/dev.src")
    assert translate_lines(steps_of(model2), tokenizer2, sources, DecodeConfig()) == translate_lines(
        steps_of(model), tokenizer, sources, DecodeConfig()
    )


def test_a_new_run_leaves_no_file_of_the_run_before_and_keeps_a_users(reverse_model, tmp_path):
    # (a held-out dev set of the run before stayed beside a run whose data.dev has those pairs as training
    # data: scores on it were inflated)
    cfg, tokenizer, _ = model_types.load(reverse_model)
    run = tmp_path / "run"
    run.mkdir()
    for name in (*modeldir.RUN_FILES, "notes.txt"):
        (run / name).write_text("earlier")
    modeldir.start(run, cfg, tokenizer, resume=False)
    kept = {p.name for p in run.iterdir() if p.read_bytes() == b"earlier"}
    assert kept == {"notes.txt", modeldir.MARKER, modeldir.LOCK}  # the marker and lock hold this run


@pytest.mark.parametrize("model_type", ["seq2seq", "lm", "classifier"])
def test_a_new_run_keeps_the_token_arrays_only_if_it_reads_them(reverse_model, tmp_path, model_type):
    """An encoder-decoder's run reuses the arrays of its corpus (data/corpus.py replaces those of another
    key); a language model or classifier started with --overwrite over one left them, a corpus' size."""
    cfg, tokenizer, _ = model_types.load(reverse_model)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, type=model_type))
    cache = tmp_path / "run" / CACHE
    for folder in ("train-0123", ".train-4567.tmp"):
        (cache / folder).mkdir(parents=True)
        (cache / folder / "src.ids").write_text("earlier")
    (cache / ".lock").write_text("")
    modeldir.start(cache.parent, cfg, tokenizer, resume=False)
    if model_type == "seq2seq":
        assert (cache / "train-0123" / "src.ids").is_file()
    else:
        assert not cache.exists()
        # a file of the user's there stays, and so does the folder that holds it
        (cache / "train-0123").mkdir(parents=True)
        (cache / "notes.txt").write_text("mine")
        modeldir.start(cache.parent, cfg, tokenizer, resume=False)
        assert [p.name for p in cache.iterdir()] == ["notes.txt"]


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "file.bin"
    modeldir.atomic_write(target, b"one")
    modeldir.atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_reading_the_log_skips_a_torn_last_line(tmp_path):
    first = TrainRecord(1, 1, 2.0, 7.4, 0.5, 1.0, 1e-3, 100.0, 50, 0.5)
    training_log.append(tmp_path, first)
    with open(tmp_path / modeldir.LOG, "a") as f:
        f.write('{"kind": "tra')  # a process killed mid-write
    assert training_log.read_all(tmp_path) == [first]
    resume = StartRecord(
        "resume",
        "seq2seq",
        {"train_pairs": 10},
        100,
        5,
        1,
        "cpu",
        "fp32",
        restored=Restored(1, 1, 1e-3, "bleu", 0.0),
    )
    training_log.append(tmp_path, resume)  # the next session's record survives, on a line of its own
    assert training_log.read_all(tmp_path) == [first, resume]
    lines = (tmp_path / modeldir.LOG).read_text().splitlines()
    assert lines[1] == '{"kind": "tra' and len(lines) == 3


def test_a_config_edited_wrongly_names_the_key_to_fix(tmp_path):
    (tmp_path / modeldir.CONFIG).write_text('[model]\ncel = "gru"\n')
    with pytest.raises(ModelDirError) as error:
        modeldir.load_config(tmp_path)
    message = str(error.value)
    assert "unknown key model.cel (did you mean cell?)" in message and message.endswith(
        "fix that key, or retrain)"
    )
    (tmp_path / modeldir.CONFIG).write_text("[model\n")
    with pytest.raises(ModelDirError, match=r"not valid TOML .*; fix the file, or retrain the model$"):
        modeldir.load_config(tmp_path)


def test_a_run_without_weights_says_whether_it_validated(tmp_path):
    # (mutation review: the "not validated yet" branch had no test, and a log of training records alone
    # read as a run that validated)
    from seqkit.training.log import ValidRecord

    training_log.append(tmp_path, TrainRecord(5, 1, 2.0, 7.4, 0.5, 1.0, 1e-3, 100.0, 40, 1.0))
    with pytest.raises(ModelDirError, match="training has not reached its first validation; train longer$"):
        modeldir.read_weights(tmp_path)
    training_log.append(tmp_path, ValidRecord(10, 1, {"ppl": float("inf")}))
    with pytest.raises(ModelDirError, match="the run validated but kept no weights \\(a run that diverged"):
        modeldir.read_weights(tmp_path)
