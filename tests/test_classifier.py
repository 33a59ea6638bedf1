"""The classifier and forecaster model type: it learns synthetic rules exactly, predicts one line per
line in order, batched equals one at a time, resume is exact, its metrics equal scikit-learn's, bad
input is a one-line error."""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from seqkit import config as config_lib
from seqkit.data.labelled import parse_numbers
from seqkit.data.series import split_series
from seqkit.errors import ConfigError, DataError
from seqkit.scoring.classification import label_scores, regression_scores
from seqkit.training import classifier as trainer
from seqkit.training.task import NullReporter
from tests.helpers import assert_one_line_error, distinct_colours, png_pixels, seqkit_here

WORDS = [f"w{i}" for i in range(12)]


def _text_rows(count: int, seed: int, rule) -> list[str]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        tokens = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
        rows.append(f"{rule(tokens)}\t{' '.join(tokens)}\n")
    return rows


def _write_text_task(directory: Path, rule) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.tsv").write_text("".join(_text_rows(1200, 1, rule)))
    (directory / "dev.tsv").write_text("".join(_text_rows(150, 2, rule)))


def _config(
    directory: Path, model: dict, data: dict | None = None, train: dict | None = None
) -> config_lib.Config:
    values = {
        "data": {"train": str(directory / "train.tsv"), "dev": str(directory / "dev.tsv"), **(data or {})},
        "tokenizer": {"type": "sentencepiece", "vocab_size": 20},
        "model": {
            "type": "classifier",
            "embedding_size": 16,
            "encoder_hidden_size": 32,
            "dropout": 0.0,
            **model,
        },
        "train": {
            "max_steps": 200,
            "valid_every": 100,
            "batch_tokens": 600,
            "learning_rate": 0.01,
            "threads": 1,
            **(train or {}),
        },
    }
    return config_lib.from_dict(values, "test")


class _Warnings(NullReporter):
    """A reporter that keeps the training's warnings."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def warning(self, message: str) -> None:
        self.said.append(message)


def _first_token(tokens: list[str]) -> str:
    return tokens[0]


def _contains_w7(tokens: list[str]) -> str:
    return "yes" if "w7" in tokens else "no"


@pytest.fixture(scope="module")
def first_token_model(tmp_path_factory) -> Path:
    """A GRU with attention pooling trained on "label = the first token"."""
    directory = tmp_path_factory.mktemp("first")
    _write_text_task(directory, _first_token)
    trainer.train(_config(directory, {"pooling": "attention"}), directory / "model")
    return directory


def test_learns_the_first_token_rule_exactly(first_token_model: Path):
    import seqkit

    model = seqkit.load(first_token_model / "model")
    result = model.evaluate(first_token_model / "dev.tsv")
    assert result["scores"]["accuracy"] == 1.0
    majority = next(row for row in result["baselines"] if row["name"] == "majority")
    assert majority["accuracy"] < 0.2
    # each baseline row's macro-F1 is its own, scikit-learn's of its predictions (not its accuracy again)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    trained = [line.split("\t")[0] for line in (first_token_model / "train.tsv").read_text().splitlines()]
    counts = Counter(trained)
    most = max(sorted(counts), key=lambda label: counts[label])
    gold = result["gold"]
    assert majority["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(gold, [most] * len(gold)))
    assert majority["macro_f1"] == pytest.approx(
        sklearn_metrics.f1_score(gold, [most] * len(gold), average="macro", zero_division=0)
    )


@pytest.mark.parametrize(
    "model",
    [
        {"cell": "rnn", "activation": "relu", "bidirectional": False, "pooling": "max", "head": "sigmoid"},
        {"cell": "lstm", "pooling": "mean", "head": "softmax"},
    ],
    ids=["relu-rnn-max-sigmoid", "lstm-mean-softmax"],
)
def test_learns_whether_a_token_occurs_exactly(tmp_path: Path, model: dict):
    _write_text_task(tmp_path, _contains_w7)
    trainer.train(_config(tmp_path, model, train={"max_steps": 300}), tmp_path / "model")
    import seqkit

    result = seqkit.load(tmp_path / "model").evaluate(tmp_path / "dev.tsv")
    assert result["scores"]["accuracy"] == 1.0


def _write_sign_task(directory: Path, train_count: int = 1500, dev_count: int = 200) -> None:
    """train.csv and dev.csv: 2 to 8 numbers a line, labelled pos or neg by the sign of their sum."""
    rng = random.Random(3)
    directory.mkdir(parents=True, exist_ok=True)
    for name, count in (("train.csv", train_count), ("dev.csv", dev_count)):
        lines = []
        for _ in range(count):
            values = [rng.uniform(-1, 1) for _ in range(rng.randint(2, 8))]
            lines.append(("pos" if sum(values) > 0 else "neg") + "," + ",".join(f"{v:.4f}" for v in values))
        (directory / name).write_text("\n".join(lines) + "\n")


def test_numbers_sign_of_the_sum(tmp_path: Path):
    _write_sign_task(tmp_path)
    cfg = _config(
        tmp_path,
        {"cell": "rnn", "bidirectional": False, "head": "sigmoid"},
        {"train": str(tmp_path / "train.csv"), "dev": str(tmp_path / "dev.csv")},
        {"max_steps": 400, "learning_rate": 0.005},
    )
    trainer.train(cfg, tmp_path / "model")
    import seqkit

    result = seqkit.load(tmp_path / "model").evaluate(tmp_path / "dev.csv")
    # sums near zero are decided by rounding: all but a few of them
    assert result["scores"]["accuracy"] >= 0.97
    # predict over two files: a bad line is named by its file and its own line number, and -o is not written
    (tmp_path / "good.csv").write_text("0.5,0.2\n-0.5,-0.1\n")
    (tmp_path / "bad.csv").write_text("0.1,0.3\n0.2,abc\n")
    files = [tmp_path / "good.csv", tmp_path / "bad.csv"]
    result = seqkit_here("predict", tmp_path / "model", *files, "-o", tmp_path / "out.txt")
    assert_one_line_error(result, "bad.csv:2", "'abc'")
    assert not (tmp_path / "out.txt").exists()
    result = seqkit_here("predict", tmp_path / "model", *files[:1])
    assert result.returncode == 0 and result.stdout.decode() == "pos\nneg\n"
    # the numbers of a TSV's column (--column) as those of a line
    in_column = seqkit_here("predict", tmp_path / "model", "--column", 2, stdin="a\t0.5,0.2\nb\t-0.5,-0.1\n")
    assert in_column.stdout == result.stdout, in_column.stderr
    # a line that is no numbers at all is named as such, though its count fits no whole step either
    with pytest.raises(DataError, match=r"^in:1: value 1 'abc' is not a number"):
        parse_numbers("abc", 4, "in:1")
    with pytest.raises(DataError, match=r"^in:1: 3 values, not a multiple of data.features = 4"):
        parse_numbers("1,2,3", 4, "in:1")
    # a labelled line given to predict: its label is named ("fix the value" was the wrong fix)
    labelled = seqkit_here("predict", tmp_path / "model", stdin="pos,0.5,0.2\n")
    assert_one_line_error(
        labelled, "input line 1: value 1 'pos' is not a number and the others are: a label?"
    )


def _write_sine(path: Path, rows: int = 500) -> None:
    rng = random.Random(5)
    values = [math.sin(t * 2 * math.pi / 20) + 0.05 * rng.gauss(0, 1) for t in range(rows)]
    path.write_text("t,value\n" + "".join(f"{t},{v:.5f}\n" for t, v in enumerate(values)))


def test_forecaster_learns_a_sine_below_persistence(tmp_path: Path):
    _write_sine(tmp_path / "sine.csv")
    cfg = _config(
        tmp_path,
        {"head": "regression", "bidirectional": False},
        {"series": str(tmp_path / "sine.csv"), "column": "value", "window": 20, "horizon": 2, "season": 20},
        {"max_steps": 250, "learning_rate": 0.005},
    )
    trainer.train(cfg, tmp_path / "model")
    import seqkit

    result = seqkit.load(tmp_path / "model").evaluate(tmp_path / "sine.csv")
    persistence = next(row for row in result["baselines"] if row["name"] == "persistence")
    assert result["scores"]["rmse"] < 0.5 * persistence["rmse"]
    assert len(result["predicted"][0]) == 2  # values 1 and 2 steps ahead
    # it forecasts from windows of 20 steps: a line of another length is an error naming it
    window = ",".join(["0.5"] * 20)
    assert len(seqkit.load(tmp_path / "model").predict([window, "", window])[0].values) == 2
    # int8: a forecaster of numbers keeps no float parameter (its device was next(parameters()): a crash)
    plain, int8 = (
        seqkit.load(tmp_path / "model", device="cpu", quantize=q).predict([window]) for q in (False, True)
    )
    assert int8[0].values == pytest.approx(plain[0].values, abs=0.1)
    with pytest.raises(config_lib.ConfigError, match="a forecaster's prediction is numbers"):
        seqkit.load(tmp_path / "model").predict([window])[0].top(2)  # (a bare AssertionError)
    with pytest.raises(
        DataError, match=r"^input line 3: 19 steps, but the model reads windows of data.window = 20"
    ):
        seqkit.load(tmp_path / "model").predict([window, "", ",".join(["0.5"] * 19)])
    # served: the values the model predicts; a window of another length is the request's fault
    from tests.test_serve import _serving

    with _serving(tmp_path / "model") as client:
        answer = client.post("/predict", json={"text": [window, ""]}).json()["predictions"]
        assert answer == [
            {"label": None, "probabilities": None,
             "values": seqkit.load(tmp_path / "model").predict([window])[0].values},
            None,
        ]  # fmt: skip
        short = client.post("/predict", json={"text": [window, ",".join(["0.5"] * 19)]})
        assert short.status_code == 422 and short.json()["error"].startswith("input line 2: 19 steps")
        ranked = client.post("/predict", json={"text": [window], "top_k": 1})
        assert ranked.status_code == 422 and "forecasts numbers" in ranked.json()["error"]
    # a value beyond float32 once standardised gave a NaN forecast (and NaN probabilities), exit 0
    with pytest.raises(DataError, match=r"^input line 2: value 1e\+40 is too far from the training data"):
        seqkit.load(tmp_path / "model").predict([window, ",".join(["0.5"] * 19 + ["1e40"])])
    # MAPE over targets that are all 0 is not defined: null in the JSON, which had NaN (not JSON)
    (tmp_path / "zeros.csv").write_text("value\n" + "0\n" * 120)
    scored = seqkit_here(
        "evaluate", "--model", tmp_path / "model", "--data", tmp_path / "zeros.csv", "--json"
    )
    assert scored.returncode == 0, scored.stderr

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(scored.stdout, parse_constant=refuse)["scores"]["mape"] is None
    no_vocab = seqkit_here("info", tmp_path / "model", "--vocab")  # it said "no spm.model ...; retrain it"
    assert_one_line_error(no_vocab, "reads numbers, and has no vocabulary; leave out --vocab")
    short = seqkit_here("inspect", tmp_path / "model", "--text", "0.5,0.5,0.5", "-o", tmp_path / "inspect")
    assert_one_line_error(short, "--text: 3 steps, but the model reads windows of data.window = 20")
    # a forecaster without attention pooling printed nothing on stdout: now its forecast, as predict gives it
    shown = seqkit_here("inspect", tmp_path / "model", "--text", window, "-o", tmp_path / "inspect")
    assert shown.returncode == 0, shown.stderr
    forecast = seqkit.load(tmp_path / "model").predict([window])[0].values
    assert shown.stdout.decode() == "output: " + " ".join(f"{v:g}" for v in forecast) + "\n"


def test_series_split_is_by_time_and_the_scaler_sees_training_only(tmp_path: Path):
    path = tmp_path / "s.csv"
    path.write_text("x\n" + "".join(f"{t}\n" for t in range(100)))
    data = config_lib.DataConfig(series=str(path), column="x", window=5, horizon=1)
    split = split_series(path, data, regression=True)
    train_last = split.train.values[-1, 0]
    assert train_last < split.dev.values[0, 0] < split.test.values[0, 0]
    assert len(split.train) + len(split.dev) + len(split.test) == 100 - 5 - 1 + 1
    from seqkit.data.encoding import Encoding

    encoding = Encoding.fit(split.train, "regression")
    assert encoding.input_mean[0] < 50  # the training part is the series' beginning
    assert split.test.naive["persistence"][0, 0] == split.test.values[0, 0] - 1
    # blank lines at the end are nothing; one inside was skipped, joining the steps around it
    path.write_text("x\n" + "".join(f"{t}\n" for t in range(100)) + "\n\n")
    assert len(split_series(path, data, regression=True).train) == len(split.train)
    path.write_text("x\n1\n2\n\n" + "".join(f"{t}\n" for t in range(100)))
    with pytest.raises(DataError, match=r"s.csv:4: an empty row inside the series"):
        split_series(path, data, regression=True)
    # a row is a line: a CR inside one was a csv.Error's traceback; a quoted cell running on to the next
    # line joined two steps' values ("1\n2" read as 12) and shifted the row numbers of later errors
    for row in ("1\r2", '"1'):
        path.write_text(f'x\n0\n1\n{row}\n2"\n' + "3\n" * 100)
        with pytest.raises(DataError, match=r"s.csv:4: not a row of comma-separated cells"):
            split_series(path, data, regression=True)


def test_predict_one_line_per_line_in_order_and_batched_equals_alone(first_token_model: Path):
    model_dir = first_token_model / "model"
    lines = ["w3 w1 w2", "", "w9 w9", "w0", "  ", "w11 w4 w5 w6 w7 w8"]
    result = seqkit_here("predict", model_dir, stdin="".join(line + "\n" for line in lines))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split("\n")[:-1] == ["w3", "", "w9", "w0", "", "w11"]
    # a labelled file's text column (its whole line was classified, label and tab included)
    labelled = "".join(f"w7\t{line}\n" for line in lines)
    in_column = seqkit_here("predict", model_dir, "--column", 2, stdin=labelled)
    assert in_column.returncode == 0 and in_column.stdout == result.stdout, in_column.stderr
    assert_one_line_error(seqkit_here("predict", model_dir, "--column", 3, stdin=labelled),
                          "<stdin>:1: 2 tab-separated columns, no column 3")  # fmt: skip
    probs = seqkit_here("predict", model_dir, "--probs", "--top-k", "2", stdin="w5 w1\n")
    ranked = json.loads(probs.stdout)
    assert list(ranked)[0] == "w5" and len(ranked) == 2
    import seqkit

    model = seqkit.load(model_dir)
    together = model.predict(lines, batch_size=64)
    alone = [model.predict([line], batch_size=1)[0] for line in lines]
    for a, b in zip(together, alone, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.label == b.label
            assert np.allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)
    # top(k) takes what --top-k takes (-1 gave every label but the last, "2" a TypeError)
    first = together[0]
    labels = len(first.probabilities)
    assert [label for label, _ in first.top(labels)][0] == first.label and len(first.top(1)) == 1
    with pytest.raises(ConfigError, match=r"^data: a NoneType; give the path of a labelled file"):
        model.evaluate(None)  # type: ignore[arg-type]
    for k in (0, -1, labels + 1, "2", True, 1.0):
        with pytest.raises(
            ConfigError, match=rf"^top: k = .*: the model has {labels} labels; give 1 to {labels}$"
        ):
            first.top(k)


def test_a_line_the_tokenizer_reads_as_nothing_is_one_unknown_piece(first_token_model: Path):
    """A zero-width space, a byte-order mark or a control character has no pieces; the encoder cannot
    read nothing, so predict and evaluate read one unknown piece (they crashed in packing before)."""
    import seqkit
    from seqkit.data.encoding import make_batch
    from seqkit.data.tokenizer import UNK

    model = seqkit.load(first_token_model / "model")
    invisible = ["\u200b", "\ufeff", "\x01"]
    assert model.tokenizer.tokenizer.encode_tgt(invisible) == [[], [], []]
    batch = make_batch([[UNK]], [0])
    with torch.no_grad():
        unknown = model.module(batch.inputs, batch.lengths)
    expected = model.tokenizer.encoding.labels[int(unknown.argmax())]
    assert [p.label for p in model.predict(invisible)] == [expected] * 3
    result = seqkit_here("predict", first_token_model / "model", stdin="w3 w1\n\x01\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split("\n")[:-1] == ["w3", expected]
    with pytest.raises(DataError, match="mine.txt:2 holds a line break"):  # (it said "lines: item 2")
        list(model.predict_stream(["w3 w1", "w3\nw1"], source="mine.txt"))
    (first_token_model / "invisible.tsv").write_text(f"w3\tw3 w1\n{expected}\t\u200b\n")
    assert model.evaluate(first_token_model / "invisible.tsv")["scores"]["accuracy"] == 1.0


def test_a_served_classifier_answers_what_predict_prints(first_token_model: Path):
    import seqkit
    from tests.test_serve import _serving

    model_dir = first_token_model / "model"
    lines = [line.split("\t", 1)[1] for line in (first_token_model / "dev.tsv").read_text().splitlines()[:20]]
    lines[3:3] = [""]
    stdin = "".join(f"{line}\n" for line in lines)
    labels = seqkit_here("predict", model_dir, stdin=stdin).stdout.decode().splitlines()
    probs = (
        seqkit_here("predict", model_dir, "--probs", "--top-k", 2, stdin=stdin).stdout.decode().splitlines()
    )
    with _serving(model_dir) as client:
        answer = client.post("/predict", json={"text": lines, "top_k": 2})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert [p["label"] if p else "" for p in predictions] == labels
        assert predictions[3] is None
        for got, printed in zip(predictions, probs, strict=True):
            if got is None:
                assert printed == ""
                continue
            expected = json.loads(printed)
            assert list(got["probabilities"]) == list(expected)  # likeliest first, two of them
            assert all(abs(got["probabilities"][k] - v) <= 1e-6 for k, v in expected.items())
            assert got["values"] is None
        every = client.post("/predict", json={"text": lines[:1]}).json()["predictions"][0]
        assert len(every["probabilities"]) == len(seqkit.load(model_dir).tokenizer.encoding.labels)
        assert sum(every["probabilities"].values()) == pytest.approx(1.0)
        refusals = {
            "top_k": ({"text": ["w1"], "top_k": 0}, "top_k = 0: the model has"),
            "endpoint": ({"text": ["w1"]}, "is a classifier or forecaster: use POST /predict"),
        }
        for name, (body, error) in refusals.items():
            refused = client.post("/predict" if name != "endpoint" else "/translate", json=body)
            assert refused.status_code == 422 and error in refused.json()["error"], (name, refused.text)
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert set(schema["PredictResponse"]["properties"]) == {"predictions"}


def test_a_label_only_the_dev_data_has_is_a_class_never_learned_not_a_failed_start(tmp_path: Path):
    # a rare label whose every example a held-out dev set drew stopped the training at its start ("label
    # 'rare' is not one the model was trained on"), or not, by the seed's draw
    rows = [f"{'a' if i % 2 else 'b'}\tw{i % 2} w{i % 5}\n" for i in range(200)]
    (tmp_path / "train.tsv").write_text("".join(rows))
    (tmp_path / "dev.tsv").write_text("".join(rows[:20]) + "rare\tw1 w2\n")
    arguments = ["train", "--max-steps", "2", "--set", f"data.train={tmp_path / 'train.tsv'}",
                 "--set", f"data.dev={tmp_path / 'dev.tsv'}", "--set", "model.type=classifier",
                 "--set", "tokenizer.type=char", "--set", "model.encoder_hidden_size=8",
                 "--set", "model.embedding_size=8", "--set", "train.valid_every=2"]  # fmt: skip
    result = seqkit_here(*arguments, "-o", tmp_path / "model")
    assert result.returncode == 0, result.stderr.decode()
    assert "label 'rare' is in the dev data only" in result.stderr.decode()
    assert json.loads((tmp_path / "model" / "encoding.json").read_text())["labels"] == ["a", "b", "rare"]
    sigmoid = seqkit_here(*arguments, "--set", "model.head=sigmoid", "-o", tmp_path / "sigmoid")
    assert_one_line_error(
        sigmoid, "model.head = sigmoid is for two labels, and the dev data has another ('rare'"
    )


def test_resume_is_exact(tmp_path: Path):
    _write_text_task(tmp_path, _first_token)
    model = {"pooling": "attention", "word_dropout": 0.2}  # (word dropout draws from the saved RNG too)
    whole = _config(tmp_path, model, train={"max_steps": 60, "valid_every": 30})
    trainer.train(whole, tmp_path / "whole")
    half = _config(tmp_path, model, train={"max_steps": 30, "valid_every": 30})
    trainer.train(half, tmp_path / "halves")
    trainer.train(whole, tmp_path / "halves", resume=True)
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "whole/model.safetensors"), load_file(tmp_path / "halves/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_word_dropout_replaces_tokens_by_unk_in_training_only():
    from seqkit.data.tokenizer import PAD, UNK
    from seqkit.models.classifier import SequenceClassifier

    cfg = config_lib.ModelConfig(type="classifier", embedding_size=8, encoder_hidden_size=8, word_dropout=0.3)
    torch.manual_seed(0)
    model = SequenceClassifier(cfg, vocab_size=50, features=0, outputs=3)
    plain = SequenceClassifier(
        config_lib.ModelConfig(type="classifier", embedding_size=8, encoder_hidden_size=8), 50, 0, 3
    )
    plain.load_state_dict(model.state_dict())
    inputs = torch.randint(4, 50, (64, 40))  # (batch, steps): no unk, no padding ...
    inputs[:, 30:] = PAD  # ... but the last 10 steps
    lengths = torch.full((64,), 30)
    seen = []
    model.encoder.embedding.register_forward_hook(lambda _module, args, _out: seen.append(args[0].clone()))
    model.train()
    model.pooled(inputs, lengths)
    dropped = seen[-1] != inputs
    assert torch.all(seen[-1][dropped] == UNK) and not dropped[:, 30:].any()  # padding stays padding
    assert 0.25 < dropped[:, :30].float().mean() < 0.35
    model.eval()
    plain.eval()
    assert torch.equal(model(inputs, lengths), plain(inputs, lengths))  # decoding sees every token
    assert torch.equal(seen[-1], inputs)


ANIMALS = "ant bee cat dog eel fox gnu hen owl pig rat yak".split()


def _order_rows(count: int, seed: int) -> list[str]:
    """label = the order of cat and dog, which stand next to each other among other words: a bag of single
    words cannot tell the labels apart, a bag of word pairs can."""
    rng = random.Random(seed)
    others = [w for w in ANIMALS if w not in ("cat", "dog")]
    rows = []
    for _ in range(count):
        tokens = [rng.choice(others) for _ in range(rng.randint(1, 7))]
        label = rng.choice(["cat-dog", "dog-cat"])
        at = rng.randint(0, len(tokens))
        tokens[at:at] = label.split("-")
        rows.append(f"{label}\t{' '.join(tokens)}\n")
    return rows


def test_bag_of_tokens_and_the_rnn_each_learn_the_rule_on_their_own_loss(tmp_path: Path):
    """With model.bag_of_tokens the prediction is the sum of the RNN's and the bag's logits, and each part
    is trained on its own loss (test_each_part_learns_on_its_own_loss): each alone classifies the dev
    examples. The bag holds pairs of neighbouring tokens: the order of two words is a rule it can learn."""
    import seqkit
    from seqkit.data.encoding import make_batch
    from seqkit.decoding.classify import predicted_ids

    (tmp_path / "train.tsv").write_text("".join(_order_rows(1200, 1)))
    (tmp_path / "dev.tsv").write_text("".join(_order_rows(150, 2)))
    cfg = _config(tmp_path, {"pooling": "attention", "bag_of_tokens": True}, train={"max_steps": 300})
    # pieces enough for each word to be one piece
    cfg = config_lib.with_overrides(cfg, {"tokenizer": {"vocab_size": 40}}, "test")
    trainer.train(cfg, tmp_path / "model")
    model = seqkit.load(tmp_path / "model")
    assert model.evaluate(tmp_path / "dev.tsv")["scores"]["accuracy"] == 1.0
    classifier, codec = model.module, model.tokenizer
    rows = [line.split("\t") for line in (tmp_path / "dev.tsv").read_text().splitlines()]
    texts = [text for _, text in rows]
    batch = make_batch(codec.inputs(codec.examples(texts, ["dev"] * len(texts))), list(range(len(rows))))
    with torch.no_grad():
        parts = classifier(batch.inputs, batch.lengths, parts=True)  # (2, batch, labels)
        assert torch.allclose(parts.sum(0), classifier(batch.inputs, batch.lengths))
    targets = np.array([codec.encoding.labels.index(label) for label, _ in rows])
    accuracies = [(predicted_ids(codec.encoding, part.numpy()) == targets).mean() for part in parts]
    assert min(accuracies) >= 0.98, accuracies  # the RNN's, the bag's
    assert b"plus a linear model of the bag of tokens" in seqkit_here("info", tmp_path / "model").stdout


@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_each_part_learns_on_its_own_loss(head: str):
    """The training objective of a classifier with a bag of tokens: the gradient that reaches the RNN's
    logits is that of its own loss, whatever the bag's logits are (on the loss of their sum it would
    shrink wherever the bag is already right)."""
    from seqkit.models.classifier import head_loss, parts_loss

    torch.manual_seed(0)
    labels = 4 if head == "softmax" else 1
    targets = torch.randint(0, max(labels, 2), (16,))
    rnn = torch.randn(16, labels, requires_grad=True)
    expected = torch.autograd.grad(head_loss(head, rnn, targets)[0], rnn)[0]
    for scale in (0.0, 5.0):  # a bag that says nothing, and one that is confident
        bag = scale * torch.randn(16, labels)
        objective, loss, _ = parts_loss(head, torch.stack([rnn, bag]), targets)
        assert torch.allclose(torch.autograd.grad(objective, rnn)[0], expected)
        assert loss == pytest.approx(head_loss(head, rnn.detach() + bag, targets)[1])


def test_the_rnn_beside_a_bag_trains_as_it_would_alone(tmp_path: Path):
    """20 steps with gradient clipping at 1.0, where the bag's gradient norm alone is above it: the RNN's
    weights come out equal to the bit to those of the same model trained without a bag (the bag learns on
    its own loss and is clipped apart; clipped together, they differed by up to 0.19). The training loss
    logged is the prediction's own, unweighted, as the dev loss is: not the objective, which adds the
    parts' losses and weighs the labels."""
    from safetensors.torch import load_file

    from seqkit.training import log as training_log

    _write_text_task(tmp_path, _contains_w7)
    train = {
        "max_steps": 20,
        "valid_every": 20,
        "log_every": 5,
        "clip_norm": 1.0,
        "class_weights": "balanced",
    }
    for bag in (False, True):
        cfg = _config(tmp_path, {"pooling": "attention", "bag_of_tokens": bag}, train=train)
        trainer.train(cfg, tmp_path / f"bag-{bag}")
    alone, beside = (load_file(tmp_path / f"bag-{bag}/model.safetensors") for bag in (False, True))
    assert set(beside) - set(alone) == {"bag.weights.weight"}
    assert all(torch.equal(alone[name], beside[name]) for name in alone)
    logged = training_log.of_kind(training_log.read(tmp_path / "bag-True"), training_log.TrainRecord)
    assert len(logged) == 4
    assert all(record.loss == pytest.approx(math.log(record.ppl)) for record in logged)


def test_the_majority_baseline_breaks_a_tie_by_the_labels_order_not_the_datas():
    from seqkit.data.labelled import Examples
    from seqkit.scoring.baselines import majority

    def examples(labels):
        return Examples(None, None, labels, None, [f"f:{i}" for i in range(len(labels))])

    test = examples(["x"] * 3)
    assert majority(examples(["spam", "ham", "ham", "spam"]), test) == ["ham"] * 3
    assert majority(examples(["ham", "spam", "spam", "ham"]), test) == ["ham"] * 3
    assert majority(examples(["ham", "spam", "spam"]), test) == ["spam"] * 3


def test_metrics_equal_scikit_learns():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = ("a", "b", "c", "d")
    gold = [labels[i] for i in rng.integers(0, 4, 300)]
    predicted = [labels[i] for i in rng.integers(0, 3, 300)]  # "d" never predicted
    ours = label_scores(gold, predicted, labels)
    assert ours["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(gold, predicted))
    assert ours["macro_f1"] == pytest.approx(
        sklearn_metrics.f1_score(gold, predicted, average="macro", zero_division=0)
    )
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(
        gold, predicted, labels=list(labels), zero_division=0
    )
    for i, label in enumerate(labels):
        row = ours["per_label"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i])
        )
    assert (
        ours["confusion"] == sklearn_metrics.confusion_matrix(gold, predicted, labels=list(labels)).tolist()
    )
    # a label of the model that neither the test data nor the predictions have does not count in macro-F1
    # (as scikit-learn's f1_score without labels=): a perfect prediction has 1.0
    gold = [labels[i] for i in rng.integers(0, 3, 100)]
    assert (
        label_scores(gold, gold, labels)["macro_f1"]
        == 1.0
        == sklearn_metrics.f1_score(gold, gold, average="macro")
    )
    actual, forecast = rng.normal(5, 2, (50, 2)), rng.normal(5, 2, (50, 2))
    scores = regression_scores(actual, forecast)
    assert scores["examples"] == 50  # examples, not targets (2 outputs each)
    assert scores["mae"] == pytest.approx(sklearn_metrics.mean_absolute_error(actual, forecast))
    # (several outputs: the mean of their RMSEs, not one pooled RMSE, which is larger)
    assert scores["rmse"] == pytest.approx(sklearn_metrics.root_mean_squared_error(actual, forecast))
    assert scores["mape"] == pytest.approx(
        100 * sklearn_metrics.mean_absolute_percentage_error(actual, forecast)
    )
    # zero targets (no percentage) in one output only: still the mean of each output's own MAPE, over
    # its targets that are not zero (it pooled them: 33.33 here)
    gold, predicted = np.array([[1.0, 0.0], [1.0, 2.0]]), np.array([[2.0, 1.0], [1.0, 2.0]])
    assert regression_scores(gold, predicted)["mape"] == pytest.approx((50 + 0) / 2)
    # labels the model does not have (a baseline's) come after its own, sorted: the same table every run
    extra = label_scores(["a"] * 6, ["f", "e", "d", "c", "b", "zz"], ("a",))
    assert extra["labels"] == ["a", "b", "c", "d", "e", "f", "zz"]


def test_bad_input_is_a_one_line_error(first_token_model: Path, tmp_path: Path):
    model_dir = first_token_model / "model"
    (tmp_path / "unknown.tsv").write_text("w1\tw1 w2\nzz\tw3 w4\n")
    result = seqkit_here("evaluate", "--model", model_dir, "--data", tmp_path / "unknown.tsv")
    assert_one_line_error(result, "unknown.tsv:2", "'zz'", "not one the model was trained on")
    (tmp_path / "no-text.tsv").write_text("w1\t\n\n")
    result = seqkit_here("evaluate", "--model", model_dir, "--data", tmp_path / "no-text.tsv")
    assert_one_line_error(result, "no-text.tsv: no labelled examples", "empty label or text (2 skipped)")
    assert_one_line_error(  # neither -r nor --data: the option a classifier needs is named
        seqkit_here("evaluate", "--model", model_dir),
        "is a classifier or forecaster: give its labelled test data with --data",
    )
    mixed = seqkit_here(
        "evaluate", "--model", model_dir, "--data", tmp_path / "unknown.tsv", "-r", "x", "-m", "bleu"
    )
    assert_one_line_error(mixed, "--ref, --metrics with --data", "give one or the other")  # not ignored
    zero = seqkit_here("evaluate", "--model", model_dir, "--data", tmp_path / "unknown.tsv", "--column", "0")
    assert_one_line_error(zero, "--column with --data")
    # numbers for a model of text: said so (it was "value 1 'w1' is not a number")
    (tmp_path / "numbers.csv").write_text("w1,0.5\n")
    numbers = seqkit_here("evaluate", "--model", model_dir, "--data", tmp_path / "numbers.csv")
    assert_one_line_error(numbers, "numbers.csv: a .csv file of numbers, but the model reads text", ".tsv")
    (tmp_path / "bad.csv").write_text("pos,0.1,0.2\nneg,0.3,abc\n")
    cfg = _config(tmp_path, {}, {"train": str(tmp_path / "bad.csv"), "dev": str(tmp_path / "bad.csv")})
    with pytest.raises(Exception, match=r"bad.csv:2: value 2 'abc' is not a number"):
        trainer.train(cfg, tmp_path / "m")
    assert not (tmp_path / "m").exists()  # refused before anything was written
    (tmp_path / "short.csv").write_text("x\n1\n2\n3\n4\n")
    series = _config(
        tmp_path, {"head": "regression"}, {"series": str(tmp_path / "short.csv"), "column": "x", "window": 10}
    )
    with pytest.raises(Exception, match=r"short.csv: 4 rows cannot hold data.window = 10"):
        trainer.train(series, tmp_path / "m2")
    with pytest.raises(config_lib.ConfigError, match="model.activation"):
        _config(tmp_path, {"cell": "gru", "activation": "relu"})
    with pytest.raises(config_lib.ConfigError, match="set model.type = classifier"):
        config_lib.from_dict({"model": {"pooling": "mean"}}, "test")
    with pytest.raises(config_lib.ConfigError, match="model.word_dropout is a classifier's setting"):
        config_lib.from_dict({"model": {"word_dropout": 0.1}}, "test")
    (tmp_path / "numbers.csv").write_text("pos,0.1,0.2\nneg,0.3,0.4\n")
    numbers = {"train": str(tmp_path / "numbers.csv"), "dev": str(tmp_path / "numbers.csv")}
    with pytest.raises(config_lib.ConfigError, match="reads numbers, not tokens; drop model.word_dropout"):
        trainer.train(_config(tmp_path, {"word_dropout": 0.1}, numbers), tmp_path / "m3")
    with pytest.raises(config_lib.ConfigError, match="model.bag_of_tokens is a classifier's setting"):
        config_lib.from_dict({"model": {"bag_of_tokens": True}}, "test")
    with pytest.raises(config_lib.ConfigError, match="model.head = regression gives values, not logits"):
        _config(tmp_path, {"bag_of_tokens": True, "head": "regression"})
    # train.label_smoothing was ignored: refused when a training starts, not when a model loads (a model
    # trained with it before opens as it did)
    smoothed = _config(tmp_path, {}, numbers, train={"label_smoothing": 0.1})
    with pytest.raises(config_lib.ConfigError, match="a classifier's loss has no smoothing: drop it"):
        trainer.train(smoothed, tmp_path / "m5")
    assert not (tmp_path / "m5").exists()
    assert config_lib.from_dict({"model": {"type": "classifier"}, "train": {"label_smoothing": 0.1}}, "saved")
    with pytest.raises(config_lib.ConfigError, match="reads numbers, not tokens; drop model.bag_of_tokens"):
        trainer.train(_config(tmp_path, {"bag_of_tokens": True}, numbers), tmp_path / "m4")
    assert not (tmp_path / "m3").exists() and not (tmp_path / "m4").exists()


def test_info_inspect_and_plot(first_token_model: Path, tmp_path: Path):
    model_dir = first_token_model / "model"
    info = seqkit_here("info", model_dir)
    assert b"attention pooling" in info.stdout and b"softmax over 12 labels" in info.stdout
    shown = seqkit_here("inspect", model_dir, "--text", "w4 w1 w2", "-o", tmp_path / "inspect")
    assert shown.returncode == 0, shown.stderr
    trace = json.loads((tmp_path / "inspect/trace.json").read_text())
    assert trace["output"] == "w4" and sum(trace["pooling"]) == pytest.approx(1.0)
    assert distinct_colours(png_pixels((tmp_path / "inspect/pooling.png").read_bytes())) > 10  # drawn
    evaluated = seqkit_here(
        "evaluate",
        "--model",
        model_dir,
        "--data",
        first_token_model / "dev.tsv",
        "--plot",
        tmp_path / "c.png",
    )
    assert evaluated.returncode == 0 and (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")
    # a --plot onto the test data, or onto a file of the model, destroyed it and exited 0
    data = tmp_path / "dev.tsv"
    data.write_bytes((first_token_model / "dev.tsv").read_bytes())
    weights = (model_dir / "model.safetensors").read_bytes()
    trained_on = first_token_model / "train.tsv"  # (the baselines read it: it was destroyed too)
    training_text = trained_on.read_bytes()
    for plot, said in (
        (data, "is also an input file"),
        (trained_on, "is also an input file"),
        (model_dir / "model.safetensors", "is a file of the model"),
    ):
        refused = seqkit_here("evaluate", "--model", model_dir, "--data", data, "--plot", plot)
        assert_one_line_error(refused, f"--plot {plot} {said}", "write the results elsewhere")
    assert data.read_bytes() == (first_token_model / "dev.tsv").read_bytes()
    assert (model_dir / "model.safetensors").read_bytes() == weights
    assert trained_on.read_bytes() == training_text
    # lines left out of the scores are counted, in the table's title and the JSON
    holes = tmp_path / "holes.tsv"
    holes.write_bytes(data.read_bytes() + b"w1\t\n\tw2 w3\n")
    table = seqkit_here("evaluate", "--model", model_dir, "--data", holes)
    assert "2 empty or unlabelled lines skipped)" in table.stdout.decode()
    as_json = seqkit_here("evaluate", "--model", model_dir, "--data", holes, "--json")
    assert json.loads(as_json.stdout)["skipped_lines"] == 2
    (tmp_path / "folder.tsv").mkdir()  # it said "no such file"
    folder = seqkit_here("evaluate", "--model", model_dir, "--data", tmp_path / "folder.tsv")
    assert_one_line_error(folder, "folder.tsv': a directory, not a file; give the data file")
    curves = seqkit_here("plot", model_dir, "-o", tmp_path / "curves.png")
    assert curves.returncode == 0, curves.stderr
    assert distinct_colours(png_pixels((tmp_path / "curves.png").read_bytes())) > 10
    vocab = json.loads(seqkit_here("info", model_dir, "--vocab", "--json").stdout)["vocabulary"]["target"]
    counts = {row["piece"]: row["count"] for row in vocab}  # counted in the training texts (they were "-")
    assert counts["▁w"] > 1000 and counts["7"] > 0 and counts["<pad>"] == 0


def test_balanced_class_weights_equal_scikit_learns():
    utils = pytest.importorskip("sklearn.utils.class_weight")
    from seqkit.data.encoding import Encoding

    targets = np.asarray([0] * 70 + [1] * 20 + [2] * 10)
    encoding = Encoding("text", "softmax", ("a", "b", "c"), 0, (), (), 3)
    expected = utils.compute_class_weight("balanced", classes=np.arange(3), y=targets)
    assert np.allclose(trainer.class_weights(encoding, targets).numpy(), expected)


def test_text_and_label_files_read_as_a_tsv(tmp_path: Path):
    from seqkit.data.labelled import read_examples

    (tmp_path / "d.text").write_text("w1 w2\n\nw3\n")
    (tmp_path / "d.label").write_text("a\nb\nc\n")
    (tmp_path / "d.tsv").write_text("a\tw1 w2\nb\t\nc\tw3\n")
    data = config_lib.DataConfig()
    pairs = read_examples(str(tmp_path / "d"), data, "data.train", regression=False)
    tsv = read_examples(str(tmp_path / "d.tsv"), data, "data.train", regression=False)
    assert (
        (pairs.texts, pairs.labels, pairs.skipped)
        == (tsv.texts, tsv.labels, tsv.skipped)
        == (["w1 w2", "w3"], ["a", "c"], 1)
    )
    # a label with a space around it is the same label (`pos ` and `pos` were two classes)
    (tmp_path / "s.tsv").write_text("pos \tw1\npos\tw2\n neg\tw3\n")
    assert read_examples(str(tmp_path / "s.tsv"), data, "data.train", regression=False).labels == [
        "pos",
        "pos",
        "neg",
    ]
    (tmp_path / "s.csv").write_text("pos ,0.1\npos,0.2\n neg,0.3\n")  # (as a file of numbers' labels)
    assert read_examples(str(tmp_path / "s.csv"), data, "data.train", regression=False).labels == [
        "pos",
        "pos",
        "neg",
    ]
    (tmp_path / "d.label").write_text("1.5\nb\nx\n")  # an error about a label names the .label file
    with pytest.raises(DataError, match=r"d.label:3: "):
        read_examples(str(tmp_path / "d"), data, "data.train", regression=True)


def test_a_text_longer_than_the_model_reads_is_skipped_and_counted(tmp_path: Path):
    # one line of 50,000 words made a step of many minutes that no signal could stop; and the lines
    # reading mended (a byte order mark, carriage returns) are counted, as a translation's are
    _write_text_task(tmp_path, _first_token)
    with open(tmp_path / "train.tsv", "a") as f:
        f.write("w1\t" + "w1 " * 5000 + "\n")
    text = (tmp_path / "train.tsv").read_text()
    (tmp_path / "train.tsv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    cfg = _config(tmp_path, {}, None, {"max_steps": 2, "valid_every": 2})
    cfg = config_lib.with_overrides(cfg, {"decode": {"max_input_pieces": 50}}, "test")
    trainer.train(cfg, tmp_path / "model")
    from seqkit.model_types.classifier import describe_data
    from seqkit.training import log as training_log
    from seqkit.training.log import StartRecord

    (start,) = training_log.of_kind(training_log.read(tmp_path / "model"), StartRecord)
    assert start.data["too_long"] == 1 and start.data["train_examples"] == 1200
    assert start.data["bom_lines"] == 1 and start.data["cr_lines"] == 1201
    assert (
        "1,200 training examples (1 longer than decode.max_input_pieces skipped) (removed 1 byte order mark, "
        "1,201 carriage returns)" in describe_data(start.data)
    )


def test_empty_lines_are_counted_when_the_dev_examples_are_held_out(tmp_path: Path):
    # the training part of a held-out split lost the count: the start record said 0 skipped
    lines = [f"{'ab'[i % 2]}\tw{i} x" if i % 10 else "" for i in range(100)]
    (tmp_path / "d.tsv").write_text("\n".join(lines) + "\n")
    cfg = config_lib.from_dict(
        {"model": {"type": "classifier"}, "data": {"train": str(tmp_path / "d.tsv"), "dev_size": 9}}, "t"
    )
    train, dev, _, held_out = trainer.read_splits(cfg)
    assert held_out and (len(train), len(dev)) == (81, 9)
    assert train.skipped == 10


def test_seasonal_persistence_reads_only_what_the_window_has_seen(tmp_path: Path):
    # with data.horizon past data.season it read rows after the window: season 1 beat persistence
    path = tmp_path / "s.csv"
    path.write_text("x\n" + "".join(f"{t * t}\n" for t in range(60)))
    for season, horizon in ((1, 3), (2, 3), (5, 3), (3, 1)):
        data = config_lib.DataConfig(series=str(path), column="x", window=5, horizon=horizon, season=season)
        split = split_series(path, data, regression=True)
        seasonal, persistence = split.test.naive["seasonal"], split.test.naive["persistence"]
        for row, place in enumerate(split.test.places):
            end = int(place.split(":")[1].split("-")[1]) - 1  # rows [end - 5, end) of the series: t^2
            for h in range(horizon):  # the latest value of the target's season at or before end - 1
                seen = end + h - season * math.ceil((h + 1) / season)
                assert seen <= end - 1 and seasonal[row, h] == seen * seen
        if season == 1:
            assert np.array_equal(seasonal, persistence)


def test_no_value_of_a_series_is_both_a_training_and_a_dev_or_test_target(tmp_path: Path):
    # a forecaster's last training windows had targets (horizon rows on) that dev's and test's were too
    path = tmp_path / "s.csv"
    path.write_text("x\n" + "".join(f"{t}\n" for t in range(40)))
    for dev_fraction, horizon in ((0.03, 4), (0.15, 3), (0.15, 1)):
        data = config_lib.DataConfig(
            column="x", window=5, horizon=horizon, dev_fraction=dev_fraction, test_fraction=0.2
        )
        parts = split_series(path, data, regression=True)
        train, dev, test = (
            set(part.values.flatten().tolist()) for part in (parts.train, parts.dev, parts.test)
        )
        assert max(train) < min(dev) and max(dev) < min(test), (dev_fraction, horizon)
        assert len(parts.train) + len(parts.dev) + len(parts.test) == 40 - 5 - horizon + 1 - 2 * (horizon - 1)
        assert len(parts.dev) == max(1, round(len(range(40 - 5 - horizon + 1)) * dev_fraction))
    # too short for the windows left out: said at once, with what helps (not "lower data.dev_fraction")
    path.write_text("x\n" + "".join(f"{t}\n" for t in range(12)))
    short = config_lib.DataConfig(column="x", window=5, horizon=3, dev_fraction=0.01, test_fraction=0.15)
    with pytest.raises(
        DataError, match=r"12 rows cannot hold .* \(2 windows left out before each later part"
    ):
        split_series(path, short, regression=True)


def test_a_series_of_three_windows_keeps_one_to_test(tmp_path: Path):
    # training took 3 windows as enough for train, dev and test; the test share rounded to 0 and evaluate
    # said data.test_fraction = 0
    path = tmp_path / "s.csv"
    path.write_text("x\n1\n2\n3\n4\n5\n")
    parts = split_series(path, config_lib.DataConfig(column="x", window=2, horizon=1), regression=True)
    assert (len(parts.train), len(parts.dev), len(parts.test)) == (1, 1, 1)


def test_the_bag_of_words_baseline_says_why_it_cannot_run_on_text_without_words():
    pytest.importorskip("sklearn")
    from seqkit.data.labelled import Examples
    from seqkit.scoring.baselines import bag_of_words

    texts = ["很好很好", "不好看", "非常好吃", "太难吃了"]  # no word occurs twice (no spaces)
    train = Examples(texts, None, ["pos", "neg", "pos", "neg"], None, ["t:1", "t:2", "t:3", "t:4"])
    assert bag_of_words(train, train) == "no word or word pair occurs in two training texts"
    # one label: said so (scikit-learn's own ValueError read as the text having no words)
    one = Examples(["a b", "a b"], None, ["pos", "pos"], None, ["t:1", "t:2"])
    assert bag_of_words(one, one) == "the training data has one label"


def test_the_bag_of_words_baseline_reads_word_pairs_of_one_letter_words_whatever_their_case():
    """Only the order of the words tells these labels apart: the baseline reads word pairs (not words
    alone), lowercased, and a word may be one letter long."""
    pytest.importorskip("sklearn")
    from seqkit.data.labelled import Examples
    from seqkit.scoring.baselines import bag_of_words

    def examples(texts, labels):
        return Examples(texts, None, labels, None, [f"t:{i}" for i in range(len(texts))])

    train = examples(["A b", "a B", "b A", "B a"] * 2, ["ab", "ab", "ba", "ba"] * 2)
    assert bag_of_words(train, examples(["a b", "B A", "b a"], ["?"] * 3)) == ["ab", "ba", "ba"]


def test_the_forecasters_baselines_are_per_output_and_seasonal_ones_say_what_they_lack():
    from seqkit.data.labelled import Examples
    from seqkit.scoring.baselines import seasonal, training_mean

    def series(values=None, labels=(), naive=None):
        count = len(values) if values is not None else len(labels)
        return Examples(None, None, list(labels), values, [f"s:{i}" for i in range(count)], 0, naive or {})

    # the training mean of each output (data.horizon = 2 here), not of every target pooled
    train = series(np.array([[1.0, 10.0], [3.0, 30.0]]))
    assert training_mean(train, series(np.zeros((3, 2)))).tolist() == [[2.0, 20.0]] * 3
    # a test target with no value a season before (NaN, or "" for a label) is said, wherever it is
    lacking = "some test targets lie less than data.season steps into the series"
    assert seasonal(series(np.zeros((2, 1)), naive={"seasonal": np.array([[1.0], [np.nan]])})) == lacking
    assert seasonal(series(labels=["a", "b"], naive={"seasonal": ["a", ""]})) == lacking
    assert seasonal(series(labels=["a", "b"], naive={"seasonal": ["b", "a"]})) == ["b", "a"]


def test_evaluating_a_series_model_trained_with_no_test_share_says_so(tmp_path: Path):
    # it scored no window at all: NaN scores and a baseline row of nothing
    from seqkit.scoring.prediction import read_test

    (tmp_path / "s.csv").write_text("x\n" + "".join(f"{t}\n" for t in range(20)))
    cfg = _config(
        tmp_path,
        {"head": "regression"},
        {"series": str(tmp_path / "s.csv"), "column": "x", "window": 2, "test_fraction": 0},
    )
    with pytest.raises(DataError, match=r"data.test_fraction = 0, which holds no window .*test_fraction=0.1"):
        read_test(cfg, str(tmp_path / "s.csv"))


def test_an_empty_label_in_a_series_is_an_error_naming_its_row(tmp_path: Path):
    # it became a label of its own, "" (an empty output line, as an empty input gets)
    rows = [f"{t},{'hot' if t % 3 else 'cold'}" for t in range(30)]
    rows[11] = "11,"
    (tmp_path / "s.csv").write_text("x,state\n" + "\n".join(rows) + "\n")
    data = config_lib.DataConfig(
        series=str(tmp_path / "s.csv"), column="state", inputs="x", window=4, horizon=1
    )
    with pytest.raises(DataError, match=r"s.csv:13: column 'state' is empty, and a classifier needs a label"):
        split_series(tmp_path / "s.csv", data, regression=False)


def test_a_header_row_in_the_training_data_is_warned_about(tmp_path: Path):
    # "label<TAB>text" was learnt as a class of one example, then scored (F1 0) at every evaluation
    rows = [f"{'ab'[i % 2]}\tw{i % 7} x{i % 3}" for i in range(60)]
    (tmp_path / "train.tsv").write_text("label\ttext\n" + "\n".join(rows) + "\n")
    (tmp_path / "dev.tsv").write_text("\n".join(rows[:6]) + "\n")
    reporter = _Warnings()
    trainer.train(_config(tmp_path, {}, train={"max_steps": 2}), tmp_path / "m", reporter)
    assert reporter.said == [
        f"{tmp_path / 'train.tsv'}:1: label 'label' is on this line alone: a header row? The model learns it "
        "as a class of one example; remove the line if it is one"
    ]
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n")
    reporter.said.clear()
    trainer.train(_config(tmp_path, {}, train={"max_steps": 2}), tmp_path / "n", reporter)
    assert reporter.said == []


def test_a_classifier_of_numbers_warns_of_tokenizer_keys(tmp_path: Path):
    # a classifier of numbers has no tokenizer: tokenizer.vocab_size was trained past unsaid
    rows = [f"{'ab'[i % 2]},{i % 2}.5,{i % 3}" for i in range(40)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "dev.csv").write_text("\n".join(rows[:6]) + "\n")
    data = {"train": str(tmp_path / "train.csv"), "dev": str(tmp_path / "dev.csv")}
    reporter = _Warnings()
    trainer.train(
        _config(tmp_path, {"bidirectional": False}, data, {"max_steps": 2}), tmp_path / "m", reporter
    )
    assert reporter.said == [
        "tokenizer.vocab_size: this classifier reads numbers and has no tokenizer; it is not read (drop it "
        "from the config)"
    ]
    # a key the run's start named already (a character tokenizer trains no SentencePiece model) is named once
    reporter.said.clear()
    cfg = _config(tmp_path, {"bidirectional": False}, data, {"max_steps": 2})
    trainer.train(replace(cfg, tokenizer=replace(cfg.tokenizer, type="char")), tmp_path / "c", reporter)
    assert [said.split(":")[0] for said in reporter.said] == ["tokenizer.vocab_size", "tokenizer.type"]


@pytest.mark.parametrize(
    ("files", "spec", "regression", "features", "said"),
    [
        # a line of numbers with no label was learned as a class named ""
        ({"n.csv": "up,0.1,0.2\n,0.3,0.4\n"}, "n.csv", False, 1, r"n.csv:2: no label before the first comma; .* give its label"),
        # a text with an empty label was skipped as if the line were empty (an empty line still is)
        ({"t.tsv": "a\tw1 w2\n\n\tw3 w4\n"}, "t.tsv", False, 1, r"t.tsv:3: a text with an empty label; give the line its label"),
        ({"d.text": "w1\nw2\n", "d.label": "a\n \n"}, "d", False, 1, r"d.label:2: a text with an empty label"),
        # a header line on a file of numbers: "fix the value" was the wrong fix; a first line failing
        # otherwise is no header
        ({"h.csv": "label,a1,a2\nup,0.1,0.2\n"}, "h.csv", False, 1, r"h.csv:1: value 1 'a1' is not a number: a header line\? .* remove it"),
        ({"h.csv": "up,0.1,0.2,0.3\n"}, "h.csv", False, 2, r"h.csv:1: 3 values, not a multiple of data.features = 2 .*steps$"),
        ({"n.csv": "up,0.1,0.2\ndown,0.3,abc\n"}, "n.csv", False, 1, r"n.csv:2: value 2 'abc' is not a number; fix the value$"),
        # a file of another format was "neither x.jsonl.text nor x.jsonl.text.gz exists"
        ({"x.jsonl": '{"text": "w1", "label": "a"}\n'}, "x.jsonl", False, 1, r"x.jsonl': a file of none of the formats a classifier reads: tsv"),
        # a regression model's target that is a label: the head is what to change
        ({"r.tsv": "high\tw1\n"}, "r.tsv", True, 1, r"r.tsv:1: the label 'high' is not a number; .*model.head = softmax"),
    ],
)  # fmt: skip
def test_a_users_labelling_slips_are_errors_naming_the_line_and_the_fix(
    tmp_path, files, spec, regression, features, said
):
    """What a new user's own data met: a slip became a class, a dropped example, or a message with the
    wrong fix."""
    from seqkit.data.labelled import read_examples

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=said):
        read_examples(
            str(tmp_path / spec), config_lib.DataConfig(features=features), "data.train", regression
        )


def test_a_series_names_the_key_and_the_fix_that_fit(tmp_path: Path):
    rows = [f"{t},{'high' if t % 3 else 'low'}" for t in range(30)]
    (tmp_path / "s.csv").write_text("x,state\n" + "\n".join(rows) + "\n")
    series = config_lib.DataConfig(series=str(tmp_path / "s.csv"), column="state", window=4)
    with pytest.raises(
        DataError, match=r"s.csv:2: column 'state' 'low' is not a number; .*model.head = softmax"
    ):
        split_series(tmp_path / "s.csv", series, regression=True)
    with pytest.raises(DataError, match=r"'low' is not a number; a series' inputs are numbers .*data.inputs"):
        split_series(tmp_path / "s.csv", series, regression=False)
    # a forecaster's empty target is a value that is no number, not a classifier's missing label
    (tmp_path / "e.csv").write_text("x,y\n" + "".join(f"{t},{t if t != 5 else ''}\n" for t in range(30)))
    empty = config_lib.DataConfig(series=str(tmp_path / "e.csv"), column="y", inputs="x", window=4)
    with pytest.raises(DataError, match=r"e.csv:7: column 'y' '' is not a number; .*model.head = softmax"):
        split_series(tmp_path / "e.csv", empty, regression=True)
    # evaluating on a series too short for the trained window: only the series can change
    short = config_lib.DataConfig(series=str(tmp_path / "s.csv"), column="x", window=40)
    with pytest.raises(DataError, match=r"rows cannot hold .*; give a longer series$"):
        split_series(tmp_path / "s.csv", short, regression=True, option="--data")
    with pytest.raises(DataError, match=r"; lower data.window or data.horizon, or give a longer series$"):
        split_series(tmp_path / "s.csv", short, regression=True)


def test_measurements_as_labels_and_empty_files_at_the_start_of_a_training(tmp_path: Path):
    # a forecast left at the softmax head: hundreds of classes, with a warning of dev-only labels alone
    rows = [f"{math.sin(i / 3):.4f},{i % 2}.5,{i % 3}" for i in range(40)]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    data = {"train": str(tmp_path / "m.csv"), "dev": str(tmp_path / "m.csv")}
    reporter = _Warnings()
    trainer.train(_config(tmp_path, {}, data, {"max_steps": 2}), tmp_path / "m", reporter)
    assert reporter.said[0].startswith("the labels are numbers with fractions (")
    assert reporter.said[0].endswith("; to predict numbers, set model.head = regression")
    # classes numbered 0, 1, 2 are classes
    (tmp_path / "c.csv").write_text("".join(f"{i % 3},{i}.5,1\n" for i in range(12)))
    reporter.said.clear()
    numbered = {"train": str(tmp_path / "c.csv"), "dev": str(tmp_path / "c.csv")}
    trainer.train(_config(tmp_path, {}, numbered, {"max_steps": 2}), tmp_path / "c", reporter)
    assert not any("fractions" in said for said in reporter.said)
    # an empty file is named (it was "data.train and data.dev must each hold ...; check the files")
    (tmp_path / "empty.tsv").write_text("\n")
    (tmp_path / "some.tsv").write_text("a\tw1\nb\tw2\n")
    empty_dev = {"train": str(tmp_path / "some.tsv"), "dev": str(tmp_path / "empty.tsv")}
    with pytest.raises(
        DataError, match=r"data.dev = '.*empty.tsv': no labelled examples \(1 empty lines skipped"
    ):
        trainer.train(_config(tmp_path, {}, empty_dev), tmp_path / "e")
    one = {"train": str(tmp_path / "some.tsv"), "dev": ""}
    few = _config(tmp_path, {}, one)
    with pytest.raises(DataError, match=r"2 labelled examples, too few to hold data.dev_size of them out"):
        trainer.train(replace(few, data=replace(few.data, dev_size=5)), tmp_path / "f")
    assert not any((tmp_path / name).exists() for name in ("e", "f"))


def test_evaluate_names_the_option_given_and_score_a_classifiers_method(
    first_token_model: Path, tmp_path: Path
):
    import seqkit

    (tmp_path / "hyp").write_text("a\n")
    plot = seqkit_here(
        "evaluate", "-i", tmp_path / "hyp", "-r", tmp_path / "hyp", "--plot", tmp_path / "p.png"
    )
    assert_one_line_error(plot, "--hyp, --ref with --plot: ")  # (it said "with --data")
    model = seqkit.load(first_token_model / "model")
    with pytest.raises(config_lib.ConfigError, match=r"is a classifier, .* are model.evaluate\(FILE\)"):
        model.score(["w1"], ["w1"])


def test_a_served_classifiers_limits_and_refusals_are_its_own(first_token_model: Path):
    # (mutation review: /predict's line limits, top_k = the number of labels, a misspelt or mistyped
    # field, the documented refusals, and Starlette's 404/405 naming /predict were all untested)
    import seqkit
    from tests.test_serve import _serving

    model_dir = first_token_model / "model"
    labels = len(seqkit.load(model_dir).tokenizer.encoding.labels)
    with _serving(model_dir, max_lines=3, max_chars=20) as client:
        every = client.post("/predict", json={"text": ["w1 w2"], "top_k": labels})
        assert every.status_code == 200, every.text  # top_k may be every label
        assert len(every.json()["predictions"][0]["probabilities"]) == labels
        too_many = client.post("/predict", json={"text": ["w1"] * 4})
        assert too_many.status_code == 413 and "4 lines in one request" in too_many.json()["error"]
        too_long = client.post("/predict", json={"text": ["w1", "w2 " * 10]})
        assert too_long.status_code == 413 and "line 2 has 30 characters" in too_long.json()["error"]
        misspelt = client.post("/predict", json={"text": ["w1"], "topk": 2})
        assert misspelt.status_code == 422
        assert misspelt.json()["error"].startswith("topk: not a field of this request; did you mean top_k?")
        converted = client.post("/predict", json={"text": ["w1"], "top_k": "2"})  # not converted to 2
        assert converted.status_code == 422 and converted.json()["detail"][0]["loc"] == ["body", "top_k"]
        # Starlette's own refusals name this server's endpoint, keep their detail and the Allow header
        missing = client.post("/translate/x", json={})
        assert missing.status_code == 404 and missing.json() == {
            "error": "/translate/x: no such endpoint; this server answers POST /predict, GET /health, "
            "GET /info, GET /docs",
            "detail": "Not Found",
        }
        wrong_method = client.get("/predict")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"] == "GET /predict: not answered; use POST /predict"
        assert wrong_method.json()["detail"] == "Method Not Allowed"
        assert wrong_method.headers["allow"] == "POST"
        spec = client.get("/openapi.json").json()
        for status in ("413", "422", "503", "504"):
            refusal = spec["paths"]["/predict"]["post"]["responses"][status]["content"]["application/json"]
            assert refusal["schema"]["$ref"].endswith("/ErrorResponse"), status


def test_a_served_classifier_decodes_at_most_max_batch_lines_together(first_token_model: Path, monkeypatch):
    import seqkit
    from tests.test_serve import _serving

    model = seqkit.load(first_token_model / "model", device="cpu")
    sizes = []
    original = type(model).predict_stream

    def predict_stream(self, lines, batch_size=None, *args, **kwargs):
        sizes.append(batch_size)
        return original(self, lines, batch_size, *args, **kwargs)

    monkeypatch.setattr(type(model), "predict_stream", predict_stream)
    with _serving(first_token_model / "model", model=model, max_batch=2) as client:
        answer = client.post("/predict", json={"text": ["w1 w2", "w3", "w4 w5", "w6"]})
        assert answer.status_code == 200, answer.text
    assert sizes and all(size == 2 for size in sizes)
    # nor more than the model's own decode.batch_size, as a translation (mutation review: unchecked)
    model.config = replace(model.config, decode=replace(model.config.decode, batch_size=1))
    sizes.clear()
    with _serving(first_token_model / "model", model=model, max_batch=8) as client:
        assert client.post("/predict", json={"text": ["w1 w2", "w3"]}).status_code == 200
    assert sizes == [1]


def test_served_predictions_waiting_together_are_decoded_together_each_with_its_top_k(
    first_token_model: Path,
):
    # (mutation review: /predict's requests decoded one a batch passed; its top_k is each request's own)
    from tests.test_serve import _answered_while_queued, _held_first_batch, _serving

    model, release = _held_first_batch(first_token_model / "model", "predict_stream")
    bodies = [{"text": ["w3 w1", "w2"]}, {"text": ["w1"], "top_k": 1}, {"text": ["w4 w2", ""], "top_k": 2}]
    with _serving(first_token_model / "model", model=model) as client:
        answers = _answered_while_queued(client, "/predict", {"text": ["w1"]}, bodies, release)
        assert client.get("/health").json()["batches"] == 2  # the held one's, then the three together
        alone = [client.post("/predict", json=body).json()["predictions"] for body in bodies]
    for answer, expected in zip(answers, alone, strict=True):
        got = answer.json()["predictions"]
        assert [p and (p["label"], list(p["probabilities"])) for p in got] == [
            p and (p["label"], list(p["probabilities"])) for p in expected
        ]
        for served, single in zip(got, expected, strict=True):
            assert served is None or served["probabilities"] == pytest.approx(
                single["probabilities"], abs=1e-6
            )
    assert [len(p["probabilities"]) for p in alone[1] + alone[2][:1]] == [1, 2]


def test_label_probabilities_are_torchs_and_hold_far_from_zero():
    # numpy's, so that an ONNX export predicts without torch: equal to torch's to float rounding, and
    # no overflow (a warning, or nan) for logits far from 0
    import warnings

    from seqkit.decoding.classify import label_probabilities

    outputs = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32) * 4
    assert np.allclose(
        label_probabilities("softmax", outputs), torch.from_numpy(outputs).softmax(1), atol=1e-7
    )
    one = outputs[:, :1]
    positive = torch.from_numpy(one).sigmoid().numpy()[:, 0]
    assert np.allclose(label_probabilities("sigmoid", one), np.stack([1 - positive, positive], 1), atol=1e-7)
    far = np.array([[-1000.0], [1000.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert label_probabilities("sigmoid", far).tolist() == [[1.0, 0.0], [0.0, 1.0]]
        assert label_probabilities("softmax", np.array([[1000.0, -1000.0]])).tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"labels": ["a", "b", "c"]}, "3 labels and 2 outputs for a softmax head"),
        (
            {"head": "sigmoid", "outputs": 1, "labels": ["a", "b", "c"]},
            "3 labels and 1 outputs for a sigmoid",
        ),
        ({"head": "regression", "outputs": 2}, "2 labels and 2 outputs for a regression head"),
        ({"labels": ["a"], "outputs": 1}, "1 labels and 1 outputs for a softmax head"),
        ({"labels": ["a", 3]}, "labels must be strings"),
        ({"features": 0}, "features 0 for numbers inputs"),
        ({"inputs": "text"}, "features 2 for text inputs"),
        ({"input_mean": [0.0]}, "the scaling must be 2 means and 2 deviations above 0"),
        ({"input_std": [1.0, 0.0]}, "the scaling must be 2 means"),
        ({"target_mean": float("nan")}, "the scaling must be 2 means"),
        ({"inputs": "images"}, "inputs 'images', head 'softmax'"),
    ],
)
def test_a_hand_edited_encoding_is_named_not_a_traceback_at_the_first_prediction(
    tmp_path: Path, values: dict, problem: str
):
    from seqkit.data.encoding import FILE, Encoding
    from seqkit.errors import ModelDirError

    good = Encoding("numbers", "softmax", ("a", "b"), 2, (0.0, 1.0), (1.0, 2.0), 2)
    good.write(tmp_path)
    assert Encoding.read(tmp_path) == good
    (tmp_path / FILE).write_text(json.dumps({**json.loads((tmp_path / FILE).read_text()), **values}))
    with pytest.raises(ModelDirError, match=rf"encoding.json: damaged \({re.escape(problem)}.*\); retrain"):
        Encoding.read(tmp_path)


@pytest.mark.parametrize(
    ("spec", "format", "kind"),
    [
        ("d.tsv", "auto", "tsv"),
        ("D.TSV.GZ", "auto", "tsv"),
        ("d.csv.gz", "auto", "csv"),
        ("d", "auto", "labels"),
        ("d.tsv", "labels", "labels"),
        ("d.txt", "csv", "csv"),
    ],
)
def test_a_classifiers_file_format_is_data_format_or_told_by_the_name(spec: str, format: str, kind: str):
    """(mutation review: a gzipped TSV, a name in capitals and an explicit data.format = labels were
    untested; each read as another format, or was refused)"""
    from seqkit.data.labelled import kind_of

    assert kind_of(spec, config_lib.DataConfig(format=format)) == kind


def test_a_line_of_numbers_is_step_major_and_finite():
    """x1..xF are the first step's F values (a feature-major reshape gave every step other values), and
    an infinite value is an error like a word, not an input that gives NaN gates."""
    assert parse_numbers("1,2,3,4,5,6", 2, "in:1").tolist() == [[1, 2], [3, 4], [5, 6]]
    for bad in ("inf", "-inf", "nan"):
        with pytest.raises(DataError, match=rf"^in:1: value 2 '{bad}' is not a finite number"):
            parse_numbers(f"1,{bad}", 1, "in:1")


def test_a_classifier_on_a_series_learns_the_label_at_the_horizon(tmp_path: Path):
    """A window's label is data.horizon rows after its last row, persistence the last row's label and
    seasonal persistence may read the series' first row; no window is left out between the parts (a
    classifier's target is one row). (mutation review: each could be off by a row unnoticed)"""
    path = tmp_path / "s.csv"
    path.write_text("x,state\n" + "".join(f"{t},s{t}\n" for t in range(30)))
    data = config_lib.DataConfig(column="state", inputs="x", window=3, horizon=2, season=4)
    parts = split_series(path, data, regression=False)
    first = parts.train
    assert first.places[0].endswith("s.csv:2-4") and first.numbers[0][:, 0].tolist() == [0, 1, 2]
    assert (first.labels[0], first.naive["persistence"][0], first.naive["seasonal"][0]) == ("s4", "s2", "s0")
    assert len(parts.train) + len(parts.dev) + len(parts.test) == 30 - 3 - 2 + 1
    # a forecaster's seasonal persistence reads the first row too (it is a value, not "no value")
    numbers = config_lib.DataConfig(column="x", window=3, horizon=1, season=3)
    assert split_series(path, numbers, regression=True).train.naive["seasonal"][0].tolist() == [0.0]


def test_a_series_too_short_for_its_fractions_leaves_nothing_to_train_on(tmp_path: Path):
    # (mutation review: the check was untested; without it the model trained on no window at all)
    path = tmp_path / "s.csv"
    path.write_text("x\n" + "".join(f"{t}\n" for t in range(6)))
    data = config_lib.DataConfig(column="x", window=2, horizon=1, dev_fraction=0.5, test_fraction=0.5)
    with pytest.raises(DataError, match=r"s.csv: 4 windows leave none to train on; lower data.dev_fraction"):
        split_series(path, data, regression=True)


def test_fitting_standardises_with_the_training_numbers_and_unscales_back(tmp_path: Path):
    """(mutation review: the forecaster's test series has mean 0 and deviation near 1, so a missing
    target mean, or a constant feature divided by 0, went unnoticed)"""
    from seqkit.data.encoding import Encoding
    from seqkit.data.labelled import Examples

    numbers = [np.array([[0.1, 5.0], [0.3, 5.0]]), np.array([[0.5, 5.0]])]  # the second feature constant
    values = np.array([[10.0], [20.0], [30.0]])
    train = Examples(None, numbers, [], values, ["f:1", "f:2", "f:3"])
    encoding = Encoding.fit(train, "regression")
    assert encoding.input_mean == pytest.approx((0.3, 5.0))
    assert encoding.input_std == pytest.approx((math.sqrt(0.08 / 3), 1.0))  # (a deviation below 1 too)
    assert (encoding.target_mean, encoding.target_std) == (20.0, pytest.approx(math.sqrt(200 / 3)))
    scaled = encoding.scaled_targets(values)
    assert scaled.mean() == pytest.approx(0.0, abs=1e-6) and scaled.std() == pytest.approx(1.0)
    assert encoding.unscaled(scaled) == pytest.approx(values)
    assert encoding.scaled_inputs(numbers)[1].tolist() == [[pytest.approx(math.sqrt(1.5)), 0.0]]
    constant = Examples(None, numbers, [], np.full((3, 1), 7.0), ["f:1", "f:2", "f:3"])
    assert Encoding.fit(constant, "regression").target_std == 1.0


def test_a_sigmoids_logit_of_zero_gives_the_label_that_predict_gives():
    """evaluate's label ids (predicted_ids) and predict's labels (the likelier of two probabilities of
    0.5: the first) agree at a logit of exactly 0. (mutation review: `>= 0` went unnoticed)"""
    from seqkit.data.encoding import Encoding
    from seqkit.decoding.classify import predicted_ids, predictions

    encoding = Encoding("text", "sigmoid", ("neg", "pos"), 0, (), (), 1)
    outputs = np.array([[0.0], [1e-6], [-1e-6]], dtype=np.float32)
    ids = predicted_ids(encoding, outputs).tolist()
    assert ids == [0, 1, 0]
    assert [p.label for p in predictions(encoding, outputs)] == [encoding.labels[i] for i in ids]
