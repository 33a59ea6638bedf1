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
        (
            ["modle.cell=gru"],
            [
                "unknown section [modle]",
                "did you mean model?",
                "valid: data, tokenizer, model, train, decode, generate",
            ],
        ),
        # a bool is no number, and a number no bool (true was 1, 1 was stored in a bool field)
        (["model.bidirectional=1"], ["model.bidirectional", "expected bool"]),
        (["model.embedding_size=true"], ["model.embedding_size", "expected int"]),
        (["train.learning_rate=true"], ["train.learning_rate", "expected float"]),
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
        ConfigError,
        match=r"seed is a key of \[train\] \(also of \[decode\], \[generate\]\), not a table.*"
        r"\(or --set train.seed=\.\.\.\)",
    ):
        configfile.load(above)
    above.write_text("temperature = 1.0\n[model]\ncell = 'gru'\n")  # a key of two tables
    with pytest.raises(ConfigError, match=r"temperature is a key of \[decode\] \(also of \[generate\]\)"):
        configfile.load(above)
    above.write_text("foo = 3\n[model]\ncell = 'gru'\n")  # a key of none (an IndexError once)
    with pytest.raises(ConfigError, match=r"unknown section \[foo\]"):
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


# each range's edges: the values just inside are accepted, those just outside refused (mutation reviews
# moved boundaries by one and the suite passed); every range of keys.RANGES is here (a test checks)
EDGES = {  # (section, key) -> (inside, outside)
    ("data", "max_length"): ((1,), (0,)), ("data", "src_column"): ((1,), (0,)),
    ("data", "tgt_column"): ((1,), (0,)), ("data", "dev_size"): ((1,), (0,)),
    ("data", "label_column"): ((1,), (0,)), ("data", "text_column"): ((1,), (0,)),
    ("data", "features"): ((1,), (0,)), ("data", "window"): ((1,), (0,)), ("data", "horizon"): ((1,), (0,)),
    ("data", "dev_fraction"): ((0.01, 0.49), (0.0, 0.5)), ("data", "test_fraction"): ((0.0, 0.49), (-0.01, 0.5)),
    ("data", "season"): ((0,), (-1,)), ("data", "max_length_ratio"): ((0.0, 1.0), (0.99, -1.0)),
    ("tokenizer", "src_vocab_size"): ((0, 8, 2**31 - 1), (7, 2**31)),
    ("tokenizer", "tgt_vocab_size"): ((0, 8, 2**31 - 1), (7, 2**31)),
    ("tokenizer", "vocab_size"): ((8, 2**31 - 1), (7, 2**31)),
    ("tokenizer", "character_coverage"): ((0.9, 1.0), (0.89, 1.01)),
    ("tokenizer", "max_sentences"): ((1, 2**31 - 1), (0, 2**31)),
    ("model", "embedding_size"): ((1,), (0,)), ("model", "encoder_hidden_size"): ((1,), (0,)),
    ("model", "encoder_layers"): ((1,), (0,)), ("model", "decoder_hidden_size"): ((1,), (0,)),
    ("model", "decoder_layers"): ((1,), (0,)), ("model", "dropout"): ((0.0, 0.99), (-0.01, 1.0)),
    ("model", "word_dropout"): ((0.0, 0.99), (-0.01, 1.0)),
    ("train", "batch_tokens"): ((1,), (0,)), ("train", "learning_rate"): ((1e-9,), (0.0,)),
    ("train", "clip_norm"): ((0.0,), (-0.1,)), ("train", "max_epochs"): ((0,), (-1,)),
    ("train", "max_steps"): ((0,), (-1,)), ("train", "max_minutes"): ((0.0,), (-0.1,)),
    ("train", "valid_every"): ((1,), (0,)), ("train", "valid_max_sentences"): ((0,), (-1,)),
    ("train", "log_every"): ((1,), (0,)), ("train", "keep_checkpoints"): ((1,), (0,)),
    ("train", "warmup_steps"): ((0,), (-1,)), ("train", "lr_decay_factor"): ((0.01, 0.99), (0.0, 1.0)),
    ("train", "lr_patience"): ((1,), (0,)), ("train", "label_smoothing"): ((0.0, 0.99), (-0.01, 1.0)),
    ("train", "coverage_loss"): ((0.0,), (-0.1,)), ("train", "patience"): ((0,), (-1,)),
    ("train", "threads"): ((0, 1024), (-1, 1025)), ("train", "bptt_length"): ((2,), (1,)),
    ("train", "seed"): ((0, 2**32 - 1), (-1, 2**32)),
    ("decode", "batch_size"): ((1,), (0,)), ("decode", "beam_size"): ((1, 1000), (0, 1001)),
    ("decode", "length_penalty"): ((0.0, 50.0), (-0.1, 50.5)),
    ("decode", "max_length_ratio"): ((0.01, 100.0), (0.0, 100.5)),
    ("decode", "max_length_offset"): ((0, 1000), (-1, 1001)), ("decode", "max_input_pieces"): ((1,), (0,)),
    ("decode", "coverage_penalty"): ((0.0, 50.0), (-0.1, 50.5)), ("decode", "no_repeat_ngram"): ((0,), (-1,)),
    ("decode", "repetition_penalty"): ((1.0, 100.0), (0.99, 100.5)),
    ("decode", "temperature"): ((0.0, 0.01, 100.0), (0.009, 1e-310, 100.5)),
    ("decode", "top_k"): ((0,), (-1,)), ("decode", "top_p"): ((1.0,), (0.0, 1.01)),
    ("decode", "seed"): ((0, 2**32 - 1), (-1, 2**32)),
    ("generate", "seed"): ((0, 2**63 - 1), (-1, 2**63)), ("generate", "max_tokens"): ((1,), (0,)),
    ("generate", "temperature"): ((0.0, 0.01, 100.0), (0.009, 1e-310, 100.5)),
    ("generate", "top_k"): ((0,), (-1,)), ("generate", "top_p"): ((1.0,), (0.0, 1.01)),
    ("generate", "num_samples"): ((1,), (0,)),
}  # fmt: skip
# what a key's edge values need beside them to pass the checks across keys
_BESIDE = {
    ("tokenizer", "src_vocab_size"): {"tokenizer": {"joint": False}},
    ("tokenizer", "tgt_vocab_size"): {"tokenizer": {"joint": False}},
    ("model", "word_dropout"): {"model": {"type": "classifier"}},
    ("decode", "coverage_penalty"): {"decode": {"beam_size": 5}},
}
AT_THE_EDGE = [(section, key, value) for (section, key), (inside, _) in EDGES.items() for value in inside]
JUST_OUTSIDE = [(section, key, value) for (section, key), (_, outside) in EDGES.items() for value in outside]


def _with(section: str, key: str, value) -> dict:
    values = {name: dict(keys) for name, keys in _BESIDE.get((section, key), {}).items()}
    values.setdefault(section, {})[key] = value
    return values


def test_every_range_has_its_edges_tested():
    from seqkit.config.keys import RANGES

    assert set(EDGES) == set(RANGES)


@pytest.mark.parametrize(("section", "key", "value"), AT_THE_EDGE)
def test_a_value_at_the_edge_of_its_range_is_accepted(section, key, value):
    config = config_lib.from_dict(_with(section, key, value), "test")
    assert getattr(getattr(config, section), key) == value


@pytest.mark.parametrize(("section", "key", "value"), JUST_OUTSIDE)
def test_a_value_just_outside_its_range_is_refused(section, key, value):
    with pytest.raises(ConfigError, match=rf"test: {section}\.{key} = .*: must be"):
        config_lib.from_dict(_with(section, key, value), "test")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": {"type": "classifier", "copy": True}}, "model.copy needs attention over a source: model.type = seq2seq"),
        ({"model": {"type": "lm", "coverage": True}}, "model.coverage needs attention over a source"),
        ({"model": {"tie_embeddings": True}}, "(got 256 and 512); make them equal or untie"),
        ({"model": {"type": "lm"}, "train": {"best_metric": "bleu"}}, "not a dev score of this model (model.type = lm); use auto or ppl"),
        ({"model": {"type": "classifier", "head": "regression"}, "train": {"best_metric": "accuracy"}},
         "(model.type = classifier, head = regression); use auto or rmse"),
        ({"model": {"head": "regression"}}, "model.head is a classifier's setting; set model.type = classifier"),
        ({"model": {"type": "lm", "activation": "relu"}}, "model.activation is a classifier's setting"),
        ({"train": {"class_weights": "balanced"}}, "train.class_weights is a classifier's setting"),
        ({"data": {"series": "s.csv"}}, "data.series is a classifier's setting"),
        ({"model": {"type": "classifier"}, "data": {"series": "s.csv"}}, "data.series needs data.column"),
        ({"model": {"type": "classifier", "head": "regression"}, "train": {"class_weights": "balanced"}},
         "train.class_weights weighs labels, and model.head = regression has none"),
        ({"tokenizer": {"type": "char", "joint": False, "src_model": "a", "tgt_model": "b"}},
         "tokenizer.src_model names a SentencePiece model but tokenizer.type = char"),
        ({"tokenizer": {"tgt_vocab_size": 100}}, "tokenizer.src_vocab_size / tgt_vocab_size apply to separate sides"),
    ],
)  # fmt: skip
def test_keys_that_cannot_hold_together_are_named(values, message):
    # (a mutation review dropped each check, or narrowed it, and the suite passed)
    with pytest.raises(ConfigError) as info:
        config_lib.from_dict(values, "test")
    assert str(info.value).startswith("test: ") and message in str(info.value)


@pytest.mark.parametrize(
    "values",
    [
        {"model": {"type": "classifier", "head": "regression"}, "train": {"best_metric": "rmse"}},
        {"model": {"copy": True}, "tokenizer": {"type": "char", "joint": False}},  # (joint: unread for char)
        # a classifier never reads tie_embeddings: said unread by a new run, not refused for its sizes
        {"model": {"type": "classifier", "tie_embeddings": True, "embedding_size": 512}},
    ],
)
def test_keys_that_do_hold_together_are_accepted(values):
    config_lib.from_dict(values, "test")


def test_the_readmes_config_table_gives_the_defaults():
    # a user reads the defaults there (a mutation review changed four and the suite passed)
    import tomllib

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    defaults, compared = Config(), 0
    for section, row in re.findall(r"^\| `\[(\w+)\]` \|(.*)$", readme, re.MULTILINE):
        stated_first = {}  # (a key's later mentions are usage: "with `joint = false`")
        for key, value in re.findall(r"`(\w+) = ([^`]+)`", row):
            stated_first.setdefault(key, value)
        for key, value in stated_first.items():
            if hasattr(getattr(defaults, section), key):
                stated = tomllib.loads(f"x = {value}")["x"]
                assert getattr(getattr(defaults, section), key) == stated, f"{section}.{key}"
                compared += 1
    assert compared > 60
