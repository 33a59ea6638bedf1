"""Property tests (hypothesis, bounded and derandomized): any UTF-8 lines (combining marks, emoji,
right-to-left text, controls, tabs, long lines, empty and space-only lines) give exactly one output line
per input line from translate, greedy and beam, and num_samples texts per prompt from generate; a known
sentence translates as it does alone, wherever it stands among them."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqkit import model_types
from seqkit.config import GenerateConfig
from seqkit.data.text import without_controls
from seqkit.decoding.inference import generate, translate_stream
from seqkit.decoding.torch_steps import steps_of
from tests.helpers import seqkit_here

KNOWN = "c a d b e"
SAMPLES = [
    "e\u0301 a\u0308",  # combining marks
    "\U0001f600 \U0001f1eb\U0001f1f7",  # emoji, a flag
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",  # Hebrew, Arabic
    "a\tb\x00c\x1bd\u200b",  # tab, NUL, escape, zero-width space
    "   ",
    "",
    "a b " * 40,  # long
]
LINES = st.lists(
    st.one_of(st.text(max_size=60), st.sampled_from(SAMPLES), st.just(KNOWN)).map(
        lambda line: line.replace("\n", " ").replace("\r", " ")  # one line each: no line breaks inside
    ),
    max_size=12,
)
FUZZ = settings(
    max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def test_translate_gives_one_line_per_line_in_order(reverse_model):
    cfg, tokenizer, model = model_types.load(reverse_model)
    greedy, beam = (
        replace(cfg.decode, beam_size=1, batch_size=4),
        replace(cfg.decode, beam_size=3, batch_size=4),
    )
    alone = {
        name: next(translate_stream(steps_of(model), tokenizer, [KNOWN], c))
        for name, c in (("g", greedy), ("b", beam))
    }

    @FUZZ
    @given(LINES)
    def check(lines: list[str]) -> None:
        for name, decode in (("g", greedy), ("b", beam)):
            out = list(translate_stream(steps_of(model), tokenizer, lines, decode, chunk_lines=5))
            assert len(out) == len(lines)
            assert all("\n" not in line for line in out)
            # each line's own translation, in its place: decoded alone (a batch changes no output)
            one_by_one = replace(decode, batch_size=1)
            assert out == [next(translate_stream(steps_of(model), tokenizer, [x], one_by_one)) for x in lines]
            for i, line in enumerate(lines):
                if line == KNOWN:
                    assert out[i] == alone[name]
                if not line.strip():
                    assert out[i] == ""

    check()


def test_generate_gives_num_samples_per_prompt(char_lm):
    cfg, tokenizer, model = model_types.load(char_lm)
    settings_ = GenerateConfig(max_tokens=8, num_samples=2, temperature=1.0, seed=1)

    @FUZZ
    @given(LINES)
    def check(prompts: list[str]) -> None:
        texts = list(generate(steps_of(model), tokenizer, prompts, settings_))
        assert len(texts) == 2 * len(prompts)
        assert all(  # (the prompt as the tokenizer read it: a control character is a space, or nothing)
            text.startswith(without_controls(prompt))
            for text, prompt in zip(texts, [p for p in prompts for _ in (0, 1)], strict=True)
        )

    check()


def test_a_fuzz_file_through_the_command(tmp_path, reverse_model):
    lines = [*SAMPLES, KNOWN, *SAMPLES[::-1], KNOWN]
    (tmp_path / "fuzz.txt").write_text("".join(line + "\n" for line in lines))
    for beam in ("1", "4"):
        result = seqkit_here("translate", reverse_model, tmp_path / "fuzz.txt", "--beam-size", beam)
        assert result.returncode == 0, result.stderr.decode()
        out = result.stdout.decode().split("\n")
        assert len(out) == len(lines) + 1 and out[-1] == ""
        alone = seqkit_here(
            "translate", reverse_model, "--beam-size", beam, stdin=KNOWN + "\n"
        ).stdout.decode()
        assert out[len(SAMPLES)] + "\n" == alone and out[-2] + "\n" == alone
