"""`seqkit inspect`: hidden states and gates stepped by hand equal what the model computes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqkit import config as config_lib
from seqkit import model_types
from seqkit.data.tokenizer import BOS, EOS
from seqkit.model_types import lm, seq2seq
from seqkit.models.cells import make_rnn
from seqkit.models.trace import trace_rnn
from seqkit.training import seq2seq as train_seq2seq
from seqkit.viz import plots
from seqkit.viz.plots import principal_components
from tests.helpers import (
    assert_one_line_error,
    assert_picture,
    distinct_colours,
    png_pixels,
    seqkit_here,
    toy_config,
)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_trace_equals_the_torch_module(cell, bidirectional):
    torch.manual_seed(0)
    rnn = make_rnn(cell, 5, 7, num_layers=2, dropout=0.0, bidirectional=bidirectional).eval()
    inputs = torch.randn(9, 5)
    directions = 2 if bidirectional else 1
    state = torch.randn(2 * directions, 1, 7)
    if cell == "lstm":
        state = (state, torch.randn(2 * directions, 1, 7))
    traces, top = trace_rnn(rnn, cell, inputs, state)
    expected, final = rnn(inputs.unsqueeze(0), state)
    assert torch.allclose(top, expected[0], atol=1e-5)
    final_hidden = final[0] if cell == "lstm" else final
    assert len(traces) == 2 * directions
    for index, (_, hidden, gates) in enumerate(traces):
        last = hidden[0] if index % 2 == 1 and bidirectional else hidden[-1]  # backward ends at step 0
        assert torch.allclose(last, final_hidden[index, 0], atol=1e-5)
        assert sorted(gates) == sorted(
            {"rnn": [], "gru": ["reset", "update"], "lstm": ["input", "forget", "output"]}[cell]
        )
        for value in gates.values():
            assert value.shape == (9, 7) and float(value.min()) >= 0 and float(value.max()) <= 1


def test_principal_components():
    line = torch.outer(torch.arange(6.0), torch.tensor([1.0, 2.0, 0.0]))  # points on one line
    components, shares = principal_components(line)
    assert components.shape == (6, 2)
    assert shares[0] == pytest.approx(1.0) and shares[1] == pytest.approx(0.0, abs=1e-9)
    assert torch.allclose(components[:, 1], torch.zeros(6), atol=1e-5)
    one, shares = principal_components(torch.ones(1, 4))
    assert one.shape == (1, 2) and shares == [0.0, 0.0]


def test_seq2seq_trace_follows_the_models_own_states(reverse_model):
    cfg, tokenizer, model = model_types.load(reverse_model)
    text = "c a d b e"
    inspection = seq2seq.inspect(model, tokenizer, cfg, text)
    assert inspection.output == "e b d a c"
    names = [layer.name for layer in inspection.layers]
    assert names == ["encoder layer 1 forward", "encoder layer 1 backward", "decoder layer 1"]
    # the encoder's traced states are its memory
    src = torch.tensor([tokenizer.encode_src([text])[0] + [EOS]])
    memory, _ = model.encoder(src, torch.tensor([src.size(1)]))
    traced = torch.cat([inspection.layers[0].hidden, inspection.layers[1].hidden], dim=1)
    assert torch.allclose(traced, memory[0], atol=1e-5)
    # the decoder's traced states are the states of greedy decoding
    encoded, state = model.encode(src, torch.tensor([src.size(1)]))
    decoder = inspection.layers[2]
    prev = torch.tensor([BOS])
    for t in range(len(decoder.tokens)):
        logits, state, _ = model.step(prev, state, encoded)
        assert torch.allclose(decoder.hidden[t], state.hidden[-1, 0], atol=1e-5)
        prev = logits.argmax(-1)
    assert decoder.tokens == inspection.attention.output


@pytest.fixture(scope="module")
def lstm_luong_model(tmp_path_factory, reverse_data):
    """A two-layer LSTM with Luong attention, barely trained (its states only need to be traced)."""
    model_dir = tmp_path_factory.mktemp("models") / "lstm-luong"
    model = {"cell": "lstm", "attention": "luong", "encoder_layers": 2, "decoder_layers": 2}
    train_seq2seq.train(
        toy_config(reverse_data, model=model, train={"max_steps": 20, "valid_every": 20}), model_dir
    )
    return model_dir


def test_lstm_luong_decoder_is_traced_by_layer(lstm_luong_model):
    cfg, tokenizer, model = model_types.load(lstm_luong_model)
    beam_3 = config_lib.with_overrides(cfg, {"decode": {"beam_size": 3}}, "test")
    inspection = seq2seq.inspect(model, tokenizer, beam_3, "1 2 3")
    assert [layer.name for layer in inspection.layers][-2:] == ["decoder layer 1", "decoder layer 2"]
    assert len(inspection.layers) == 6
    for layer in inspection.layers:
        assert sorted(layer.gates) == ["forget", "input", "output"]
        assert layer.hidden.size(0) == len(layer.tokens)


def test_language_model_trace(char_lm):
    cfg, tokenizer, model = model_types.load(char_lm)
    inspection = lm.inspect(model, tokenizer, cfg, "the fox")
    assert [layer.name for layer in inspection.layers] == ["layer 1", "layer 2"]
    assert inspection.layers[0].tokens == ["</s>", *"the fox"]
    logits, (hidden, _) = model(torch.tensor([[EOS, *tokenizer.encode_tgt(["the fox"])[0]]]))
    assert torch.allclose(inspection.layers[1].hidden[-1], hidden[1, 0], atol=1e-5)


def _assert_png(path) -> None:
    pixels = png_pixels(path.read_bytes())
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert distinct_colours(pixels) > 10  # not a blank canvas


def _assert_trace_json(path, inspection) -> None:
    trace = json.loads(path.read_text())
    assert [layer["name"] for layer in trace["layers"]] == [layer.name for layer in inspection.layers]
    for written, layer in zip(trace["layers"], inspection.layers, strict=True):
        assert written["tokens"] == layer.tokens
        torch.testing.assert_close(torch.tensor(written["hidden"]), layer.hidden, atol=1e-6, rtol=1e-5)
        assert sorted(written["gates"]) == sorted(layer.gates)


def test_inspect_command_seq2seq(reverse_model, char_lm, tmp_path):
    out = tmp_path / "look"
    result = seqkit_here("inspect", reverse_model, "--text", "c a d b e", "--output", out, "--beam-size", "1")
    assert result.returncode == 0, result.stderr.decode()
    stdout = result.stdout.decode().splitlines()
    assert stdout[0] == "output: e b d a c"
    assert stdout[1].startswith("source: 1:")
    assert sorted(p.name for p in out.iterdir()) == [
        ".seqkit",  # the marker of a directory seqkit wrote
        "attention.png",
        "gates.png",
        "hidden_states.png",
        "trace.json",
        "trajectory.png",
    ]
    for name in ("gates.png", "hidden_states.png", "trajectory.png"):
        _assert_png(out / name)
    cfg, tokenizer, model = model_types.load(reverse_model)
    greedy = config_lib.with_overrides(cfg, {"decode": {"beam_size": 1}}, "test")
    inspection = seq2seq.inspect(model, tokenizer, greedy, "c a d b e")
    attention = inspection.attention
    size = plots.attention_size(len(attention.source), len(attention.output))
    assert_picture((out / "attention.png").read_bytes(), size)
    _assert_trace_json(out / "trace.json", inspection)
    trace = json.loads((out / "trace.json").read_text())
    assert trace["output"] == "e b d a c" and trace["cell"] == "gru"
    # the same folder for a model without attention: the earlier attention.png went (it stayed beside
    # a trace whose attention is null)
    (out / "notes.txt").write_text("mine")
    assert seqkit_here("inspect", char_lm, "--text", "a st", "--output", out).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".seqkit", "gates.png", "hidden_states.png", "notes.txt", "trace.json", "trajectory.png",
    ]  # fmt: skip
    steps = len(trace["attention"]["source"])  # the pieces and </s>, as many out as in when reversing
    assert [len(layer["hidden"]) for layer in trace["layers"]] == [steps, steps, steps]
    assert_one_line_error(seqkit_here("inspect", reverse_model, "--text", ""), "--text")


def test_inspect_writes_no_pictures_into_another_seqkit_output(reverse_model, tmp_path):
    # claim_directory accepted a marker of any kind: the pictures landed among an export's files
    from seqkit import outputs

    export_copy = tmp_path / "export-copy"
    export_copy.mkdir()
    (export_copy / outputs.MARKER).write_bytes(outputs.marker_bytes("export"))
    (export_copy / "export.json").write_text("{}")
    refused = seqkit_here("inspect", reverse_model, "--text", "c a b", "-o", export_copy)
    assert_one_line_error(refused, "--output", "files of an ONNX export, not pictures")
    assert sorted(p.name for p in export_copy.iterdir()) == [outputs.MARKER, "export.json"]


def test_inspect_command_language_model(char_lm, tmp_path):
    out = tmp_path / "look"
    result = seqkit_here("inspect", char_lm, "--text", "a stitch", "--output", out)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""  # no attention to show
    assert sorted(p.name for p in out.iterdir()) == [
        ".seqkit",  # the marker of a directory seqkit wrote
        "gates.png",
        "hidden_states.png",
        "trace.json",
        "trajectory.png",
    ]
    cfg, tokenizer, model = model_types.load(char_lm)
    inspection = lm.inspect(model, tokenizer, cfg, "a stitch")
    for name in ("hidden_states.png", "trajectory.png"):
        _assert_png(out / name)
    # the gate picture is the figure drawn from the traced gates: its pixel size follows from the layers,
    # gates and steps; one row of pictures per layer, one per gate of the cell (LSTM input, forget, output)
    gates = plots.gates_figure(inspection)
    assert_picture((out / "gates.png").read_bytes(), tuple(gates.get_size_inches()))
    _assert_trace_json(out / "trace.json", inspection)
    assert len([ax for ax in gates.axes if ax.images]) == len(inspection.layers) * 3


def test_the_pictures_draw_the_traced_numbers(lstm_luong_model):
    cfg, tokenizer, model = model_types.load(lstm_luong_model)
    inspection = seq2seq.inspect(model, tokenizer, cfg, "1 2 3")
    hidden = plots.hidden_states_figure(inspection)
    pictured = [ax for ax in hidden.axes if ax.images]  # not the colour bars
    for ax, layer in zip(pictured, inspection.layers, strict=True):
        (image,) = ax.images
        np.testing.assert_allclose(image.get_array(), layer.hidden.T.numpy(), rtol=1e-6)
    gates = plots.gates_figure(inspection)
    pictured = [ax for ax in gates.axes if ax.images]
    expected = [layer.gates[name] for layer in inspection.layers for name in ("input", "forget", "output")]
    assert len(pictured) == len(expected)
    for ax, values in zip(pictured, expected, strict=True):
        np.testing.assert_allclose(ax.images[0].get_array(), values.T.numpy(), rtol=1e-6)
    trajectory = plots.trajectory_figure(inspection)
    panels = [ax for ax in trajectory.axes if ax.lines]  # not the colour bars of time
    for ax, layer in zip(panels, inspection.layers, strict=True):
        points, _ = principal_components(layer.hidden)
        np.testing.assert_allclose(ax.lines[0].get_xydata(), points.numpy(), atol=1e-5)
        xs, ys = points[:, 0].tolist(), points[:, 1].tolist()
        labelled = plots._spread_labels(xs, ys)  # labels that would overlap a shown one are left out
        assert labelled[0] == 0 and [text.get_text() for text in ax.texts] == [
            layer.tokens[i] for i in labelled
        ]


def test_lstm_luong_traced_states_are_the_decoders_own(lstm_luong_model):
    cfg, tokenizer, model = model_types.load(lstm_luong_model)
    greedy = config_lib.with_overrides(cfg, {"decode": {"beam_size": 1}}, "test")
    inspection = seq2seq.inspect(model, tokenizer, greedy, "1 2 3")
    src = torch.tensor([tokenizer.encode_src(["1 2 3"])[0] + [EOS]])
    encoded, state = model.encode(src, torch.tensor([src.size(1)]))
    first, second = inspection.layers[-2:]
    prev = torch.tensor([BOS])
    with torch.no_grad():
        for t in range(len(first.tokens)):
            logits, state, _ = model.step(prev, state, encoded)
            assert torch.allclose(first.hidden[t], state.hidden[0, 0], atol=1e-5)
            assert torch.allclose(second.hidden[t], state.hidden[1, 0], atol=1e-5)
            prev = logits.argmax(-1)


def test_a_vanilla_rnn_has_no_gate_picture(reverse_model, tmp_path):
    from seqkit.config import ModelConfig
    from seqkit.models.seq2seq import Seq2Seq
    from seqkit.viz import reports

    cfg, tokenizer, _ = model_types.load(reverse_model)
    torch.manual_seed(0)
    model = Seq2Seq(
        ModelConfig(cell="rnn", embedding_size=8, encoder_hidden_size=6, decoder_hidden_size=10),
        tokenizer.src_vocab_size,
        tokenizer.tgt_vocab_size,
    )
    inspection = seq2seq.inspect(model, tokenizer, cfg, "c a d")
    assert all(layer.gates == {} for layer in inspection.layers)
    written = reports.write_inspection(tmp_path, inspection)
    assert sorted(path.name for path in written) == [
        "attention.png",
        "hidden_states.png",
        "trace.json",
        "trajectory.png",
    ]


def test_beam_size_is_refused_for_a_language_model(char_lm, tmp_path):
    assert_one_line_error(
        seqkit_here("inspect", char_lm, "--text", "a", "--beam-size", "3", "--output", tmp_path / "x"),
        "--beam-size",
    )
