"""Configuration: defaults < file < --set overrides; every mistake is an error that says what is valid."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from seqkit import config as config_lib
from seqkit import configfile
from seqkit.config import Config
from seqkit.config import resume as config_resume
from seqkit.errors import ConfigError


def test_file_then_overrides_take_precedence(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\ncell = "lstm"\ndropout = 0.3\n')
    cfg = configfile.load(path, ["model.dropout=0.1", "train.max_steps=9", "model.attention=luong"])
    assert (cfg.model.cell, cfg.model.dropout, cfg.model.attention) == ("lstm", 0.1, "luong")
    assert cfg.train.max_steps == 9
    assert cfg.model.embedding_size == Config().model.embedding_size  # untouched keys keep the defaults


def test_round_trip_through_toml(tmp_path):
    cfg = configfile.load(None, ["model.cell=rnn", "train.learning_rate=0.01", "data.train=x/y"])
    path = tmp_path / "config.toml"
    path.write_bytes(configfile.to_toml(cfg))
    assert configfile.load(path) == cfg


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["model.hiden_size=3"], ["unknown key model.hiden_size"]),
        (["model.decoder_hiden_size=3"], ["did you mean decoder_hidden_size?"]),
        (["modle.cell=gru"], ["unknown section [modle]", "did you mean model?"]),
        (["model.cell=transformer"], ["model.cell", "bad choice 'transformer'", "valid: rnn, gru, lstm"]),
        (["model.attention=dot"], ["valid: bahdanau, luong"]),
        (["model.embedding_size=big"], ["model.embedding_size", "expected int", "write a whole number"]),
        (["model.bidirectional=True"], ["expected bool, got 'True'; write true or false"]),
        (["train.max_minutes=.5"], ["expected float, got '.5'; write a number such as 0.5"]),
        (["model.dropout=1.5"], ["model.dropout = 1.5", "in [0, 1)"]),
        (["train.batch_tokens=0"], ["train.batch_tokens", "positive"]),
        (["cell=gru"], ["expected section.key=value"]),
        (["train.seed=-1"], ["train.seed = -1", "between 0 and 2**32 - 1"]),
        # at the edges: top_p 0 sampled from no piece (an empty line, exit 0), a ratio below 1 skipped
        # every pair after the tokenizer's training
        (["decode.top_p=0"], ["decode.top_p = 0", "in (0, 1]"]),
        (["data.max_length_ratio=0.5"], ["data.max_length_ratio = 0.5", "0 (no limit) or at least 1"]),
        # numbers that reached C code and came back as its traceback
        (["train.threads=100000000000000000000"], ["train.threads", "at most 1024"]),
        (["tokenizer.vocab_size=100000000000"], ["tokenizer.vocab_size", "between 8 and 2**31 - 1"]),
        (["train.max_minutes=1" + "0" * 400], ["train.max_minutes: a number of about 401 digits, too large"]),
        # past Python's 4,300 digits even str() and TOML's reading of it fail (a ValueError traceback)
        (
            ["train.max_minutes=1" + "0" * 5000],
            ["--set train.max_minutes: a number of more than 4,300 digits"],
        ),
    ],
)
def test_bad_overrides_are_errors_naming_the_fix(overrides, fragments):
    with pytest.raises(ConfigError) as info:
        configfile.load(None, overrides)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_numbers_past_pythons_string_limit_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="train.max_minutes: a number of about 5001 digits, too large"):
        config_lib.with_overrides(Config(), {"train": {"max_minutes": 10**5000}}, "options")
    big = tmp_path / "big.toml"
    big.write_text("[train]\nmax_minutes = 1" + "0" * 5000 + "\n")
    with pytest.raises(ConfigError, match="big.toml: a number of more than 4,300 digits; fix the file"):
        configfile.load(big)
    # (a file that is not UTF-8 is a ValueError too, and was taken for such a number)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[model]\ncell = "gr\xffu"\n')
    with pytest.raises(ConfigError, match="latin.toml: not UTF-8 text; save the config file as UTF-8"):
        configfile.load(latin)


def test_a_python_callers_numpy_numbers_are_numbers():
    """A value from numpy (a grid search's np.int64, say) was 'expected int, got np.int64(2)'."""
    np = pytest.importorskip("numpy")
    cfg = config_lib.with_overrides(
        Config(), {"decode": {"beam_size": np.int64(3), "length_penalty": np.float32(0.5)}}, "options"
    )
    assert (cfg.decode.beam_size, cfg.decode.length_penalty) == (3, 0.5)
    assert type(cfg.decode.beam_size) is int and type(cfg.decode.length_penalty) is float
    with pytest.raises(ConfigError, match="expected int"):  # (a float is still no whole number)
        config_lib.with_overrides(Config(), {"decode": {"beam_size": np.float64(3)}}, "options")


def test_the_errors_module_is_there_after_a_bare_import():
    import subprocess
    import sys

    code = "import seqkit, sys; seqkit.errors.ModelDirError; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_key_that_holds_text_takes_the_text_as_given():
    """TOML would read these as a number or a date: a CSV column named 2020, a corpus prefix 2024."""
    cfg = configfile.load(None, ["data.column=2020", "data.train=1979-05-27", "data.src_lang=nan"])
    assert (cfg.data.column, cfg.data.src_lang) == ("2020", "nan")
    assert cfg.data.train.endswith("/1979-05-27")  # a path, made absolute
    assert configfile.load(None, ['data.column="2020"']).data.column == "2020"
    assert configfile.load(None, ["model.dropout=0.25"]).model.dropout == 0.25  # numbers stay numbers
    for override in ('data.inputs=["rain", "temp"]', "data.column=2020 # the year"):  # not one word
        with pytest.raises(ConfigError, match="expected str"):
            configfile.load(None, [override])


def test_a_path_of_an_unknown_users_home_and_a_section_that_is_no_table(tmp_path):
    with pytest.raises(ConfigError, match=r"^--set data.train = '~nosuchuser-x/c': no home directory"):
        configfile.load(None, ["data.train=~nosuchuser-x/c"])
    in_file = tmp_path / "home.toml"
    in_file.write_text('[data]\ntrain = "~nosuchuser-x/c"\n')
    with pytest.raises(ConfigError, match=rf"^{in_file}: data.train = '~nosuchuser-x/c': no home"):
        configfile.load(in_file)
    # a key above every table (it said "unknown section [seed]")
    above = tmp_path / "above.toml"
    above.write_text("seed = 3\n[model]\ncell = 'gru'\n")
    with pytest.raises(
        ConfigError, match=r"seed is a key of \[train\] \(also of \[decode\], \[generate\]\), not a table"
    ):
        configfile.load(above)
    flat = tmp_path / "flat.toml"
    flat.write_text('model = "lstm"\n')
    for overrides in ([], ["model.cell=lstm"]):  # it was a TypeError with the override
        with pytest.raises(ConfigError, match=r"\[model\] must be a table of keys"):
            configfile.load(flat, overrides)


def test_a_config_file_saved_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes('[model]\ncell = "lstm"\n'.encode("utf-8-sig"))
    assert configfile.load(path).model.cell == "lstm"


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        configfile.load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\ncell = 1\n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        configfile.load(broken)
    typo = tmp_path / "typo.toml"
    typo.write_text("[train]\nmax_step = 3\n")
    with pytest.raises(
        ConfigError, match=r"typo.toml: unknown key train.max_step \(did you mean max_steps\?\)"
    ):
        configfile.load(typo)


def test_a_misspelt_key_in_a_file_names_the_key_it_meant(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\ncell = "lstm"\ndropuot = 0.3\n')
    with pytest.raises(ConfigError) as info:
        configfile.load(path, ["train.max_steps=9"])
    message = str(info.value)
    assert message.startswith(f"{path} with --set overrides: unknown key model.dropuot")
    assert "(did you mean dropout?)" in message and "valid keys: type, cell," in message


# --- what a resumed run may change ---------------------------------------------------------------------


def _stored() -> Config:
    return configfile.load(None, ["data.train=corpus/train", "data.dev=corpus/dev", "train.max_steps=100"])


@pytest.mark.parametrize(
    "override",
    [
        "model.decoder_hidden_size=12",
        "model.cell=lstm",
        "model.type=lm",
        "tokenizer.vocab_size=100",
        "tokenizer.type=char",
        "data.train=other/train",
        "data.max_length=50",
        "train.batch_tokens=100",
        "train.bptt_length=16",
        "train.seed=2",
    ],
)
def test_a_resume_refuses_a_change_of_what_the_checkpoint_depends_on(tmp_path, override):
    stored = _stored()
    changed = configfile.load(None, [override], base=stored)
    key = override.split("=")[0]
    with pytest.raises(ConfigError) as info:
        config_resume.changes(stored, changed, tmp_path / "run")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'run'}: a resumed run keeps its data, tokenizer, model")
    assert (
        f"{key}: " in message
        and "train a new model with another --output (or start over in this one: seqkit train -o" in message
    )


def test_a_resume_may_change_limits_rates_and_decoding(tmp_path):
    stored = _stored()
    changed = configfile.load(
        None, ["train.max_steps=250", "train.learning_rate=0.0005", "decode.beam_size=3"], base=stored
    )
    assert config_resume.changes(stored, changed, tmp_path) == [
        "train.learning_rate: 0.001 -> 0.0005",
        "train.max_steps: 100 -> 250",
        "decode.beam_size: 5 -> 3",
    ]
    assert config_resume.changes(stored, stored, tmp_path) == []


def test_a_classifier_resume_keeps_the_longest_text_it_trains_on(tmp_path):
    # decode.max_input_pieces picks a classifier's training texts: another value is another training set
    # (a translation model reads it only when translating, and may change it)
    override = ["decode.max_input_pieces=20"]
    seq2seq = _stored()
    assert config_resume.changes(seq2seq, configfile.load(None, override, base=seq2seq), tmp_path)
    classifier = config_lib.from_dict({"model": {"type": "classifier"}}, "run.toml")
    with pytest.raises(ConfigError, match=r"\(decode\.max_input_pieces: 1024 -> 20\)"):
        config_resume.changes(classifier, configfile.load(None, override, base=classifier), tmp_path)


def test_every_refused_change_is_named_at_once(tmp_path):
    stored = _stored()
    changed = configfile.load(None, ["model.cell=rnn", "train.seed=5", "train.max_steps=7"], base=stored)
    with pytest.raises(ConfigError, match=r"\(model\.cell: 'gru' -> 'rnn'; train\.seed: 1 -> 5\)"):
        config_resume.changes(stored, changed, tmp_path)


def test_every_config_key_is_named_in_the_readme():
    # the README is where a user looks a key up (tokenizer.max_sentences was in no document)
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    sections = typing.get_type_hints(Config)

    def named(section: str, key: str) -> bool:  # in its table's row of the config table, or as section.key
        row = re.search(rf"^\| `\[{section}\]` \|(.*)$", readme, re.MULTILINE)
        return bool(
            row and re.search(rf"`{key}\b", row.group(1)) or re.search(rf"`{section}\.{key}\b", readme)
        )

    keys = [(section, key.name) for section, body in sections.items() for key in dataclasses.fields(body)]
    assert [f"{s}.{k}" for s, k in keys if not named(s, k)] == []


# each range's edge: the value just inside is accepted, the one just outside refused (a mutation review
# moved each boundary by one and the suite passed)
AT_THE_EDGE = [
    ("data", "test_fraction", 0.0), ("data", "max_length_ratio", 1.0), ("tokenizer", "vocab_size", 8),
    ("train", "threads", 1024), ("decode", "length_penalty", 50.0), ("decode", "max_length_offset", 1000),
    ("decode", "temperature", 0.01), ("decode", "seed", 2**32 - 1), ("generate", "seed", 2**63 - 1),
    ("train", "bptt_length", 2), ("tokenizer", "max_sentences", 1), ("data", "dev_fraction", 0.49),
    ("decode", "beam_size", 1000),
]  # fmt: skip
JUST_OUTSIDE = [
    ("data", "dev_fraction", 0.5), ("model", "dropout", 1.0), ("train", "lr_decay_factor", 1.0),
    ("decode", "seed", 2**32), ("generate", "seed", 2**63), ("train", "bptt_length", 1),
    ("tokenizer", "max_sentences", 0), ("data", "test_fraction", 0.5), ("tokenizer", "vocab_size", 7),
    ("train", "threads", 1025), ("decode", "length_penalty", 50.5), ("decode", "max_length_offset", 1001),
    ("decode", "temperature", 0.009), ("data", "max_length_ratio", 0.99), ("decode", "beam_size", 1001),
]  # fmt: skip


@pytest.mark.parametrize(("section", "key", "value"), AT_THE_EDGE)
def test_a_value_at_the_edge_of_its_range_is_accepted(section, key, value):
    assert getattr(getattr(config_lib.from_dict({section: {key: value}}, "test"), section), key) == value


@pytest.mark.parametrize(("section", "key", "value"), JUST_OUTSIDE)
def test_a_value_just_outside_its_range_is_refused(section, key, value):
    with pytest.raises(ConfigError, match=rf"test: {section}\.{key} = .*: must be"):
        config_lib.from_dict({section: {key: value}}, "test")
