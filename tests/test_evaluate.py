"""`seqkit evaluate` gives exactly sacrebleu's numbers, and refuses inconsistent input."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from seqkit.errors import DataError
from seqkit.scoring.evaluation import parse_metrics, score_systems
from seqkit.scoring.likelihood import check_pair_lengths
from seqkit.scoring.metrics import METRICS, corpus_score
from tests.helpers import assert_one_line_error, seqkit_here

CORPUS = Path(__file__).parent.parent / "corpora" / "bible-es-en"


@pytest.fixture(scope="module")
def hyp_ref(tmp_path_factory) -> tuple[Path, Path]:
    """200 real English references and a damaged copy of them as the hypothesis (words dropped, swapped)."""
    import gzip

    with gzip.open(CORPUS / "dev.en.gz", "rt", encoding="utf-8") as f:
        refs = [next(f).rstrip("\n") for _ in range(200)]
    rng = random.Random(3)
    hyps = []
    for line in refs:
        words = [w for w in line.split() if rng.random() > 0.2]
        if len(words) > 3 and rng.random() < 0.5:
            words[0], words[1] = words[1], words[0]
        hyps.append(" ".join(words))
    hyps[5] = ""  # an empty hypothesis is a legal segment
    directory = tmp_path_factory.mktemp("eval")
    (directory / "ref.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    (directory / "hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    return directory / "hyp.txt", directory / "ref.txt"


def _sacrebleu_cli(hyp: Path, *refs: Path) -> dict[str, dict]:
    """The sacrebleu command line's JSON, scores printed to 4 decimals."""
    binary = Path(sys.executable).parent / "sacrebleu"
    command = [binary, *map(str, refs), "-i", str(hyp), "-m", "bleu", "chrf", "ter", "-w", "4"]
    results = json.loads(subprocess.run(command, capture_output=True, check=True).stdout)
    return dict(zip(["bleu", "chrf", "ter"], results, strict=True))


def test_scores_equal_the_sacrebleu_command_line(hyp_ref):
    hyp, ref = hyp_ref
    result = seqkit_here("evaluate", "-i", hyp, "-r", ref, "--json")
    assert result.returncode == 0, result.stderr.decode()
    ours = {s["metric"]: s for s in json.loads(result.stdout)["systems"][0]["scores"]}
    expected = _sacrebleu_cli(hyp, ref)
    assert 10 < expected["bleu"]["score"] < 90  # a meaningful, non-degenerate case
    for metric, theirs in expected.items():
        assert round(ours[metric]["score"], 4) == theirs["score"]
        assert ours[metric]["signature"] == theirs["signature"]


def test_several_references_equal_the_sacrebleu_command_line(hyp_ref, tmp_path):
    """README: several -r are multiple references, as `sacrebleu REF1 REF2 -i HYP`."""
    hyp, ref = hyp_ref
    # A second reference: each verse without every third word. (Not the words reversed: TER's search for
    # shifts made that one test take a minute.)
    other = tmp_path / "ref2.txt"
    other.write_text(
        "".join(
            " ".join(w for i, w in enumerate(line.split()) if i % 3 != 2) + "\n"
            for line in ref.read_text().splitlines()
        )
    )
    result = seqkit_here("evaluate", "-i", hyp, "-r", ref, "-r", other, "--json")
    assert result.returncode == 0, result.stderr.decode()
    ours = {s["metric"]: s for s in json.loads(result.stdout)["systems"][0]["scores"]}
    expected = _sacrebleu_cli(hyp, ref, other)
    assert expected["bleu"]["score"] != _sacrebleu_cli(hyp, ref)["bleu"]["score"]  # the second one counts
    for metric, theirs in expected.items():
        assert round(ours[metric]["score"], 4) == theirs["score"]
        assert ours[metric]["signature"] == theirs["signature"] and "nrefs:2|" in theirs["signature"]


def test_table_lists_each_system_and_signatures(hyp_ref):
    hyp, ref = hyp_ref
    result = seqkit_here(
        "evaluate",
        "-i",
        hyp,
        "-i",
        ref,
        "-r",
        ref,
        "--name",
        "damaged",
        "--name",
        "oracle",
        "-m",
        "bleu,chrf",
    )
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    oracle = next(line for line in out.splitlines() if line.strip().startswith("oracle"))
    assert oracle.split()[1:] == ["100.00", "100.00"]
    assert "bleu signature: nrefs:1|" in out and "chrf signature: nrefs:1|" in out
    assert result.stderr == b""


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("hyp_bytes", "ref_bytes", "fragments"),
    [
        (b"a\nb\nc\n", b"a\nb\n", ["hyp.txt has 3 lines", "ref.txt has 2"]),
        (b"a\n\xff\xfe b\n", b"a\nb\n", ["hyp.txt:2: not valid UTF-8", "iconv"]),
        (b"a\nb\n", b"a\nok\n\xe9t\xe9\n", ["ref.txt:3: not valid UTF-8"]),
    ],
    ids=["line-count-mismatch", "non-utf8-hypothesis", "non-utf8-reference"],
)
def test_bad_input_is_one_clear_error(tmp_path, hyp_bytes, ref_bytes, fragments):
    hyp, ref = _write(tmp_path / "hyp.txt", hyp_bytes), _write(tmp_path / "ref.txt", ref_bytes)
    assert_one_line_error(seqkit_here("evaluate", "-i", hyp, "-r", ref), *fragments)


def test_missing_files_and_bad_metric(tmp_path):
    ref = _write(tmp_path / "ref.txt", b"a\n")
    assert_one_line_error(
        seqkit_here("evaluate", "-i", tmp_path / "nope.txt", "-r", ref), "nope.txt: no such file"
    )
    assert_one_line_error(
        seqkit_here("evaluate", "-i", ref, "-r", ref, "-m", "bleu,meteor"), "meteor", "valid: bleu, chrf, ter"
    )
    assert_one_line_error(seqkit_here("evaluate", "-i", ref), "--ref")


def test_metrics_are_named_in_any_case_and_a_list_of_none_is_an_error():
    # `-m BLEU` and a trailing comma are sacrebleu's spellings too; no metric at all was a table of none
    assert parse_metrics(["BLEU", "chrf,", " ter , bleu"]) == ["bleu", "chrf", "ter", "bleu"]
    with pytest.raises(DataError, match=r"^--metrics is empty; give some of: bleu, chrf, ter$"):
        parse_metrics([",", " "])


@pytest.mark.parametrize(
    ("hypotheses", "references", "names", "said"),
    [
        (
            [["a b"], ["a b"]],
            [["a b"]],
            ["one"],
            r"^--name given 1 time for 2 --hyp files; give one per --hyp$",
        ),
        ([["a b"]], [[]], [], r"ref0.txt has no lines: nothing to score"),
        (
            [["a b", "c"]],
            [["a b", "c"], ["a b"]],
            [],
            r"ref1.txt has 1 line but \S*ref0.txt has 2; references must",
        ),
        (
            [["a b", "c"]],
            [["a b", "c"], ["a b", "c", "d"]],
            [],
            r"ref1.txt has 3 lines but \S*ref0.txt has 2",
        ),
    ],
    ids=[
        "fewer-names-than-systems",
        "empty-references",
        "shorter-second-reference",
        "longer-second-reference",
    ],
)
def test_systems_and_references_that_do_not_align_are_one_error_naming_the_file(
    tmp_path, hypotheses, references, names, said
):
    def written(stem: str, i: int, lines: list[str]) -> Path:
        return _write(tmp_path / f"{stem}{i}.txt", "".join(f"{line}\n" for line in lines).encode())

    hyps = [written("hyp", i, lines) for i, lines in enumerate(hypotheses)]
    refs = [written("ref", i, lines) for i, lines in enumerate(references)]
    with pytest.raises(DataError, match=said):
        score_systems(hyps, refs, names, ["bleu"])


def test_the_standard_input_is_the_system_named_stdin(tmp_path, monkeypatch):
    reference = _write(tmp_path / "ref.txt", b"the cat sat on the mat\n")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"the cat sat on the mat\n")))
    [(name, [score])] = score_systems([Path("-")], [reference], [], ["chrf"])
    assert (name, score.score) == ("stdin", 100.0)


def test_a_score_carries_sacrebleus_own_line_and_signature(hyp_ref):
    # (the JSON's "text": sacrebleu's line, e.g. "BLEU = 23.41 55.1/29.0/17.3/10.6 (BP = ...)")
    hyp, ref = hyp_ref
    hypotheses, references = hyp.read_text().splitlines()[:20], ref.read_text().splitlines()[:20]
    for metric, scorer in METRICS.items():
        theirs = scorer()
        result = theirs.corpus_score(hypotheses, [references])
        assert corpus_score(metric, hypotheses, [references]).to_dict() == {
            "metric": metric,
            "score": result.score,
            "signature": str(theirs.get_signature()),
            "text": str(result),
        }


def test_perplexity_of_a_model(reverse_model, reverse_data, tmp_path):
    result = seqkit_here(
        "evaluate",
        "--model",
        reverse_model,
        "-s",
        f"{reverse_data}/dev.src",
        "-r",
        f"{reverse_data}/dev.tgt",
        "-i",
        f"{reverse_data}/dev.tgt",
        "--json",
    )
    assert result.returncode == 0, result.stderr.decode()
    both = json.loads(result.stdout)  # one JSON document holds the metrics and the perplexity
    assert round(both["systems"][0]["scores"][0]["score"], 6) == 100.0
    good = both["perplexity"]
    assert 1.0 <= good["perplexity"] < 1.5  # the model has learned the task
    wrong = _write(tmp_path / "wrong.tgt", Path(f"{reverse_data}/dev.src").read_bytes())  # unreversed targets
    bad = json.loads(
        seqkit_here(
            "evaluate", "--model", reverse_model, "-s", f"{reverse_data}/dev.src", "-r", wrong, "--json"
        ).stdout
    )
    assert bad["perplexity"]["perplexity"] > 5 * good["perplexity"]
    # sources and references of other line counts are one error naming both (no perplexity of a part)
    short = _write(
        tmp_path / "short.tgt", b"".join(Path(f"{reverse_data}/dev.tgt").read_bytes().splitlines(True)[:3])
    )
    assert_one_line_error(
        seqkit_here("evaluate", "--model", reverse_model, "-s", f"{reverse_data}/dev.src", "-r", short),
        "short.tgt has 3", "must be line-aligned",
    )  # fmt: skip


def test_names_print_as_they_are_and_whole_in_a_pipe(hyp_ref, tmp_path):
    # rich read them as markup ("[b]" eaten, "[/b]" a traceback) and cut a pipe's table at 80 columns
    hyp, ref = hyp_ref
    long = tmp_path / ("実験" * 40) / ("翻訳" * 40) / "test[b]hyp.en"  # (a CJK character: two columns)
    long.parent.mkdir(parents=True)
    long.write_bytes(Path(hyp).read_bytes())
    result = seqkit_here("evaluate", "-i", long, "-i", hyp, "-r", ref, "--name", "sys [/b]", "--name", "ok")
    assert result.returncode == 0, result.stderr
    assert "sys [/b]" in result.stdout.decode() and " ok " in result.stdout.decode()
    unnamed = seqkit_here("evaluate", "-i", long, "-r", ref)
    assert str(long) in unnamed.stdout.decode()


def test_a_models_perplexity_scores_every_pair_as_model_score_does(reverse_model, tmp_path):
    # a pair with an empty side was left out, unsaid: its end of sentence is still the model's to give
    import math

    import seqkit

    sources, references = ["c a b", "b a", "", "d e"], ["b a c", "", "a", "e d"]
    source = _write(tmp_path / "s.txt", "".join(f"{line}\n" for line in sources).encode())
    reference = _write(tmp_path / "r.txt", "".join(f"{line}\n" for line in references).encode())
    result = seqkit_here("evaluate", "--model", reverse_model, "-s", source, "-r", reference, "--json")
    assert result.returncode == 0, result.stderr.decode()
    scored = seqkit.load(reverse_model, device="cpu").score(sources, references)
    said = json.loads(result.stdout)["perplexity"]
    assert said["tokens"] == sum(scored.tokens)
    assert said["perplexity"] == pytest.approx(scored.perplexity, rel=1e-5)
    assert math.isnan(seqkit.load(reverse_model, device="cpu").score([], []).perplexity)  # (it said 1.0)


def test_options_a_models_perplexity_would_not_read_are_errors(reverse_model, char_lm, tmp_path):
    # they were ignored, exit 0: a TSV's whole lines were scored as references (--column), a second -r
    source = _write(tmp_path / "s.txt", b"c a b\n")
    reference = _write(tmp_path / "r.txt", b"b a c\n")
    for args, said in (
        (("--model", reverse_model, "-s", source, "-r", reference, "--column", "1"), "--column with --model"),
        (("--model", reverse_model, "-s", source, "-r", reference, "-r", reference), "2 -r were given"),
        (("--model", char_lm, "-s", source, "-r", reference), "is a language model"),
        (("-i", reference, "-r", reference, "-s", source), "--source is the source side"),
        # the first to read the standard input had it all ("the standard input has 0 lines but - has 1")
        (("-i", "-", "-r", "-"), "- given twice: the standard input can be read once"),
        (("--model", reverse_model, "-s", "-", "-r", "-"), "- given twice"),
        # as every command names them (it was "no config.toml (the run's config)")
        (("--model", tmp_path / "none", "-r", reference), "no such model directory"),
        (("--model", source, "-r", reference), "a file, not a model directory"),
    ):
        assert_one_line_error(seqkit_here("evaluate", *args, stdin="b a c\n"), said)


def test_a_models_perplexity_refuses_a_line_longer_than_translate_reads(reverse_model, tmp_path):
    # teacher forcing over a line of 619,000 pieces ran for more than 10 minutes
    import seqkit

    model = seqkit.load(reverse_model, device="cpu")
    limit = model.config.decode.max_input_pieces
    long = " ".join(["a"] * (limit + 5))
    source = _write(tmp_path / "s.txt", f"c a b\n{long}\n".encode())
    reference = _write(tmp_path / "r.txt", b"b a c\na\n")
    assert_one_line_error(
        seqkit_here("evaluate", "--model", reverse_model, "-s", source, "-r", reference),
        f"{source}:2 has ",
        f"pieces, more than the model's decode.max_input_pieces = {limit:,}; split the line",
    )
    assert_one_line_error(
        seqkit_here("evaluate", "--model", reverse_model, "-s", reference, "-r", source), f"{source}:2 has "
    )
    with pytest.raises(DataError, match=r"^targets: item 2 has .* pieces, more than the model's"):
        model.score(["c a b", "a"], ["b a c", long])
    assert len(model.score(["c a b"], ["b a c"]).tokens) == 1  # (within the limit: scored)


def test_a_pair_of_exactly_max_input_pieces_is_scored_and_one_more_is_named():
    # (translate reads a line of decode.max_input_pieces pieces: so does a model's perplexity)
    check_pair_lengths([[4, 5, 6]], [[7, 8]], 3, ("s:", "t:"))
    with pytest.raises(
        DataError, match=r"^t:2 has 4 pieces, more than the model's decode.max_input_pieces = 3"
    ):
        check_pair_lengths([[4], [5]], [[6], [7, 8, 9, 10]], 3, ("s:", "t:"))
