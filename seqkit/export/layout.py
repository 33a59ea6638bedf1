"""What an exported model directory holds, shared by the exporter (onnx.py) and the runtime (runtime.py).

    export.json      this description: format, model type, graphs with their inputs and outputs, the
                     decoder state (its arrays, their batch axis, the output each step returns it in),
                     seq2seq's `columns` (the pieces the search reads, as the torch model's; null: all)
    encoder.onnx     seq2seq: (src, src_lengths) -> memory, keys, the first decoder state
    decoder.onnx     seq2seq: one decoder step -> log_probs, the new state, attention weights
    select.onnx      seq2seq: TopK, beam search's selection (faster than numpy's)
    lm.onnx          lm: tokens (batch, length) and a state -> the next token's log_probs, the new state
    classifier.onnx  classifier: a padded batch (inputs, lengths) -> the head's outputs (logits, or a
                     forecaster's standardised values)
    config.toml      the model's config (decoding and sampling settings, the model's shape)
    encoding.json    classifier: its labels and the scaling of its numbers, as in the model directory
    spm.model ...    the tokenizer files, as in the model directory (a classifier of numbers has none)
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
GRAPH_FILES = ("encoder.onnx", "decoder.onnx", "lm.onnx", "classifier.onnx", SELECTION)
# model.type -> the command an export of it serves, and what the model is called
TASKS = {
    "seq2seq": ("translate", "encoder-decoder"),
    "lm": ("generate", "language model"),
    "classifier": ("predict", "sequence classifier"),
}
# model.type -> the graphs export.json must name for it (beside seq2seq's optional select)
GRAPHS = {"seq2seq": ("encoder", "decoder"), "lm": ("lm",), "classifier": ("classifier",)}
