"""The Python API (`seqkit.load`): what a script gets equals what the commands print, and importing seqkit
changes nothing in the process."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import seqkit
from seqkit import config as config_lib
from seqkit import configfile
from seqkit.data.text import read_lines
from seqkit.decoding.inference import LineNumbers
from seqkit.errors import ConfigError, DataError, ModelDirError
from tests.helpers import assert_one_line_error, seqkit_here, toy_config


def test_import_is_light_and_sets_nothing():
    probe = (
        "import os, sys, seqkit; print('torch' in sys.modules, os.environ.get('THP_MEM_ALLOC_ENABLE'), "
        "sorted(seqkit.__all__))"
    )
    clean = {k: v for k, v in __import__("os").environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=clean, check=True)
    assert (
        out.stdout.strip()
        == "False None ['Model', 'Prediction', 'Scores', 'TranslationResult', '__version__', 'load', 'train']"
    )
    # the names are there for dir() and for type checkers too (they saw Any: PEP 561's marker was missing)
    assert {*seqkit.__all__, "errors"} <= set(dir(seqkit))
    assert (Path(seqkit.__file__).parent / "py.typed").exists()
    pyproject = tomllib.loads((Path(seqkit.__file__).parent.parent / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["seqkit"]  # a wheel ships it


def test_translate_equals_the_command(reverse_model, reverse_data):
    model = seqkit.load(reverse_model, device="cpu")
    lines = [*read_lines(f"{reverse_data}/dev.src")[:12], "", "   "]
    for beam in (1, 4):
        results = model.translate(lines, beam_size=beam)
        command = seqkit_here(
            "translate", reverse_model, "--beam-size", beam, stdin="".join(f"{x}\n" for x in lines)
        )
        assert [r.text for r in results] == command.stdout.decode().splitlines()
    two = model.translate(lines, beam_size=4, nbest=2)
    listed = seqkit_here(
        "translate", reverse_model, "--beam-size", 4, "--nbest", 2, stdin="".join(f"{x}\n" for x in lines)
    )
    for result, line in zip(two, listed.stdout.decode().splitlines(), strict=True):
        expected = json.loads(line)["hypotheses"]
        assert [t.text for t in result.nbest] == [h["text"] for h in expected]
        assert [t.score for t in result.nbest] == pytest.approx([h["score"] for h in expected], abs=1e-5)
        assert result.text == (expected[0]["text"] if expected else "")
    assert two[-1].nbest == () and two[-1].score is None


def test_score_is_the_commands_perplexity(reverse_model, reverse_data):
    model = seqkit.load(reverse_model, device="cpu")
    sources, targets = read_lines(f"{reverse_data}/dev.src"), read_lines(f"{reverse_data}/dev.tgt")
    scores = model.score(sources, targets)
    assert len(scores.log_probs) == len(sources) and all(lp <= 0 for lp in scores.log_probs)
    command = seqkit_here("evaluate", "--model", reverse_model, "-s", f"{reverse_data}/dev.src",
                          "-r", f"{reverse_data}/dev.tgt", "--json")  # fmt: skip
    assert scores.perplexity == pytest.approx(
        json.loads(command.stdout)["perplexity"]["perplexity"], rel=1e-4
    )
    # a wrong target is less likely than the right one
    wrong = model.score(sources[:1], [sources[0]])
    assert wrong.log_probs[0] < scores.log_probs[0] or sources[0] == targets[0]
    with pytest.raises(ConfigError, match="2 sources but 1 targets"):
        model.score(sources[:2], targets[:1])


def test_generate_and_info_equal_the_commands(char_lm):
    model = seqkit.load(char_lm)
    texts = model.generate(["the", "a st"], max_tokens=20, num_samples=2, seed=5)
    command = seqkit_here(
        "generate", char_lm, "--max-tokens", 20, "--num-samples", 2, "--seed", 5, stdin="the\na st\n"
    )
    assert texts == command.stdout.decode().splitlines()
    assert model.info() == json.loads(seqkit_here("info", char_lm, "--json").stdout)
    assert model.type == "lm"
    with pytest.raises(ConfigError, match="use `seqkit generate`"):
        model.translate(["a b"])


def test_options_are_checked_as_the_commands_are(reverse_model):
    model = seqkit.load(reverse_model, device="cpu")
    with pytest.raises(ConfigError, match="decode.beam_size = 0"):
        model.translate(["c a b"], beam_size=0)
    with pytest.raises(ConfigError, match="nbest = 3: must be between 1 and the beam size"):
        model.translate(["c a b"], beam_size=2, nbest=3)
    with pytest.raises(ConfigError, match="must be a finite number"):
        model.translate(["c a b"], max_length_ratio=math.inf)
    with pytest.raises(ConfigError, match="use `seqkit translate`"):
        model.generate(["x"])
    # a torch.device is a device (it was "--device cpu: unknown device; valid: auto, cpu, cuda"), and
    # quantize takes a bool ("no" quantized)
    assert seqkit.load(reverse_model, device=torch.device("cpu")).translate(["c a b"]) == model.translate(
        ["c a b"]
    )
    with pytest.raises(ConfigError, match="quantize = 'no': give True or False"):
        seqkit.load(reverse_model, quantize="no")  # type: ignore[arg-type]
    # the arguments are named as a Python caller gave them, not as the command's options
    with pytest.raises(ConfigError, match="^device = gpu: unknown device"):
        seqkit.load(reverse_model, device="gpu")
    with pytest.raises(ConfigError, match="^precision = FP32: unknown precision"):
        seqkit.load(reverse_model, precision="FP32")


def test_one_string_or_an_item_that_is_no_string_is_an_error(reverse_model, char_lm):
    # a string is iterable: it was translated as one line per character
    model, lm = seqkit.load(reverse_model, device="cpu"), seqkit.load(char_lm, device="cpu")
    with pytest.raises(ConfigError, match=r"lines: one string; give a list of them \(lines=\[...\]\)"):
        model.translate("c a b")
    with pytest.raises(ConfigError, match="prompts: one string"):
        lm.generate("the")
    with pytest.raises(ConfigError, match="sources: one string"):
        model.score("c a b", "b a c")
    with pytest.raises(DataError, match="lines: item 2 is a NoneType, not a string"):
        model.translate(["c a b", None])  # type: ignore[list-item]
    for nbest in (2.0, True):  # (2.0: a TypeError from within; True was taken for 1)
        with pytest.raises(ConfigError, match=f"nbest = {nbest}: not a whole number"):
            model.translate(["c a b"], beam_size=2, nbest=nbest)  # type: ignore[arg-type]


def test_a_line_is_read_as_the_command_reads_a_files_line(reverse_model, char_lm, tmp_path):
    model, lm = seqkit.load(reverse_model, device="cpu"), seqkit.load(char_lm, device="cpu")
    # an open file's lines keep their line ending: it was part of the text (a character model's input)
    (tmp_path / "in.txt").write_text("c a b\nb a\r\n")
    with open(tmp_path / "in.txt", newline="") as lines:
        from_file = [r.text for r in model.translate(lines, beam_size=1)]
    assert from_file == [r.text for r in model.translate(["c a b", "b a"], beam_size=1)]
    with pytest.raises(DataError, match="lines: item 1 holds a line break; give one line per item"):
        model.translate(["c a\nb"])
    # a stream told its file names the file's line, as its other errors do (it said "lines: item 2")
    numbers = LineNumbers("mine.txt")
    with pytest.raises(DataError, match="mine.txt:2 holds a line break"):
        list(model.translate_stream(["c a b", "c a\nb"], numbers=numbers))
    with pytest.raises(DataError, match="mine.txt:1 is a NoneType, not a string"):
        list(model.translate_stream([None], numbers=numbers))  # type: ignore[list-item]
    # a lone surrogate (a JSON \ud800 escape) raised the tokenizer's bare TypeError
    with pytest.raises(DataError, match=r"prompts: item 2 holds a lone surrogate \(U\+D800-U\+DFFF\)"):
        lm.generate(["the", "a\ud800"])
    with pytest.raises(ConfigError, match="top_k is a sampling setting, and the temperature is 0"):
        lm.generate(["the"], temperature=0, top_k=3)
    command = seqkit_here("generate", char_lm, "the", "--temperature", 0, "--num-samples", 3)
    assert_one_line_error(command, "--num-samples is a sampling setting, and the temperature is 0")
    with pytest.raises(ConfigError, match="num_samples is a sampling setting"):  # (3 copies of one text)
        lm.generate(["the"], temperature=0, num_samples=3)
    assert lm.generate(["the"], temperature=0, num_samples=1, max_tokens=3) == lm.generate(
        ["the"], max_tokens=3, temperature=0
    )
    # the model's own num_samples gives way to temperature 0 (it was "--num-samples is a sampling
    # setting" to a user who never gave it; a stored temperature 0 with it failed every plain generate)
    own = tmp_path / "lm"
    shutil.copytree(char_lm, own)
    for stored in ({"num_samples": 3, "temperature": 0.8}, {"num_samples": 3, "temperature": 0.0}):
        values = configfile.read_toml(own / "config.toml")
        values["generate"].update(stored)
        (own / "config.toml").write_bytes(configfile.to_toml(config_lib.from_dict(values)))
        assert seqkit.load(own).generate(["the"], temperature=0, max_tokens=3) == lm.generate(
            ["the"], temperature=0, max_tokens=3
        )
        # and a stored temperature above 0 keeps them (it read the temperature given, none, as 0)
        sampled = seqkit.load(own).generate(["the"], max_tokens=3)
        assert len(sampled) == (3 if stored["temperature"] else 1)
    plain = seqkit_here("generate", own, "the", "--max-tokens", 3)
    assert plain.returncode == 0 and len(plain.stdout.splitlines()) == 1, plain.stderr


def test_streams_check_their_arguments_when_called_not_at_the_first_item(reverse_model, char_lm):
    model, lm = seqkit.load(reverse_model, device="cpu"), seqkit.load(char_lm, device="cpu")
    # (generator functions raised these only at next(), wherever the stream had been handed on to)
    with pytest.raises(ConfigError, match="use `seqkit translate`"):
        model.generate_stream(["x"])
    with pytest.raises(ConfigError, match="use `seqkit generate`"):
        lm.translate_stream(["x"])
    with pytest.raises(ConfigError, match="nbest = 0"):
        model.translate_stream(["c a b"], nbest=0)
    # settings are a DecodeConfig / GenerateConfig, checked again: dataclasses.replace skips the checks
    with pytest.raises(ConfigError, match="settings: a dict; give a DecodeConfig"):
        model.translate_stream(["c a b"], {"beam_size": 2})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="settings: a DecodeConfig; give a GenerateConfig"):
        lm.generate_stream(["x"], lm.config.decode)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"settings: decode.batch_size = -3: must be"):
        model.translate_stream(
            ["c a b"], replace(model.config.decode, batch_size=-3)
        )  # (islice's ValueError)
    with pytest.raises(ConfigError, match="chunk_lines = 0: give a whole number of lines of at least 1"):
        model.translate_stream(["c a b"], chunk_lines=0)
    # a set has no order of lines (a dict's keys have theirs)
    with pytest.raises(ConfigError, match="lines: a set; give a list of strings, one per line, in order"):
        model.translate({"c a b", "b a"})  # type: ignore[arg-type]
    assert model.translate({"c a b": 1, "b a": 2}.keys()) == model.translate(["c a b", "b a"])
    with pytest.raises(ConfigError, match="lines: a dict; give a list of strings, one per line"):
        model.translate({"c a b": 1})  # type: ignore[arg-type]  # (its keys were translated)
    # what is no iterable at all: a TypeError from within, and from a stream only at its first item
    for call, name in (
        (lambda: model.translate_stream(None), "lines"),  # type: ignore[arg-type]
        (lambda: model.translate(5), "lines"),  # type: ignore[arg-type]
        (lambda: lm.generate_stream(None), "prompts"),  # type: ignore[arg-type]
        (lambda: model.score(5, ["a"]), "sources"),  # type: ignore[arg-type]
    ):
        with pytest.raises(
            ConfigError, match=rf"^{name}: (None|5) is a (NoneType|int); give a list of strings"
        ):
            call()
    with pytest.raises(ConfigError, match="^on_text: a int; give a function of one str, or None$"):
        lm.generate_stream(["x"], on_text=5)  # type: ignore[arg-type]
    stream = model.translate_stream(["c a b"], replace(model.config.decode, beam_size=1))
    assert [r.text for r in stream] == [model.translate(["c a b"], beam_size=1)[0].text]


def test_a_relative_model_directory_is_read_where_it_was_loaded(reverse_model, tmp_path, monkeypatch):
    # the shortlist and info() are read after loading: after os.chdir, from another directory
    shutil.copytree(reverse_model, tmp_path / "m")
    monkeypatch.chdir(tmp_path)
    model = seqkit.load("m", device="cpu")
    expected = seqkit.load("m", device="cpu").translate(["c a b", "b a"], shortlist=True)
    monkeypatch.chdir("/")  # before this model first reads its shortlist
    assert model.translate(["c a b", "b a"], shortlist=True) == expected
    info = model.info()
    assert info["model_dir"] == "m" and info["files"]["shortlist.npz"] > 0


def test_threads_sharing_one_model_get_what_one_caller_gets(reverse_model, char_lm, reverse_data):
    from concurrent.futures import ThreadPoolExecutor

    model, lm = seqkit.load(reverse_model, device="cpu"), seqkit.load(char_lm, device="cpu")
    lines = read_lines(f"{reverse_data}/dev.src")[:20]
    calls = [
        lambda: [r.text for r in model.translate(lines, beam_size=3)],
        lambda: [r.text for r in model.translate(lines, temperature=1.0, seed=4)],
        lambda: lm.generate(["the", "a"], max_tokens=20, temperature=1.0, seed=2),
    ]
    alone = [call() for call in calls]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda i: calls[i % 3](), range(12)))
    assert together == [alone[i % 3] for i in range(12)]


def test_a_line_of_max_input_pieces_is_translated_and_one_more_is_refused(reverse_model):
    model = seqkit.load(reverse_model, device="cpu")
    pieces = len(model.tokenizer.encode_src(["c a b d e"])[0])
    assert model.translate(["c a b d e"], max_input_pieces=pieces, beam_size=1)[0].text == "e d b a c"
    with pytest.raises(
        DataError, match=f"line 1 has {pieces} pieces, more than decode.max_input_pieces = {pieces - 1}"
    ):
        model.translate(["c a b d e"], max_input_pieces=pieces - 1)


def test_load_names_a_model_directory_that_is_no_path():
    for given in (None, 5, b"runs/demo"):
        with pytest.raises(
            ConfigError, match=r"^model_dir = .*: a (NoneType|int|bytes); give the model directory"
        ):
            seqkit.load(given)  # type: ignore[arg-type]  # (pathlib's TypeError)


def test_loading_and_describing_a_model_leave_torchs_random_numbers_alone(reverse_model):
    # the model built before its weights are read drew its random initial weights from the caller's
    # torch.manual_seed stream: a script's own draws depended on whether it had called load or info
    import torch

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model = seqkit.load(reverse_model, device="cpu")
    model.info()
    assert torch.equal(torch.rand(3), expected)


def test_train_from_python_equals_the_command_and_keeps_the_callers_threads_and_random_state(
    tmp_path, reverse_data
):
    config = tmp_path / "toy.toml"
    config.write_bytes(configfile.to_toml(toy_config(reverse_data)))
    steps = {"train.max_steps": 12, "train.valid_every": 6, "train.threads": np.int64(1)}  # (numpy's too)
    command = seqkit_here("train", "-c", config, "-o", tmp_path / "command",
                          *(f"--set={key}={value}" for key, value in steps.items()))  # fmt: skip
    assert command.returncode == 0, command.stderr
    torch.set_num_threads(2)
    torch.manual_seed(5)
    expected_draw = torch.rand(3)
    torch.manual_seed(5)
    model = seqkit.train(tmp_path / "python", config, settings=steps, quiet=True)
    assert torch.get_num_threads() == 2 and torch.equal(torch.rand(3), expected_draw)
    for name in ("model.safetensors", "config.toml"):
        assert (tmp_path / "python" / name).read_bytes() == (tmp_path / "command" / name).read_bytes()
    assert model.translate(["a b c"]) == seqkit.load(tmp_path / "command").translate(["a b c"])
    # the same directory again with a later limit continues the run, as the command does
    longer = seqkit.train(tmp_path / "python", config, settings={**steps, "train.max_steps": 18}, quiet=True)
    log = [json.loads(line) for line in (tmp_path / "python" / "train_log.jsonl").read_text().splitlines()]
    assert [r["steps"] for r in log if r["kind"] == "end"] == [12, 18]
    assert longer.info()["training"]["steps"] == 18


def test_train_from_python_refuses_what_the_command_refuses(tmp_path, reverse_data):
    config = tmp_path / "toy.toml"
    config.write_bytes(configfile.to_toml(toy_config(reverse_data)))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    refusals = {
        "model_dir": (dict(model_dir=tmp_path / "mine", config=config), ModelDirError,
                      "model_dir {}: the directory holds files seqkit did not write (notes.txt)"),
        "no checkpoint": (dict(model_dir=tmp_path / "new", config=config, resume=True), ModelDirError,
                          "no checkpoint to resume"),
        "both": (dict(model_dir=tmp_path / "new", resume=True, overwrite=True), ConfigError,
                 "overwrite=True starts a new run and resume=True continues one; give one of them"),
        "no key": (dict(model_dir=tmp_path / "new", settings={"max_steps": 3}), ConfigError,
                   "settings: 'max_steps' is no 'section.key' (e.g. 'train.max_steps')"),
        "no value": (dict(model_dir=tmp_path / "new", settings={"train.max_steps": None}), ConfigError,
                     "settings['train.max_steps'] = None: give a number, a string, a boolean or a list"),
        "a range": (dict(model_dir=tmp_path / "new", config=config, settings={"train.max_steps": -1}),
                    ConfigError, "train.max_steps"),
        "a flag": (dict(model_dir=tmp_path / "new", quiet="no"), ConfigError, "quiet = 'no': give True or False"),
    }  # fmt: skip
    for name, (arguments, kind, message) in refusals.items():
        with pytest.raises(kind) as refused:
            seqkit.train(**arguments)
        assert message.format(tmp_path / "mine") in str(refused.value), name
        assert "\n" not in str(refused.value), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "toy.toml"]  # nothing was written
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    # a string value of a key that holds text stays text, as --set "data.src_lang=2020" does; a path
    # is a path, relative to the working directory as --set's
    with pytest.raises(DataError, match="2020"):
        seqkit.train(tmp_path / "new", config, settings={"data.src_lang": "2020"}, quiet=True)
    with pytest.raises(DataError, match=str(tmp_path / "nowhere")):
        seqkit.train(tmp_path / "new", config, settings={"data.train": tmp_path / "nowhere"}, quiet=True)
    assert not (tmp_path / "new").exists()  # (a run that failed leaves no directory)


def test_ctrl_c_in_train_from_python_saves_a_checkpoint_then_reaches_the_callers_handler(
    tmp_path, reverse_data, monkeypatch, capfd
):
    from seqkit import console
    from seqkit.training import checkpoint
    from seqkit.training.loop import TrainingInterrupted

    class InterruptedAtStep5(console.TrainingProgress):
        def step(self, report):
            super().step(report)
            if report.step == 5:
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(console, "TrainingProgress", InterruptedAtStep5)
    config = tmp_path / "toy.toml"
    config.write_bytes(configfile.to_toml(toy_config(reverse_data)))
    received = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        with pytest.raises(TrainingInterrupted):
            seqkit.train(tmp_path / "run", config, settings={"train.max_steps": 50}, quiet=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert received == [signal.SIGINT]  # once: seqkit's own handler took the first, then gave it back
    assert checkpoint.latest(tmp_path / "run").name == "step-00000005"
    # where the checkpoint is and how to go on, as the command says it (it was not said)
    assert f"checkpoint saved at step 5; continue with: seqkit train --resume {tmp_path / 'run'}" in (
        capfd.readouterr().err
    )
    assert TrainingInterrupted is seqkit.errors.TrainingInterrupted


def test_train_from_python_out_of_memory_is_the_commands_one_line_and_leaves_no_directory(tmp_path, lm_data):
    from tests.helpers import lm_config

    config = tmp_path / "lm.toml"
    config.write_bytes(configfile.to_toml(lm_config(lm_data)))
    # (torch's RuntimeError of the allocator reached the caller; the language model's half-made run stayed)
    with pytest.raises(ConfigError, match=r"^out of memory: [\d,]+ parameters take [\d,]+ GiB to train"):
        seqkit.train(
            tmp_path / "run", config, settings={"model.decoder_hidden_size": 100_000_000}, quiet=True
        )
    assert not (tmp_path / "run").exists()


def test_train_from_python_leaves_random_as_the_caller_had_it_in_a_new_process(tmp_path, lm_data):
    # the first import of rich (seqkit's console) drew from `random` before the state was kept
    from tests.helpers import lm_config

    config = tmp_path / "lm.toml"
    config.write_bytes(configfile.to_toml(lm_config(lm_data, train={"max_steps": 2, "valid_every": 2})))
    script = (
        "import random, sys, seqkit; random.seed(5); state = random.getstate(); "
        f"seqkit.train({str(tmp_path / 'run')!r}, {str(config)!r}, quiet=True); "
        "print(random.getstate() == state)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr


def _toy_file(tmp_path, reverse_data):
    config = tmp_path / "toy.toml"
    config.write_bytes(configfile.to_toml(toy_config(reverse_data)))
    return config


def test_train_from_python_with_overwrite_starts_a_run_with_a_checkpoint_over(tmp_path, reverse_data, capfd):
    # (mutation review: every --overwrite test was of a run whose checkpoints were gone)
    config = _toy_file(tmp_path, reverse_data)
    steps = {"train.max_steps": 8, "train.valid_every": 4, "train.threads": 1}
    seqkit.train(tmp_path / "run", config, settings=steps, quiet=True)
    capfd.readouterr()
    again = seqkit.train(tmp_path / "run", config, settings={**steps, "train.max_steps": 4}, overwrite=True,
                         quiet=True)  # fmt: skip
    assert again.info()["training"]["steps"] == 4
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in log if r["kind"] in ("start", "resume")] == ["start"]
    # a resume with quiet=True says nothing (the "resuming ..." line is progress, as the command's --quiet)
    seqkit.train(tmp_path / "run", config, settings={**steps, "train.max_steps": 6}, quiet=True)
    assert "resuming" not in capfd.readouterr().err
    seqkit.train(tmp_path / "run", config, settings={**steps, "train.max_steps": 7})
    assert f"resuming {tmp_path / 'run'}; config changes: train.max_steps: 6 -> 7" in capfd.readouterr().err


def test_train_from_python_resumes_a_run_that_has_no_marker(tmp_path, reverse_data):
    # a run of seqkit 0.1 (no .seqkit marker) is continued with resume=True, and refused without it
    from seqkit import outputs

    config = _toy_file(tmp_path, reverse_data)
    steps = {"train.max_steps": 4, "train.valid_every": 4, "train.threads": 1}
    seqkit.train(tmp_path / "run", config, settings=steps, quiet=True)
    (tmp_path / "run" / outputs.MARKER).unlink()
    with pytest.raises(ModelDirError, match="the directory holds files seqkit did not write"):
        seqkit.train(tmp_path / "run", config, settings={**steps, "train.max_steps": 6}, quiet=True)
    resumed = seqkit.train(tmp_path / "run", config, settings={**steps, "train.max_steps": 6}, resume=True,
                           quiet=True)  # fmt: skip
    assert resumed.info()["training"]["steps"] == 6


def test_train_from_python_refuses_a_key_with_an_equals_sign_and_a_table_value(tmp_path):
    # (mutation review: neither refusal of _overrides had a test; both reached the loader as other errors)
    refusals = {
        "train.max_steps=5": (3, "settings: 'train.max_steps=5' is no 'section.key' (e.g. 'train.max_steps')"),
        "train.max_steps": ({"a": 1}, "settings['train.max_steps'] = {'a': 1}: give a number, a string, a "
                            "boolean or a list"),
    }  # fmt: skip
    for key, (value, message) in refusals.items():
        with pytest.raises(ConfigError) as refused:
            seqkit.train(tmp_path / "new", settings={key: value}, quiet=True)
        assert str(refused.value) == message
    assert not (tmp_path / "new").exists()


def test_train_from_python_refuses_a_config_or_directory_that_is_no_path(tmp_path):
    with pytest.raises(
        ConfigError, match=r"^config = 5: give a config file's path \(a str or a Path\), or None$"
    ):
        seqkit.train(tmp_path / "new", 5, quiet=True)
    with pytest.raises(ConfigError, match=r"^model_dir = None: give the run's directory"):
        seqkit.train(None, quiet=True)
    assert not (tmp_path / "new").exists()


def test_train_from_python_turns_a_failed_allocation_into_the_commands_line(tmp_path, lm_data, monkeypatch):
    from seqkit.training import lm as train_lm
    from tests.helpers import lm_config

    def refused(build, device):
        raise RuntimeError(
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 5368709120 bytes"
        )

    monkeypatch.setattr(train_lm, "built", refused)  # (an allocation the size check let through)
    config = tmp_path / "lm.toml"
    config.write_bytes(configfile.to_toml(lm_config(lm_data)))
    with pytest.raises(
        ConfigError, match=r"^out of memory \(5.0 GiB asked for at once\); this machine needs a"
    ):
        seqkit.train(tmp_path / "run", config, quiet=True)
