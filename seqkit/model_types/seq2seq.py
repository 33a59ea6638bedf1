"""The encoder-decoder with attention (`model.type = "seq2seq"`): a translation model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from seqkit.config import Config
from seqkit.data.corpus import ParallelIds
from seqkit.data.text import read_parallel
from seqkit.data.tokenizer import BOS, EOS, Tokenizer
from seqkit.decoding.inference import attention_map
from seqkit.decoding.search import decode_corpus
from seqkit.decoding.torch_steps import Seq2SeqSteps
from seqkit.errors import ConfigError, DataError
from seqkit.model_types.base import ModelType, described_fixes, tokenizer_and_model
from seqkit.model_types.inspection import Inspection, named_traces
from seqkit.models.seq2seq import Seq2Seq
from seqkit.models.trace import trace_rnn
from seqkit.scoring.likelihood import check_pair_lengths, corpus_nll, perplexity
from seqkit.training import seq2seq as trainer


def score_perplexity(model, tokenizer: Tokenizer, cfg: Config, source: Path | None, reference: Path) -> dict:
    """Perplexity of `reference` given `source`, line by line (teacher forcing)."""
    if source is None:
        raise DataError("--model with a seq2seq model needs --source: the source side of the --ref file")
    # every pair, an empty one too: an empty reference is still an end of sentence the model must give
    # (Model.score scores it; leaving such pairs out, unsaid, made the two disagree)
    sources, references = read_parallel(source, reference)
    if not sources:
        raise DataError(f"{source}: no sentence pairs to score")
    src_ids, tgt_ids = tokenizer.encode_src(sources), tokenizer.encode_tgt(references)
    check_pair_lengths(src_ids, tgt_ids, cfg.decode.max_input_pieces, (f"{source}:", f"{reference}:"))
    data = ParallelIds(src_ids, tgt_ids, references, list(range(len(sources))))
    nll, tokens = corpus_nll(model, data, cfg.decode.batch_size)
    return {"perplexity": perplexity(nll, tokens), "nll_per_token": nll / tokens, "tokens": tokens}


@torch.no_grad()
def inspect(model, tokenizer: Tokenizer, cfg: Config, text: str) -> Inspection:
    """Translate `text` (greedy or beam, as `cfg.decode` says), then trace encoder and decoder on it."""
    if not text:
        raise ConfigError("--text: empty; give a sentence to translate")
    model.eval()
    cell = model.decoder.cell_type
    src_ids = tokenizer.encode_src([text])[0]
    # a search, whatever sampling temperature the config gives translate
    search = dataclasses.replace(cfg.decode, temperature=0.0)
    best = decode_corpus(Seq2SeqSteps(model), [src_ids], search, with_attention=True)[0][0]
    attention = attention_map(tokenizer, text, best, Seq2SeqSteps(model), src_ids)
    src = torch.tensor([src_ids + [EOS]])
    embedded = model.encoder.embedding(src)[0]  # (src_len, embedding)
    encoder_traces, _ = trace_rnn(model.encoder.rnn, cell, embedded)
    # The decoder re-reads the chosen output (BOS, then its pieces) while the hook keeps what its RNN is
    # given at each step: the state before the first step, and every step's input. Bahdanau and Luong
    # orders need no code of their own.
    rnn_calls = []
    hook = model.decoder.rnn.register_forward_pre_hook(lambda module, args: rnn_calls.append(args))
    try:
        encoded, state = model.encode(src, torch.tensor([src.size(1)]))
        for token in [BOS, *best.tokens][: len(attention.output)]:
            _, state, _ = model.step(torch.tensor([token]), state, encoded)
    finally:
        hook.remove()
    decoder_inputs = torch.cat([args[0][0] for args in rnn_calls])  # (steps, rnn input)
    decoder_traces, _ = trace_rnn(model.decoder.rnn, cell, decoder_inputs, rnn_calls[0][1])
    layers = named_traces("encoder ", encoder_traces, attention.source)
    layers += named_traces("decoder ", decoder_traces, attention.output)
    text_out = tokenizer.decode_tgt([best.tokens])[0]
    return Inspection(text, text_out, cell, layers, attention)


def probe(model, length: int) -> None:
    """Encode a (2, length) batch and take one decoder step."""
    tokens = torch.full((2, length), EOS + 1, dtype=torch.long)
    encoded, state = model.encode(tokens, torch.tensor([length, length]))
    model.step(torch.full((2,), BOS), state, encoded)


def per_step(layer: str) -> bool:
    """The decoder's layers run once per output step, except those that read the encoder's output once."""
    return layer.startswith("decoder.") and not layer.endswith(("key_layer", "bridge"))


# start-record counts of what cleaning did, and how the start line names them
CLEANING = (
    ("empty_pairs", "empty"),
    ("long_pairs", "longer than data.max_length"),
    ("ratio_pairs", "outside data.max_length_ratio"),
    ("duplicate_pairs", "duplicates"),
)


def describe_data(data: dict[str, int]) -> str:
    if "empty_pairs" in data:
        skipped = ", ".join(f"{data[key]:,} {label}" for key, label in CLEANING if data.get(key))
        fixed = described_fixes(data)
        cleaning = f"skipped {data['skipped_pairs']:,}{': ' + skipped if skipped else ''}"
        cleaning += f"; removed {fixed}" if fixed else ""
    else:  # a log of seqkit 0.1
        cleaning = f"{data['skipped_pairs']:,} too long or empty, skipped"
    held_out = " held out of data.train" if data.get("dev_held_out") else ""
    return (
        f"{data['train_pairs']:,} training pairs ({cleaning}), {data['dev_pairs']:,} dev pairs{held_out}; "
        f"vocabulary {data['src_vocab']:,}/{data['tgt_vocab']:,}"
    )


MODEL_TYPE = ModelType(
    name="seq2seq",
    title="encoder-decoder",
    task="translate",
    attends=True,
    build=tokenizer_and_model(Seq2Seq.from_config),
    train=trainer.train,
    perplexity=score_perplexity,
    inspect=inspect,
    probe=probe,
    time_name="src_len",
    per_step=per_step,
    describe_data=describe_data,
)
