"""A model directory reloads into the same model; writes are atomic."""

from __future__ import annotations

import torch

from seqkit import modeldir
from seqkit.config import DecodeConfig
from seqkit.data.text import read_lines
from seqkit.decoding.inference import translate_lines


def test_reload_gives_identical_weights_and_translations(reverse_model, reverse_data, tmp_path):
    cfg, tokenizer, model = modeldir.load(reverse_model)
    copy_dir = tmp_path / "copy"
    modeldir.start(copy_dir, cfg, tokenizer, resume=False)
    modeldir.save_weights(copy_dir, model)
    cfg2, tokenizer2, model2 = modeldir.load(copy_dir)
    assert cfg2 == cfg
    for (name, a), (name2, b) in zip(model.state_dict().items(), model2.state_dict().items(), strict=True):
        assert name == name2 and torch.equal(a, b)
    sources = read_lines(f"{reverse_data}/dev.src")
    assert translate_lines(model2, tokenizer2, sources, DecodeConfig()) == translate_lines(
        model, tokenizer, sources, DecodeConfig()
    )


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "file.bin"
    modeldir.atomic_write(target, b"one")
    modeldir.atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_read_log_skips_a_torn_last_line(tmp_path):
    modeldir.append_log(tmp_path, {"kind": "train", "step": 1})
    with open(tmp_path / modeldir.LOG, "a") as f:
        f.write('{"kind": "tra')  # a process killed mid-write
    assert modeldir.read_log(tmp_path) == [{"kind": "train", "step": 1}]
    modeldir.append_log(tmp_path, {"kind": "resume", "step": 1})  # the next session's record survives
    assert modeldir.read_log(tmp_path) == [{"kind": "train", "step": 1}, {"kind": "resume", "step": 1}]
