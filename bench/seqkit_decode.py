"""Decode a file with a seqkit model and time the decoding alone (as Joey's "Generation took" does):
model loading, reading and writing are timed apart. Run by bench/run.py in its own process.

    python bench/seqkit_decode.py MODEL_DIR SOURCE OUTPUT --beam-size 5 [--quantize] [--shortlist] [--precision bf16]

Prints one JSON object: load_s, decode_s, sentences, output_pieces (pieces of the best hypotheses, no
EOS: what the search produced, counted as Joey's raw output is).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seqkit import config as config_lib
from seqkit import model_types
from seqkit.data.text import read_lines
from seqkit.decoding import shortlist
from seqkit.decoding.search import decode_corpus
from seqkit.decoding.torch_steps import Seq2SeqSteps
from seqkit.runtime import devices


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quantize", action="store_true")
    parser.add_argument("--shortlist", action="store_true")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    cfg, tokenizer, model = model_types.load(args.model_dir)
    options = {"decode": {"beam_size": args.beam_size}}
    decode = config_lib.with_overrides(cfg, options, "bench").decode
    if args.quantize:
        model = devices.quantize_int8(model)
    steps = Seq2SeqSteps(model)
    if args.shortlist:
        sizes = tokenizer.src_vocab_size, tokenizer.tgt_vocab_size
        steps = shortlist.ShortlistSteps(steps, shortlist.read(args.model_dir, *sizes))
    loaded = time.perf_counter()
    lines = read_lines(args.source)
    read = time.perf_counter()
    with devices.Precision(args.precision, torch.device("cpu")).autocast():
        # decode_corpus is what inference.translate_lines runs; called here to count the output pieces
        best = [options[0].tokens for options in decode_corpus(steps, tokenizer.encode_src(lines), decode)]
        outputs = tokenizer.decode_tgt(best)
    decoded = time.perf_counter()
    args.output.write_text("".join(line + "\n" for line in outputs), encoding="utf-8")
    timing = {"load_s": loaded - start, "decode_s": decoded - read, "sentences": len(lines)}
    print(json.dumps({**timing, "output_pieces": sum(len(tokens) for tokens in best)}))


if __name__ == "__main__":
    main()
