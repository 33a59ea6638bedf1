"""`seqkit translate`: one line out per line in, in order; batching never changes the output."""

from __future__ import annotations

import gzip

import pytest

from seqkit import model_types
from seqkit.config import DecodeConfig
from seqkit.data.text import read_lines
from seqkit.decoding.inference import (
    LineNumbers,
    TooManyPieces,
    _continuation,
    _shown_prompt,
    in_chunks,
    translate_lines,
    translate_nbest,
    translate_stream,
)
from seqkit.decoding.torch_steps import steps_of
from tests.helpers import assert_one_line_error, seqkit, seqkit_here


def test_empty_lines_keep_line_count_and_order(reverse_model):
    text = "a b c\n\nd e f g\n   \nh\n\n"
    result = seqkit_here("translate", reverse_model, stdin=text)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split("\n") == ["c b a", "", "g f e d", "", "h", "", ""]


def test_batched_output_equals_one_at_a_time(reverse_model, reverse_data):
    _, tokenizer, model = model_types.load(reverse_model)
    sources = read_lines(f"{reverse_data}/dev.src")
    batched = translate_lines(steps_of(model), tokenizer, sources, DecodeConfig(batch_size=64))
    single = [
        translate_lines(steps_of(model), tokenizer, [s], DecodeConfig(batch_size=1))[0] for s in sources
    ]
    assert batched == single
    streamed = list(translate_stream(steps_of(model), tokenizer, iter(sources), DecodeConfig(batch_size=3)))
    assert streamed == batched  # chunks of 48 lines, batches of 3


def test_files_gz_and_output_option(tmp_path, reverse_model):
    plain, packed = tmp_path / "a.txt", tmp_path / "b.txt.gz"
    plain.write_text("a b\nc d e\n")
    with gzip.open(packed, "wt") as f:
        f.write("f g h\n")
    out = tmp_path / "out.txt"
    result = seqkit_here("translate", reverse_model, plain, packed, "--output", out)
    assert result.returncode == 0 and result.stdout == b""
    assert out.read_text() == "b a\ne d c\nh g f\n"


def test_output_length_is_limited_by_source_length(reverse_model):
    _, tokenizer, model = model_types.load(reverse_model)
    cfg = DecodeConfig(max_length_ratio=0.5, max_length_offset=0)
    source = "a b c d e f g"
    limit = int(0.5 * len(tokenizer.encode_src([source])[0]))
    (output,) = translate_lines(steps_of(model), tokenizer, [source], cfg)
    assert len(tokenizer.encode_tgt([output])[0]) <= limit < len(tokenizer.encode_src([source])[0])


def test_int8_and_bf16_decoding_keep_the_outputs(tmp_path, reverse_model, reverse_data):
    """The fast decoding paths change the arithmetic, not what a trained model says (nearly always)."""
    source = f"{reverse_data}/dev.src"
    outputs = {}
    for name, flags in {"plain": [], "int8": ["--quantize"], "bf16": ["--precision", "bf16"]}.items():
        # the fast paths in a process of their own: torch warns once per process, if at all
        run = seqkit if flags else seqkit_here
        result = run("translate", reverse_model, source, "--device", "cpu", *flags)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stderr == b""  # no deprecation chatter from torch's quantization
        outputs[name] = result.stdout.decode().splitlines()
    references = read_lines(f"{reverse_data}/dev.tgt")
    assert outputs["plain"] == references
    for name in ("int8", "bf16"):
        same = sum(a == b for a, b in zip(outputs[name], outputs["plain"], strict=True))
        assert same >= 0.95 * len(references), name


def test_bad_precision_is_a_one_line_error(reverse_model):
    assert_one_line_error(
        seqkit_here("translate", reverse_model, "--precision", "fp8", stdin="a\n"), "--precision fp8", "bf16"
    )


def test_an_output_file_is_written_as_results_come_not_held_to_the_end(tmp_path, reverse_model):
    """A corpus's translations are streamed into -o's temporary file (renamed into place at the end),
    not held in memory: its first chunks are on disk while the input is still open."""
    import subprocess
    import sys
    import time

    out = tmp_path / "out.txt"
    process = subprocess.Popen(
        [sys.executable, "-m", "seqkit", "translate", str(reverse_model), "-o", str(out), "--beam-size", "1"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None
    try:
        process.stdin.write(b"c a b\n" * 6000)  # beyond a chunk and the file's buffer
        process.stdin.flush()
        deadline = time.monotonic() + 120
        while not any(p.stat().st_size for p in tmp_path.glob(".out.txt.*.tmp")):
            assert time.monotonic() < deadline and process.poll() is None, (
                "nothing written while input is open"
            )
            time.sleep(0.05)
        assert not out.exists()  # renamed into place only when every line is written
        _, stderr = process.communicate(timeout=120)  # (closes the input)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    assert out.read_text().splitlines() == ["b a c"] * 6000
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_line_of_no_pieces_and_a_blank_tsv_line_give_empty_lines(reverse_model, tmp_path):
    # a line of characters the tokenizer drops got a made-up translation; a blank line of a TSV was an
    # error under --column ("1 tab-separated column(s)")
    # (a NUL or a C1 control too: SentencePiece gives them an unknown piece, and its model ignored them)
    stdin = "c a b\n\x1b\n\x01\x02\nb a\n\x00\n\x80\x9c\nc\x00 a\x85b\n"
    result = seqkit_here("translate", reverse_model, "--beam-size", 2, stdin=stdin)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[1:3] == ["", ""] and lines[0] and lines[3]
    assert lines[4:6] == ["", ""] and lines[6] == lines[0]  # (U+0085, a next line, reads as a space)
    _, tokenizer, _ = model_types.load(reverse_model)
    assert tokenizer.src_pieces("c\x00 a\x85b") == tokenizer.src_pieces("c a b")  # (the pieces shown)
    (tmp_path / "pairs.tsv").write_text("x\tc a b\n\ny\tb a\n")
    column = seqkit_here("translate", reverse_model, tmp_path / "pairs.tsv", "--column", 2, "--beam-size", 2)
    assert column.returncode == 0, column.stderr
    assert column.stdout.decode().splitlines() == [lines[0], "", lines[3]]


def test_a_models_beam_only_settings_give_way_to_greedy_search_and_sampling(reverse_model, tmp_path):
    """A model saved with decode.coverage_penalty (or shortlist): `--beam-size 1` and `--temperature`
    were errors blaming "command-line options" for a setting the user never gave."""
    import shutil

    import pytest

    import seqkit
    from seqkit import config as config_lib
    from seqkit import configfile
    from seqkit.errors import ConfigError

    penalised = tmp_path / "model"
    shutil.copytree(reverse_model, penalised)
    values = configfile.read_toml(penalised / "config.toml")
    values["decode"].update(beam_size=3, coverage_penalty=0.5, shortlist=True)
    (penalised / "config.toml").write_text(configfile.to_toml(config_lib.from_dict(values)).decode())
    lines = ["c a b", "d b a e", "b"]
    mine, plain = seqkit.load(penalised), seqkit.load(reverse_model)
    assert mine.translate(lines, beam_size=1) == plain.translate(lines, beam_size=1, shortlist=True)
    sampled = {"temperature": 1.0, "seed": 3}
    assert mine.translate(lines, **sampled) == plain.translate(lines, **sampled)
    command = seqkit_here("translate", penalised, "--beam-size", 1, stdin="c a b\n")
    assert (
        command.returncode == 0
        and command.stdout.decode() == plain.translate(["c a b"], beam_size=1)[0].text + "\n"
    )
    with pytest.raises(ConfigError, match="coverage_penalty re-ranks"):  # both asked for: still an error
        mine.translate(lines, beam_size=1, coverage_penalty=0.5)


def test_a_typed_input_is_a_terminals_stdin_among_the_inputs(monkeypatch):
    import sys
    from pathlib import Path

    from seqkit.cli import line_io

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    assert line_io.typed(None) and line_io.typed([Path("in.txt"), Path("-")])  # (any `-`, not only all)
    assert not line_io.typed([Path("in.txt")])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert not line_io.typed([Path("-")])


def test_a_device_output_may_also_be_an_input():
    from pathlib import Path

    from seqkit.cli import line_io

    # written through, never replaced: /dev/null as input and output destroys nothing
    line_io.check_output(Path("/dev/null"), [Path("/dev/null")])


class _PiecePerWord:
    """A tokenizer stub: one piece per word of a line; ids 0 and 1 decode as given in `texts`."""

    def __init__(self, texts: dict[tuple[int, ...], str] | None = None):
        self.texts = texts or {}

    def encode_src(self, lines: list[str]) -> list[list[int]]:
        return [[4] * len(line.split()) for line in lines]

    def decode_tgt(self, rows: list[list[int]]) -> list[str]:
        return [self.texts[tuple(row)] for row in rows]


def test_a_line_too_long_is_named_by_its_place_in_the_stream():
    # lines[i] of a chunk whose first line is line 10 of the file is line 10 + i; torchrun's process of
    # every 2nd line from line 3 numbers its k-th line 3 + 2k; a list's line numbers have thousands
    cfg = DecodeConfig(max_input_pieces=2)
    with pytest.raises(TooManyPieces, match=r"^f.txt:11 has 3 pieces, more than decode.max_input_pieces = 2"):
        translate_nbest(
            None, _PiecePerWord(), ["a", "a b c"], cfg, first_line=10, numbers=LineNumbers("f.txt")
        )
    assert LineNumbers("f.txt", first=3, step=2).name(4) == "f.txt:11"
    assert LineNumbers().name(1233) == "input line 1,234"


def test_chunks_are_of_the_size_asked_and_know_their_first_line():
    def process(chunk, first):
        return [(first, line, len(chunk)) for line in chunk]

    together = list(in_chunks("abcde", DecodeConfig(batch_size=16), process, chunk_lines=2))
    assert together == [(1, "a", 2), (1, "b", 2), (3, "c", 2), (3, "d", 2), (5, "e", 1)]


def test_a_continuation_that_changes_how_the_prompt_decodes_is_given_whole():
    # a piece may join the prompt's last one: then the prompt's text is not a prefix to cut off
    tokenizer = _PiecePerWord({(0,): "ab", (0, 1): "a-b c", (0, 0): "abab"})
    assert _continuation(tokenizer, [0], [0]) == "ab"
    assert _continuation(tokenizer, [0], [1]) == "a-b c"


def test_a_prompts_trailing_space_is_dropped_only_where_the_tokenizer_dropped_it():
    # a word model never saw "God is "'s space (its continuation brings one); a character model did
    words = _PiecePerWord()
    words.encode_tgt = lambda lines: [[len(word) for word in line.split()] for line in lines]
    assert _shown_prompt(words, "God is ", [3, 2]) == "God is"
    characters = _PiecePerWord()
    characters.encode_tgt = lambda lines: [[ord(c) for c in line] for line in lines]
    assert _shown_prompt(characters, "God is ", [ord(c) for c in "God is "]) == "God is "
