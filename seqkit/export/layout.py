"""What an exported model directory holds, shared by the exporter (onnx.py) and the runtime (runtime.py).

    export.json      this description: format, model type, graphs with their inputs and outputs, the
                     decoder state (its arrays, their batch axis, the output each step returns it in),
                     seq2seq's `columns` (the pieces the search reads, as the torch model's; null: all)
    encoder.onnx     seq2seq: (src, src_lengths) -> memory, keys, the first decoder state
    decoder.onnx     seq2seq: one decoder step -> log_probs, the new state, attention weights
    select.onnx      seq2seq: TopK, beam search's selection (faster than numpy's)
    lm.onnx          lm: tokens (batch, length) and a state -> the next token's log_probs, the new state
    config.toml      the model's config (decoding and sampling settings, the model's shape)
    spm.model ...    the tokenizer files, as in the model directory
    .seqkit          the marker of a directory seqkit wrote

export.json is written last and removed first when an export is replaced: a directory without it is
an unfinished export, and loading it says so.
"""

from __future__ import annotations

DESCRIPTION = "export.json"
CONFIG = "config.toml"  # (as a model directory's: modeldir.CONFIG)
FORMAT = "onnx"
VERSION = 1
SELECTION = "select.onnx"
GRAPH_FILES = ("encoder.onnx", "decoder.onnx", "lm.onnx", SELECTION)
TASKS = {"seq2seq": ("translate", "encoder-decoder"), "lm": ("generate", "language model")}
