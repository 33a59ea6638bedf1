"""`seqkit info`: layers, shapes, parameter totals, vocabulary, training and files of a model directory."""

from __future__ import annotations

import json
import shutil

from seqkit import model_types, modeldir
from seqkit.data.tokenizer import EOS, UNK
from seqkit.results import classifier_line, training_lines
from seqkit.training.log import EndRecord, TrainRecord
from seqkit.viz.summary import _training, summarize
from seqkit.wording import counted
from tests.helpers import assert_one_line_error, seqkit, seqkit_here


def test_seq2seq_summary(reverse_model):
    info = summarize(reverse_model)
    _, _, model = model_types.load(reverse_model)
    total = sum(p.numel() for p in model.parameters())
    assert info["parameters"] == {"trainable": total, "all": total}
    assert sum(row["parameters"] for row in info["layers"]) == total
    rows = {row["name"]: row for row in info["layers"]}
    # toy_config: embeddings 32, bidirectional encoder 32 per direction, decoder 64
    assert rows["encoder.embedding"]["output_shape"] == "(batch, src_len, 32)"
    assert rows["encoder.rnn"]["output_shape"] == "(batch, src_len, 64)"
    assert rows["decoder.attention"]["output_shape"] == "(batch, 64), (batch, src_len)"
    assert rows["decoder.rnn"]["per_step"] and rows["decoder.rnn"]["output_shape"] == "(batch, 1, 64)"
    vocab = model.decoder.output.out_features
    assert rows["decoder.output"]["output_shape"] == f"(batch, {vocab})"
    assert rows["decoder.attention.energy_layer"]["output_shape"] is None  # used through its weight
    assert not rows["decoder.attention.energy_layer"]["per_step"]  # (no step of its own to show)
    assert rows["decoder.output"]["parameters"] == 64 * vocab + vocab
    assert info["cell"] == "gru" and info["attention"] == "bahdanau"
    assert info["vocabulary"]["joint"] and len(info["vocabulary"]["sample_pieces"]) > 0
    # the output layer gives the pieces that are training targets, and UNK and EOS
    targets = {
        i
        for i, count in enumerate(
            modeldir.read_vocab_counts(reverse_model, {"src": vocab, "tgt": vocab})["tgt"]
        )
        if count
    }
    assert info["vocabulary"]["output_pieces"] == len(targets | {UNK, EOS}) < info["vocabulary"]["target"]
    training = info["training"]
    assert training["steps"] == 600 and training["finished"] and training["stopped_by"] == "max_steps"
    best = training["best_validation"]
    assert best["dev_bleu"] == training["best_dev_bleu"] and best["bleu_signature"].startswith("nrefs:1")
    assert info["files"]["model.safetensors"] == (reverse_model / "model.safetensors").stat().st_size


def test_tied_parameters_count_once(char_lm):
    info = summarize(char_lm)
    cfg, _, model = model_types.load(char_lm)
    total = sum(p.numel() for p in model.parameters())
    assert info["parameters"]["all"] == total
    rows = {row["name"]: row for row in info["layers"]}
    assert rows["output"]["tied"] == ["weight = embedding.weight"]
    assert rows["output"]["parameters"] == model.output.bias.numel()
    assert rows["rnn"]["output_shape"] == f"(batch, time, {cfg.model.decoder_hidden_size})"
    assert sum(row["parameters"] for row in info["layers"]) == total


def test_info_command(reverse_model, tmp_path):
    result = seqkit_here("info", reverse_model, "--json")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == json.loads(json.dumps(summarize(reverse_model)))
    table = seqkit_here("info", reverse_model)
    text = table.stdout.decode()
    assert table.returncode == 0 and "decoder.output" in text and "(batch, src_len, 32)" in text
    assert f"parameters: {summarize(reverse_model)['parameters']['all']:,}" in text
    assert "bleu signature: nrefs:1" in text
    # the files are the model's: seqkit's marker and lock are not listed
    files = summarize(reverse_model)["files"]
    assert "model.safetensors" in files and not [name for name in files if name.startswith(".")]
    assert_one_line_error(seqkit_here("info", tmp_path / "missing"), "missing", "no such model directory")


def test_info_prints_paths_as_they_are_and_the_whole_table_in_a_pipe(reverse_model, tmp_path):
    bracketed = tmp_path / "run[a]"  # rich markup would eat "[a]"
    shutil.copytree(reverse_model, bracketed)
    result = seqkit("info", bracketed)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert lines[0] == f"{bracketed}: GRU encoder-decoder, bahdanau attention"
    names = [row["name"] for row in summarize(reverse_model)["layers"]]
    for name in names:  # no name cut short or wrapped at 80 columns
        assert any(line.split()[:1] == [name] for line in lines), name


def test_the_steps_of_a_run_stopped_between_two_logged_steps_are_its_last():
    logged = TrainRecord(30, 1, 2.0, 7.4, 0.5, 1.0, 1e-3, 1000.0, 500, 3.0)
    stopped = EndRecord("interrupted", "SIGTERM", 34, 0, "bleu", None, elapsed_s=3.5)
    assert _training([logged, stopped])["steps"] == 34  # (it said 30: the last logged step)
    assert _training([logged])["steps"] == 30


def test_counts_are_singular_for_one():
    # ("1 steps in 0:00:03, 1 validations", "1 number(s) per step")
    stopped = EndRecord("interrupted", "SIGTERM", 1, 0, "bleu", None, elapsed_s=3.5)
    assert training_lines(_training([stopped]), False) == [
        "training: 1 step in 0:00:03, 0 validations, stopped by SIGTERM"
    ]
    series = {"inputs": "numbers", "features": 1, "columns": ["temp"], "window": 24, "head": "regression",
              "outputs": 1, "pooling": "last", "activation": None, "bag_of_tokens": False}  # fmt: skip
    assert classifier_line(series).startswith("reads 1 number per step temp, windows of 24 steps; ")
    assert classifier_line(series).endswith("outputs 1 value (regression)")
    assert counted(12_000, "label") == "12,000 labels"


def test_a_layer_size_equal_to_the_probes_length_is_not_taken_for_time():
    # 11 labels (the probe's length) were shown as "(batch, steps)"
    from seqkit import config as config_lib
    from seqkit.models.classifier import SequenceClassifier
    from seqkit.viz.summary import SAMPLE_LENGTHS, layer_table

    cfg = config_lib.ModelConfig(type="classifier", embedding_size=SAMPLE_LENGTHS[1], encoder_hidden_size=8)
    for labels in SAMPLE_LENGTHS:
        model = SequenceClassifier.from_config(cfg, vocab_size=20, features=0, outputs=labels)
        rows = {row["name"]: row for row in layer_table(model, model_types.MODEL_TYPES["classifier"])}
        assert rows["head"]["output_shape"] == f"(batch, {labels})"
        assert rows["encoder.embedding"]["output_shape"] == f"(batch, steps, {SAMPLE_LENGTHS[1]})"
