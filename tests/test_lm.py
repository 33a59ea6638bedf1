"""Recurrent language models and `seqkit generate`: memorise, reproduce, sample reproducibly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from seqkit import model_types
from seqkit.decoding.sampling import choose_token
from seqkit.errors import ConfigError
from seqkit.training import log as training_log
from seqkit.training.log import EndRecord, ValidRecord
from seqkit.training.task import NullReporter
from tests.helpers import LINES, assert_one_line_error, seqkit_here


def _generate(model_dir, *args, stdin=None) -> list[str]:
    result = seqkit_here("generate", model_dir, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().split("\n")[:-1]


def test_memorised_text_is_reproduced_greedily_and_stops_at_end_of_line(char_lm):
    prompts = [line[:5] for line in LINES]
    assert _generate(char_lm, *prompts, "--temperature", "0") == LINES
    # prompts from stdin, one output line per prompt line, an empty prompt starts a new line
    out = _generate(char_lm, "--temperature", "0", stdin="a sti\n\nall t\n")
    assert len(out) == 3 and out[0] == LINES[1] and out[2] == LINES[2]
    assert out[1] and out[1][0] in {line[0] for line in LINES}  # some line start: the context is only EOS


def test_a_prompts_control_characters_are_written_as_the_model_read_them(char_lm):
    # written back raw, a CR overwrote the prompt on a terminal and split the line for a reader of
    # universal newlines (Python's open()), a NUL and a form feed went into the output
    result = seqkit_here(
        "generate", char_lm, "--temperature", "0", "--max-tokens", "3", stdin="the\rq\nx\x00y\x0cz\n"
    )
    assert result.returncode == 0, result.stderr.decode()
    first, second = result.stdout.decode().split("\n")[:-1]
    assert first.startswith("the q") and second.startswith("xy z")
    assert not any(c in result.stdout.decode() for c in "\r\x00\x0c")


def test_max_tokens_bounds_the_continuation(char_lm):
    (text,) = _generate(char_lm, "the q", "--temperature", "0", "--max-tokens", "6")
    assert text == "the quick b"


def test_sampling_is_reproducible_and_top_k_1_is_greedy(char_lm):
    args = ("", "e", "--temperature", "1.5", "--num-samples", "3", "--max-tokens", "30")
    first = _generate(char_lm, *args, "--seed", "5")
    assert len(first) == 6
    assert first == _generate(char_lm, *args, "--seed", "5")
    assert first != _generate(char_lm, *args, "--seed", "6")
    greedy = _generate(char_lm, "a", "all", "--temperature", "0")
    assert _generate(char_lm, "a", "all", "--top-k", "1", "--temperature", "2") == greedy


@pytest.mark.parametrize(
    ("option", "fragments"),
    [
        (["--top-p", "0"], ["generate.top_p", "in (0, 1]"]),
        (["--top-p", "1.5"], ["generate.top_p"]),
        (["--temperature", "-1"], ["generate.temperature", "0 (greedy) or between 0.01 and 100"]),
        (["--top-k", "-3"], ["generate.top_k"]),
        (["--max-tokens", "0"], ["generate.max_tokens"]),
    ],
)
def test_bad_sampling_options_are_clear_errors(char_lm, option, fragments):
    assert_one_line_error(seqkit_here("generate", char_lm, "a", *option), *fragments)


def test_model_types_are_not_mixed_up(char_lm, reverse_model, tmp_path):
    (tmp_path / "test.tsv").write_text("a\tb\n")
    assert_one_line_error(  # the command named is the one run, not the task it needs
        seqkit_here("evaluate", "--model", reverse_model, "--data", tmp_path / "test.tsv"),
        "which `seqkit evaluate --data` cannot use; use `seqkit translate`",
    )
    assert_one_line_error(
        seqkit_here("generate", reverse_model, "a"),
        f"{reverse_model} holds an encoder-decoder (model.type = seq2seq), which `seqkit generate` cannot use; "
        "use `seqkit translate`, or a model with model.type = lm",
    )
    assert_one_line_error(
        seqkit_here("translate", char_lm, stdin="a\n"),
        f"{char_lm} holds a language model (model.type = lm), which `seqkit translate` cannot use; "
        "use `seqkit generate`, or a model with model.type = seq2seq",
    )


def test_evaluate_reports_perplexity_and_bits_per_char(char_lm, tmp_path):
    text = tmp_path / "text.txt"
    # (NULs, which the tokenizer drops, were counted as characters: bits per character below log2 ppl)
    text.write_text("\n".join(line.replace(" ", "\x00 ") for line in LINES) + "\n")
    result = seqkit_here("evaluate", "--model", char_lm, "-r", text, "--json")
    assert result.returncode == 0, result.stderr.decode()
    scores = json.loads(result.stdout)["perplexity"]
    assert scores["perplexity"] < 1.3  # memorised
    assert math.isclose(
        scores["bits_per_char"], math.log2(scores["perplexity"]), rel_tol=1e-6
    )  # chars = tokens
    shuffled = tmp_path / "shuffled.txt"
    shuffled.write_text("\n".join(" ".join(reversed(line.split())) for line in LINES) + "\n")
    worse = json.loads(seqkit_here("evaluate", "--model", char_lm, "-r", shuffled, "--json").stdout)[
        "perplexity"
    ]
    assert worse["perplexity"] > 2 * scores["perplexity"]


def test_training_log_of_a_language_model(char_lm):
    records = training_log.read(char_lm)
    valid = training_log.of_kind(records, ValidRecord)
    assert [r.step for r in valid] == [200, 400]
    assert valid[-1].scores["bpc"] < valid[0].scores["bpc"]
    end = records[-1]
    assert isinstance(end, EndRecord) and end.best_metric == "ppl"
    assert end.best_score == min(r.scores["ppl"] for r in valid)


def _sentencepiece_lm(cell: str):
    sections = {
        "tokenizer": {"type": "sentencepiece", "vocab_size": 40},
        "model": {"cell": cell, "embedding_size": 64, "decoder_hidden_size": 64, "tie_embeddings": True},
        "train": {"max_steps": 300, "valid_every": 300},
    }
    return pytest.param(cell, marks=pytest.mark.trained_in_background("lm", **sections), id=cell)


@pytest.mark.parametrize("cell", [_sentencepiece_lm("lstm"), _sentencepiece_lm("rnn")])
def test_sentencepiece_lstm_and_tied_embeddings(background_model, cell):
    _, _, model = model_types.load(background_model.model_dir)
    assert model.output.weight is model.embedding.weight  # still tied after loading
    (text,) = _generate(background_model.model_dir, "a stitch", "--temperature", "0")
    assert text == LINES[1]
    # SentencePiece drops a prompt's trailing space, which the continuation brings back: not twice
    import seqkit

    loaded = seqkit.load(background_model.model_dir)
    assert loaded.generate(["a stitch "], temperature=0) == [LINES[1]]
    streamed: list[str] = []
    list(loaded.generate_stream(["a stitch "], loaded.generate_settings(temperature=0), streamed.append))
    assert "".join(streamed) == LINES[1]
    assert len(streamed) > 1 and all(len(piece) < len(LINES[1]) for piece in streamed)  # as it goes
    # unknown characters before the space (decoded " ⁇ ", which ends in one): not kept either
    unknown, spaced = loaded.generate(["ZZZ", "ZZZ "], temperature=0, max_tokens=6)
    assert spaced == unknown


def test_choose_token_top_k_and_top_p():
    probs = np.array([0.0, 0.0, 0.0, 0.0, 0.5, 0.3, 0.15, 0.05])  # ids 0-3 are special
    log_probs = np.log(np.maximum(probs, 1e-9)).astype(np.float32)
    rng = np.random.default_rng(0)

    def draws(top_k: int, top_p: float) -> np.ndarray:
        return np.array([choose_token(log_probs, 1.0, top_k, top_p, rng) for _ in range(4000)])

    assert set(draws(0, 0.7).tolist()) == {4, 5}  # 0.5 + 0.3 reaches 0.7
    assert set(draws(3, 1.0).tolist()) == {4, 5, 6}
    free = draws(0, 1.0)
    assert set(free.tolist()) == {4, 5, 6, 7}
    for token, p in ((4, 0.5), (5, 0.3), (6, 0.15), (7, 0.05)):
        assert abs((free == token).mean() - p) < 0.03
    assert choose_token(log_probs, 0.0, 0, 1.0, rng) == 4


def test_sample_reads_the_prompt_after_eos_and_keeps_to_the_nucleus():
    """`sample` through fake steps: the context is EOS and the prompt (as every training line starts after
    an EOS), and top_p restricts every step to its nucleus (here the most likely token alone)."""
    from seqkit.config import GenerateConfig
    from seqkit.data.tokenizer import EOS
    from seqkit.decoding.sampling import sample

    probs = np.array([0.0, 0.0, 0.0, 0.05, 0.6, 0.25, 0.1])  # EOS, then tokens 4 to 6
    with np.errstate(divide="ignore"):
        log_probs = np.log(probs).astype(np.float32)[None]

    class Steps:
        def __init__(self):
            self.started = []

        def start(self, tokens):
            self.started.append(tokens.tolist())
            return log_probs, None

        def step(self, tokens, state):
            return log_probs, None

    steps = Steps()
    cfg = GenerateConfig(temperature=1.0, top_p=0.5, max_tokens=4)
    outputs = [sample(steps, [5, 6], cfg, np.random.default_rng(seed)) for seed in range(40)]
    assert outputs == [[4, 4, 4, 4]] * 40
    assert steps.started == [[[EOS, 5, 6]]] * 40
    free = [sample(steps, [], GenerateConfig(max_tokens=4), np.random.default_rng(s)) for s in range(40)]
    assert {token for tokens in free for token in tokens} == {4, 5, 6}  # without top_p: all of them
    assert steps.started[-1] == [[EOS]]


def test_a_draw_at_the_top_of_the_range_never_picks_a_token_ruled_out():
    # the draw was scaled by probs.sum(), which rounds above the cumulative sum's last value now and then;
    # such a draw fell past every token and was clamped to the last id, ruled out or not
    class Highest:
        def random(self) -> float:
            return float(np.nextafter(1.0, 0.0))

    distributions = np.random.default_rng(1).random((300, 40))
    for weights in distributions:
        log_probs = np.log(np.append(weights, 0.0) + 1e-30).astype(np.float32)
        assert choose_token(log_probs, 1.0, 40, 1.0, Highest()) != 40  # top_k 40 rules the last one out


def test_terminal_output_streams_the_same_text(char_lm):
    """On a terminal the text is written piece by piece; it must add up to what a pipe gets."""
    import os
    import pty
    import subprocess
    import sys

    args = [sys.executable, "-m", "seqkit", "generate", str(char_lm), "a st", "every", "--temperature", "0"]
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 1024)
        except OSError:  # the terminal closes when the process ends
            break
        if not data:
            break
        chunks.append(data)
    assert process.wait(timeout=120) == 0
    os.close(leader)
    assert b"".join(chunks).decode().replace("\r\n", "\n") == f"{LINES[1]}\n{LINES[3]}\n"


def test_perplexity_scores_every_token_once_with_the_text_before_it(char_lm):
    # cut into 8 rows of whole tokens, each row's first token was context only and the remainder dropped:
    # "Hello\nworld" scored 6 of its 12 tokens, each after one character of context
    import torch
    import torch.nn.functional as F

    from seqkit.data.corpus import token_stream
    from seqkit.scoring.likelihood import ROW_TOKENS, score_text

    _, tokenizer, model = model_types.load(char_lm)
    model.eval()
    for lines in (["a st"], LINES[:3], LINES * 40):
        stream = token_stream(tokenizer, lines)
        scored = score_text(model, tokenizer, lines, 32)
        assert scored["tokens"] == len(stream) - 1
        if len(stream) - 1 < 2 * ROW_TOKENS:  # one row: the whole text before each token, as one pass
            with torch.no_grad():
                logits, _ = model(stream[:-1].unsqueeze(0), None)
                nll = float(F.cross_entropy(logits[0], stream[1:], reduction="sum"))
            assert scored["nll_per_token"] == pytest.approx(nll / (len(stream) - 1), rel=1e-5)
    assert len(token_stream(tokenizer, LINES * 40)) > 2 * ROW_TOKENS  # (the rows' case ran too)


def test_a_smoothed_chunk_loss_reports_the_unsmoothed_likelihood():
    # training minimises the smoothed loss, but its perplexity is of the plain negative log-likelihood
    import torch
    import torch.nn.functional as F

    from seqkit.scoring.likelihood import chunk_loss

    logits = torch.randn(2, 3, 7, generator=torch.Generator().manual_seed(0))  # (batch, steps, vocab)
    targets = torch.tensor([[1, 2, 3], [4, 5, 0]])
    loss, nll, correct, state = chunk_loss(lambda inputs, state: (logits, state), None, targets, "s", 0.1)
    flat_logits, flat_targets = logits.reshape(-1, 7), targets.reshape(-1)
    assert nll == pytest.approx(float(F.cross_entropy(flat_logits, flat_targets, reduction="sum")))
    smoothed = F.cross_entropy(flat_logits, flat_targets, reduction="sum", label_smoothing=0.1)
    assert float(loss) == pytest.approx(float(smoothed)) and float(loss) != pytest.approx(nll)
    assert correct == int((logits.argmax(-1) == targets).sum()) and state == "s"


def test_small_misuses_of_a_language_model_are_one_line_each(char_lm, tmp_path):
    import seqkit
    from seqkit.errors import ConfigError

    with pytest.raises(
        ConfigError, match="score: .* is a language model, .*seqkit evaluate --model DIR -r FILE"
    ):
        seqkit.load(char_lm, device="cpu").score(["a"], ["b"])  # (it named `seqkit translate`)
    assert_one_line_error(
        seqkit_here("inspect", char_lm, "--text", "a\nb", "-o", tmp_path / "look"),
        "--text holds a line break",
    )
    # a picture under another suffix held PNG bytes, unsaid
    assert_one_line_error(
        seqkit_here("plot", char_lm, "-o", tmp_path / "c.pdf"), "give a name ending in .png"
    )
    assert not (tmp_path / "c.pdf").exists()


def test_a_corpus_without_enough_lines_is_named(tmp_path):
    # it said "data.train and data.dev must each have at least one non-empty line", naming neither file
    (tmp_path / "few.txt").write_text("a b\n\n")
    (tmp_path / "blank.txt").write_text("\n")
    base = ["--set", "model.type=lm", "--set", "tokenizer.type=char", "--set", "data.tgt_lang=txt"]
    for data, said in (
        (
            [f"data.train={tmp_path / 'few'}"],
            "data.train = '" + str(tmp_path / "few") + "': 1 non-empty lines, too few",
        ),
        ([f"data.train={tmp_path / 'blank'}"], "': no non-empty line; give text to learn from"),
        ([f"data.train={tmp_path / 'few'}", f"data.dev={tmp_path / 'blank'}"], "data.dev = '"),
    ):
        sets = [arg for item in data for arg in ("--set", item)]
        result = seqkit_here("train", *base, *sets, "-o", tmp_path / "run", "--max-steps", 2)
        assert_one_line_error(result, said)


def test_a_diverged_run_is_an_error_and_its_log_stays_json(tmp_path, lm_data):
    from seqkit import configfile
    from tests.helpers import lm_config

    config = tmp_path / "lm.toml"
    train = {"learning_rate": 1e9, "max_steps": 40, "valid_every": 20, "log_every": 5, "threads": 1}
    config.write_bytes(configfile.to_toml(lm_config(lm_data, train=train)))
    # it ended "stopped by max_steps ... (no validation yet)" with exit 0, no weights, and two validations
    result = seqkit_here("train", "-c", config, "-o", tmp_path / "run", "--quiet")
    assert_one_line_error(
        result, "dev ppl inf at step 20: the training has diverged (train.learning_rate = 1e+09); start again"
    )
    lines = (tmp_path / "run" / training_log.LOG).read_text().splitlines()

    def strict(constant: str):
        raise ValueError(f"{constant} is not JSON")  # (json.loads reads Infinity and NaN otherwise)

    records = [json.loads(line, parse_constant=strict) for line in lines]
    assert [r["dev_ppl"] for r in records if r["kind"] == "valid"] == [None]
    # what the model directory's commands say of it: not "training has not reached its first validation"
    info = seqkit_here("info", tmp_path / "run")
    assert_one_line_error(info, "the run validated but kept no weights (a run that diverged")
    assert training_log.read_all(tmp_path / "run")  # and the log reads back


class _Warnings(NullReporter):
    """A reporter that keeps the training's warnings."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def warning(self, message: str) -> None:
        self.said.append(message)


def test_a_resume_over_changed_training_text_warns(tmp_path):
    from seqkit.training import lm as train_lm
    from tests.helpers import lm_config, write_text

    data = write_text(tmp_path / "data")
    train = {"max_steps": 4, "valid_every": 4, "threads": 1}
    train_lm.train(lm_config(data, train=train), tmp_path / "run")
    same = _Warnings()
    train_lm.train(lm_config(data, train={**train, "max_steps": 6}), tmp_path / "run", same, resume=True)
    assert same.said == []
    # (a seq2seq run warned, a language model trained on in silence)
    with open(data / "train.txt", "a") as f:
        f.write("a line the checkpoint never read\n" * 20)
    changed = _Warnings()
    train_lm.train(lm_config(data, train={**train, "max_steps": 8}), tmp_path / "run", changed, resume=True)
    assert [m for m in changed.said if m.startswith("the training text is not the checkpoint's")], (
        changed.said
    )


def test_a_bptt_length_beyond_the_batch_is_refused(tmp_path, lm_data):
    from seqkit.training import lm as train_lm
    from tests.helpers import lm_config

    # it trained one stream of 100,000 tokens a step (minutes a step) for a batch of 256
    with pytest.raises(ConfigError, match=r"^train.bptt_length = 257 is more than train.batch_tokens = 256"):
        train_lm.train(lm_config(lm_data, train={"bptt_length": 257}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_bptt_length_equal_to_the_batch_trains(tmp_path, lm_data):
    # (mutation review: only 257 over 256 was tested; a bptt_length of batch_tokens is one stream a step)
    from seqkit.training import lm as train_lm
    from tests.helpers import lm_config

    train = {"bptt_length": 256, "batch_tokens": 256, "max_steps": 1, "valid_every": 1, "threads": 1}
    summary = train_lm.train(lm_config(lm_data, train=train), tmp_path / "run")
    assert summary.steps == 1


def test_a_checkpoint_that_kept_no_corpus_digest_resumes_without_a_warning(tmp_path):
    # a checkpoint of an earlier version has no digest of its text: that is no sign the text changed
    import torch

    from seqkit.training import checkpoint
    from seqkit.training import lm as train_lm
    from tests.helpers import lm_config, write_text

    data = write_text(tmp_path / "data")
    train = {"max_steps": 4, "valid_every": 4, "threads": 1}
    train_lm.train(lm_config(data, train=train), tmp_path / "run")
    path = checkpoint.latest(tmp_path / "run") / checkpoint.STATE
    saved = torch.load(path, weights_only=True)
    assert "corpus" in saved["state"]["task"]
    del saved["state"]["task"]["corpus"]
    torch.save(saved, path)
    resumed = _Warnings()
    train_lm.train(lm_config(data, train={**train, "max_steps": 6}), tmp_path / "run", resumed, resume=True)
    assert resumed.said == []
