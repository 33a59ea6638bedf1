"""Your own data (issue 13): corpus formats, held-out dev sets, config-relative paths, cleaning, any
SentencePiece model, logs in files, `seqkit config`, pipelines, and the token-array cache."""

from __future__ import annotations

import gzip
import io
import json
import os
import pty
import random
import re
import select
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
import torch

from seqkit import config as config_lib
from seqkit import configfile, model_types
from seqkit.data import arrays, corpus
from seqkit.data.arrays import TokenArrays
from seqkit.data.batches import training_batches
from seqkit.data.formats import detect, iter_column, iter_pairs, read_pairs, read_target_side
from seqkit.data.text import read_lines
from seqkit.data.tokenizer import UNK, SentencePieceTokenizer, build_tokenizer, tokenizer_from_files
from seqkit.data.toy import make_pairs
from seqkit.decoding.inference import AttentionMap, translate_lines
from seqkit.decoding.torch_steps import steps_of
from seqkit.errors import ConfigError, DataError
from seqkit.training import log as training_log
from seqkit.training import seq2seq as train_seq2seq
from seqkit.training.log import StartRecord
from seqkit.training.loop import fit
from seqkit.training.run import seeded_rng
from seqkit.training.task import DevScores, NullReporter, StepLoss, TrainingTask
from seqkit.viz import plots
from tests.helpers import (
    assert_one_line_error,
    keep,
    kept,
    png_pixels,
    seqkit,
    seqkit_here,
    toy_config,
    write_toy,
)

PAIRS = make_pairs("reverse", 40, seed=3)


def _write_formats(directory: Path) -> dict[str, str]:
    """The same pairs as parallel files, a TSV (target first, an attribution column), .tsv.gz and JSONL."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "c.src").write_text("".join(s + "\n" for s, _ in PAIRS))
    (directory / "c.tgt").write_text("".join(t + "\n" for _, t in PAIRS))
    tsv = "".join(
        f"{t}\t{s}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}\n" for i, (s, t) in enumerate(PAIRS)
    )
    (directory / "c.tsv").write_text(tsv)
    with gzip.open(directory / "c.tsv.gz", "wt") as f:
        f.write(tsv)
    (directory / "c.jsonl").write_text(
        "".join(json.dumps({"es": s, "en": t, "id": i}) + "\n" for i, (s, t) in enumerate(PAIRS))
    )
    return {name: str(directory / name) for name in ("c", "c.tsv", "c.tsv.gz", "c.jsonl")}


def _data(**keys) -> config_lib.DataConfig:
    return config_lib.from_dict({"data": {"src_lang": "src", "tgt_lang": "tgt", **keys}}, "test").data


@pytest.mark.parametrize("name", ["c", "c.tsv", "c.tsv.gz", "c.jsonl"])
def test_every_format_reads_the_same_pairs(tmp_path, name):
    files = _write_formats(tmp_path)
    cfg = _data(src_column=2, tgt_column=1, src_key="es", tgt_key="en")
    src, tgt = read_pairs(files[name], cfg, "data.train")
    assert list(zip(src, tgt, strict=True)) == PAIRS
    assert read_target_side(files[name], cfg, "data.train") == tgt  # what a language model reads


def test_a_blank_line_is_an_empty_pair_in_a_tsv_and_in_json_lines(tmp_path):
    # training skips and counts it; JSON lines dropped it without a count
    (tmp_path / "c.tsv").write_text("a b\tb a\n \nc\td\n")  # (a line of a space was an error)
    (tmp_path / "c.jsonl").write_text('{"src": "a b", "tgt": "b a"}\n \n{"src": "c", "tgt": "d"}\n')
    for name in ("c.tsv", "c.jsonl"):
        src, tgt = read_pairs(str(tmp_path / name), _data(src_column=1, tgt_column=2), "data.train")
        assert list(zip(src, tgt, strict=True)) == [("a b", "b a"), ("", ""), ("c", "d")], name


@pytest.mark.parametrize(
    ("name", "content", "cfg", "fragments"),
    [
        ("short.tsv", "a\tb\nc\n", {}, ["short.tsv:2:", "1 tab-separated column", "data.src_column"]),
        ("three.tsv", "a\tb\n", {"tgt_column": 3}, ["three.tsv:1:", "column 3"]),
        ("missing.jsonl", '{"src": "a", "tgt": "b"}\n{"src": "c"}\n', {}, ["missing.jsonl:2:", "no field 'tgt'", "data.tgt_key"]),
        ("bad.jsonl", '{"src": "a", "tgt": "b"}\n{"src": \n', {}, ["bad.jsonl:2:", "not valid JSON"]),
        ("list.jsonl", "[1, 2]\n", {}, ["list.jsonl:1:", "not an object"]),
        ("number.jsonl", '{"src": 1, "tgt": "b"}\n', {}, ["number.jsonl:1:", "'src' is not a string"]),
        # JSON's escape of half a surrogate pair: a UnicodeEncodeError's traceback at the first encode
        ("half.jsonl", '{"src": "a", "tgt": "b"}\n{"src": "x \\ud800", "tgt": "y"}\n', {}, ["half.jsonl:2:", "field 'src'", "lone surrogate"]),
        # a classifier's formats, which the JSON-lines reader took the file for ("p.csv:1: not valid JSON")
        ("p.csv", "hola,hello\n", {"format": "csv"}, ["data.format = 'csv' is a classifier's format", "tsv or jsonl"]),
        ("p.tsv", "hola\thello\n", {"format": "labels"}, ["data.format = 'labels' is a classifier's format"]),
    ],
)  # fmt: skip
def test_bad_lines_are_one_line_errors_naming_file_and_line(tmp_path, name, content, cfg, fragments):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError) as error:
        read_pairs(str(tmp_path / name), _data(**cfg), "data.train")
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_file_given_for_a_path_prefix_is_told_the_prefix(tmp_path):
    # "neither train.src.src nor train.src.src.gz exists; check the path prefix" of a file that exists
    for side, text in (("src", "hola\n"), ("tgt", "hello\n")):
        (tmp_path / f"train.{side}").write_text(text)
    with pytest.raises(
        DataError, match=r"train.src': a file; data.train is the path prefix of the files: give .*train$"
    ):
        read_pairs(str(tmp_path / "train.src"), _data(), "data.train")
    (tmp_path / "mytext.txt").write_text("hello\n")
    with pytest.raises(
        DataError,
        match=r"mytext.txt': a file, but data.train is a path prefix .*name the file .*mytext.src and give .*mytext$",
    ):
        read_pairs(str(tmp_path / "mytext.txt"), _data(), "data.train")


def test_a_damaged_gzip_file_is_a_one_line_error(tmp_path):
    # a corrupt deflate stream raised zlib.error, which no handler took: a traceback
    good = gzip.compress("".join(f"line {i} of a corpus\n" for i in range(2000)).encode(), mtime=0)
    damaged = good[:200] + bytes(b ^ 0xFF for b in good[200:260]) + good[260:]
    (tmp_path / "c.src.gz").write_bytes(damaged)
    with pytest.raises(DataError, match=r"c\.src\.gz: cannot be read .*check that the file is complete"):
        read_lines(tmp_path / "c.src.gz")


def test_deduplication_and_the_cache_tell_where_one_side_ends(tmp_path):
    """A tab inside a side, or a file's last line without its newline, shifted between the two sides:
    other pairs, not duplicates of the first and not the first's cached arrays."""
    (tmp_path / "c.tsv").write_text('"a\tb"\tc\n' * 20)  # (the quotes are text: the pair is 'a' and 'b')
    (tmp_path / "c.jsonl").write_text(
        "".join(json.dumps({"src": s, "tgt": t}) + "\n" for s, t in [("a\tb", "c"), ("a", "b\tc")] * 20)
    )
    cfg = toy_config(str(tmp_path), data={"train": str(tmp_path / "c.jsonl"), "dev": str(tmp_path / "c.tsv"),
                     "format": "auto", "dedupe": True})  # fmt: skip
    tokenizer = build_tokenizer(["a\tb c"], ["a\tb c"], config_lib.TokenizerConfig(type="char"), 1)
    prepared = corpus.prepare_pairs(cfg, tmp_path / "run", tokenizer, lambda s, t: tokenizer)[1]
    assert len(prepared.train.src) == 2 and prepared.cleaning.duplicates == 38
    sides = {"src": b"ab\nc", "tgt": b"x\ny\n"}, {"src": b"ab\ncx", "tgt": b"\ny\n"}  # the same bytes joined
    train = []
    for files in sides:
        for lang, content in files.items():
            (tmp_path / f"t.{lang}").write_bytes(content)
        cfg = toy_config(str(tmp_path), data={"train": str(tmp_path / "t"), "dev": str(tmp_path / "t")})
        prepared = corpus.prepare_pairs(cfg, tmp_path / "run", tokenizer, lambda s, t: tokenizer)[1]
        assert not prepared.from_cache
        train.append(
            [tokenizer.decode_tgt(list(arrays)) for arrays in (prepared.train.src, prepared.train.tgt)]
        )
    assert train[0] != train[1]


def test_token_arrays_index_from_the_end_as_a_list():
    rows = [[5, 6], [7], [8, 9, 10]]
    arrays = TokenArrays.from_rows(rows, vocab_size=16)
    assert [arrays[i] for i in range(-3, 3)] == rows[-3:] + rows
    for outside in (3, -4):
        with pytest.raises(IndexError):
            arrays[outside]


def test_bom_and_crlf_are_removed_and_counted(tmp_path):
    (tmp_path / "c.tsv").write_bytes("\ufeffa b\tb a\r\nc\td\r\n\ne\tf\n".encode())
    fixes: Counter = Counter()
    src, tgt = read_pairs(str(tmp_path / "c.tsv"), _data(), "data.train", fixes)
    assert (src, tgt) == (["a b", "c", "", "e"], ["b a", "d", "", "f"])  # a blank line is an empty pair
    assert fixes == Counter(bom=1, cr=2)


def test_translate_and_evaluate_read_a_column(tmp_path, reverse_model):
    files = _write_formats(tmp_path)
    assert list(iter_column(files["c.tsv"], 2)) == [s for s, _ in PAIRS]
    from_column = seqkit_here("translate", reverse_model, files["c.tsv"], "--column", "2")
    from_file = seqkit_here("translate", reverse_model, tmp_path / "c.src")
    assert from_column.returncode == 0 and from_column.stdout == from_file.stdout
    scored = seqkit_here(
        "evaluate", "-i", tmp_path / "c.tgt", "-r", files["c.tsv"], "--column", "1", "-m", "bleu", "--json"
    )
    assert json.loads(scored.stdout)["systems"][0]["scores"][0]["score"] == pytest.approx(100.0)
    assert_one_line_error(
        seqkit_here("translate", reverse_model, files["c.tsv"], "--column", "4"), "c.tsv:1:", "no column 4"
    )


def _tsv_corpus(directory: Path, count: int = 1200, repeat: int = 0) -> Path:
    pairs = make_pairs("reverse", count, seed=1)
    pairs += pairs[:repeat]
    path = directory / "corpus.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    return path


def test_a_tsv_without_dev_holds_out_pairs_with_the_seed(tmp_path):
    path = _tsv_corpus(tmp_path)
    cfg = toy_config(str(tmp_path), data={"train": str(path), "dev": "", "dev_size": 50},
                     train={"max_steps": 20, "valid_every": 20})  # fmt: skip
    train_seq2seq.train(cfg, tmp_path / "m")
    held_src = (tmp_path / "m" / "dev.src.txt").read_text().splitlines()
    held_tgt = (tmp_path / "m" / "dev.tgt.txt").read_text().splitlines()
    lines = path.read_text().splitlines()
    expected = [lines[i].split("\t") for i in corpus.hold_out(len(lines), 50, cfg.train.seed)]
    assert [list(p) for p in zip(held_src, held_tgt, strict=True)] == expected
    start = training_log.of_kind(training_log.read(tmp_path / "m"), StartRecord)[0]
    assert start.data["dev_pairs"] == 50 and start.data["dev_held_out"] == 1
    assert start.data["train_pairs"] == 1150


def test_config_paths_are_relative_to_the_config_file_and_set_paths_to_the_cwd(tmp_path, monkeypatch):
    exp = tmp_path / "exp"
    exp.mkdir()
    _tsv_corpus(exp)
    (exp / "run.toml").write_text('[data]\ntrain = "corpus.tsv"\ndev = ""\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    loaded = configfile.load(exp / "run.toml", ["data.dev=../exp/corpus.tsv"], base=None)
    assert loaded.data.train == str(exp / "corpus.tsv")
    # --set paths are relative to where the command runs
    with monkeypatch.context() as patch:  # the working directory comes back to what it was
        patch.chdir(elsewhere)
        loaded = configfile.load(exp / "run.toml", ["data.dev=../exp/corpus.tsv"])
    assert loaded.data.dev == str(exp / "corpus.tsv")
    result = seqkit("config", "-c", exp / "run.toml", cwd=elsewhere)
    assert f'train = "{exp / "corpus.tsv"}"' in result.stdout.decode()


def test_cleaning_is_counted_at_the_start(tmp_path):
    pairs = list(dict.fromkeys(make_pairs("reverse", 400, seed=1)))[:300]  # no two alike
    pairs += pairs[:7]  # 7 duplicates
    # 5 empty (blank lines and a copy of an empty pair: counted as empty, not as duplicates)
    pairs += [("", "a b"), ("a b", ""), ("", ""), ("", ""), ("", "a b")]
    pairs += [("a " * 30, "b")]  # a ratio of 30
    (tmp_path / "t.src").write_text("".join(s + "\n" for s, _ in pairs))
    (tmp_path / "t.tgt").write_text("".join(t + "\n" for _, t in pairs))
    write = make_pairs("reverse", 20, seed=2)
    (tmp_path / "d.src").write_text("".join(s + "\n" for s, _ in write))
    (tmp_path / "d.tgt").write_text("".join(t + "\n" for _, t in write))
    cfg = toy_config(str(tmp_path), data={"train": str(tmp_path / "t"), "dev": str(tmp_path / "d"), "dedupe": True,
                     "max_length_ratio": 5.0}, train={"max_steps": 5, "valid_every": 5})  # fmt: skip
    train_seq2seq.train(cfg, tmp_path / "m")
    data = training_log.of_kind(training_log.read(tmp_path / "m"), StartRecord)[0].data
    assert (data["duplicate_pairs"], data["empty_pairs"], data["ratio_pairs"]) == (7, 5, 1)
    assert data["train_pairs"] == 300 and data["skipped_pairs"] == 13
    line = seqkit_here("train", "--set", f"data.train={tmp_path / 't'}", "--set", f"data.dev={tmp_path / 'd'}",
                  "--set", "data.src_lang=src", "--set", "data.tgt_lang=tgt", "--set", "data.dedupe=true",
                  "--set", "tokenizer.vocab_size=16", "--set", "train.threads=1", "--max-steps", "1",
                  "-o", tmp_path / "cli")  # fmt: skip
    assert "skipped 12: 5 empty, 7 duplicates" in line.stderr.decode()


def test_the_start_line_says_a_cr_inside_a_line_reads_as_a_space():
    # it said the CR was removed among the control characters, which joined two words before (data/text.py)
    from seqkit.model_types.base import described_fixes

    said = described_fixes({"cr_lines": 2, "control_lines": 3})
    assert (
        said
        == "2 carriage returns, 3 lines' control characters (NUL, BOM, ... inside a line; a CR there reads as a space)"
    )
    # one of each is said as one ("1 byte order marks")
    assert described_fixes({"bom_lines": 1, "cr_lines": 1, "control_lines": 1, "break_lines": 1}) == (
        "1 byte order mark, 1 carriage return, 1 line's control characters (NUL, BOM, ... inside a line; a CR "
        "there reads as a space), 1 JSON line with a line break in a field (read as a space)"
    )


def _sentencepiece(lines: list[str], **ids) -> bytes:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, vocab_size=20,
                                   hard_vocab_limit=False, minloglevel=2, **ids)  # fmt: skip
    return model.getvalue()


@pytest.mark.parametrize(
    "ids",
    [{}, {"model_type": "bpe"}, {"user_defined_symbols": ["<sep>"]}, {"pad_id": 3, "unk_id": 0, "bos_id": 1, "eos_id": 2}],
    ids=["sentencepiece-defaults", "bpe", "user-symbols", "pad-last"],
)  # fmt: skip
def test_any_sentencepiece_model_maps_onto_seqkits_special_ids(ids):
    lines = [s for s, _ in make_pairs("reverse", 200, seed=1)]
    tokenizer = SentencePieceTokenizer(_sentencepiece(lines, **ids))
    encoded = tokenizer.encode_src(lines[:20])
    assert all(i >= 4 for row in encoded for i in row)  # the specials 0-3 stay seqkit's
    assert tokenizer.decode_tgt(encoded) == lines[:20]
    assert tokenizer.decode_tgt([[2, *encoded[0], 3, 0]]) == [lines[0]]  # bos, eos, pad: dropped
    # every seqkit id is one piece of its own: the model's pieces and seqkit's specials, none twice
    pieces = tokenizer.src_id_pieces(list(range(tokenizer.src_vocab_size)))
    assert len(set(pieces)) == len(pieces) and pieces[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    if "user_defined_symbols" in ids:
        assert "<sep>" in pieces


def test_a_default_ids_model_and_separate_side_models_train_translate_and_reload(tmp_path, reverse_data):
    src_lines = Path(f"{reverse_data}/train.src").read_text().splitlines()
    tgt_lines = Path(f"{reverse_data}/train.tgt").read_text().splitlines()
    (tmp_path / "joint.model").write_bytes(_sentencepiece(src_lines + tgt_lines))  # unk=0 bos=1 eos=2, no pad
    (tmp_path / "src.model").write_bytes(_sentencepiece(src_lines))
    (tmp_path / "tgt.model").write_bytes(_sentencepiece(tgt_lines, model_type="bpe"))
    dev = Path(f"{reverse_data}/dev.src").read_text().splitlines()[:10]
    for name, tokenizer in (
        ("joint", {"model": str(tmp_path / "joint.model")}),
        ("sides", {"joint": False, "src_model": str(tmp_path / "src.model"), "tgt_model": str(tmp_path / "tgt.model")}),
    ):  # fmt: skip
        cfg = toy_config(reverse_data, tokenizer=tokenizer, train={"max_steps": 30, "valid_every": 30})
        train_seq2seq.train(cfg, tmp_path / name)
        loaded_cfg, loaded, model = model_types.load(tmp_path / name)
        assert loaded_cfg.tokenizer == cfg.tokenizer  # the stored config says what was used
        again = model_types.load(tmp_path / name)
        first = translate_lines(steps_of(model), loaded, dev, cfg.decode)
        assert translate_lines(steps_of(again[2]), again[1], dev, cfg.decode) == first
        cli = seqkit_here("translate", tmp_path / name, stdin="\n".join(dev) + "\n")
        assert cli.stdout.decode().splitlines() == first
        assert (tmp_path / name / ("spm.model" if name == "joint" else "spm.tgt.model")).is_file()


@pytest.mark.parametrize(
    ("tokenizer", "fragment"),
    [
        ({"joint": False, "model": "x.model"}, "tokenizer.joint = false with one tokenizer.model"),
        ({"joint": False, "src_model": "x.model"}, "tokenizer.tgt_model is missing"),
        ({"src_model": "a.model", "tgt_model": "b.model"}, "set tokenizer.joint = false"),
        ({"model": "a.model", "src_model": "b.model"}, "exclude each other"),
        ({"type": "char", "model": "a.model"}, "tokenizer.type = char"),
        ({"src_vocab_size": 100}, "apply to separate sides"),
    ],
)
def test_tokenizer_combinations_that_cannot_hold_are_errors(tokenizer, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config_lib.from_dict({"tokenizer": tokenizer}, "run.toml")


def test_separate_vocabularies_for_a_model_of_one_text_are_refused_at_the_start_of_its_training(
    tmp_path, lm_data
):
    # it trained a source vocabulary on no lines and blamed data.train; a stored config that trained (a
    # series classifier never reads its tokenizer keys) still loads
    from seqkit.training import lm as train_lm
    from tests.helpers import lm_config

    config_lib.from_dict({"model": {"type": "classifier"}, "tokenizer": {"joint": False}}, "run.toml")
    separate = lm_config(lm_data, tokenizer={"type": "sentencepiece", "joint": False})
    with pytest.raises(ConfigError, match=r"^tokenizer.joint = false: a language model reads one text"):
        train_lm.train(separate, tmp_path / "lm")


def test_a_vocabulary_smaller_than_the_datas_characters_is_one_line(tmp_path):
    from seqkit.data.tokenizer import train_sentencepiece

    lines = ["".join(chr(ord("a") + (i * 7 + j) % 26) for j in range(30)) for i in range(200)]
    cfg = config_lib.from_dict({"tokenizer": {"vocab_size": 10}}, "test").tokenizer
    message = (
        r"tokenizer.vocab_size = 10: smaller than the (3\d) pieces SentencePiece needs for the characters"
    )
    with pytest.raises(ConfigError, match=message) as raised:
        train_sentencepiece(lines, cfg, seed=1)
    enough = int(re.search(message, str(raised.value)).group(1))  # "to at least": that many train
    assert train_sentencepiece(
        lines, config_lib.from_dict({"tokenizer": {"vocab_size": enough}}, "t").tokenizer, 1
    )
    separate = config_lib.from_dict({"tokenizer": {"joint": False, "src_vocab_size": 10}}, "test").tokenizer
    with pytest.raises(ConfigError, match="tokenizer.src_vocab_size = 10: smaller"):
        build_tokenizer(lines, lines, separate, 1)

    def interrupted():
        yield from lines[:50]
        raise KeyboardInterrupt  # Ctrl-C while SentencePiece reads: stays Ctrl-C (exit 130), not an error

    with pytest.raises(KeyboardInterrupt):
        train_sentencepiece(interrupted(), cfg, seed=1)


def test_a_corpus_longer_than_max_sentences_gives_the_same_tokenizer_in_every_process(tmp_path):
    # SentencePiece's own sample of a long input ignored the seed: each new process (each `seqkit train`
    # of the same corpus and seed) learnt another vocabulary, and the whole run differed
    lines = tmp_path / "lines.txt"
    rng = random.Random(3)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma"]
    lines.write_text("".join(" ".join(rng.choices(words, k=8)) + f" {i}\n" for i in range(1200)))
    program = (
        "import hashlib, sys; from seqkit.config import TokenizerConfig; "
        "from seqkit.data.tokenizer import train_sentencepiece; "
        "cfg = TokenizerConfig(vocab_size=60, max_sentences=int(sys.argv[2])); "
        "lines = open(sys.argv[1]).read().splitlines(); "
        "print(hashlib.sha256(train_sentencepiece(lines, cfg, seed=int(sys.argv[3]))).hexdigest())"
    )

    def model_digest(max_sentences: int, seed: int = 1) -> str:
        run = [sys.executable, "-c", program, str(lines), str(max_sentences), str(seed)]
        return subprocess.run(run, capture_output=True, text=True, check=True).stdout.strip()

    sampled = model_digest(300)
    assert model_digest(300) == sampled
    assert model_digest(300, seed=2) != sampled  # the seed draws the sample
    assert model_digest(5000) != sampled  # (a sample of 300 is not the whole corpus)


def test_sentencepiece_trains_on_every_line_in_order_or_on_a_fair_sample_of_max_sentences(monkeypatch):
    from seqkit.data import tokenizer

    given: list[list[str]] = []
    monkeypatch.setattr(tokenizer, "_train", lambda sentences, *args: given.append(list(sentences)))
    lines = [f"line {i}" for i in range(1200)]
    for limit in (1200, 5000):  # within the limit: every non-empty line, in the corpus' order
        cfg = config_lib.from_dict({"tokenizer": {"max_sentences": limit}}, "test").tokenizer
        tokenizer.train_sentencepiece([*lines[:5], "", "  ", *lines[5:]], cfg, seed=1)
        assert given.pop() == lines
    cfg = config_lib.from_dict({"tokenizer": {"max_sentences": 300}}, "test").tokenizer
    tokenizer.train_sentencepiece(lines, cfg, seed=1)
    sample = given.pop()
    assert len(sample) == len(set(sample)) == 300 and set(sample) <= set(lines)
    # each line equally likely: of two lines, the second is the sample of one about half the time
    seconds = sum(tokenizer._sample(iter(["a", "b"]), 1, seed) == ["b"] for seed in range(400))
    assert 140 < seconds < 260, seconds


def test_any_other_sentencepiece_failure_is_one_line(monkeypatch):
    from seqkit.data import tokenizer

    def failing(*args):
        raise RuntimeError("Internal: src/trainer_interface.cc(1) [!sentences_.empty()]\nmore")

    monkeypatch.setattr(tokenizer, "_train", failing)
    cfg = config_lib.from_dict({"tokenizer": {"vocab_size": 10}}, "test").tokenizer
    with pytest.raises(ConfigError) as raised:
        tokenizer.train_sentencepiece(["a b c"], cfg, seed=1)
    assert str(raised.value) == (
        "tokenizer: SentencePiece could not train on the training data "
        "(Internal: src/trainer_interface.cc(1) [!sentences_.empty()])"
    )


def test_a_vocabulary_is_learned_from_lines_longer_than_sentencepieces_default_limit():
    """SentencePiece's default drops lines over 4,192 bytes unsaid: documents of 5 KB left it the
    short lines alone to learn from (or nothing), and the documents read as unknown pieces."""
    from seqkit.data.tokenizer import TRAINING_CHARS, SentencePieceSide, train_sentencepiece

    rng = random.Random(3)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(60)]
    documents = [" ".join(rng.choice(words) for _ in range(800)) for _ in range(30)]  # 5.6 KB each
    assert min(map(len, documents)) > 4192
    cfg = config_lib.from_dict({"tokenizer": {"vocab_size": 80}}, "test").tokenizer
    side = SentencePieceSide(train_sentencepiece([*documents, "xy", "zz"], cfg, seed=1), "test")
    assert side.vocab_size == 80  # not the dozen pieces of the two short lines
    assert UNK not in side.encode(documents[:1])[0]
    huge = train_sentencepiece([documents[0] * (2 * TRAINING_CHARS // len(documents[0]))], cfg, 1)
    assert huge  # a line past TRAINING_CHARS trains from its first characters


def test_info_vocab_counts_the_training_data(reverse_model, reverse_data, tmp_path, monkeypatch):
    result = seqkit_here("info", reverse_model, "--vocab", "--json")
    vocab = json.loads(result.stdout)
    rows = vocab["vocabulary"]["target"]
    _, tokenizer, _ = model_types.load(reverse_model)
    assert [r["piece"] for r in rows[4:]] == tokenizer.tgt_pieces(list(range(4, tokenizer.tgt_vocab_size)))
    lines = (
        Path(f"{reverse_data}/train.src").read_text().splitlines()
        + Path(f"{reverse_data}/train.tgt").read_text().splitlines()
    )
    expected = Counter(i for row in tokenizer.encode_src(lines) for i in row)
    assert {r["id"]: r["count"] for r in rows if r["count"]} == dict(expected)
    text = seqkit_here("info", reverse_model, "--vocab").stdout.decode().splitlines()
    assert text[4].split("\t") == ["4", rows[4]["piece"], str(rows[4]["count"])]
    # counts of another shape (valid JSON): a traceback ('list' object has no attribute 'get', or zip's
    # lengths); not JSON at all is counts not kept
    copy = tmp_path / "model"
    shutil.copytree(reverse_model, copy)
    for damaged in ("[1, 2]", '{"src": [1, 2], "tgt": [3]}', '{"tgt": "many"}'):
        (copy / "vocab_counts.json").write_text(damaged)
        assert_one_line_error(seqkit_here("info", copy, "--vocab"), "vocab_counts.json: damaged", "delete it")
    (copy / "vocab_counts.json").write_text("{")
    assert seqkit_here("info", copy, "--vocab").returncode == 0
    # counted a slice at a time (a whole side's int64 copy was 8 bytes a token): the same counts
    ids = np.array([3, 1, 3, 0, 5, 3], dtype=np.int16)
    assert arrays.id_counts(ids, 7).tolist() == np.bincount(ids, minlength=7).tolist()
    monkeypatch.setattr(arrays, "COUNT_CHUNK", 4)
    assert arrays.id_counts(ids, 7).tolist() == [1, 1, 0, 3, 0, 1, 0]


def _cli_train(data_dir: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "seqkit", "train", "-o", str(out), "--max-steps", "8",
            "--set", f"data.train={data_dir}/train", "--set", f"data.dev={data_dir}/dev",
            "--set", "data.src_lang=src", "--set", "data.tgt_lang=tgt", "--set", "tokenizer.vocab_size=16",
            "--set", "model.embedding_size=16", "--set", "model.encoder_hidden_size=16",
            "--set", "model.decoder_hidden_size=16", "--set", "train.log_every=2", "--set", "train.valid_every=8",
            "--set", "train.threads=1",
            *extra]  # fmt: skip


def _runs_logging_to_a_file_and_quiet(directory: Path) -> None:
    """(In the background process.) A run whose stderr is a file, and a --quiet run whose stderr is a
    pipe though FORCE_COLOR asks for colours."""
    data = write_toy(directory / "data", "reverse")
    with open(directory / "train.log", "wb") as log:
        to_a_file = subprocess.run(
            _cli_train(data, directory / "m"), stderr=log, stdout=subprocess.PIPE, timeout=300
        )
    keep(directory / "to-a-file", to_a_file)
    quiet = subprocess.run(_cli_train(data, directory / "q", "--quiet"), capture_output=True, timeout=300,
                           env={**os.environ, "FORCE_COLOR": "1", "NO_COLOR": "1"})  # fmt: skip
    keep(directory / "quiet", quiet)


@pytest.mark.prepared_in_background("_runs_logging_to_a_file_and_quiet")
def test_a_run_with_stderr_in_a_file_has_a_step_line_per_log_every(background_model):
    runs = background_model.model_dir
    done = kept(runs / "to-a-file")
    assert done.returncode == 0 and done.stdout == b""
    lines = (runs / "train.log").read_text().splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    assert [line.split(" epoch")[0] for line in steps] == [f"step {n}" for n in (2, 4, 6, 8)]
    assert all(" ppl " in line and "target tokens/s" in line and "ETA" in line for line in steps)
    assert "\x1b[" not in (runs / "train.log").read_text()  # no terminal codes in a file
    quiet = kept(runs / "quiet")
    assert quiet.returncode == 0
    assert quiet.stderr.decode().splitlines() == [quiet.stderr.decode().splitlines()[-1]]
    assert quiet.stderr.decode().startswith("stopped by max_steps after 8 steps")
    assert b"\x1b[" not in quiet.stderr


def test_seqkit_config_prints_every_key_with_a_comment_and_reads_back():
    result = seqkit("config")
    text = result.stdout.decode()
    assert config_lib.from_dict(tomllib.loads(text), "dump") == config_lib.Config()
    lines = text.splitlines()
    keys = [i for i, line in enumerate(lines) if line and not line.startswith(("#", "["))]
    assert len(keys) == sum(len(vars(section)) for section in vars(config_lib.Config()).values())
    assert all(lines[i - 1].startswith("# ") and "[default: " in lines[i - 1] for i in keys)
    # each says what its key does (keys under a shared comment had only their default)
    assert [lines[i] for i in keys if lines[i - 1].startswith("# [default: ")] == []
    # a key of a few allowed values lists them (data.format's were in no help text or document)
    format_comment = lines[lines.index('format = "auto"') - 1]
    assert format_comment.endswith(
        '[default: "auto"; one of "auto", "parallel", "tsv", "jsonl", "labels", "csv"]'
    )
    assert '"macro_f1"' in lines[lines.index('best_metric = "auto"') - 1]


def test_a_tie_of_bleu_goes_to_the_lower_dev_perplexity(tmp_path):
    """BLEU is 0.0 at every early validation of a short run: the lower dev perplexity decides."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    dev = iter([(0.0, 30.0), (0.0, 20.0), (0.0, 25.0), (1.0, 40.0), (1.0, 39.0)])

    def validate() -> DevScores:
        bleu, ppl = next(dev)
        return DevScores({"bleu": bleu, "ppl": ppl}, {"bleu": "sig"})

    def step(batch) -> StepLoss:
        loss = (model(torch.randn(8, 3)) ** 2).sum()
        return StepLoss(loss, float(loss.detach()), float(loss.detach()), 8, 0)

    cfg = config_lib.from_dict({"train": {"max_steps": 25, "valid_every": 5, "log_every": 5}}, "test")
    (tmp_path / "run").mkdir()
    task = TrainingTask(batches=lambda epoch: list(range(10)), step=step, validate=validate)
    end = fit(cfg, tmp_path / "run", model, task, NullReporter())
    valid = training_log.of_kind(training_log.read(tmp_path / "run"), training_log.ValidRecord)
    assert [r.best for r in valid] == [True, True, False, True, True]
    assert (end.best_metric, end.best_score) == ("bleu", 1.0)


def test_evaluate_reads_hypotheses_from_a_pipe_and_takes_metrics_as_sacrebleu_does(
    tmp_path, reverse_model, reverse_data
):
    hyp = seqkit_here("translate", reverse_model, f"{reverse_data}/dev.src").stdout
    (tmp_path / "hyp").write_bytes(hyp)
    ref = f"{reverse_data}/dev.tgt"
    piped = seqkit_here("evaluate", "-r", ref, "-m", "bleu", "chrf", "--json", stdin=hyp)
    listed = seqkit_here("evaluate", "-i", tmp_path / "hyp", "-r", ref, "-m", "bleu,chrf", "--json")
    assert piped.returncode == 0, piped.stderr.decode()
    scores = [json.loads(r.stdout)["systems"][0]["scores"] for r in (piped, listed)]
    assert scores[0] == scores[1] and [s["metric"] for s in scores[0]] == ["bleu", "chrf"]
    extra = seqkit_here("evaluate", "-r", ref, "hyp.txt", stdin=hyp)  # a usage mistake: Typer's exit 2
    assert extra.returncode == 2 and "unexpected argument 'hyp.txt'" in extra.stderr.decode(), extra.stderr
    # and the usage line does not offer such arguments (the hidden one only takes -m's further values)
    assert seqkit_here("evaluate", "--help").stdout.decode().splitlines()[0].endswith(" evaluate [OPTIONS]")


@pytest.mark.parametrize("inputs", [[], ["-"]], ids=["stdin", "dash"])
def test_a_typed_line_is_translated_at_once(reverse_model, reverse_data, inputs):
    """On a terminal each line is answered when entered, before the input ends (also with `-` named: it
    waited for the end of the input)."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "seqkit", "translate", str(reverse_model), *inputs, "--beam-size", "1"],
                               stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    os.close(secondary)
    try:
        line = Path(f"{reverse_data}/dev.src").read_text().splitlines()[0]
        os.write(primary, (line + "\n").encode())
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "no answer before the input ended"
        answer = process.stdout.readline().decode().rstrip("\n")
        assert answer == " ".join(reversed(line.split()))
    finally:
        os.write(primary, b"\x04")  # end of input
        process.wait(timeout=60)
        os.close(primary)


def test_a_weak_models_heatmap_uses_the_whole_colour_scale_and_labels_every_row():
    source, output = [f"s{i}" for i in range(8)], [f"o{i}" for i in range(80)]
    weights = [[0.05 if j == i % 8 else 0.95 / 7 * 0.05 for j in range(8)] for i in range(80)]  # never near 1
    figure = plots.attention_figure(AttentionMap(source, output, weights), "line 1")
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == output  # every row, also past 60
    assert [t.get_text() for t in ax.get_xticklabels()] == source
    assert "attention" in ax.get_title() and "line 1" in ax.get_title()
    pixels = png_pixels(plots.png(figure))
    assert pixels[..., :3].min() < 40  # the largest weight is drawn (almost) black, not pale grey


def test_the_cached_arrays_give_the_batches_of_the_in_memory_path(tmp_path, reverse_data):
    cfg = toy_config(reverse_data)
    tokenizer = build_tokenizer(
        *read_pairs(cfg.data.train, cfg.data, "data.train"), cfg.tokenizer, cfg.train.seed
    )

    def prepared(run_dir):
        return corpus.prepare_pairs(cfg, run_dir, tokenizer, lambda s, t: tokenizer)[1]

    first = prepared(tmp_path / "run")
    assert not first.from_cache and prepared(tmp_path / "run").from_cache
    src, tgt = read_pairs(cfg.data.train, cfg.data, "data.train")
    in_memory = corpus.tokenize_parallel(tokenizer, src, tgt, cfg.data.max_length)
    assert list(first.train.src) == in_memory.src and list(first.train.tgt) == in_memory.tgt
    sizes = [max(len(s), len(t)) + 1 for s, t in zip(in_memory.src, in_memory.tgt, strict=True)]
    array_sizes = [
        max(a, b) + 1
        for a, b in zip(first.train.src.lengths.tolist(), first.train.tgt.lengths.tolist(), strict=True)
    ]
    assert array_sizes == sizes
    assert training_batches(array_sizes, 400, seeded_rng(cfg, 0)) == training_batches(
        sizes, 400, seeded_rng(cfg, 0)
    )
    assert first.train.src.ids.dtype.itemsize == 2  # a small vocabulary: 2 bytes a token


def _prepare_at_the_barrier(values: dict, run_dir: str, files: dict, barrier, counts) -> None:
    """(In a process of its own.) The run's arrays, prepared once every process has reached `barrier`."""
    tokenizer = tokenizer_from_files(files, Path(run_dir))
    barrier.wait(timeout=60)
    prepared = corpus.prepare_pairs(
        config_lib.from_dict(values, "test"), Path(run_dir), tokenizer, lambda s, t: tokenizer
    )[1]
    counts.put((len(prepared.train.src), prepared.from_cache))


def test_processes_sharing_a_run_directory_build_its_arrays_once(tmp_path, reverse_data):
    # torchrun's processes on a machine without the first one each made the arrays in the same folder at
    # once, and each removed the others' unfinished ones (FileNotFoundError)
    import multiprocessing

    cfg = toy_config(reverse_data)
    tokenizer = build_tokenizer(*read_pairs(cfg.data.train, cfg.data, "data.train"), cfg.tokenizer, 1)
    spawn = multiprocessing.get_context("spawn")
    barrier, counts = spawn.Barrier(3), spawn.Queue()
    arguments = (cfg.to_dict(), str(tmp_path / "run"), tokenizer.files(), barrier, counts)
    workers = [spawn.Process(target=_prepare_at_the_barrier, args=arguments) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    results = sorted(counts.get(timeout=5) for _ in workers)
    assert len({count for count, _ in results}) == 1 and [cached for _, cached in results] == [
        False,
        True,
        True,
    ]


def test_a_changed_corpus_or_tokenizer_is_never_served_from_a_stale_cache(tmp_path, reverse_data):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.src", "train.tgt", "dev.src", "dev.tgt"):
        (data / name).write_bytes(Path(f"{reverse_data}/{name}").read_bytes())
    cfg = toy_config(str(data))
    tokenizer = build_tokenizer(
        *read_pairs(cfg.data.train, cfg.data, "data.train"), cfg.tokenizer, cfg.train.seed
    )
    run = tmp_path / "run"
    before = corpus.prepare_pairs(cfg, run, tokenizer, lambda s, t: tokenizer)[1]
    with open(data / "train.src", "a") as f:
        f.write("a b c\n")
    with open(data / "train.tgt", "a") as f:
        f.write("c b a\n")
    after = corpus.prepare_pairs(cfg, run, tokenizer, lambda s, t: tokenizer)[1]
    assert not after.from_cache and len(after.train.src) == len(before.train.src) + 1
    other = build_tokenizer(
        *read_pairs(cfg.data.train, cfg.data, "data.train"), config_lib.TokenizerConfig(type="char"), 1
    )
    with_other = corpus.prepare_pairs(cfg, run, other, lambda s, t: other)[1]
    assert not with_other.from_cache
    assert (
        list(with_other.train.src)[0]
        == other.encode_src(["".join(Path(f"{data}/train.src").read_text().splitlines()[:1])])[0]
    )
    changed = config_lib.from_dict({**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "max_length": 3}}, "t")
    assert not corpus.prepare_pairs(changed, run, other, lambda s, t: other)[1].from_cache
    assert len(list((run / corpus.CACHE).glob("train-*"))) == 1  # the stale arrays were removed
    time.sleep(0)


@pytest.mark.parametrize(
    "damage",
    [
        ("meta.json", lambda path: path.write_text("garbage")),
        ("src.offsets.npy", lambda path: path.write_bytes(b"junk")),
        ("tgt.offsets.npy", lambda path: path.write_bytes(b"")),
        ("src.ids.bin", lambda path: os.truncate(path, 100)),
        ("tgt.ids.bin", lambda path: path.write_bytes(b"\xff" * path.stat().st_size)),  # ids out of range
    ],
    ids=["meta", "offsets", "empty-offsets", "cut-short", "overwritten"],
)
def test_a_damaged_cache_is_built_again(tmp_path, reverse_data, damage):
    # the cache is seqkit's own: damaged, it gave a traceback or (cut short) trained on wrong arrays
    cfg = toy_config(reverse_data)
    tokenizer = build_tokenizer(
        *read_pairs(cfg.data.train, cfg.data, "data.train"), cfg.tokenizer, cfg.train.seed
    )
    run = tmp_path / "run"
    first = corpus.prepare_pairs(cfg, run, tokenizer, lambda s, t: tokenizer)[1]
    pairs = list(first.train.src), list(first.train.tgt)  # (read before a file under its mapping is cut)
    del first.train.src.ids, first.train.tgt.ids
    name, spoil = damage
    (folder,) = (run / corpus.CACHE).glob("train-*")
    spoil(folder / name)
    again = corpus.prepare_pairs(cfg, run, tokenizer, lambda s, t: tokenizer)[1]
    assert not again.from_cache
    assert (list(again.train.src), list(again.train.tgt)) == pairs
    assert again.cleaning == first.cleaning
    assert corpus.prepare_pairs(cfg, run, tokenizer, lambda s, t: tokenizer)[1].from_cache


def test_the_cache_is_kept_across_settings_its_arrays_do_not_read(tmp_path, reverse_data):
    """A new seed (with data.dev given), dev files or classifier keys tokenized the corpus again: the key
    hashed every data key."""
    cfg = toy_config(reverse_data)
    tokenizer = build_tokenizer(*read_pairs(cfg.data.train, cfg.data, "data.train"), cfg.tokenizer, 1)
    run = tmp_path / "run"

    def cached(**sections) -> bool:
        changed = config_lib.with_overrides(cfg, sections, "test")
        return corpus.prepare_pairs(changed, run, tokenizer, lambda s, t: tokenizer)[1].from_cache

    assert not cached()
    assert cached(train={"seed": 8}, data={"window": 3, "label_column": 2, "dev_size": 40})
    assert cached(data={"dev": f"{reverse_data}/train"})  # (another dev set: its own pairs, read apart)
    assert not cached(data={"max_length": 7})
    assert not cached(data={"dev": "", "dev_size": 40})  # held out of data.train: which pairs, by the seed
    assert not cached(data={"dev": "", "dev_size": 40}, train={"seed": 8})
    # every data key is one the arrays read, or one named here as not read: a new key must be placed
    not_read = {"dev", "dev_size", "label_column", "text_column", "features", "series", "column", "inputs",
                "window", "horizon", "dev_fraction", "test_fraction", "season"}  # fmt: skip
    assert set(corpus.ARRAY_KEYS) | not_read == set(config_lib.DataConfig.__dataclass_fields__)


def test_the_held_out_dev_files_pair_line_for_line_when_a_held_pair_is_empty(tmp_path):
    # an empty pair held out was dropped from the target file only: the files no longer paired up
    rows = [json.dumps({"src": f"a{i} b", "tgt": f"b a{i}"}) if i % 3 else "" for i in range(60)]
    (tmp_path / "c.jsonl").write_text("\n".join(rows) + "\n")
    cfg = toy_config(str(tmp_path), data={"train": str(tmp_path / "c.jsonl"), "dev": "", "dev_size": 6})
    tokenizer = build_tokenizer(
        [r for r in rows if r], [r for r in rows if r], config_lib.TokenizerConfig(type="char"), 1
    )
    prepared = corpus.prepare_pairs(cfg, tmp_path / "run", tokenizer, lambda s, t: tokenizer)[1]
    held = corpus.hold_out(60, 6, cfg.train.seed)
    assert any(i % 3 == 0 for i in held)  # (the seed holds out an empty pair)
    pairs = list(zip(prepared.dev_src_text, prepared.dev.tgt_text, strict=True))
    assert pairs == [(f"a{i} b", f"b a{i}") for i in held if i % 3]


def test_with_dedupe_no_copy_of_a_held_out_pair_stays_in_training(tmp_path):
    # the dev pairs were held out before deduplication: their copies trained the model they then scored
    rows = [{"src": f"a{i % 20} b", "tgt": f"b a{i % 20}"} for i in range(100)]  # each pair 5 times
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = toy_config(str(tmp_path), data={"train": str(tmp_path / "c.jsonl"), "dev": "", "dev_size": 4,
                     "dedupe": True})  # fmt: skip
    tokenizer = build_tokenizer(["a0123456789 b"], [], config_lib.TokenizerConfig(type="char"), 1)
    prepared = corpus.prepare_pairs(cfg, tmp_path / "run", tokenizer, lambda s, t: tokenizer)[1]
    dev = set(zip(prepared.dev_src_text, prepared.dev.tgt_text, strict=True))
    sides = (prepared.train.src, prepared.train.tgt)
    train = set(zip(*(tokenizer.decode_tgt(list(side)) for side in sides), strict=True))
    assert len(dev) == 4 and not dev & train and len(train) == 20 - len(dev)
    assert prepared.cleaning.duplicates == 100 - 4 - len(train)


def test_a_json_fields_line_breaks_read_as_spaces_and_are_counted(tmp_path):
    # a held-out dev file is a line per sentence: a field's "\n" split its sentence over two lines and
    # the source and target files of the held-out pairs paired the wrong lines from there on
    # (a "\n" alone, without a "\r\n" elsewhere in its row, too)
    rows = [
        {"src": f"a{i}\nb" if i % 2 else f"a{i} b", "tgt": f"b\r\na{i}" if i < 2 else f"b a{i}"}
        for i in range(4)
    ]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    fixes: Counter = Counter()
    src, tgt = read_pairs(str(tmp_path / "c.jsonl"), _data(), "data.train", fixes)
    assert src == [f"a{i} b" for i in range(4)] and tgt == [f"b a{i}" for i in range(4)]
    assert fixes["breaks"] == 3
    assert (
        model_types.base.described_fixes({"break_lines": 4})
        == "4 JSON lines with a line break in a field (read as a space)"
    )


def test_a_corpus_format_is_told_by_its_name_in_any_case():
    # (mutation review: a name in capitals, as some exports write them, was untested)
    names = ("C.TSV", "c.Jsonl.GZ", "c.txt")
    assert [detect(name, _data()) for name in names] == ["tsv", "jsonl", "parallel"]


@pytest.mark.parametrize(("src_lines", "tgt_lines"), [(3, 5), (5, 3)])
def test_the_training_pass_names_both_line_counts_of_unaligned_files(tmp_path, src_lines, tgt_lines):
    """The pass that tokenizes the training files (iter_pairs) stops at the shorter file; its error still
    names each file's own line count, as read_pairs' does. (mutation review: untested)"""
    (tmp_path / "c.src").write_text("a\n" * src_lines)
    (tmp_path / "c.tgt").write_text("b\n" * tgt_lines)
    with pytest.raises(DataError, match=rf"c.src has {src_lines} lines but .*c.tgt has {tgt_lines};"):
        list(iter_pairs(str(tmp_path / "c"), _data(), "data.train"))


def test_a_column_may_be_the_last_and_a_line_without_it_is_named(tmp_path):
    # (mutation review: a column that is a line's last was untested, and so was the error)
    (tmp_path / "c.tsv").write_text("a\tb\n\nc\td\ne\n")
    lines = iter_column(tmp_path / "c.tsv", 2)
    assert [next(lines) for _ in range(3)] == ["b", "", "d"]
    with pytest.raises(DataError, match=r"c.tsv:4: 1 tab-separated column, no column 2; "):
        next(lines)


def test_a_language_model_reads_the_lines_whose_target_is_not_blank(tmp_path):
    # (mutation review: a target of spaces was kept as a line of text unnoticed)
    (tmp_path / "lm.tsv").write_text("x\ta\ny\t \nz\tb\n")
    cfg = toy_config(str(tmp_path), data={"train": str(tmp_path / "lm.tsv"), "dev": ""})
    assert corpus.read_text(cfg, "train") == ["a", "b"]
