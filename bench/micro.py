"""Measurements behind bench/README.md's tables and "Where a float32 training step goes", kept to be rerun.

    python bench/micro.py products            # two ideas for larger products, each A/B in one process
    python bench/micro.py profile MODEL_DIR   # torch.profiler over 12 training steps of MODEL_DIR's model
    python bench/micro.py tanh                # torch's tanh against 2 sigmoid(2x) - 1 (attention._energy)
    python bench/micro.py compile             # torch.compile of the attention scores and of a GRU cell step
    python bench/micro.py decode MODEL_DIR BEAM  # the test set: float32, int8 linear layers, int8 + GRU/LSTM
    python bench/micro.py heap MODEL_DIR      # glibc's live and free heap (mallinfo2) over 12 training steps
    python bench/micro.py adam                # Adam's foreach update against its fused one, the workload's weights
    python bench/micro.py pieces MODEL_DIR    # the test set decoded over the given pieces against the whole layer
    python bench/micro.py blocks MODEL_DIR    # the test set decoded with the attention energies whole and in blocks of rows
    python bench/micro.py loss                # the fused output layer + cross-entropy over 8,000 and 4,238 pieces
    python bench/micro.py bf16                # per-step products in float32 and bf16 (this CPU's bf16 kernels)
    python bench/micro.py int8                # torch's dynamic int8 Linear against torch._int_mm with per-row scales
    python bench/micro.py decode-profile MODEL_DIR  # torch.profiler over int8 greedy decoding of the test set
    python bench/micro.py budget MODEL_DIR    # int8 decoding's products against the time the issue's targets allow

`decode`, `pieces`, `blocks`, `decode-profile`, `budget` and `heap` want a model directory of the benchmark workload and, for `decode`, the test set of
a full run (`bench/work/full/data/test.{es,en}`). Run `decode` once with `THP_MEM_ALLOC_ENABLE=0` in the
environment and once without to see what huge pages do to decoding.

`profile` wants a model directory of the benchmark workload (any `bench/work/*/seqkit-fp32` left by
`make bench`, or a short `seqkit train --config bench/workload.toml ...`); it trains the loaded model
for 15 steps on batches of about 3,000 target tokens from the first 4,000 training pairs and profiles
the last 12. Nothing else should run on the machine meanwhile.

Each command prints its measurements and records what it printed, with the date, the CPU and torch's
version, in bench/results-micro-COMMAND.json (figures quoted in bench/README.md before 2026-12-07 were
taken from the printed output, which was not kept).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from measure import cpu_name  # bench/ is this script's folder, first on sys.path

REPO = Path(__file__).resolve().parent.parent
THREADS = 2
BATCH, STEPS = 85, 35  # sentences per batch and decoder steps: a typical batch of the workload


def _time_ms(function, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats * 1000


def products() -> None:
    """The recurrent weight's gradient summed per step against one product after the loop; the query
    and recurrent products of one hidden state apart against one product."""
    torch.manual_seed(0)
    inputs, grads = torch.randn(STEPS, BATCH, 512), torch.randn(STEPS, BATCH, 1536)

    def per_step():
        total = torch.zeros(1536, 512)
        for t in range(STEPS):
            total += grads[t].T @ inputs[t]
        return total

    def after_loop():
        return grads.reshape(-1, 1536).T @ inputs.reshape(-1, 512)

    hidden = torch.randn(BATCH, 512)
    w_query, w_hh, b_hh = torch.randn(512, 512), torch.randn(1536, 512), torch.randn(1536)
    w_both, b_both = torch.cat([w_query, w_hh]), torch.cat([torch.zeros(512), b_hh])

    def apart():
        return F.linear(hidden, w_query), F.linear(hidden, w_hh, b_hh)

    def together():
        return F.linear(hidden, w_both, b_both).split([512, 1536], dim=1)

    for name, function, repeats, unit in (
        ("weight gradient per step (ms per batch)", per_step, 20, 1),
        ("weight gradient after the loop (ms per batch)", after_loop, 20, 1),
        ("query and recurrent products apart (us)", apart, 2000, 1000),
        ("query and recurrent products as one (us)", together, 2000, 1000),
    ):
        _time_ms(function, 3)  # warm up
        print(f"{name}: {_time_ms(function, repeats) * unit:.1f}")


def adam() -> None:
    """One Adam update of the workload model's weights (random gradients), foreach against fused,
    alternating twice in this process."""
    from seqkit import configfile
    from seqkit.models.seq2seq import Seq2Seq

    cfg = configfile.load(REPO / "bench" / "workload.toml", [])
    vocab = cfg.tokenizer.vocab_size
    for variant in ("foreach", "fused", "foreach", "fused"):
        torch.manual_seed(0)
        model = Seq2Seq(cfg.model, vocab, vocab)
        for parameter in model.parameters():
            parameter.grad = torch.randn_like(parameter)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **{variant: True})
        optimizer.step()  # the moments exist from here on
        count = sum(p.numel() for p in model.parameters())
        print(f"{variant}: {count / 1e6:.1f} M weights, {_time_ms(optimizer.step, 20):.1f} ms per update")


def tanh() -> None:
    """The attention energy's tanh over one decoding step's (64, 35, 512) floats, in place in a buffer."""
    from seqkit.models.attention import _energy

    torch.manual_seed(0)
    keys, query = torch.randn(64, 35, 512), torch.randn(64, 512)
    buffer = torch.empty_like(keys)

    def copy():
        return buffer.copy_(keys)

    for name, function in (
        ("copy alone", copy),
        ("copy + tanh_", lambda: copy().tanh_()),
        ("copy + sigmoid_", lambda: copy().sigmoid_()),
        ("copy + mul_(2).sigmoid_().mul_(2).sub_(1)", lambda: copy().mul_(2).sigmoid_().mul_(2).sub_(1)),
    ):
        _time_ms(function, 10)
        print(f"{name} (us): {_time_ms(function, 200) * 1000:.0f}")
    difference = (_energy(keys, query) - torch.tanh(keys + query.unsqueeze(1))).abs().max()
    print(f"largest difference from torch.tanh: {difference:.1e}")


def compile_() -> None:
    """torch.compile (inductor, C++ through the machine's compiler) of two pieces of a step, with the
    time of the first call, which compiles, apart."""
    from seqkit.models.attention import _energy
    from seqkit.models.cells import cell_step

    torch.manual_seed(0)
    keys, query, v = torch.randn(64, 35, 512), torch.randn(64, 512), torch.randn(512)
    inputs, hidden = torch.randn(BATCH, 1536), torch.randn(BATCH, 512)
    w_hh, b_hh = torch.randn(1536, 512) * 0.05, torch.randn(1536)

    def scores_tanh(keys, query, v):
        return torch.tanh(keys + query.unsqueeze(1)) @ v

    def gru(inputs, hidden):
        return cell_step("gru", inputs, hidden, None, w_hh, b_hh)[0]

    cases = (
        ("attention scores 64x35x512", lambda k, q, v: _energy(k, q) @ v, scores_tanh, (keys, query, v)),
        (f"GRU cell step {BATCH}x512", gru, gru, (inputs, hidden)),
    )
    for name, eager, plain, args in cases:
        start = time.perf_counter()
        compiled = torch.compile(plain, dynamic=True)
        compiled(*args)
        first = time.perf_counter() - start
        times = []
        for function in (eager, compiled):
            _time_ms(lambda f=function, a=args: f(*a), 3)
            times.append(_time_ms(lambda f=function, a=args: f(*a), 200) * 1000)
        print(f"{name}: eager {times[0]:.0f} us, compiled {times[1]:.0f} us, first call {first:.1f} s")


def profile(model_dir: str) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from seqkit import model_types
    from seqkit.data.batches import make_batch
    from seqkit.scoring.likelihood import pair_loss

    _, tokenizer, model = model_types.load(Path(model_dir))
    model.train()
    corpus = REPO / "corpora" / "bible-es-en"

    def read(name):
        with gzip.open(corpus / name, "rt", encoding="utf-8") as f:
            return [line.rstrip("\n") for line in itertools.islice(f, 4000)]

    src, tgt = tokenizer.encode_src(read("train.es.gz")), tokenizer.encode_tgt(read("train.en.gz"))
    batches, batch = [], []
    for i in sorted(range(len(src)), key=lambda i: len(tgt[i])):  # about 3,000 padded target tokens each
        if (len(batch) + 1) * (len(tgt[i]) + 1) > 3000:
            batches.append(batch)
            batch = []
        batch.append(i)
    random.Random(0).shuffle(batches)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)

    def step(indices):
        loss, _, tokens, _ = pair_loss(model, make_batch(src, tgt, indices))
        (loss / tokens).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    for indices in batches[:3]:
        step(indices)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for indices in batches[3:15]:
            step(indices)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def decode(model_dir: str, beam_size: int) -> None:
    """The full test set decoded by three variants of one model, one after the other in this process."""
    import copy
    import warnings

    import sacrebleu
    from torch.ao.quantization import quantize_dynamic

    from seqkit import config as config_lib
    from seqkit import model_types
    from seqkit.data.text import read_lines
    from seqkit.decoding.search import decode_corpus
    from seqkit.decoding.torch_steps import Seq2SeqSteps
    from seqkit.runtime import devices

    warnings.simplefilter("ignore")  # torch.ao.quantization's move to torchao
    cfg, tokenizer, model = model_types.load(model_dir)
    decode_cfg = config_lib.with_overrides(cfg, {"decode": {"beam_size": beam_size}}, "micro").decode
    data = REPO / "bench" / "work" / "full" / "data"
    sources, references = read_lines(data / "test.es"), read_lines(data / "test.en")
    source_ids = tokenizer.encode_src(sources)
    linear = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "energy" not in n}
    variants = {
        "float32": model,
        "int8 linear layers": quantize_dynamic(copy.deepcopy(model), linear, dtype=torch.qint8),
        "int8 linear + GRU/LSTM layers (--quantize)": devices.quantize_int8(model),
    }
    for name, variant in variants.items():
        start = time.perf_counter()
        best = [
            hypotheses[0].tokens
            for hypotheses in decode_corpus(Seq2SeqSteps(variant), source_ids, decode_cfg)
        ]
        seconds = time.perf_counter() - start
        bleu = sacrebleu.corpus_bleu(tokenizer.decode_tgt(best), [references]).score
        pieces = sum(map(len, best))
        print(f"{name}: {seconds:.2f} s, {pieces / seconds:,.0f} pieces/s, BLEU {bleu:.2f}")


def _decode_arms(model_dir: str, arms: dict) -> None:
    """The test set decoded float32 and --quantize, greedy and beam 5, by each arm (a name, and a function
    that sets the arm up on a fresh Seq2SeqSteps): two rounds in this process, pieces/s and BLEU."""
    import warnings

    import sacrebleu

    from seqkit import config as config_lib
    from seqkit import model_types
    from seqkit.data.text import read_lines
    from seqkit.decoding.search import decode_corpus
    from seqkit.decoding.torch_steps import Seq2SeqSteps
    from seqkit.runtime import devices

    warnings.simplefilter("ignore")  # torch.ao.quantization's move to torchao
    cfg, tokenizer, model = model_types.load(model_dir)
    data = REPO / "bench" / "work" / "full" / "data"
    sources, references = read_lines(data / "test.es"), read_lines(data / "test.en")
    source_ids = tokenizer.encode_src(sources)
    variants = {"float32": model, "int8": devices.quantize_int8(model)}
    for _round, beam, (name, variant), (arm, set_up) in itertools.product(
        (1, 2), (1, 5), variants.items(), arms.items()
    ):
        steps = Seq2SeqSteps(variant)
        set_up(steps)
        decode_cfg = config_lib.with_overrides(cfg, {"decode": {"beam_size": beam}}, "micro").decode
        start = time.perf_counter()
        best = [h[0].tokens for h in decode_corpus(steps, source_ids, decode_cfg)]
        seconds = time.perf_counter() - start
        bleu = sacrebleu.corpus_bleu(tokenizer.decode_tgt(best), [references]).score
        print(f"{name} beam {beam}, {arm}: {sum(map(len, best)) / seconds:,.0f} pieces/s, BLEU {bleu:.2f}")


def pieces(model_dir: str) -> None:
    """The test set decoded with the output layer over the pieces training gave it (models/softmax.py)
    and over the whole layer."""

    def whole(steps) -> None:  # as a model trained before the layer left pieces out
        steps._given, steps._given_layer = None, None

    _decode_arms(model_dir, {"whole layer": whole, "given pieces": lambda steps: None})


def blocks(model_dir: str) -> None:
    """The test set decoded with the attention energies in one pass and in blocks of rows
    (models/attention.py's ENERGY_BLOCK)."""
    from seqkit.models import attention

    def block_of(floats: int):
        def set_up(steps) -> None:
            attention.ENERGY_BLOCK = floats

        return set_up

    _decode_arms(
        model_dir,
        {"energies whole": block_of(1 << 62), "energies in blocks": block_of(attention.ENERGY_BLOCK)},
    )


def loss() -> None:
    """The fused output layer and cross-entropy (models/softmax.py), forward and backward, for a batch of
    the workload (2,850 target tokens, 512 features) over its 8,000 pieces and over the 4,238 that are
    English training targets, alternating twice."""
    from seqkit.models.softmax import linear_cross_entropy

    torch.manual_seed(0)
    features = torch.randn(2850, 512, requires_grad=True)
    for pieces in (8000, 4238, 8000, 4238):
        output = torch.nn.Linear(512, pieces)
        target = torch.randint(0, pieces, (2850,))

        def step():
            linear_cross_entropy(features, output, target)[0].backward()  # noqa: B023

        _time_ms(step, 2)  # warm up
        print(f"{pieces:,} pieces: {_time_ms(step, 10):.0f} ms")


def decode_profile(model_dir: str) -> None:
    """Where `translate --quantize` greedy decoding of the test set spends its time, by operator."""
    import warnings

    from seqkit import config as config_lib
    from seqkit import model_types
    from seqkit.data.text import read_lines
    from seqkit.decoding.search import decode_corpus
    from seqkit.decoding.torch_steps import Seq2SeqSteps
    from seqkit.runtime import devices

    warnings.simplefilter("ignore")  # torch.ao.quantization's move to torchao
    cfg, tokenizer, model = model_types.load(model_dir)
    source_ids = tokenizer.encode_src(read_lines(REPO / "bench" / "work" / "full" / "data" / "test.es"))
    int8 = devices.quantize_int8(model)
    decode_cfg = config_lib.with_overrides(cfg, {"decode": {"beam_size": 1}}, "micro").decode
    steps = Seq2SeqSteps(int8)  # (built once, as translate and the server do)
    decode_corpus(steps, source_ids[:100], decode_cfg)  # warm up
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        decode_corpus(steps, source_ids, decode_cfg)
        print(f"wall {time.perf_counter() - start:.2f} s")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


def budget(model_dir: str) -> None:
    """int8 greedy and beam 5 decoding of the test set, with and without the model's shortlist: the rows
    the decoder's step computed (sentences x beams, summed over steps), the time cProfile gives the int8
    GRU cell and the int8 linear layers, their multiply-adds per second, and the time for the whole test
    set that issue 16's targets (40,000 and 8,000 output pieces/s) allow."""
    import cProfile
    import pstats
    import warnings

    from seqkit import config as config_lib
    from seqkit import model_types
    from seqkit.data.text import read_lines
    from seqkit.decoding import shortlist
    from seqkit.decoding.search import decode_corpus
    from seqkit.decoding.torch_steps import Seq2SeqSteps
    from seqkit.runtime import devices

    warnings.simplefilter("ignore")  # torch.ao.quantization's move to torchao
    cfg, tokenizer, model = model_types.load(model_dir)
    source_ids = tokenizer.encode_src(read_lines(REPO / "bench" / "work" / "full" / "data" / "test.es"))
    int8 = devices.quantize_int8(model)
    listed = shortlist.read(Path(model_dir), tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
    # multiply-adds per row and step, from the float32 model's own weights: the GRU's input and recurrent
    # products, then the query and pre-output products; the output layer's columns vary with the
    # shortlist and are counted from each step's log-probabilities
    decoder = model.decoder
    gru_macs = sum(w.numel() for name, w in decoder.rnn.named_parameters() if name.startswith("weight"))
    linear_macs = decoder.attention.query_layer.weight.numel() + decoder.pre_output.weight.numel()
    hidden = decoder.output.in_features
    for beam, target in ((1, 40_000), (5, 8_000)):
        for with_shortlist in (False, True):
            steps = Seq2SeqSteps(int8)
            searched = shortlist.ShortlistSteps(steps, listed) if with_shortlist else steps
            counts = {"rows": 0, "output_macs": 0}
            step = steps.step

            def counting(prev, state, encoded, output_layer=None, step=step, counts=counts):
                result = step(prev, state, encoded, output_layer)
                counts["rows"] += len(prev)
                counts["output_macs"] += len(prev) * result[0].shape[1] * hidden
                return result

            steps.step = counting  # type: ignore[method-assign]
            decode_cfg = config_lib.with_overrides(cfg, {"decode": {"beam_size": beam}}, "micro").decode
            decode_corpus(searched, source_ids[:100], decode_cfg)  # warm up
            counts.update(rows=0, output_macs=0)
            profiler = cProfile.Profile()
            start = time.perf_counter()
            profiler.enable()
            best = [h[0].tokens for h in decode_corpus(searched, source_ids, decode_cfg)]
            profiler.disable()
            wall = time.perf_counter() - start
            stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

            def seconds(name: str, stats=stats) -> float:
                return sum(v[2] for k, v in stats.items() if k[2] == f"<built-in method {name}>")

            gru = seconds("torch._ops.aten.quantized_gru")
            linear = seconds("torch._ops.quantized.linear_dynamic")
            pieces = sum(map(len, best))
            other = counts["rows"] * linear_macs + counts["output_macs"]
            print(
                f"beam {beam}, {'shortlist' if with_shortlist else 'given pieces'}: {pieces:,} pieces in "
                f"{wall:.2f} s under cProfile ({pieces / wall:,.0f}/s); {counts['rows']:,} rows stepped; "
                f"GRU cell {gru:.2f} s ({2 * gru_macs * counts['rows'] / gru / 1e9:.0f} G int8 ops/s), "
                f"linear layers {linear:.2f} s ({2 * other / linear / 1e9:.0f} G/s): products {gru + linear:.2f} s; "
                f"{target:,} pieces/s allows {pieces / target:.2f} s in all"
            )


def bf16() -> None:
    """One decoder step's products (the workload's sizes) in float32, in bf16, and under bf16 autocast."""
    torch.manual_seed(0)
    for rows, inner, outer in ((BATCH, 512, 1536), (BATCH, 768, 1536), (BATCH, 512, 512), (64, 512, 1536)):
        inputs, weight = torch.randn(rows, inner), torch.randn(outer, inner)
        inputs_bf16, weight_bf16 = inputs.bfloat16(), weight.bfloat16()
        fp32 = _time_ms(lambda: F.linear(inputs, weight), 300) * 1000  # noqa: B023
        in_bf16 = _time_ms(lambda: F.linear(inputs_bf16, weight_bf16), 300) * 1000  # noqa: B023
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the weight is cast at every call
            autocast = _time_ms(lambda: F.linear(inputs, weight), 300) * 1000  # noqa: B023
        print(
            f"{rows}x{inner}x{outer}: float32 {fp32:.0f} us, bf16 {in_bf16:.0f} us, autocast {autocast:.0f} us"
        )


def int8() -> None:
    """An int8 linear layer three ways, at a decoding step's rows (64 greedy, 320 beam 5) and the workload's
    shapes: torch's dynamic int8 Linear (what --quantize runs: one scale per batch), torch._int_mm alone,
    and torch._int_mm with a scale per row and per output, quantized and dequantized by torch operators
    (an output that no longer depends on its batch-mates)."""
    import warnings

    warnings.simplefilter("ignore")  # torch.ao.quantization's move to torchao
    torch.manual_seed(0)
    for rows, inner, outer in itertools.product((64, 320), (1280, 512), (1536,)):
        inputs, weight = torch.randn(rows, inner), torch.randn(outer, inner)
        dynamic = torch.ao.nn.quantized.dynamic.Linear(inner, outer)
        dynamic.set_weight_bias(torch.quantize_per_tensor(weight, 0.05, 0, torch.qint8), torch.zeros(outer))
        column_scale = weight.abs().amax(dim=1) / 127  # (outer,)
        weight_int8 = torch.round(weight / column_scale[:, None]).to(torch.int8).t().contiguous()  # (in, out)
        bias = torch.zeros(outer)

        def per_row(x, weight_int8=weight_int8, column_scale=column_scale, bias=bias):
            scale = x.abs().amax(dim=1, keepdim=True).clamp_min_(1e-30).mul_(1 / 127)  # (rows, 1)
            product = torch._int_mm(x.div(scale).round_().to(torch.int8), weight_int8)
            return product.float().mul_(scale).mul_(column_scale).add_(bias)

        inputs_int8 = torch.randint(-127, 128, (rows, inner), dtype=torch.int8)
        times = [
            _time_ms(lambda: dynamic(inputs), 300) * 1000,  # noqa: B023
            _time_ms(lambda: torch._int_mm(inputs_int8, weight_int8), 300) * 1000,  # noqa: B023
            _time_ms(lambda: per_row(inputs), 300) * 1000,  # noqa: B023
        ]
        print(f"{rows}x{inner}x{outer}: dynamic Linear {times[0]:.0f} us, _int_mm alone {times[1]:.0f} us, "
              f"_int_mm with per-row scales {times[2]:.0f} us")  # fmt: skip


def heap(model_dir: str) -> None:
    """What glibc's heap holds (mallinfo2) after the forward and the backward pass of 12 training steps
    of batches of about 3,000 random target tokens, in shapes from 187x16 to 30x100."""
    import ctypes

    from seqkit import model_types
    from seqkit.data.batches import make_batch

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
        ]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2

    def report(when: str) -> None:
        info, mb = libc.mallinfo2(), 2**20
        rss = int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) // 1024
        print(
            f"{when:26s} RSS {rss:5d} MB, heap {info.arena / mb:5.0f} MB: live {info.uordblks / mb:4.0f}, "
            f"free {info.fordblks / mb:4.0f}; mapped apart {info.hblkhd / mb:4.0f} MB"
        )

    _, _, model = model_types.load(model_dir)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    report("loaded")
    shapes = random.Random(0)
    torch.manual_seed(0)
    for step in range(12):
        length = shapes.choice([16, 25, 34, 47, 60, 84, 100])
        sentences = [torch.randint(4, 8000, (length - 1,)).tolist() for _ in range(3000 // length)]
        batch = make_batch(sentences, sentences, list(range(len(sentences))))
        loss, _, _ = model(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)
        report(f"{step} {len(sentences)}x{length} forward")
        (loss / batch.num_tgt_tokens).backward()
        report(f"{step} backward")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


# command -> (function, how many arguments it takes)
COMMANDS = {
    "products": (products, 0),
    "tanh": (tanh, 0),
    "adam": (adam, 0),
    "compile": (compile_, 0),
    "decode": (lambda model_dir, beam: decode(model_dir, int(beam)), 2),
    "pieces": (pieces, 1),
    "blocks": (blocks, 1),
    "decode-profile": (decode_profile, 1),
    "budget": (budget, 1),
    "loss": (loss, 0),
    "bf16": (bf16, 0),
    "int8": (int8, 0),
    "heap": (heap, 1),
    "profile": (profile, 1),
}


class _Tee(io.TextIOBase):
    """stdout as it was, and a copy of the text."""

    def __init__(self, stream):
        self.stream, self.text = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.text.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def _record(arguments: list[str], printed: str) -> Path:
    """What a measurement printed, with when and where it ran: bench/results-micro-COMMAND.json."""
    record = {
        "command": ["python", "bench/micro.py", *arguments],
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": THREADS,
        "torch": torch.__version__,
        "printed": printed.splitlines(),
    }
    path = REPO / "bench" / f"results-micro-{arguments[0]}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


if __name__ == "__main__":
    torch.set_num_threads(THREADS)
    name, arguments = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if name not in COMMANDS or len(arguments) != COMMANDS[name][1]:
        sys.exit(__doc__)
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        COMMANDS[name][0](*arguments)
    print(f"recorded in {_record(sys.argv[1:], tee.text.getvalue())}", file=sys.stderr)
