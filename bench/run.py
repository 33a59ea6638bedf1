"""`make bench`: seqkit against OpenNMT-py 3.5.1 and Joey NMT 2.3.0 on the same workload, on this machine,
in one run.

    python bench/run.py --mode quick   # a few minutes: short trainings, 200 test verses
    python bench/run.py --mode full    # 12 minutes of training each, the 1,000-verse test set

Steps, one after the other (never two measurements at once): the machine's float32 matmul throughput;
one joint 8k unigram SentencePiece model for every toolkit; each peer (bench/opennmt.py, bench/joey.py, each
in its own virtualenv with the same torch) trained for the time budget, then decoding the test set greedy
and with beam 5; the same for seqkit in float32 and with bf16 autocast (plus int8-quantized decoding, and
the vocabulary shortlist); seqkit's time per epoch on growing slices of the data. Writes
bench/results-{mode}.json and bench/results-{mode}.md (a table with the ratios seqkit / best peer).

Counting, the same for both toolkits:
- training target tokens: non-padding target positions trained on, every target piece plus EOS, per
  second of training steps (validation and start-up excluded; validation time is reported apart);
- decoding: output pieces (the pieces each search produced for its best hypotheses, no EOS) and
  sentences per second of decoding alone (model loading and file reading excluded: Joey's "Generation
  took", seqkit's own timer);
- BLEU and chrF: sacrebleu on detokenized output against the raw references;
- peak RSS: the training process's own peak resident memory (wait4's ru_maxrss).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import joey  # noqa: E402
import opennmt  # noqa: E402
from measure import cpu_name  # noqa: E402
from measure import run as measure_run  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpora" / "bible-es-en"
WORKLOAD = REPO / "bench" / "workload.toml"
SEQKIT_PYTHON = Path(sys.executable)
THREADS = 2
DEV_SENTENCES = 300
SEED = 1


@dataclass(frozen=True)
class Mode:
    train_minutes: float
    test_sentences: int
    slices: tuple[int, ...]  # training pairs per slice, for time per epoch against data size


MODES = {
    "quick": Mode(train_minutes=1.5, test_sentences=200, slices=(500, 1000, 2000)),
    "full": Mode(train_minutes=12.0, test_sentences=1000, slices=(2000, 4000, 8000)),
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read_gz(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --- the machine ------------------------------------------------------------------------------------


def matmul_gflops(dtype: torch.dtype, size: int = 2048, seconds: float = 3.0) -> float:
    """Sustained throughput of size x size matrix products at THREADS threads."""
    torch.set_num_threads(THREADS)
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    for _ in range(3):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def machine() -> dict:
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": THREADS,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "matmul_fp32_gflops": round(matmul_gflops(torch.float32), 1),
        "matmul_bf16_gflops": round(matmul_gflops(torch.bfloat16), 1),
    }


# --- data ---------------------------------------------------------------------------------------------


def prepare(work: Path, mode: Mode) -> dict:
    """The shared SentencePiece model, the dev subset both validate on, and the test subset."""
    from seqkit.config import TokenizerConfig
    from seqkit.data.tokenizer import build_tokenizer

    data = work / "data"
    spm_model = data / "spm.model"
    train_src, train_tgt = read_gz(CORPUS / "train.es.gz"), read_gz(CORPUS / "train.en.gz")
    if not spm_model.exists():
        tokenizer = build_tokenizer(train_src, train_tgt, TokenizerConfig(vocab_size=8000), SEED)
        data.mkdir(parents=True, exist_ok=True)
        spm_model.write_bytes(tokenizer.files()["spm.model"])
    for lang in ("es", "en"):
        write_lines(data / f"dev.{lang}", read_gz(CORPUS / f"dev.{lang}.gz")[:DEV_SENTENCES])
        write_lines(data / f"test.{lang}", read_gz(CORPUS / f"test.{lang}.gz")[: mode.test_sentences])
    for size in mode.slices:
        write_lines(data / f"slice{size}.es", train_src[:size])
        write_lines(data / f"slice{size}.en", train_tgt[:size])
    return {
        "dir": data,
        "spm_model": spm_model,
        "train": CORPUS / "train",
        "dev": data / "dev",
        "test": data / "test",
    }


def scores(hypothesis: Path, reference: Path) -> dict:
    from seqkit.scoring.metrics import corpus_score

    hyps = hypothesis.read_text(encoding="utf-8").splitlines()
    refs = reference.read_text(encoding="utf-8").splitlines()
    bleu, chrf = corpus_score("bleu", hyps, [refs]), corpus_score("chrf", hyps, [refs])
    return {"bleu": round(bleu.score, 2), "chrf": round(chrf.score, 2), "bleu_signature": bleu.signature}


# --- seqkit -------------------------------------------------------------------------------------------


def seqkit_train(
    data: dict,
    out: Path,
    minutes: float,
    precision: str,
    train_prefix: Path | None = None,
    max_epochs: int = 0,
) -> dict:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    limit = ["--max-epochs", str(max_epochs)] if max_epochs else ["--max-minutes", str(minutes)]
    command = [
        str(SEQKIT_PYTHON), "-m", "seqkit", "train", "--config", str(WORKLOAD), "--output", str(out),
        "--set", f"data.train={train_prefix or data['train']}", "--set", f"data.dev={data['dev']}",
        "--set", f"tokenizer.model={data['spm_model']}", "--set", f"train.seed={SEED}",
        "--set", f"train.threads={THREADS}", "--precision", precision, "--device", "cpu", *limit,
    ]  # fmt: skip
    measured = measure_run(command, out.with_suffix(".log"))
    if measured.returncode != 0:
        raise RuntimeError(f"seqkit train failed; see {out.with_suffix('.log')}")
    from seqkit.training import log as training_log

    records = training_log.read(out)
    end = training_log.of_kind(records, training_log.EndRecord)[-1]
    start = training_log.of_kind(records, training_log.StartRecord)[0]
    valid = training_log.of_kind(records, training_log.ValidRecord)
    valid_s = sum(r.validation_s for r in valid)
    return {
        "precision": precision,
        "steps": end.steps,
        "epochs": end.epochs,
        "wall_s": round(measured.wall_s, 2),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "loop_s": round(end.elapsed_s, 2),
        "valid_s": round(valid_s, 2),
        "train_s": round(end.step_s, 2),
        "target_tokens": end.target_tokens,
        "target_tokens_per_s": round(end.target_tokens / end.step_s, 1),
        "parameters": start.parameters,
        "validations": [{"step": r.step, "dev_bleu": round(r.scores["bleu"], 2)} for r in valid],
        "log": out.with_suffix(".log"),
    }


# seqkit's decoding variants: as trained, int8 (--quantize), the shortlist (--shortlist), both
DECODE_VARIANTS = ("plain", "int8", "shortlist", "int8-shortlist")


def seqkit_translate(
    data: dict,
    model: Path,
    beam_size: int,
    quantize: bool = False,
    precision: str = "fp32",
    shortlist: bool = False,
) -> dict:
    name = f"beam{beam_size}{'-int8' if quantize else ''}{'-shortlist' if shortlist else ''}"
    name += f"{'-' + precision if precision != 'fp32' else ''}"
    hypothesis = model.parent / f"{model.name}.{name}.hyp.en"
    command = [
        str(SEQKIT_PYTHON), str(REPO / "bench" / "seqkit_decode.py"), str(model), str(data["test"]) + ".es",
        str(hypothesis), "--beam-size", str(beam_size), "--threads", str(THREADS), "--precision", precision,
        *(["--quantize"] if quantize else []), *(["--shortlist"] if shortlist else []),
    ]  # fmt: skip
    log_path = hypothesis.with_suffix(".log")
    measured = measure_run(command, log_path)
    if measured.returncode != 0:
        raise RuntimeError(f"seqkit decoding failed; see {log_path}")
    timing = json.loads(log_path.read_text().strip().splitlines()[-1])
    pieces = timing["output_pieces"]
    return {
        "beam_size": beam_size,
        "quantize": quantize,
        "shortlist": shortlist,
        "precision": precision,
        "hypothesis": hypothesis,
        "wall_s": round(measured.wall_s, 2),
        "decode_s": round(timing["decode_s"], 2),
        "sentences": timing["sentences"],
        "output_pieces": pieces,
        "sentences_per_s": round(timing["sentences"] / timing["decode_s"], 2),
        "pieces_per_s": round(pieces / timing["decode_s"], 1),
    }


# --- the peers (Joey NMT, OpenNMT-py) ----------------------------------------------------------------


def limit_test(joey_data: dict, sentences: int) -> dict:
    """Joey's test set cut to the mode's first `sentences` verses (as seqkit's)."""
    for lang in ("es", "en"):
        path = Path(f"{joey_data['test']}.{lang}")
        path.write_text(
            "".join(line + "\n" for line in path.read_text(encoding="utf-8").splitlines()[:sentences]),
            encoding="utf-8",
        )
    return {**joey_data, "test_sentences": min(sentences, joey_data["test_sentences"])}


def peer_side(module, venv: str, name: str, data: dict, work: Path, mode: Mode) -> dict:
    """One peer's half of the bench: `module` (bench/joey.py, bench/opennmt.py) installs it into
    bench/`venv`, trains for the budget and decodes greedy and with beam 5. Every peer reads the same
    pre-encoded pieces and vocabulary (joey.prepare_data)."""
    python = module.install(REPO / "bench" / venv)
    pieces = joey.prepare_data(data["spm_model"], CORPUS, work / "joey", DEV_SENTENCES)
    pieces = limit_test(pieces, mode.test_sentences)
    log(f"{name}: training for {mode.train_minutes} min")
    trained = module.train(python, pieces, work / name, mode.train_minutes, THREADS, SEED)
    decoded = {}
    for beam in (1, 5):
        log(f"{name}: decoding with beam {beam}")
        decoded[beam] = module.translate(python, pieces, work / name, trained["checkpoint"], beam, THREADS)
        decoded[beam].update(scores(Path(decoded[beam]["hypothesis"]), Path(f"{data['test']}.en")))
    return {"train": trained, "decode": decoded}


PEERS = {  # name in results -> (title, its module, its virtualenv under bench/)
    "onmt": ("OpenNMT-py 3.5.1", opennmt, ".venv-onmt"),
    "joey": ("Joey NMT 2.3.0", joey, ".venv-joey"),
}


# --- FLOPs --------------------------------------------------------------------------------------------


def training_flops_per_target_token(data: dict) -> dict:
    """Model FLOPs of one trained target token (forward 2 per multiply-add, backward twice the forward),
    from the workload's sizes and the training data's mean lengths; padding is not counted."""
    from seqkit import configfile
    from seqkit.data.tokenizer import load_tokenizer  # noqa: F401  (the SentencePiece wrapper)

    cfg = configfile.load(WORKLOAD).model
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(data["spm_model"]))
    src = [len(ids) + 1 for ids in processor.encode(read_gz(CORPUS / "train.es.gz")[:5000])]
    tgt = [len(ids) + 1 for ids in processor.encode(read_gz(CORPUS / "train.en.gz")[:5000])]
    src_per_tgt = sum(src) / sum(tgt)
    src_len = sum(s * t for s, t in zip(src, tgt, strict=True)) / sum(
        tgt
    )  # source length seen per target token
    emb, enc, dec, vocab = cfg.embedding_size, cfg.encoder_hidden_size, cfg.decoder_hidden_size, 8000
    memory, gates = 2 * enc, 3
    encoder_per_src = 2 * gates * enc * (emb + enc) + memory * dec  # both directions, then the keys
    decoder = (
        dec * dec  # attention query
        + src_len * (dec + memory)  # energies (v . tanh) and the context
        + gates * dec * (emb + memory + dec)  # GRU input and recurrent products
        + dec * (dec + memory + emb)  # pre-output
        + dec * vocab  # output layer
    )
    macs = decoder + src_per_tgt * encoder_per_src
    return {
        "forward_macs": round(macs),
        "training_flops": round(6 * macs),
        "source_per_target": round(src_per_tgt, 3),
        "mean_source_length": round(src_len, 1),
    }


# --- the whole run ------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=sorted(MODES), default="quick")
    parser.add_argument(
        "--peers", default=",".join(PEERS), help="comma-separated peers to run (none: seqkit's figures only)"
    )
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p and p != "none"]
    unknown = set(peers) - PEERS.keys()
    if unknown:
        parser.error(f"--peers: unknown {', '.join(sorted(unknown))}; choose from {', '.join(PEERS)}")
    mode = MODES[args.mode]
    work = REPO / "bench" / "work" / args.mode
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: dict = {"mode": args.mode, "settings": asdict(mode), "date": time.strftime("%Y-%m-%d %H:%M")}
    log("machine: matmul throughput")
    results["machine"] = machine()
    log("data: SentencePiece model and subsets")
    data = prepare(work, mode)
    results["flops"] = training_flops_per_target_token(data)
    out = REPO / "bench" / f"results-{args.mode}"

    def save() -> None:  # after every part: a failure late in a long run keeps what was measured
        Path(f"{out}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")

    results["peers"] = {}
    for peer in peers:
        _, module, venv = PEERS[peer]
        results["peers"][peer] = peer_side(module, venv, peer, data, work, mode)
        save()
    results["seqkit"] = {}
    for precision in ("fp32", "bf16"):
        log(f"seqkit: training for {mode.train_minutes} min ({precision})")
        model = work / f"seqkit-{precision}"
        trained = seqkit_train(data, model, mode.train_minutes, precision)
        decoded = {}
        for beam, variant in [(b, v) for v in DECODE_VARIANTS for b in (1, 5)]:
            quantize, shortlist = "int8" in variant, "shortlist" in variant
            decode_precision = "fp32" if quantize else precision
            log(f"seqkit: decoding with beam {beam} {variant} ({decode_precision})")
            result = seqkit_translate(data, model, beam, quantize, decode_precision, shortlist)
            result.update(scores(Path(result["hypothesis"]), Path(f"{data['test']}.en")))
            decoded[f"beam{beam}{'-' + variant if variant != 'plain' else ''}"] = result
        results["seqkit"][precision] = {"train": trained, "decode": decoded}
        save()
    log("seqkit: time per epoch on growing slices")
    results["scaling"] = []
    for size in mode.slices:
        trained = seqkit_train(
            data, work / f"slice{size}", 0, "bf16", data["dir"] / f"slice{size}", max_epochs=1
        )
        results["scaling"].append(
            {
                "pairs": size,
                "target_tokens": trained["target_tokens"],
                "train_s": trained["train_s"],
                "steps": trained["steps"],
            }
        )
    results["total_minutes"] = round((time.time() - started) / 60, 1)
    summarize(results)
    save()
    table = markdown(results)
    Path(f"{out}.md").write_text(table)
    print(table)


def summarize(results: dict) -> None:
    """Achieved FLOP rates, and the ratios seqkit / best peer: each figure against the peer best at it."""
    peak = results["machine"]["matmul_fp32_gflops"]
    flops = results["flops"]["training_flops"]
    for side in [*results["seqkit"].values(), *results["peers"].values()]:
        rate = side["train"]["target_tokens_per_s"] * flops / 1e9
        side["train"]["model_gflops"] = round(rate, 1)
        side["train"]["fraction_of_fp32_matmul"] = round(rate / peak, 3)
    peers = results["peers"]
    if not peers:
        return

    def best_peer(figure) -> tuple[str, float]:
        name = max(peers, key=lambda p: figure(peers[p]))
        return name, figure(peers[name])

    train_peer, train_rate = best_peer(lambda p: p["train"]["target_tokens_per_s"])
    ratios: dict = {"training_peer": train_peer}
    decode_peers = {beam: best_peer(lambda p, b=beam: p["decode"][b]["sentences_per_s"]) for beam in (1, 5)}
    for beam, (name, _) in decode_peers.items():
        ratios[f"decoding_peer_beam{beam}"] = name
    for precision, side in results["seqkit"].items():
        ratios[f"train_tokens_per_s_{precision}"] = ratio(side["train"]["target_tokens_per_s"], train_rate)
        for name, decoded in side["decode"].items():
            beam = decoded["beam_size"]
            ratios[f"decode_sentences_per_s_{precision}_{name}"] = ratio(
                decoded["sentences_per_s"], decode_peers[beam][1]
            )
    results["ratios_seqkit_over_best_peer"] = ratios


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"# make bench ({results['mode']} mode, {results['date']})",
        "",
        f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['threads']} threads; float32 matmul "
        f"{m['matmul_fp32_gflops']} GFLOP/s, bf16 {m['matmul_bf16_gflops']} GFLOP/s (2048^3). "
        f"Training budget {results['settings']['train_minutes']} min each; "
        f"{results['settings']['test_sentences']} test verses. Total {results['total_minutes']} min.",
        "",
        "Decoding: sentences/s is the headline figure; pieces/s comes with the mean output length (pieces per "
        "sentence), since a model that loops to the length limit writes many pieces quickly.",
        "",
        "| system | params M | train tgt tok/s | peak RSS MB | steps | greedy sent/s | greedy pieces/s (len) "
        "| beam-5 sent/s | beam-5 pieces/s (len) | BLEU beam 5 | chrF beam 5 | BLEU greedy |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def speed(decoded: dict) -> str:
        length = decoded["output_pieces"] / decoded["sentences"]
        return f"{decoded['pieces_per_s']:,.0f} ({length:.1f})"

    def row(name: str, train: dict, greedy: dict, beam: dict) -> str:
        params = f"{train['parameters'] / 1e6:.2f}" if train.get("parameters") else "-"
        return (
            f"| {name} | {params} | {train['target_tokens_per_s']:,.0f} | {train['peak_rss_mb']:,.0f} "
            f"| {train['steps']:,} | {greedy['sentences_per_s']:.1f} | {speed(greedy)} "
            f"| {beam['sentences_per_s']:.1f} | {speed(beam)} | {beam['bleu']:.2f} | {beam['chrf']:.2f} "
            f"| {greedy['bleu']:.2f} |"
        )

    for peer, side in results["peers"].items():
        decode = {int(k): v for k, v in side["decode"].items()}  # (JSON keys are strings)
        lines.append(row(PEERS[peer][0], side["train"], decode[1], decode[5]))
    for precision, side in results["seqkit"].items():
        d = side["decode"]
        for variant in DECODE_VARIANTS:
            suffix = "" if variant == "plain" else f"-{variant}"
            title = f"seqkit {precision}" + ("" if variant == "plain" else f", {variant} decoding")
            lines.append(row(title, side["train"], d[f"beam1{suffix}"], d[f"beam5{suffix}"]))
    if "ratios_seqkit_over_best_peer" in results:
        lines += ["", "Ratios seqkit / best peer (each figure against the peer best at it):", ""]
        lines += [f"- {key}: {value}" for key, value in results["ratios_seqkit_over_best_peer"].items()]
    lines += [
        "",
        "seqkit time per epoch against data size (bf16 training, one epoch each):",
        "",
        "| pairs | target tokens | train s | tokens/s |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for s in results["scaling"]:
        lines.append(
            f"| {s['pairs']:,} | {s['target_tokens']:,} | {s['train_s']:.1f} "
            f"| {s['target_tokens'] / s['train_s']:,.0f} |"
        )
    fl = results["flops"]
    lines += [
        "",
        f"Model FLOPs per trained target token: {fl['training_flops'] / 1e6:.1f} M "
        f"(forward {fl['forward_macs'] / 1e6:.2f} M multiply-adds x 2, backward twice the forward).",
    ]
    for precision, side in results["seqkit"].items():
        t = side["train"]
        lines.append(
            f"seqkit {precision} training runs the model at {t['model_gflops']} GFLOP/s, "
            f"{t['fraction_of_fp32_matmul']:.0%} of the fp32 matmul figure."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
