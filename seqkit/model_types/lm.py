"""The recurrent language model (`model.type = "lm"`): a decoder without attention."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seqkit.config import Config
from seqkit.data.text import read_lines
from seqkit.data.tokenizer import EOS, SPECIALS, Tokenizer
from seqkit.errors import DataError
from seqkit.model_types.base import ModelType, tokenizer_and_model
from seqkit.model_types.inspection import Inspection, named_traces
from seqkit.models.lm import RNNLanguageModel
from seqkit.models.trace import trace_rnn
from seqkit.scoring.likelihood import score_text
from seqkit.training import lm as trainer


def score_perplexity(model, tokenizer: Tokenizer, cfg: Config, source: Path | None, reference: Path) -> dict:
    """Perplexity per token and bits per character of the non-empty lines of `reference`."""
    lines = [line for line in read_lines(reference) if line.strip()]
    if not lines:
        raise DataError(f"{reference}: no non-empty lines to score; give the text of a test set with -r")
    scores = score_text(model, tokenizer, lines, cfg.train.bptt_length)
    return {
        "perplexity": scores["ppl"],
        "bits_per_char": scores["bpc"],
        "nll_per_token": scores["nll_per_token"],
        "tokens": scores["tokens"],
    }


@torch.no_grad()
def inspect(model, tokenizer: Tokenizer, cfg: Config, text: str) -> Inspection:
    """Trace a language model reading `text` (after the EOS every line starts with)."""
    model.eval()
    ids = [EOS, *(tokenizer.encode_tgt([text])[0] if text else [])]
    embedded = model.embedding(torch.tensor([ids]))[0]  # (steps, embedding)
    cell = "lstm" if isinstance(model.rnn, nn.LSTM) else "gru" if isinstance(model.rnn, nn.GRU) else "rnn"
    traces, _ = trace_rnn(model.rnn, cell, embedded)
    pieces = [SPECIALS[EOS], *tokenizer.tgt_pieces(ids[1:])]
    return Inspection(text, None, cell, named_traces("", traces, pieces), None)


def probe(model, length: int) -> None:
    model(torch.full((2, length), EOS + 1, dtype=torch.long))


def describe_data(data: dict[str, int]) -> str:
    controls = data.get("control_lines", 0)  # (0.1's logs have no count)
    dropped = f"; control characters removed from {controls:,} lines" if controls else ""
    if data.get("break_lines"):
        dropped += f"; line breaks in a field read as spaces in {data['break_lines']:,} JSON lines"
    return (
        f"{data['train_lines']:,} training lines ({data['train_tokens']:,} tokens in {data['streams']} "
        f"streams), {data['dev_lines']:,} dev lines; vocabulary {data['vocab']:,}{dropped}"
    )


MODEL_TYPE = ModelType(
    name="lm",
    title="language model",
    task="generate",
    attends=False,
    build=tokenizer_and_model(RNNLanguageModel.from_config),
    train=trainer.train,
    perplexity=score_perplexity,
    inspect=inspect,
    probe=probe,
    time_name="time",
    per_step=lambda layer: False,
    describe_data=describe_data,
)
