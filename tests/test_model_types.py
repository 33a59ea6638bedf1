"""The registry of model types: every `model.type` a config accepts has an entry, and loading a model
directory builds the type its config names."""

from __future__ import annotations

import typing

import pytest

from seqkit import model_types, modeldir
from seqkit.config import Config, ModelConfig
from seqkit.errors import ConfigError, ModelDirError
from seqkit.model_types import MODEL_TYPES
from seqkit.models.classifier import SequenceClassifier
from seqkit.models.lm import RNNLanguageModel
from seqkit.models.seq2seq import Seq2Seq

BUILT = {"seq2seq": Seq2Seq, "lm": RNNLanguageModel, "classifier": SequenceClassifier}


def test_every_model_type_choice_has_an_entry_and_every_entry_is_a_choice():
    choices = typing.get_args(typing.get_type_hints(ModelConfig)["type"])
    assert sorted(choices) == sorted(MODEL_TYPES)
    assert ModelConfig().type in MODEL_TYPES
    for name, model_type in MODEL_TYPES.items():
        assert model_type.name == name
        assert model_type.task in ("translate", "generate", "predict")


def test_every_model_type_is_served_at_its_endpoint():
    from seqkit import server

    assert server.ENDPOINTS.keys() == server.SERVED.keys() == MODEL_TYPES.keys()
    assert set(server.ENDPOINTS.values()) == set(server.REQUESTS)


def test_every_model_type_exports_for_its_own_task():
    from seqkit.export import layout
    from seqkit.export import onnx as onnx_export

    assert onnx_export.BUILDERS.keys() == layout.TASKS.keys() == layout.GRAPHS.keys() == MODEL_TYPES.keys()
    assert all(layout.TASKS[name][0] == model_type.task for name, model_type in MODEL_TYPES.items())


def test_loading_builds_the_type_the_config_names(reverse_model, char_lm):
    for model_dir, name in ((reverse_model, "seq2seq"), (char_lm, "lm")):
        cfg, _, model = model_types.load(model_dir)
        assert cfg.model.type == name and model_types.of(cfg) is MODEL_TYPES[name]
        assert type(model) is BUILT[name] and not model.training
        model_types.require_task(cfg, MODEL_TYPES[name].task, model_dir)  # its own task is no error


@pytest.mark.parametrize("name", sorted(MODEL_TYPES))
def test_each_entry_builds_its_own_model(reverse_model, name, tmp_path):
    import shutil

    from seqkit.data.encoding import Encoding

    model_dir = tmp_path / "model"
    shutil.copytree(reverse_model, model_dir)
    Encoding("text", "softmax", ("a", "b"), 0, (), (), 2).write(model_dir)  # what a classifier adds
    cfg = Config(model=ModelConfig(type=name, embedding_size=8, decoder_hidden_size=8))
    _, model = MODEL_TYPES[name].build(cfg, model_dir)
    assert type(model) is BUILT[name]


def test_a_model_directory_whose_config_names_another_type_does_not_load_silently(reverse_model, tmp_path):
    """The weights of an encoder-decoder under a config that says `lm` are refused, not half-loaded."""
    import shutil

    lm_dir = tmp_path / "relabelled"
    shutil.copytree(reverse_model, lm_dir)
    config = (lm_dir / modeldir.CONFIG).read_text().replace('type = "seq2seq"', 'type = "lm"')
    (lm_dir / modeldir.CONFIG).write_text(config)
    with pytest.raises(ModelDirError, match="damaged or from another model"):
        model_types.load(lm_dir)


def test_the_wrong_task_names_the_command_that_fits(reverse_model, char_lm):
    cfg = model_types.load(reverse_model)[0]
    with pytest.raises(
        ConfigError, match=r"holds an encoder-decoder \(model.type = seq2seq\), which `seqkit generate`"
    ):
        model_types.require_task(cfg, "generate", reverse_model)
