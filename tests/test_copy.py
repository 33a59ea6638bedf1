"""Copy attention (the pointer-generator) and coverage: distributions, search, training, the errors."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import seqkit
from seqkit.config import DecodeConfig, ModelConfig, from_dict
from seqkit.data.tokenizer import BOS, EOS
from seqkit.decoding.search import beam_search, decode_corpus, greedy_search, max_output_lengths, source_batch
from seqkit.decoding.torch_steps import Seq2SeqSteps
from seqkit.errors import ConfigError
from seqkit.models import decoder
from seqkit.models.seq2seq import Seq2Seq
from seqkit.models.softmax import given_pieces
from tests.helpers import assert_one_line_error, seqkit_here

VARIANTS = [
    pytest.param({"cell": "gru", "attention": "bahdanau"}, id="gru-bahdanau"),
    pytest.param({"cell": "lstm", "attention": "luong"}, id="lstm-luong"),
    pytest.param({"cell": "rnn", "attention": "bahdanau", "decoder_layers": 2}, id="rnn-bahdanau-2-layers"),
]


def _model(coverage: bool = True, **sections) -> Seq2Seq:
    torch.manual_seed(3)
    cfg = ModelConfig(
        embedding_size=16,
        encoder_hidden_size=16,
        decoder_hidden_size=24,
        dropout=0.0,
        copy=True,
        coverage=coverage,
    )
    return Seq2Seq(ModelConfig(**{**cfg.__dict__, **sections}), 40, 40).eval()


def _sources(count: int = 32) -> list[list[int]]:
    rng = random.Random(4)
    return [[rng.randrange(4, 40) for _ in range(rng.randint(1, 10))] for _ in range(count)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_copy_distribution_sums_to_one_and_equals_teacher_forcing(variant):
    model = _model(**variant)
    src, lengths = (torch.from_numpy(a) for a in source_batch(_sources(6), range(6)))
    tgt_in = torch.cat([torch.full((6, 1), BOS), torch.randint(4, 40, (6, 5))], dim=1)
    with torch.no_grad():
        forced = model(src, lengths, tgt_in)  # (6, 6, vocab) log-probabilities
        encoded, state = model.encode(src, lengths)
        stepped, coverage = [], []
        for t in range(tgt_in.size(1)):
            log_probs, state, weights = model.step(tgt_in[:, t], state, encoded)
            stepped.append(log_probs)
            torch.testing.assert_close(weights.sum(-1), torch.ones(6))  # attention rows sum to 1
            coverage.append(weights)
        gates = model.copy_gates(src, lengths, tgt_in)
    torch.testing.assert_close(forced.exp().sum(-1), torch.ones(6, 6))
    torch.testing.assert_close(torch.stack(stepped, dim=1), forced)
    torch.testing.assert_close(state.coverage, torch.stack(coverage).sum(0))  # the attention, summed
    assert gates.shape == (6, 6) and bool(((gates >= 0) & (gates <= 1)).all())


def test_a_gate_that_starts_copying_generates_with_probability_one_in_twenty():
    from_dict({"model": {"copy": True, "copy_gate_start": "copying"}, "tokenizer": {"type": "char"}})
    model = _model(coverage=False)
    started = _model(coverage=False, copy_gate_start="copying").decoder.copy_gate.requires_grad_(False)
    assert float(started.weight.abs().sum()) == 0.0 and float(started.bias) == decoder.COPY_GATE_BIAS
    assert torch.sigmoid(started.bias).item() == pytest.approx(0.047, abs=1e-3)
    assert float(model.decoder.copy_gate.weight.detach().abs().sum()) > 0  # the default: a random start


def test_a_closed_gate_copies_the_attention():
    """Gate at 0: every piece's probability is the attention on the source positions that hold it."""
    model = _model(coverage=False)
    with torch.no_grad():
        model.decoder.copy_gate.weight.zero_()
        model.decoder.copy_gate.bias.fill_(-50.0)
        src, lengths = (torch.from_numpy(a) for a in source_batch([[5, 6, 5, 9]], [0]))
        encoded, state = model.encode(src, lengths)
        log_probs, _, weights = model.step(torch.tensor([BOS]), state, encoded)
    probs = log_probs.exp()[0]
    assert float(probs[5]) == pytest.approx(float(weights[0, 0] + weights[0, 2]), abs=1e-6)
    assert float(probs[9]) == pytest.approx(float(weights[0, 3]), abs=1e-6)
    assert float(probs[[5, 6, 9, EOS]].sum()) == pytest.approx(1.0, abs=1e-5)  # (EOS: appended)


def test_the_loss_learns_through_the_gate_and_the_coverage():
    model = _model().train()
    src, lengths = (torch.from_numpy(a) for a in source_batch(_sources(4), range(4)))
    tgt_out = torch.randint(4, 40, (4, 5))
    tgt_in = torch.cat([torch.full((4, 1), BOS), tgt_out[:, :-1]], dim=1)
    loss, nll, correct = model(src, lengths, tgt_in, tgt_out, 0.0, 1.0)
    without_coverage, nll_again, _ = model(src, lengths, tgt_in, tgt_out, 0.0, 0.0)
    assert loss.item() > without_coverage.item() == pytest.approx(float(nll))  # the coverage loss adds
    assert float(nll) == pytest.approx(float(nll_again))
    loss.backward()
    for name in ("decoder.copy_gate.weight", "decoder.attention.coverage_weight"):
        assert float(dict(model.named_parameters())[name].grad.abs().sum()) > 0, name
    # the teacher-forced log-probabilities of the targets are what the summed likelihood adds up
    with torch.no_grad():
        log_probs = model.eval()(src, lengths, tgt_in)
    expected = -log_probs.gather(2, tgt_out.unsqueeze(2)).sum()
    assert float(model(src, lengths, tgt_in, tgt_out, 0.0, 0.0)[1]) == pytest.approx(
        float(expected), rel=1e-5
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_beam_one_is_greedy_and_batches_change_nothing_with_copy_in_search_and_sampling(variant):
    steps, sources = Seq2SeqSteps(_model(**variant)), _sources()
    src, lengths = source_batch(sources, range(len(sources)))
    limits = max_output_lengths(lengths, DecodeConfig(max_length_ratio=1.5, max_length_offset=3))
    greedy = greedy_search(steps, src, lengths, limits)
    beam = beam_search(steps, src, lengths, limits, beam_size=1, alpha=0.0)
    assert [g.tokens for g in greedy] == [b[0].tokens for b in beam]
    assert len({tuple(g.tokens) for g in greedy}) > 10
    cfg = DecodeConfig(beam_size=3, batch_size=8, max_length_ratio=1.5, max_length_offset=3)
    batched = decode_corpus(steps, sources, cfg, nbest=3)
    alone = [decode_corpus(steps, [s], cfg, nbest=3)[0] for s in sources]
    assert [[h.tokens for h in hs] for hs in batched] == [[h.tokens for h in hs] for hs in alone]
    sampling = replace(cfg, temperature=1.0)  # from the pointer-generator's distribution
    sampled = [hs[0].tokens for hs in decode_corpus(steps, sources, sampling)]
    assert sampled == [decode_corpus(steps, [s], sampling)[0][0].tokens for s in sources]
    assert sum(s != g.tokens for s, g in zip(sampled, greedy, strict=True)) > len(sources) / 2


def test_copy_needs_a_joint_vocabulary_no_smoothing_and_a_source():
    with pytest.raises(ConfigError, match="tokenizer.joint = true"):
        from_dict({"model": {"copy": True}, "tokenizer": {"joint": False}})
    with pytest.raises(ConfigError, match="label_smoothing = 0 for a copy model"):
        from_dict({"model": {"copy": True}, "train": {"label_smoothing": 0.1}})
    with pytest.raises(ConfigError, match="model.coverage needs attention"):
        from_dict({"model": {"type": "lm", "coverage": True}})
    with pytest.raises(ConfigError, match="copy_gate_start is the copy gate's"):
        from_dict({"model": {"copy_gate_start": "copying"}})
    from_dict({"model": {"copy": True, "coverage": True}, "tokenizer": {"type": "char"}})


# --- learning to copy what training never showed at that position -------------------------------------

EVEN, ODD = "abcdefgh", "ijklmnop"


def _parity_pairs(count: int, seed: int, swapped: bool) -> list[str]:
    """Sequences of 3 to 7 letters, copied: letters a-h at even positions and i-p at odd ones in
    training; the other way round in the test, so that no letter is where training ever had it."""
    rng = random.Random(seed)
    first, second = (ODD, EVEN) if swapped else (EVEN, ODD)
    return [
        " ".join(rng.choice(first if i % 2 == 0 else second) for i in range(rng.randint(3, 7)))
        for _ in range(count)
    ]


def _copy_runs(directory: Path) -> str:
    """(In the background process.) The same small model trained for 500 steps with and without copy."""
    data = directory / "data"
    data.mkdir(parents=True)
    for name, lines in (("train", _parity_pairs(3000, 1, False)), ("dev", _parity_pairs(60, 2, True))):
        for side in ("src", "tgt"):
            (data / f"{name}.{side}").write_text("".join(line + "\n" for line in lines))
    for copy in ("true", "false"):
        run = seqkit_here(
            "train", "-o", str(directory / f"copy-{copy}"), "--quiet", "--max-steps", "500",
            "--set", f"data.train={data}/train", "--set", f"data.dev={data}/dev", "--set", "data.src_lang=src",
            "--set", "data.tgt_lang=tgt", "--set", "tokenizer.vocab_size=24", "--set", "model.embedding_size=32",
            "--set", "model.encoder_hidden_size=32", "--set", "model.decoder_hidden_size=64",
            "--set", "model.dropout=0.0", "--set", "train.batch_tokens=400", "--set", "train.valid_every=250",
            "--set", "train.seed=7", "--set", "train.learning_rate=0.003", "--set", f"model.copy={copy}",
            *(["--set", "model.copy_gate_start=copying"] if copy == "true" else []),
        )  # fmt: skip
        assert run.returncode == 0, run.stderr.decode()
    return str(data)


@pytest.mark.prepared_in_background("_copy_runs")
def test_copy_writes_letters_where_training_never_had_them_and_serves(background_model, tmp_path):
    runs, data = background_model.model_dir, Path(background_model.data_dir)
    sources = (data / "dev.src").read_text().splitlines()

    def exact(model_dir: Path) -> float:
        outputs = [r.text for r in seqkit.load(model_dir).translate(sources, beam_size=1)]
        return sum(o == s for o, s in zip(outputs, sources, strict=True)) / len(sources)

    # measured (2026-12-03, 500 steps): 1.00 with copy and model.copy_gate_start = copying (also at 300
    # steps, and with seed 2; 0.58 with seed 1), 0.00 without: the plain model starts every output with
    # a-h. With the default random gate instead: 0.63 after 1,000 steps
    assert exact(runs / "copy-true") >= 0.95
    assert exact(runs / "copy-false") <= 0.05
    # the gates come with the attention pictures, one per output piece and the end
    run = seqkit_here(
        "translate", runs / "copy-true", "--attention", tmp_path / "att", stdin=sources[0] + "\n"
    )
    assert run.returncode == 0, run.stderr.decode()
    picture = json.loads((tmp_path / "att" / "line-000001.json").read_text())
    assert len(picture["generate"]) == len(picture["output"]) == len(picture["weights"])
    assert all(0.0 <= g <= 1.0 for g in picture["generate"])
    assert np.allclose([sum(row) for row in picture["weights"]], 1.0, atol=1e-4)
    shortlist = seqkit_here("translate", runs / "copy-true", "--shortlist", stdin="a\n")
    assert shortlist.returncode != 0 and "copy model" in shortlist.stderr.decode()
    _serves_and_quantizes_as_it_translates(runs / "copy-true", data)
    _coverage_starts_from_the_copy_model(runs / "copy-true", data, tmp_path)


def _coverage_starts_from_the_copy_model(model_dir: Path, data: Path, tmp_path: Path) -> None:
    """train.init_from: coverage added to a trained copy model starts out translating as that model does
    (its coverage weight starts at zero), with the same tokenizer; other sizes are a one-line error."""
    from seqkit.decoding.inference import translate_lines
    from seqkit.training.seq2seq import init_weights

    trained = seqkit.load(model_dir, device="cpu")
    added = Seq2Seq.from_config(replace(trained.config.model, coverage=True), trained.tokenizer).eval()
    init_weights(added, model_dir)
    sources = (data / "dev.src").read_text().splitlines()
    theirs = [r.text for r in trained.translate(sources, beam_size=1)]
    assert (
        translate_lines(Seq2SeqSteps(added), trained.tokenizer, sources, DecodeConfig(beam_size=1)) == theirs
    )
    common = [
        "train", "--quiet", "--max-steps", "4", "--set", f"data.train={data}/train", "--set", f"data.dev={data}/dev",
        "--set", "data.src_lang=src", "--set", "data.tgt_lang=tgt", "--set", "model.embedding_size=32",
        "--set", "model.encoder_hidden_size=32", "--set", "model.dropout=0.0", "--set", "model.copy=true",
        "--set", "train.valid_every=4", "--set", f"train.init_from={model_dir}",
    ]  # fmt: skip
    run = seqkit_here(*common, "-o", tmp_path / "then", "--set", "model.decoder_hidden_size=64",
                      "--set", "model.coverage=true")  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    assert (tmp_path / "then" / "spm.model").read_bytes() == (model_dir / "spm.model").read_bytes()
    other = seqkit_here(*common, "-o", tmp_path / "other", "--set", "model.decoder_hidden_size=32")
    assert other.returncode != 0
    assert_one_line_error(other, "model.decoder_hidden_size is 64 there and 32 here")
    # fine-tuning on three pairs, whose targets hold few of the pieces: the output layer keeps giving every
    # piece the model it starts from gave (softmax.exclude_unseen's keep_given)
    few = tmp_path / "few"
    few.mkdir()
    for name in ("train.src", "train.tgt", "dev.src", "dev.tgt"):
        (few / name).write_text("\n".join((data / name).read_text().splitlines()[:3]) + "\n")
    small = seqkit_here(*common[:5], f"data.train={few}/train", "--set", f"data.dev={few}/dev", *common[8:],
                        "-o", tmp_path / "small", "--set", "model.decoder_hidden_size=64")  # fmt: skip
    assert small.returncode == 0, small.stderr.decode()
    few_targets = (few / "train.tgt").read_text().splitlines()
    before = given_pieces(trained.module.decoder.output)
    after = given_pieces(seqkit.load(tmp_path / "small", device="cpu").module.decoder.output)
    targets = {piece for ids in trained.tokenizer.encode_tgt(few_targets) for piece in ids}
    assert before is not None and after is not None and len(targets) + 2 < len(before)
    assert set(before.tolist()) <= set(after.tolist())


def _serves_and_quantizes_as_it_translates(model_dir: Path, data: Path) -> None:
    """(Of the trained copy model: one training serves both checks.)"""
    from tests.test_serve import _serving

    sources = (data / "dev.src").read_text().splitlines()[:20]
    command = seqkit_here("translate", model_dir, "--beam-size", "3", "--no-repeat-ngram", "3",
                          stdin="".join(f"{s}\n" for s in sources))  # fmt: skip
    assert command.returncode == 0, command.stderr.decode()
    sampling = seqkit_here("translate", model_dir, "--temperature", "2", "--seed", "5",
                           stdin="".join(f"{s}\n" for s in sources))  # fmt: skip
    assert sampling.returncode == 0, sampling.stderr.decode()
    with _serving(model_dir) as client:
        answer = client.post("/translate", json={"text": sources, "beam_size": 3, "no_repeat_ngram": 3})
        sampled = client.post("/translate", json={"text": sources, "temperature": 2, "seed": 5})
        refused = client.post("/translate", json={"text": sources, "temperature": 2, "nbest": 2})
    assert answer.status_code == 200, answer.text
    assert [t["text"] for t in answer.json()["translations"]] == command.stdout.decode().splitlines()
    # sampling: the server samples what the command line samples, and not what the search finds
    assert sampled.status_code == 200, sampled.text
    assert [t["text"] for t in sampled.json()["translations"]] == sampling.stdout.decode().splitlines()
    assert sampling.stdout != command.stdout
    assert refused.status_code == 422 and "one output per line" in refused.text
    plain = [r.text for r in seqkit.load(model_dir).translate(sources, beam_size=1)]
    quantized = [r.text for r in seqkit.load(model_dir, quantize=True).translate(sources, beam_size=1)]
    assert sum(a == b for a, b in zip(plain, quantized, strict=True)) >= 0.8 * len(sources)


def test_the_gates_that_pictures_show_are_the_decoders_own_at_each_step():
    # (`--attention` shows them: computed from the source without its EOS, they were close to the search's
    # but not the same)
    model = _model(coverage=False).eval()
    sources, tokens = _sources(1), [5, 9, 7, 12]
    src, lengths = (torch.from_numpy(a) for a in source_batch(sources, [0]))  # as the search reads it
    with torch.no_grad():
        encoded, state = model.encode(src, lengths)
        stepped = []
        for token in [BOS, *tokens]:
            _, state, _, copy_logit = model.decoder.step(
                torch.tensor([token]), state, encoded.memory, encoded.keys, encoded.mask
            )
            stepped.append(float(torch.sigmoid(copy_logit)[0]))
    assert Seq2SeqSteps(model).copy_gates(sources[0], tokens) == pytest.approx(stepped, abs=1e-6)
