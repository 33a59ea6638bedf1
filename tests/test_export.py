"""`seqkit export --format onnx`: an exported model translates and generates what its torch model does,
through the same search, with onnxruntime and without torch, and every way of misusing it is one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import seqkit
from seqkit import config as config_lib
from seqkit import configfile, model_types, modeldir
from seqkit.data.text import read_lines
from seqkit.data.tokenizer import EOS
from seqkit.errors import ConfigError, ModelDirError
from seqkit.export import layout
from seqkit.export import onnx as onnx_export
from tests.helpers import assert_one_line_error, lm_config, seqkit_here, toy_config, write_text, write_toy

pytest.importorskip("onnxruntime")


def _export(model_dir: Path, out: Path, *options) -> Path:
    result = seqkit_here("export", model_dir, "-o", out, *options)
    assert result.returncode == 0, result.stderr.decode()
    assert b"largest difference from torch" in result.stderr
    return out


@pytest.fixture(scope="module")
def reverse_export(reverse_model, tmp_path_factory) -> Path:
    return _export(reverse_model, tmp_path_factory.mktemp("export") / "reverse-onnx")


def _trained(directory: Path, cfg, steps: int) -> Path:
    """A model directory of `cfg` trained for `steps` updates: part-way, so its outputs vary with the input
    (an untrained model writes one piece over and over) and its choices are not near-ties."""
    train = {"max_steps": steps, "valid_every": steps, "log_every": steps}
    cfg = config_lib.with_overrides(cfg, {"train": train}, "test")
    model_types.of(cfg).train(cfg, directory, None, False, False)
    return directory


def _lines(reverse_data, count: int = 24) -> list[str]:
    return read_lines(f"{reverse_data}/dev.src")[:count]


def test_export_translates_as_its_model(reverse_export, reverse_model, reverse_data):
    lines = [*_lines(reverse_data), "", "a"]
    stdin = "".join(f"{x}\n" for x in lines)
    for options in (("--beam-size", 1), ("--beam-size", 4), ("--beam-size", 4, "--nbest", 3)):
        torch_out = seqkit_here("translate", reverse_model, *options, stdin=stdin)
        onnx_out = seqkit_here("translate", reverse_export, *options, stdin=stdin)
        assert onnx_out.returncode == 0, onnx_out.stderr.decode()
        if "--nbest" not in options:
            assert onnx_out.stdout == torch_out.stdout
            continue
        for mine, theirs in zip(onnx_out.stdout.splitlines(), torch_out.stdout.splitlines(), strict=True):
            mine, theirs = json.loads(mine)["hypotheses"], json.loads(theirs)["hypotheses"]
            assert [h["text"] for h in mine] == [h["text"] for h in theirs]
            assert [h["score"] for h in mine] == pytest.approx([h["score"] for h in theirs], abs=1e-4)
    described = json.loads((reverse_export / layout.DESCRIPTION).read_text())
    assert described["type"] == "seq2seq" and set(described["graphs"]) == {"encoder", "decoder", "select"}
    assert all(difference <= onnx_export.TOLERANCE for difference in described["check"].values())
    assert seqkit.load(reverse_export).info() == described
    assert json.loads(seqkit_here("info", reverse_export, "--json").stdout) == described
    # which weights they are: the run and validation that made them, as `info` of the model says
    model_info = seqkit.load(reverse_model).info()
    assert (described["training"], described["averaged"]) == (model_info["training"], False)
    shown = seqkit_here("info", reverse_export).stdout.decode()
    assert "ONNX export of a GRU encoder-decoder, bahdanau attention, fp32" in shown
    best = model_info["training"]["best_validation"]["step"]
    assert f"best validation (step {best:,}, the saved weights): " in shown
    # Bahdanau's decoder does not read the previous attentional vector: the graph has no `feed` input
    assert (
        "decoder.onnx: prev, hidden, memory, keys, mask -> log_probs, new_hidden, new_feed, weights" in shown
    )


def test_a_model_that_decodes_with_a_shortlist_exports_one_that_translates(
    reverse_model, reverse_data, tmp_path
):
    """An export computes its whole output layer: decode.shortlist = true in the model's config would
    make it refuse every translation that did not turn the shortlist off."""
    model_dir = tmp_path / "shortlisted"
    shutil.copytree(reverse_model, model_dir)
    cfg = configfile.load(model_dir / modeldir.CONFIG, ["decode.shortlist=true"])
    (model_dir / modeldir.CONFIG).write_bytes(configfile.to_toml(cfg))
    exported = _export(model_dir, tmp_path / "onnx")
    assert configfile.load(exported / modeldir.CONFIG).decode.shortlist is False
    stdin = "".join(f"{x}\n" for x in _lines(reverse_data, 8))
    onnx_out = seqkit_here("translate", exported, stdin=stdin)
    assert onnx_out.returncode == 0, onnx_out.stderr.decode()
    assert onnx_out.stdout == seqkit_here("translate", reverse_model, stdin=stdin).stdout
    (exported / modeldir.CONFIG).write_bytes((model_dir / modeldir.CONFIG).read_bytes())  # an older export's
    assert seqkit_here("translate", exported, stdin=stdin).stdout == onnx_out.stdout


def test_a_beam_wider_than_the_given_pieces_finds_the_torch_models_nbest(reverse_export, reverse_model):
    # the graph computes every piece, those training never gave at about -1e4: with more beams than
    # given pieces, they became hypotheses the torch model never searches (12 against 11, one at -10003)
    from seqkit.decoding.search import decode_corpus
    from seqkit.decoding.torch_steps import Seq2SeqSteps
    from seqkit.export import runtime
    from seqkit.models.softmax import given_pieces

    _, tokenizer, model = model_types.load(reverse_model, "cpu")
    given = given_pieces(model.decoder.output)
    assert given is not None  # (a vocabulary some pieces of which are never targets)
    # one output piece at most: each given piece, or none, is a hypothesis
    cfg = config_lib.DecodeConfig(beam_size=len(given) + 2, max_length_ratio=0.01, max_length_offset=1)
    sources = tokenizer.encode_src(["a", "b c"])
    theirs = decode_corpus(Seq2SeqSteps(model), sources, cfg)
    mine = decode_corpus(runtime.load(reverse_export)[2], sources, cfg)
    assert [[h.tokens for h in hs] for hs in mine] == [[h.tokens for h in hs] for hs in theirs]
    assert all(len(hs) < cfg.beam_size for hs in mine)


ARCHITECTURES = {
    "lstm-luong": {"cell": "lstm", "attention": "luong"},
    "rnn-bahdanau-unidirectional": {"cell": "rnn", "attention": "bahdanau", "bidirectional": False},
    "gru-luong-2-layers": {"cell": "gru", "attention": "luong", "encoder_layers": 2, "decoder_layers": 2},
    "gru-bahdanau-copy-coverage": {"copy": True, "coverage": True},
    "lstm-luong-copy-coverage": {"cell": "lstm", "attention": "luong", "copy": True, "coverage": True},
}
LM_CELLS = ("lstm", "gru", "rnn")


def _seq2seq_architectures(directory: Path) -> str:
    """(In the background process.) Each of ARCHITECTURES trained part-way on the toy reverse task."""
    data = write_toy(directory / "data", "reverse")
    for name, model in ARCHITECTURES.items():
        steps = 150 if model.get("copy") else 40  # (a copy model first learns to copy the spaces)
        _trained(directory / name, toy_config(data, tokenizer={"type": "char"}, model=model), steps)
    return data


def _lm_architectures(directory: Path) -> str:
    """(In the background process.) A two-layer character language model of each cell, part-way."""
    data = write_text(directory / "data")
    for cell in LM_CELLS:
        _trained(directory / cell, lm_config(data, model={"cell": cell, "decoder_layers": 2}), 60)
    return str(data)


@pytest.mark.prepared_in_background("_seq2seq_architectures")
def test_every_cell_and_attention_exports(background_model, tmp_path):
    lines = read_lines(f"{background_model.data_dir}/dev.src")[:40]
    for name in ARCHITECTURES:
        model_dir = background_model.model_dir / name
        onnx_export.export(model_dir, tmp_path / name)
        torch_model, exported = seqkit.load(model_dir, device="cpu"), seqkit.load(tmp_path / name)
        assert exported.module is None
        for beam in (1, 3):
            mine = exported.translate(lines, beam_size=beam, nbest=beam, max_length_ratio=1.0)
            theirs = torch_model.translate(lines, beam_size=beam, nbest=beam, max_length_ratio=1.0)
            assert [[t.text for t in r.nbest] for r in mine] == [[t.text for t in r.nbest] for r in theirs], (
                name
            )
            for a, b in zip(mine, theirs, strict=True):
                assert [t.log_prob for t in a.nbest] == pytest.approx([t.log_prob for t in b.nbest], abs=1e-3)
        assert len({r.text for r in theirs}) > len(lines) // 2, (
            name
        )  # varied outputs: a comparison that means something


@pytest.mark.trained_in_background(
    "reverse",
    tokenizer={"joint": False, "src_vocab_size": 40, "tgt_vocab_size": 16},
    train={"max_steps": 30, "valid_every": 30, "log_every": 30},
)
def test_separate_vocabularies_with_a_larger_source_export(background_model, tmp_path):
    # the decoder's check tokens were drawn from the source vocabulary: an IndexError in the export
    onnx_export.export(background_model.model_dir, tmp_path / "onnx")
    lines = read_lines(f"{background_model.data_dir}/dev.src")[:24]
    mine = seqkit.load(tmp_path / "onnx").translate(lines, beam_size=3)
    theirs = seqkit.load(background_model.model_dir, device="cpu").translate(lines, beam_size=3)
    assert [r.text for r in mine] == [r.text for r in theirs]


@pytest.mark.prepared_in_background("_lm_architectures")
def test_language_models_generate_as_their_model(background_model, tmp_path):
    prompts = ["the", "", "a st"]
    for cell in LM_CELLS:
        model_dir = background_model.model_dir / cell
        onnx_export.export(model_dir, tmp_path / cell)
        for temperature in (0.0, 1.0):
            # (a seed and several samples are sampling settings: refused at temperature 0)
            options = {
                "max_tokens": 30,
                "num_samples": 3 if temperature else 1,
                "seed": 4 if temperature else None,
            }
            mine = seqkit.load(tmp_path / cell).generate(prompts, temperature=temperature, **options)
            theirs = seqkit.load(model_dir, device="cpu").generate(
                prompts, temperature=temperature, **options
            )
            assert mine == theirs, cell
        assert len(set(theirs)) > 3, cell


@pytest.fixture(scope="module")
def lm_export(char_lm, tmp_path_factory) -> Path:
    return _export(char_lm, tmp_path_factory.mktemp("export") / "lm-onnx")


def test_the_trained_language_model_exports(char_lm, lm_export):
    exported = lm_export
    args = ("--max-tokens", 40, "--seed", 3, "--temperature", 0.8, "--num-samples", 2)
    stdin = "the\na st\n"
    assert (
        seqkit_here("generate", exported, *args, stdin=stdin).stdout
        == seqkit_here("generate", char_lm, *args, stdin=stdin).stdout
    )
    # (a mutation review: an attention named for a model without one, and another title, passed)
    shown = seqkit_here("info", exported).stdout.decode().splitlines()
    assert shown[0] == f"ONNX export of an LSTM language model, fp32, opset 17, from {char_lm.resolve()}"


def test_the_description_says_what_each_graph_takes_and_gives(reverse_export, lm_export):
    # what a deployment reads of export.json (and `info` shows): each graph's inputs and outputs in their
    # order, its opset, and each state array's batch axis, as the graph itself has them (a mutation review:
    # a lie in any of them passed, the runtime of a language model never reading its state's axis)
    onnx = pytest.importorskip("onnx")
    from seqkit.export import runtime

    for exported, step in ((reverse_export, "decoder"), (lm_export, "lm")):
        described = json.loads((exported / layout.DESCRIPTION).read_text())
        shapes = {}
        for graph in described["graphs"].values():
            session = runtime.session(exported / graph["file"])
            assert [i.name for i in session.get_inputs()] == graph["inputs"], graph
            assert [o.name for o in session.get_outputs()] == graph["outputs"], graph
            opsets = {o.domain: o.version for o in onnx.load(exported / graph["file"]).opset_import}
            assert opsets[""] == described["opset"], graph
            if graph["file"] == f"{step}.onnx":
                shapes = {a.name: a.shape for a in [*session.get_inputs(), *session.get_outputs()]}
        for name, spec in described["state"].items():
            assert shapes[spec["output"]][spec["axis"]] == "batch", (exported, name)
            if name in shapes:  # (Bahdanau's decoder does not read `feed`)
                assert shapes[name][spec["axis"]] == "batch", (exported, name)
        if "state_shape" in described:  # the zeros a text starts from: (layers, batch, size)
            assert [shapes["hidden"][0], shapes["hidden"][2]] == described["state_shape"]


_WITHOUT_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)  # as a missing package

sys.meta_path.insert(0, NoTorch())
sys.argv = ["seqkit", *sys.argv[1:]]
from seqkit.cli import main
try:
    main()
finally:
    assert "torch" not in sys.modules
"""


def _without_torch(*args, stdin: str) -> subprocess.CompletedProcess:
    """seqkit's command line in a process where importing torch fails, as on a machine without it."""
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, *map(str, args)], input=stdin.encode(), capture_output=True
    )


def test_an_export_runs_where_torch_cannot_be_imported(
    reverse_export, reverse_model, reverse_data, lm_export, char_lm, tmp_path
):
    stdin = "".join(f"{x}\n" for x in _lines(reverse_data, 6))  # (a picture takes 0.3 s)
    args = ("--beam-size", "4", "--attention", tmp_path / "pictures")
    result = _without_torch("translate", reverse_export, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == seqkit_here("translate", reverse_model, "--beam-size", "4", stdin=stdin).stdout
    assert {"line-000001.png", "line-000006.json"} <= {p.name for p in (tmp_path / "pictures").iterdir()}
    # -o too: its check of the model's own files imported torch (3 s, and a failure here)
    written = _without_torch(
        "translate", reverse_export, "--beam-size", "4", "-o", tmp_path / "o.txt", stdin=stdin
    )
    assert written.returncode == 0, written.stderr.decode()
    assert (tmp_path / "o.txt").read_bytes() == result.stdout
    onto = _without_torch("translate", reverse_export, "-o", reverse_export / "decoder.onnx", stdin=stdin)
    assert_one_line_error(onto, "decoder.onnx is a file of the model directory")
    # an export does not score: said as with torch, not "needs torch ... run an export"
    scoring = _without_torch("evaluate", "--model", reverse_export, "-r", tmp_path / "o.txt", stdin="")
    assert_one_line_error(scoring, "is an ONNX export, which translate, serve,", "needs the trained model")
    # the refusal names what runs this export (it named translate and generate to a language model's)
    scoring = _without_torch("evaluate", "--model", lm_export, "-r", tmp_path / "o.txt", stdin="")
    assert_one_line_error(scoring, "is an ONNX export, which generate, serve, info and seqkit.load run")
    result = _without_torch("generate", lm_export, "--temperature", "0", stdin="a st\n")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == seqkit_here("generate", char_lm, "--temperature", "0", stdin="a st\n").stdout


def test_commands_that_need_the_trained_model_refuse_an_export_without_torch(reverse_export, tmp_path):
    # they said "needs torch here ... without it, run an export" to a user who gave one
    for command in (
        ("inspect", reverse_export, "--text", "a b"),
        ("average", reverse_export, "-o", tmp_path / "averaged"),
        ("shortlist", reverse_export),
        ("export", reverse_export, "-o", tmp_path / "again"),
    ):
        refused = _without_torch(*command, stdin="")
        assert_one_line_error(refused, "is an ONNX export", "needs the trained model directory")
    assert not (tmp_path / "averaged").exists() and not (tmp_path / "again").exists()
    # --resume of an export: it said "start a run with --output EXPORT", which is then refused
    assert_one_line_error(seqkit_here("train", "--resume", reverse_export), "no checkpoint to resume",
                          "holds seqkit's files of an ONNX export, not a training run; start a run with --output NEW_DIR")  # fmt: skip


def test_scoring_text_runs_without_torch_and_a_torch_model_says_what_it_needs(reverse_model, tmp_path):
    # `seqkit translate EXPORT < in | seqkit evaluate -r ref` is the deployment's pipeline: evaluate imported
    # torch for nothing; and a trained model directory without torch was a traceback
    (tmp_path / "hyp.txt").write_text("b a c\nd\n")
    (tmp_path / "ref.txt").write_text("b a c\nd e\n")
    scored = _without_torch("evaluate", "-r", tmp_path / "ref.txt", "--json", stdin="b a c\nd\n")
    assert scored.returncode == 0, scored.stderr.decode()
    expected = seqkit_here("evaluate", "-i", tmp_path / "hyp.txt", "-r", tmp_path / "ref.txt", "--json")
    assert (
        json.loads(scored.stdout)["systems"][0]["scores"]
        == json.loads(expected.stdout)["systems"][0]["scores"]
    )
    needs = _without_torch("translate", reverse_model, stdin="a b\n")
    assert_one_line_error(needs, "translate needs torch here, which is not installed", "seqkit export")
    # what an export cannot do is not sent to one (plot, export: "without it, run an export")
    for command in (
        ("plot", reverse_model, "-o", tmp_path / "c.png"),
        ("export", reverse_model, "-o", tmp_path / "e"),
    ):
        needs = _without_torch(*command, stdin="")
        assert_one_line_error(
            needs, f"{command[0]} needs the Python package torch, which is not installed: pip install torch"
        )


# (data file, model overrides, data overrides, training steps) of each classifier `_classifiers` trains
CLASSIFIERS = {
    # learns its task exactly: the int8 export must keep it
    "bag": ("text/dev.tsv", {"pooling": "attention", "bag_of_tokens": True}, {}, 200),
    "last": ("text/dev.tsv", {"cell": "lstm", "pooling": "last", "encoder_layers": 2}, {}, 40),
    "last-one-way": ("text/dev.tsv", {"pooling": "last", "bidirectional": False}, {}, 40),
    "numbers": ("numbers/dev.csv", {"cell": "lstm", "pooling": "mean", "head": "sigmoid"}, {}, 40),
    "series": (
        "series/sine.csv",
        {"cell": "rnn", "activation": "relu", "pooling": "max", "head": "regression", "bidirectional": False},
        {"window": 20, "horizon": 2, "season": 20},
        40,
    ),
}


def _classifiers(directory: Path) -> str:
    """(In the background process.) CLASSIFIERS: text, with a bag of tokens or two layers; numbers; a
    forecaster of a series. The models are in directory/NAME, their data in the directory returned."""
    from seqkit.training import classifier as trainer
    from tests.test_classifier import _config, _first_token, _write_sign_task, _write_sine, _write_text_task

    data_dir = directory / "data"
    _write_text_task(data_dir / "text", _first_token)
    _write_sign_task(data_dir / "numbers", 600, 100)
    (data_dir / "series").mkdir()
    _write_sine(data_dir / "series" / "sine.csv")
    data = {
        "text": {},
        "numbers": {"train": str(data_dir / "numbers/train.csv"), "dev": str(data_dir / "numbers/dev.csv")},
        "series": {"series": str(data_dir / "series/sine.csv"), "column": "value"},
    }
    for name, (test_file, model, more_data, steps) in CLASSIFIERS.items():
        kind = test_file.split("/")[0]
        train = {"max_steps": steps, "valid_every": steps}
        trainer.train(_config(data_dir / "text", model, {**data[kind], **more_data}, train), directory / name)
    return str(data_dir)


@pytest.mark.prepared_in_background("_classifiers")
def test_classifiers_and_forecasters_export_and_predict_as_their_model(background_model, tmp_path):
    for name, (test_file, *_) in CLASSIFIERS.items():
        model_dir, data = background_model.model_dir / name, f"{background_model.data_dir}/{test_file}"
        described = onnx_export.export(model_dir, tmp_path / name)
        assert described["task"] == "predict" and set(described["graphs"]) == {"classifier"}
        assert described["check"]["classifier.onnx"] <= onnx_export.TOLERANCE
        assert {"classifier.onnx", "encoding.json", "config.toml"} <= {
            p.name for p in (tmp_path / name).iterdir()
        }
        torch_model, exported = seqkit.load(model_dir, device="cpu"), seqkit.load(tmp_path / name)
        assert exported.module is None
        mine, theirs = exported.evaluate(data), torch_model.evaluate(data)
        if name == "series":  # numbers: equal as float32 holds them
            assert np.allclose(mine.pop("predicted"), theirs.pop("predicted"), rtol=1e-5, atol=1e-5)
            assert mine["scores"] == pytest.approx(theirs["scores"], rel=1e-5)
            continue
        assert mine["predicted"] == theirs["predicted"] and mine["scores"] == theirs["scores"], name
        assert len(set(theirs["predicted"])) > 1, name  # (a model that says one label compares nothing)
        lines = read_lines(data)[:20]
        lines = [line.split("\t")[-1] if name != "numbers" else line.split(",", 1)[1] for line in lines]
        for a, b in zip(exported.predict(lines), torch_model.predict(lines), strict=True):
            assert a.label == b.label and a.probabilities == pytest.approx(b.probabilities, abs=1e-5)
    # the bag's task is learnt exactly, and int8 keeps it
    bag = background_model.model_dir / "bag"
    int8 = onnx_export.export(bag, tmp_path / "bag-int8", quantize=True)
    assert int8["quantized"] == "int8" and int8["check_int8"]["classifier.onnx"] < 0.2
    scores = seqkit.load(tmp_path / "bag-int8").evaluate(f"{background_model.data_dir}/text/dev.tsv")[
        "scores"
    ]
    assert scores["accuracy"] == 1.0


@pytest.mark.parametrize(
    "model",
    [
        {"pooling": "last", "bag_of_tokens": True},
        {"pooling": "last", "bidirectional": False, "cell": "lstm"},
        {"pooling": "last", "encoder_layers": 2, "cell": "rnn"},
        {"pooling": "attention", "bag_of_tokens": True},
        {"pooling": "max", "features": 3},
        {"pooling": "mean", "features": 2, "cell": "lstm"},
    ],
)
def test_the_classifier_graph_computes_what_its_model_does(model):
    # it reads "last" pooling from the outputs and sums the bag from its rows, where the model does neither
    import torch

    from seqkit.data.tokenizer import PAD
    from seqkit.export import graphs
    from seqkit.models.classifier import SequenceClassifier

    features = model.pop("features", 0)
    cfg = config_lib.from_dict(
        {"model": {"type": "classifier", "embedding_size": 8, "encoder_hidden_size": 6, **model}}, "test"
    )
    torch.manual_seed(0)
    classifier = SequenceClassifier(cfg.model, 0 if features else 30, features, 4).eval()
    if classifier.bag is not None:  # (it starts at zero; the padding row too, which is never counted)
        torch.nn.init.normal_(classifier.bag.weights.weight)
        assert classifier.bag.weights.weight[PAD].abs().sum() > 0
    [graph], [examples], _ = graphs.classifier_graph(classifier, cfg)
    assert graph.reference is classifier
    with torch.no_grad():
        for example in examples:
            assert torch.allclose(graph.module(*example), classifier(*example), atol=1e-6)


@pytest.fixture(scope="module")
def text_classifier(tmp_path_factory) -> Path:
    """A directory of a text task (train.tsv, dev.tsv), a GRU classifier with a bag of tokens trained
    part-way on it (model/) and its export (onnx/)."""
    from seqkit.training import classifier as trainer
    from tests.test_classifier import _config, _first_token, _write_text_task

    directory = tmp_path_factory.mktemp("text-classifier")
    _write_text_task(directory, _first_token)
    cfg = _config(directory, {"bag_of_tokens": True}, train={"max_steps": 40, "valid_every": 40})
    trainer.train(cfg, directory / "model")
    onnx_export.export(directory / "model", directory / "onnx")  # (the command's path: the tests above)
    return directory


def test_a_classifier_export_predicts_scores_and_serves_without_torch(text_classifier):
    from tests.test_serve import _serving

    tmp_path, exported = text_classifier, text_classifier / "onnx"
    lines = [line.split("\t")[1] for line in read_lines(tmp_path / "dev.tsv")[:30]] + [""]
    stdin = "".join(f"{line}\n" for line in lines)
    from seqkit.cli.predicting import prediction_line

    predicted = _without_torch("predict", exported, "--probs", stdin=stdin)
    assert predicted.returncode == 0, predicted.stderr.decode()
    torch_model = seqkit.load(tmp_path / "model", device="cpu")
    expected = [prediction_line(p, True, None) for p in torch_model.predict(lines)]  # (what --probs prints)
    mine = [json.loads(line) if line else None for line in predicted.stdout.decode().splitlines()]
    assert len(mine) == len(lines) and mine[-1] is None
    theirs = [json.loads(line) if line else None for line in expected]
    for a, b in zip(mine[:-1], theirs[:-1], strict=True):
        assert list(a)[0] == list(b)[0] and a == pytest.approx(b, abs=2e-6)  # (printed to 6 places)
    assert len({list(a)[0] for a in mine[:-1]}) > 1  # (one label for all compares nothing)
    # int8 with torch (predict --quantize): the same labels but for a near-tie or two; an export's int8
    # is made by export, and --quantize on one is refused naming it
    int8_labels = [
        p.label for p in seqkit.load(tmp_path / "model", device="cpu", quantize=True).predict(lines[:-1])
    ]
    assert sum(a == list(b)[0] for a, b in zip(int8_labels, theirs[:-1], strict=True)) >= len(lines) - 3
    refused = _without_torch("predict", exported, "--quantize", stdin=stdin)
    assert_one_line_error(refused, f"--quantize: {exported} is an ONNX export", "leave it out")
    scored = _without_torch(
        "evaluate", "--model", exported, "--data", tmp_path / "dev.tsv", "--json", stdin=""
    )
    assert scored.returncode == 0, scored.stderr.decode()
    assert json.loads(scored.stdout)["scores"] == torch_model.evaluate(tmp_path / "dev.tsv")["scores"]
    # a classifier export is scored on labelled data, as its model: not "needs the trained model directory"
    references = _without_torch("evaluate", "--model", exported, "-r", tmp_path / "dev.tsv", stdin="")
    assert_one_line_error(
        references, f"--model {exported} is a classifier or forecaster: give its labelled test data"
    )
    with _serving(exported) as client:
        answer = client.post("/predict", json={"text": lines[:5], "top_k": 2}).json()["predictions"]
    for served, prediction in zip(answer, torch_model.predict(lines[:5]), strict=True):
        assert served["label"] == prediction.label
        assert served["probabilities"] == pytest.approx(dict(prediction.top(2)), abs=1e-5)


def test_a_damaged_or_moved_classifier_export_is_one_line_without_torch(text_classifier, tmp_path, capsys):
    # each damage was a traceback at the first batch (numpy's ValueError, onnxruntime's errors), and a
    # mistyped path on a machine without torch was "install torch"
    from seqkit.training import classifier as trainer
    from tests.test_classifier import _config, _write_sign_task

    exported = text_classifier / "onnx"
    described = json.loads((exported / layout.DESCRIPTION).read_text())
    assert described["classifier"] == seqkit.load(text_classifier / "model").info()["classifier"]
    with pytest.raises(
        ModelDirError, match="which predict, evaluate --data, serve, info and seqkit.load run"
    ):
        modeldir.require_directory(exported)
    assert described["vocab"] == seqkit.load(exported).tokenizer.vocab_size
    shown = _without_torch("info", exported, stdin="").stdout.decode().splitlines()
    assert shown[1].startswith(
        "reads text; last pooling plus a linear model of the bag of tokens; outputs a softmax over 12 labels: w0, w1, w10"
    )
    _write_sign_task(tmp_path / "numbers", 300, 20)
    numbers = {"train": str(tmp_path / "numbers/train.csv"), "dev": str(tmp_path / "numbers/dev.csv")}
    train = {"max_steps": 2, "valid_every": 2}
    trainer.train(_config(tmp_path, {"head": "sigmoid"}, numbers, train), tmp_path / "numbers-model")
    onnx_export.export(tmp_path / "numbers-model", tmp_path / "numbers-onnx")

    def damaged(change) -> Path:
        copy = tmp_path / "damaged"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(exported, copy)
        change(copy)
        return copy

    def edit(name: str, **values):
        def change(copy: Path) -> None:
            (copy / name).write_text(json.dumps({**json.loads((copy / name).read_text()), **values}))

        return change

    labels = described["classifier"]["labels"]
    for change, fragment in (
        (lambda copy: (copy / "encoding.json").unlink(), "encoding.json: missing (the classifier's labels"),
        (edit("encoding.json", labels=labels[:9]), "damaged (9 labels and 12 outputs for a softmax head)"),
        (edit("encoding.json", head="sigmoid"), "damaged (12 labels and 12 outputs for a sigmoid head)"),
        (edit("encoding.json", labels=labels[::-1]), "encoding.json: not the exported model's"),
        (edit("encoding.json", target_std="x"), "damaged (the scaling must be 0 means and 0 deviations"),
        (edit(layout.DESCRIPTION, vocab=99), "pieces, but the model reads 99"),
        (edit(layout.DESCRIPTION, graphs={}), "graphs must name classifier, each with its file"),
        (  # a file outside the export was opened (as a graph: refused, but by onnxruntime)
            edit(layout.DESCRIPTION, graphs={"classifier": {"file": "../model/model.safetensors"}}),
            "graphs must name classifier, each with its file",
        ),
        (
            edit(layout.DESCRIPTION, classifier=None),
            "names what it reads and says (classifier) and its vocab",
        ),
        (edit(layout.DESCRIPTION, vocab=-1), "names what it reads and says (classifier) and its vocab"),
        (
            lambda copy: shutil.copy(tmp_path / "numbers-onnx/classifier.onnx", copy),
            "classifier.onnx: does not read and give what encoding.json says (text, 12 outputs",
        ),
    ):
        with pytest.raises(ModelDirError, match=r"export again$") as info:
            seqkit.load(damaged(change)).predict(["w1 w2"])
        assert fragment in str(info.value) and "\n" not in str(info.value)
    # another model's graph that reads the same kind of inputs: outputs of another width, numbers of
    # another count of features (a mutation review: each was accepted, to fail in numpy at the first batch)
    numbers_features = json.loads((tmp_path / "numbers-onnx/encoding.json").read_text())["features"]
    for source, stand_in, refused in (
        (tmp_path / "numbers-onnx", _stand_in_classifier(numbers_features, 1), False),  # (it fits)
        (tmp_path / "numbers-onnx", _stand_in_classifier(numbers_features + 1, 1), True),
        (exported, _stand_in_classifier(0, len(labels) - 1), True),
    ):
        copy = tmp_path / "stand-in"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(source, copy)
        (copy / "classifier.onnx").write_bytes(stand_in)
        if not refused:
            seqkit.load(copy)
            continue
        with pytest.raises(
            ModelDirError, match="classifier.onnx: does not read and give what encoding.json says"
        ):
            seqkit.load(copy)
    # one line from the command, without torch: the last damage, and a mistyped path ("install torch")
    assert_one_line_error(_without_torch("predict", tmp_path / "damaged", stdin="w1 w2\n"), fragment)
    typo = _without_torch("predict", tmp_path / "onxx", stdin="w1 w2\n")
    assert_one_line_error(typo, "onxx: no such model directory")
    # moved to a machine without its training data: the baselines that need it say so, beneath the
    # table; a text classifier has no persistence rows (they were listed, each with the same note)
    moved = damaged(lambda copy: None)
    config = (
        (moved / "config.toml").read_text().replace(str(text_classifier / "train.tsv"), "/gone/train.tsv")
    )
    (moved / "config.toml").write_text(config)
    result = seqkit.load(moved).evaluate(text_classifier / "dev.tsv")
    assert [row["name"] for row in result["baselines"]] == ["majority", "bag-of-words logistic regression"]
    assert all("the training data cannot be read" in row["skipped"] for row in result["baselines"])
    from seqkit import results

    results.print_prediction_scores(result, as_json=False)
    shown = capsys.readouterr().out.splitlines()
    notes = [line for line in shown if line.startswith("*")]
    assert notes == [
        "* majority, bag-of-words logistic regression: the training data cannot be read (data.train = "
        "'/gone/train.tsv': no such file; check the path)"
    ]
    rows = [line for line in shown if line.startswith((" majority", " bag-of-words"))]
    assert len(rows) == 2 and max(map(len, rows)) < 70


def _stand_in_classifier(features: int, width: int) -> bytes:
    """A classifier.onnx of the names the runtime feeds and reads: (inputs (batch, steps) ids, or (batch,
    steps, features) numbers when `features`, lengths) -> outputs (batch, width), their sums."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    ids = not features
    reads = [helper.make_tensor_value_info("inputs", TensorProto.INT64 if ids else TensorProto.FLOAT,
                                           ["batch", "steps", *([] if ids else [features])]),
             helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"])]  # fmt: skip
    gives = [helper.make_tensor_value_info("outputs", TensorProto.FLOAT, ["batch", width])]
    constants = [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "steps"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "features"),
        numpy_helper.from_array(np.ones((1, width), dtype=np.float32), "spread"),
    ]
    nodes = [
        helper.make_node("Cast", ["inputs"], ["values"], to=TensorProto.FLOAT)
        if ids
        else helper.make_node("ReduceSum", ["inputs", "features"], ["values"], keepdims=0),
        helper.make_node("ReduceSum", ["values", "steps"], ["sums"], keepdims=1),  # (batch, 1)
        helper.make_node("MatMul", ["sums", "spread"], ["outputs"]),
    ]
    graph = helper.make_graph(nodes, "classifier", reads, gives, constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_int8_export_keeps_the_toy_task(reverse_export, reverse_model, reverse_data, tmp_path):
    exported = _export(reverse_model, tmp_path / "int8", "--quantize")
    described = json.loads((exported / layout.DESCRIPTION).read_text())
    assert described["quantized"] == "int8"
    # the int8 graphs are checked too: a difference from torch is reported, larger than float32's
    assert described["check_int8"]["decoder.onnx"] > described["check"]["decoder.onnx"] > 0
    onnx = pytest.importorskip("onnx")
    operators = {node.op_type for node in onnx.load(exported / "decoder.onnx").graph.node}
    assert "MatMulInteger" in operators  # the products run in int8
    lines, references = _lines(reverse_data, 60), read_lines(f"{reverse_data}/dev.tgt")[:60]
    outputs = seqkit.load(exported).translate(lines)
    assert np.mean([o.text == r for o, r in zip(outputs, references, strict=True)]) >= 0.9


def test_misuse_is_one_line(reverse_export, reverse_model, reverse_data, char_lm, tmp_path, monkeypatch):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert_one_line_error(seqkit_here("export", reverse_model, "-o", foreign), "notes.txt", "--output")
    assert (foreign / "notes.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1
    assert_one_line_error(
        seqkit_here("export", reverse_model, "-o", tmp_path / "x", "--format", "tflite"), "--format"
    )
    assert_one_line_error(
        seqkit_here("export", reverse_model, "-o", reverse_model), "is the model directory itself"
    )
    assert_one_line_error(
        seqkit_here("translate", reverse_export, "--device", "cuda", stdin="a\n"), "--device"
    )
    assert_one_line_error(seqkit_here("generate", reverse_export, stdin="a\n"), "seqkit translate")
    with pytest.raises(ConfigError, match="scoring needs the torch model"):
        seqkit.load(reverse_export).score(["a b"], ["b a"])
    for torch_only in (
        ("inspect", reverse_export, "--text", "a b"),
        ("evaluate", "--model", reverse_export, "-r", "x"),
        ("average", reverse_export, "-o", tmp_path / "averaged"),
    ):
        assert_one_line_error(seqkit_here(*torch_only), "is an ONNX export", "source")
    assert layout.DESCRIPTION == modeldir.EXPORT_DESCRIPTION  # (torch-free and torch side agree)
    assert layout.GRAPH_FILES == modeldir.EXPORT_GRAPHS
    (tmp_path / "toy.toml").write_bytes(configfile.to_toml(toy_config(reverse_data)))
    before = sorted(p.name for p in reverse_export.iterdir())
    assert_one_line_error(
        seqkit_here("train", "--config", tmp_path / "toy.toml", "-o", reverse_export), "ONNX export"
    )
    assert sorted(p.name for p in reverse_export.iterdir()) == before
    # a training run is not an export: refused, and nothing in it changes
    run = tmp_path / "run"
    shutil.copytree(reverse_model, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert_one_line_error(
        seqkit_here("export", reverse_model, "-o", run),
        "holds seqkit's files of a training run, not an export",
    )
    pictures = tmp_path / "pictures"
    assert seqkit_here("inspect", reverse_model, "--text", "c a b", "-o", pictures).returncode == 0
    assert_one_line_error(  # (it said "seqkit's pictures files (a training run, say)")
        seqkit_here("export", reverse_model, "-o", pictures), "files of the pictures of plot or inspect"
    )
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # an export whose description is missing (a killed export) or damaged
    unfinished = tmp_path / "unfinished"
    onnx_export.export(reverse_model, unfinished)
    (unfinished / layout.DESCRIPTION).unlink()
    assert_one_line_error(seqkit_here("translate", unfinished, stdin="a\n"), "unfinished export")
    good = json.loads((reverse_export / layout.DESCRIPTION).read_text())
    damaged = [
        "{not json",
        "[1, 2]",
        json.dumps({"format": "onnx", "version": 1}),
        json.dumps({**good, "version": "1"}),
        json.dumps({**good, "type": "lm"}),
        json.dumps({**good, "state": {"hidden": {"axis": 5, "output": "new_hidden"}}}),
        json.dumps({**good, "graphs": {"encoder": good["graphs"]["encoder"]}}),
        json.dumps({**good, "graphs": {**good["graphs"], "select": {}}}),
        json.dumps({**good, "columns": [5, 4]}),
        # without EOS no output could end: every line translated to an empty one
        json.dumps({**good, "columns": [c for c in good["columns"] if c != EOS]}),
        # (a mutation review: each was accepted by a one-line change the suite let pass)
        json.dumps({**good, "version": layout.VERSION + 1}),  # a newer format than this seqkit reads
        json.dumps({**good, "state": {"hidden": {"axis": 1}}}),  # a state without its output
        json.dumps({**good, "columns": [good["columns"][0], *good["columns"]]}),  # a column twice
        json.dumps({**good, "columns": [-1, *good["columns"]]}),
    ]
    for text in damaged:
        (unfinished / layout.DESCRIPTION).write_text(text)
        with pytest.raises(ModelDirError, match="export"):
            seqkit.load(unfinished)
        for command in (("translate", unfinished), ("info", unfinished)):
            assert_one_line_error(seqkit_here(*command, stdin="a\n"), str(unfinished / layout.DESCRIPTION))
    for training in (None, {"steps": 4}, {**good["training"], "best_validation": {"step": "4"}}):
        (unfinished / layout.DESCRIPTION).write_text(json.dumps({**good, "training": training}))
        with pytest.raises(ModelDirError, match="training: not the steps, time and validations of a run"):
            seqkit.load(unfinished)
    # a file of the export missing
    (unfinished / layout.DESCRIPTION).write_text(json.dumps(good))
    for name, fragment in (
        ("config.toml", "config.toml: missing"),
        ("spm.model", "no tokenizer file"),
        ("encoder.onnx", "encoder.onnx: missing (a graph)"),
    ):
        kept = (unfinished / name).read_bytes()
        (unfinished / name).unlink()
        assert_one_line_error(seqkit_here("translate", unfinished, stdin="a\n"), fragment, "export again")
        (unfinished / name).write_bytes(kept)
    assert_one_line_error(seqkit_here("info", unfinished, "--vocab"), "--vocab", "source")
    # exporting again into an export replaces it, here with another model type: export.json goes first and
    # comes back last (an export that fails part-way, at a full disk, leaves an unfinished export, not the
    # old description over other graphs), and no file of the other model stays
    (unfinished / "encoding.json").write_text("{}")  # (as an earlier export of a classifier leaves it)
    write = onnx_export.outputs.atomic_write
    # the disk fills after the graphs, or at the first one: that left only the old config and the marker,
    # taken for a training run ("no encoding.json ...; retrain the model")
    for first_failed in ("lm.onnx", modeldir.CONFIG):

        def full(path, data, first_failed=first_failed):
            if path.name == first_failed:
                raise OSError(28, "No space left on device", str(path))
            write(path, data)

        with monkeypatch.context() as disk:
            disk.setattr(onnx_export.outputs, "atomic_write", full)
            with pytest.raises(OSError, match="No space left on device"):
                onnx_export.export(char_lm, unfinished)
        with pytest.raises(ModelDirError, match="an unfinished export"):
            seqkit.load(unfinished)
        if first_failed == "lm.onnx":
            assert sorted(p.name for p in unfinished.iterdir()) == [".seqkit", ".seqkit.lock", "config.toml"]
            assert_one_line_error(
                seqkit_here("info", unfinished), "an unfinished export", "seqkit export again"
            )
    monkeypatch.chdir(char_lm.parent)  # (`source` is the model's absolute path, whatever the directory)
    assert onnx_export.export(Path(char_lm.name), unfinished)["source"] == str(char_lm.resolve())
    kept = [".seqkit", ".seqkit.lock", "chars.json", "config.toml", "export.json", "lm.onnx"]
    assert sorted(p.name for p in unfinished.iterdir()) == kept
    assert seqkit.load(unfinished).type == "lm"


def test_graphs_that_do_not_fit_the_description_are_one_line(reverse_export, lm_export, tmp_path):
    # each was a traceback at the first batch (TypeError, KeyError 'foo', KeyError 'tokens')
    damaged = tmp_path / "damaged"
    shutil.copytree(reverse_export, damaged)
    good = json.loads((reverse_export / layout.DESCRIPTION).read_text())
    vocabulary = seqkit.load(reverse_export).tokenizer.tgt_vocab_size
    assert good["columns"][-1] < vocabulary
    no_file = {**good["graphs"], "encoder": {**good["graphs"]["encoder"], "file": None}}
    for description, fragment in (
        ({**good, "graphs": no_file}, "export.json"),
        ({**good, "state": {**good["state"], "foo": {"axis": 0, "output": "bar"}}}, "encoder.onnx"),
        # a searched piece beyond the vocabulary (an IndexError at the first batch)
        (
            {**good, "columns": [*good["columns"], 99999]},
            "columns name piece 99999, beyond the target vocabulary",
        ),
        (  # the first piece beyond it
            {**good, "columns": [*good["columns"], vocabulary]},
            f"columns name piece {vocabulary}, beyond the target vocabulary",
        ),
    ):
        (damaged / layout.DESCRIPTION).write_text(json.dumps(description))
        assert_one_line_error(seqkit_here("translate", damaged, stdin="a\n"), fragment, "export again")
    (damaged / layout.DESCRIPTION).write_text(json.dumps(good))
    shutil.copy(lm_export / "lm.onnx", damaged / "decoder.onnx")
    refused = seqkit_here("translate", damaged, stdin="a\n")
    assert_one_line_error(refused, "decoder.onnx: takes an input 'tokens'", "export again")
    (damaged / "decoder.onnx").write_bytes(b"not a graph")  # (a truncated copy, say)
    refused = seqkit_here("translate", damaged, stdin="a\n")
    assert_one_line_error(refused, "decoder.onnx: not a graph onnxruntime can load", "export again")
    # a language model's state of no rows; the other task's command names the export's kind
    empty_state = tmp_path / "empty-state"
    shutil.copytree(lm_export, empty_state)
    described = json.loads((lm_export / layout.DESCRIPTION).read_text())
    (empty_state / layout.DESCRIPTION).write_text(json.dumps({**described, "state_shape": [0, 8]}))
    assert_one_line_error(seqkit_here("generate", empty_state, "a"), "state_shape", "export again")
    assert_one_line_error(seqkit_here("generate", reverse_export, "a"), "holds an encoder-decoder")
    refused = seqkit_here("translate", lm_export, stdin="a\n")
    assert_one_line_error(refused, "holds a language model export (model.type = lm)", "use `seqkit generate`")


def test_a_hand_edited_description_is_refused_field_by_field(reverse_export, lm_export, tmp_path):
    # (a mutation review: each was accepted by a one-line change the suite let pass; read directly, as
    # test_misuse_is_one_line's damages are read by the commands too)
    from seqkit.export import runtime

    seq2seq, lm = (json.loads((d / layout.DESCRIPTION).read_text()) for d in (reverse_export, lm_export))

    def without(key: str) -> dict:
        return {k: v for k, v in seq2seq.items() if k != key}

    for description, problem in (
        (without("source"), "no source"),  # (what `info` shows: a KeyError there)
        (without("title"), "no title"),
        ({**seq2seq, "task": "generate"}, "task 'generate' for type seq2seq"),
        ({**seq2seq, "training": {**seq2seq["training"], "steps": True}}, "training: not the steps"),
        ({**seq2seq, "state": {}}, "no state"),
        ({**seq2seq, "state": {"hidden": "new_hidden"}}, "state 'hidden'"),
        ({**seq2seq, "graphs": {**seq2seq["graphs"], "select": {"file": ".."}}}, "select names no file"),
        ({**lm, "state_shape": [2, 96, 1]}, "state_shape"),
    ):
        (tmp_path / layout.DESCRIPTION).write_text(json.dumps(description))
        with pytest.raises(
            ModelDirError, match=r"export.json: not a seqkit export description \((.*)\)"
        ) as info:
            runtime.read_description(tmp_path)
        assert problem in str(info.value)
    # a run stopped before its first validation has no best one: its export is read
    training = {k: v for k, v in seq2seq["training"].items() if k != "best_validation"}
    (tmp_path / layout.DESCRIPTION).write_text(json.dumps({**seq2seq, "training": training}))
    assert runtime.read_description(tmp_path)["training"] == training


def test_translations_are_not_written_over_an_exports_own_files(reverse_export):
    # (only decoder.onnx was tried: a mutation review let config.toml, export.json and spm.model be written)
    for path in sorted(reverse_export.iterdir()):
        before = path.read_bytes()
        refused = seqkit_here("translate", reverse_export, "-o", path, stdin="a b\n")
        assert_one_line_error(refused, f"{path} is a file of the model directory")
        assert path.read_bytes() == before


def test_an_export_without_its_description_is_not_taken_for_a_run(reverse_export, tmp_path):
    # it was: "no model.safetensors ... train longer", and `seqkit shortlist` wrote cache/ and
    # shortlist.npz into it
    from seqkit.training.seq2seq import build_shortlist

    unfinished = tmp_path / "unfinished"
    shutil.copytree(reverse_export, unfinished)
    (unfinished / layout.DESCRIPTION).unlink()
    before = sorted(p.name for p in unfinished.iterdir())
    for needs_the_model in (
        lambda: model_types.load(unfinished),
        lambda: build_shortlist(unfinished),
        lambda: onnx_export.export(unfinished, tmp_path / "x"),
        lambda: modeldir.open_run(unfinished, resume=False, overwrite=False),
    ):
        with pytest.raises(ModelDirError, match="ONNX export"):
            needs_the_model()
    assert sorted(p.name for p in unfinished.iterdir()) == before
    assert not (tmp_path / "x").exists()


def test_an_export_that_differs_from_its_model_is_refused_before_anything_is_written(
    char_lm, tmp_path, monkeypatch
):
    monkeypatch.setattr(onnx_export, "_check", lambda *args: 2 * onnx_export.TOLERANCE)
    with pytest.raises(
        ModelDirError, match=r"^export: lm.onnx differs from the torch model by 0.0002 \(at most"
    ):
        onnx_export.export(char_lm, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_export_without_onnx_or_onnxruntime_says_what_to_install(reverse_model, tmp_path, monkeypatch):
    for package in ("onnx", "onnxruntime"):
        with monkeypatch.context() as missing:
            missing.setitem(sys.modules, package, None)  # (its import fails, as where it is not installed)
            with pytest.raises(
                ConfigError, match=r"^export needs onnx and onnxruntime: pip install 'seqkit\[onnx\]'"
            ):
                onnx_export.export(reverse_model, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_attention_pictures_are_not_written_into_an_export(reverse_export, tmp_path):
    exported = tmp_path / "onnx"
    shutil.copytree(reverse_export, exported)
    before = sorted(p.name for p in exported.iterdir())
    refused = seqkit_here("translate", exported, "--attention", exported, stdin="a b\n")
    assert_one_line_error(refused, "--attention", "files of an ONNX export, not pictures")
    assert sorted(p.name for p in exported.iterdir()) == before


def test_serve_runs_an_export(reverse_export, reverse_model, reverse_data):
    from tests.test_serve import _serving

    lines = _lines(reverse_data, 8)
    with _serving(reverse_export) as client:
        answer = client.post("/translate", json={"text": lines, "beam_size": 4})
        info = client.get("/info").json()
    assert answer.status_code == 200, answer.text
    expected = seqkit.load(reverse_model, device="cpu").translate(lines, beam_size=4)
    assert [t["text"] for t in answer.json()["translations"]] == [r.text for r in expected]
    assert info["format"] == "onnx"


class _Answers:
    """An onnxruntime session's stand-in that gives set outputs."""

    def __init__(self, outputs: list[np.ndarray]):
        self.outputs = outputs

    def get_inputs(self):
        return []

    def run(self, names, feeds):
        return self.outputs


@pytest.mark.parametrize(
    ("torch_values", "onnx_values", "passes"),
    [
        # a piece the output layer never gives, near -1e4: one float32 step apart (2**-10), as a tiny
        # joint-vocabulary model's export was refused for
        ([-10005.877, -1.25], [-10005.878, -1.25], True),
        ([-10005.877, -1.25], [-10005.877, -1.2502], False),  # an ordinary value 2e-4 apart
        ([-10005.877, -1.25], [-10005.877, -1.2498], False),  # (above it as well as below)
        ([-10005.0, 0.5], [-10008.0, 0.5], False),  # 3e-4 of the value apart
        ([0.0, 1e-3], [5e-5, 1e-3], True),
    ],
)
def test_the_export_check_measures_float32_as_float32_holds_it(torch_values, onnx_values, passes):
    import torch

    want = torch.tensor([torch_values], dtype=torch.float32)
    graph = onnx_export.graphs.Graph("x.onnx", lambda *example: (want,), ["x"], ["log_probs"], {})
    have = np.array([onnx_values], dtype=np.float32)
    difference = onnx_export._check(graph, _Answers([have]), [(torch.zeros(1),)])
    assert (difference <= onnx_export.TOLERANCE) is passes, difference


def test_settings_an_export_cannot_run_with_are_named_as_given(reverse_export):
    # `serve EXPORT --device cuda` was told to leave out --precision and --quantize, which serve lacks
    assert_one_line_error(
        seqkit_here("serve", reverse_export, "--device", "cuda"),
        f"--device cuda: {reverse_export} is an ONNX export, which runs on the CPU in float32 (or int8, if "
        "exported with --quantize); leave it out",
    )
    refused = assert_one_line_error(
        seqkit_here("translate", reverse_export, "--precision", "bf16", "--quantize", stdin="a b\n")
    )
    assert refused.startswith("error: --precision bf16, --quantize: ") and refused.endswith(
        "; leave them out"
    )
    with pytest.raises(ConfigError, match=r"^device = cuda:1, quantize = True: .* leave them out$"):
        seqkit.load(reverse_export, device="cuda:1", quantize=True)
    assert seqkit.load(reverse_export, device="cpu").translate(["a b"])[0].text


def test_the_export_check_is_the_worst_of_its_batches():
    import torch

    outputs = iter([torch.tensor([[-1.0]]), torch.tensor([[-2.0]])])
    graph = onnx_export.graphs.Graph("x.onnx", lambda *example: (next(outputs),), ["x"], ["log_probs"], {})

    class Answers(_Answers):
        def __init__(self):
            self.answers = iter([np.array([[-1.01]], dtype=np.float32), np.array([[-2.0]], dtype=np.float32)])

        def run(self, names, feeds):
            return [next(self.answers)]

    examples = [(torch.zeros(1),), (torch.zeros(1),)]
    assert onnx_export._check(graph, Answers(), examples) == pytest.approx(0.01, rel=1e-3)


def test_the_export_check_compares_every_output_with_the_models_own_in_its_shape():
    # (a mutation review: a check of the first output alone, of the wrapper rather than the model, or
    # without the shapes, passed)
    import torch

    log_probs, hidden = torch.tensor([[-1.0, -2.0]]), torch.tensor([[0.5, 0.25]])
    example = [(torch.zeros(1),)]
    step = onnx_export.graphs.Graph(
        "x.onnx", lambda *x: (log_probs, hidden), ["x"], ["log_probs", "new_hidden"], {}
    )
    assert onnx_export._check(step, _Answers([log_probs.numpy(), hidden.numpy() + 0.5]), example) == 0.5
    # the classifier's graph computes its pass its own way: checked against the model's
    wrapper = onnx_export.graphs.Graph(
        "x.onnx", lambda *x: (log_probs + 1,), ["x"], ["log_probs"], {}, reference=lambda *x: (log_probs,)
    )
    assert onnx_export._check(wrapper, _Answers([log_probs.numpy()]), example) == 0.0
    # the same values in another shape (numpy would broadcast them to no difference)
    flat = onnx_export.graphs.Graph("x.onnx", lambda *x: (log_probs[0],), ["x"], ["log_probs"], {})
    with pytest.raises(ModelDirError, match=r"x.onnx output log_probs has shape \(1, 2\), torch's"):
        onnx_export._check(flat, _Answers([log_probs.numpy()]), example)
