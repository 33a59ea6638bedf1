"""A torch model as the search's steps (decoding/search.py): numpy in, numpy out.

The model runs on its own device in eval mode and without autograd; only what the search reads comes
back to the CPU each step: the log-probabilities (rows, vocab) and the attention weights (rows, src_len).
On the CPU these are views of torch's memory, not copies. Encoder outputs and decoder states stay torch
tensors on the device; the search only reorders them, through `select`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seqkit.data.tokenizer import BOS, EOS
from seqkit.models.classifier import SequenceClassifier
from seqkit.models.softmax import given_pieces
from seqkit.runtime import devices


@contextmanager
def evaluating(model: torch.nn.Module):
    """`model` in eval mode for the block, then back in the mode it was in (validation during training)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.float().cpu().numpy()


@dataclass
class _OnDevice:
    """Something of the model's own (EncodedSource, DecoderState, an RNN state) with a numpy `select`."""

    value: Any
    device: torch.device

    def select(self, index: np.ndarray) -> _OnDevice:
        rows = torch.from_numpy(np.ascontiguousarray(index, dtype=np.int64)).to(self.device)
        if isinstance(self.value, torch.Tensor):  # an RNN state (layers, batch, hidden)
            return _OnDevice(self.value.index_select(1, rows), self.device)
        if isinstance(self.value, tuple):  # an LSTM's (hidden, cell)
            return _OnDevice(tuple(v.index_select(1, rows) for v in self.value), self.device)
        return _OnDevice(self.value.select(rows), self.device)


class Seq2SeqSteps:
    """An encoder-decoder (models/seq2seq.py) as search steps. Its output layer computes only the pieces
    that training gave it (models/softmax.py: the others have probability 0), and `columns` tells the
    search which they are; a copy model's output covers every piece, as it may copy any."""

    def __init__(self, model: torch.nn.Module):
        self.model: Any = model  # (its encode / step are not nn.Module's)
        self.device = devices.model_device(model)
        decoder: Any = model.decoder
        given = None if self.model.copy else given_pieces(decoder.output)
        self._given: np.ndarray | None = None if given is None else given.cpu().numpy()
        self._int8_output: tuple[torch.Tensor, torch.Tensor] | None = None  # unpacked once, see output_layer
        self._given_layer = None if self._given is None else self.output_layer(self._given)

    @torch.no_grad()
    def encode(self, src: np.ndarray, src_lengths: np.ndarray) -> tuple[_OnDevice, _OnDevice]:
        # lengths stay on the CPU: packing reads them there
        encoded, state = self.model.encode(
            torch.from_numpy(src).to(self.device), torch.from_numpy(src_lengths)
        )
        return _OnDevice(encoded, self.device), _OnDevice(state, self.device)

    @torch.no_grad()
    def step(self, prev: np.ndarray, state: _OnDevice, encoded: _OnDevice, output_layer=None):
        """`output_layer`: what computes the logits from the decoder's features instead of the model's own
        output layer (a shortlist's, `output_layer` below): then the log-probabilities are (rows, its
        columns), normalised over them."""
        tokens = torch.from_numpy(np.ascontiguousarray(prev)).to(self.device)
        output_layer = output_layer or self._given_layer
        if output_layer is None:
            logits, new_state, weights = self.model.step(tokens, state.value, encoded.value)
        else:
            features, new_state, weights = self.model.step_features(tokens, state.value, encoded.value)
            logits = output_layer(features)  # (rows, columns)
        log_probs = torch.log_softmax(logits.float(), dim=-1)  # (rows, vocab or columns)
        return _numpy(log_probs), _OnDevice(new_state, self.device), _numpy(weights)

    @torch.no_grad()
    def output_layer(self, columns: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
        """The output layer restricted to its rows `columns` (n,): features (rows, hidden) -> logits
        (rows, n). A quantized layer (`--quantize`) stays int8: its rows are packed anew for the batch
        (about 1 ms for 2,000 rows), from its weight unpacked once: unpacking the whole layer took 27 ms,
        a shortlist's greedy search paid it at every batch and ran slower than without the shortlist
        (bench/README.md)."""
        layer = self.model.decoder.output
        index = torch.from_numpy(columns).to(self.device)
        if not isinstance(layer.weight, torch.Tensor):  # torch's dynamically quantized Linear
            if self._int8_output is None:
                self._int8_output = (layer.weight(), layer.bias())  # (each call unpacks the whole layer)
            weight, bias = self._int8_output
            packed = torch.ops.quantized.linear_prepack(
                weight.index_select(0, index), bias.index_select(0, index)
            )
            # reduce_range as the layer itself computes (activations in 7 bits: fbgemm's overflow guard)
            return lambda features: torch.ops.quantized.linear_dynamic(features, packed, reduce_range=True)
        weight, bias = layer.weight.index_select(0, index), layer.bias.index_select(0, index)
        cast: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}

        def restricted(features: torch.Tensor) -> torch.Tensor:
            device = features.device.type
            if not torch.is_autocast_enabled(device):
                return F.linear(features, weight, bias)
            # cast once, as autocast caches the cast of a model's own weight (these rows are a copy)
            dtype = torch.get_autocast_dtype(device)
            if dtype not in cast:
                cast[dtype] = (weight.to(dtype), bias.to(dtype))
            return F.linear(features.to(dtype), *cast[dtype])

        return restricted

    def columns(self, encoded: _OnDevice) -> np.ndarray | None:
        """The target ids of `step`'s columns: the pieces the output layer gives (None: all of them)."""
        return self._given

    @torch.no_grad()
    def copy_gates(self, src_ids: list[int], tokens: list[int]) -> list[float] | None:
        """A copy model's gate (the probability of generating) at each step of the output `tokens` and
        its EOS step, by teacher forcing; None for a model without copy."""
        if not getattr(self.model, "copy", False):
            return None
        src = torch.tensor([[*src_ids, EOS]], device=self.device)
        tgt_in = torch.tensor([[BOS, *tokens]], device=self.device)
        return self.model.copy_gates(src, torch.tensor([src.size(1)]), tgt_in)[0].float().tolist()

    @staticmethod
    def top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """torch's selection on the same memory: 2.5x numpy's argpartition at beam sizes (search.py)."""
        best = torch.from_numpy(values).topk(k, dim=1)
        return best.values.numpy(), best.indices.numpy()


class LanguageModelSteps:
    """A recurrent language model (models/lm.py) as sampling steps."""

    def __init__(self, model: torch.nn.Module):
        self.model: Any = model  # (its encode / step are not nn.Module's)
        self.device = devices.model_device(model)

    @torch.no_grad()
    def start(self, tokens: np.ndarray) -> tuple[np.ndarray, _OnDevice]:
        logits, state = self.model.prompt(torch.from_numpy(tokens).to(self.device))  # (1, vocab)
        return _numpy(torch.log_softmax(logits.float(), dim=-1)), _OnDevice(state, self.device)

    @torch.no_grad()
    def step(self, tokens: np.ndarray, state: _OnDevice) -> tuple[np.ndarray, _OnDevice]:
        logits, new_state = self.model.step(torch.from_numpy(tokens).to(self.device), state.value)
        return _numpy(torch.log_softmax(logits.float(), dim=-1)), _OnDevice(new_state, self.device)


class ClassifierHead:
    """A classifier or forecaster (models/classifier.py) as classify.py's head: its outputs of a padded
    batch (data/encoding.py's `padded`), computed on its device, back as numpy."""

    def __init__(self, model: SequenceClassifier):
        self.model = model
        self.size = model.head.out_features
        self.device = devices.model_device(model)

    @torch.no_grad()
    def __call__(self, inputs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        # (the lengths stay on the CPU, where packing reads them)
        return _numpy(self.model(torch.from_numpy(inputs).to(self.device), torch.from_numpy(lengths)))


def steps_of(model: torch.nn.Module) -> Seq2SeqSteps | LanguageModelSteps | ClassifierHead:
    """What runs a model: an encoder-decoder has `encode`; a classifier is a head, not a search."""
    if isinstance(model, SequenceClassifier):
        return ClassifierHead(model)
    return Seq2SeqSteps(model) if hasattr(model, "encode") else LanguageModelSteps(model)
