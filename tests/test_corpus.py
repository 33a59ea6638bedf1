"""Checks on the committed bible-es-en corpus (corpora/bible-es-en/*.gz).

Reads only the committed gzip files; SWORD is not needed. The corpus is
rebuilt with `/usr/bin/python3 corpora/bible-es-en/build.py`; if a rebuild
changes the data on purpose, update the exact numbers and checksums below.
"""

import functools
import gzip
import hashlib
import re
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "bible-es-en"
SPLITS = ("train", "dev", "test")
KINDS = ("es", "en", "ref")

EXPECTED_LINES = {"train": 28758, "dev": 1000, "test": 1000}
EXPECTED_TOTAL = 30758  # of the KJV's 31,102 verses (see test_dropped_chapters_and_verses_absent)
EXPECTED_REF_SHA256 = {
    "train": "ed6babeb618c969aa3005ad4b7c232eda7eee9ac8ac53ea5ca0eb99ea7de8df0",
    "dev": "63fc73c5c54f31d91f4abb95051f1ca84fe46aa209485c0384e672a6b54a8111",
    "test": "8e222a7d3ddef9e0465f5dc3b16522b107966a56f5f66ff40ca669dbee2b9f7f",
}
REF_RE = re.compile(r"^(?:[1-3])?[A-Z][A-Za-z]+ \d+:\d+$")


@functools.cache
def read(split, kind):
    path = CORPUS / f"{split}.{kind}.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        data = f.read()
    assert data.endswith("\n"), path
    return tuple(data[:-1].split("\n"))


@functools.cache
def pairs():
    """{ref: (split, es, en)} over all splits."""
    out = {}
    for split in SPLITS:
        for ref, es, en in zip(read(split, "ref"), read(split, "es"), read(split, "en"), strict=True):
            assert ref not in out, f"{ref} appears twice"
            out[ref] = (split, es, en)
    return out


def split_ref(ref):
    book, cv = ref.rsplit(" ", 1)
    chapter, verse = cv.split(":")
    return book, int(chapter), int(verse)


# --- alignment and counts ----------------------------------------------------


@pytest.mark.parametrize("split", SPLITS)
def test_parallel_line_counts(split):
    n = {kind: len(read(split, kind)) for kind in KINDS}
    assert n["es"] == n["en"] == n["ref"] == EXPECTED_LINES[split], n


def test_dev_test_sizes_and_total():
    assert len(read("dev", "ref")) == 1000
    assert len(read("test", "ref")) == 1000
    total = sum(len(read(s, "ref")) for s in SPLITS)
    assert total == EXPECTED_TOTAL == sum(EXPECTED_LINES.values())


# --- clean text ----------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("lang", ("es", "en"))
def test_no_markup_or_bad_whitespace(split, lang):
    bad = re.compile(r"[<>\\¶\t\r\x00-\x1f]|  ")
    for i, line in enumerate(read(split, lang)):
        where = f"{split}.{lang} line {i + 1}: {line[:80]!r}"
        assert line, "empty " + where
        assert line == line.strip(), "outer whitespace " + where
        assert not bad.search(line), "markup or double space " + where
        assert len(line) <= 1000, "glossary-sized " + where
        assert "\ufffd" not in line, "bad UTF-8 " + where


def test_no_footnote_or_heading_leftovers():
    leftovers = re.compile(
        r"\d+:\d+|\bTR\b|\bNU\b|[Ll]iterally,|\bLXX\b|[\u0590-\u05ff]"
        r"|World English Bible|Glossary|Fué escrita|Enviada de|Escrita de"
    )
    for ref, (_, es, en) in pairs().items():
        for text in (es, en):
            assert not leftovers.search(text), (ref, text)


def test_psalm_119_letters_removed():
    p = pairs()
    for verse in range(1, 177, 8):
        ref = f"Ps 119:{verse}"
        if ref in p:
            _, es, en = p[ref]
            assert not re.match(r"[A-Z]{2,}\b", en), (ref, en)
            assert not re.match(r"[A-Z]{2,}\b", es), (ref, es)


def test_spanish_drop_caps_normalised():
    # RV1909 prints the first words of a chapter in capitals ("EN el principio")
    p = pairs()
    for ref, (_, es, _) in p.items():
        if split_ref(ref)[2] == 1:
            assert not re.match(r"(?:[¡¿]?[A-ZÁÉÍÓÚÑ]+ )*[A-ZÁÉÍÓÚÑ]{2,} [a-záéíóúñ]", es), (ref, es)


# --- splits ----------------------------------------------------------------------


def test_refs_well_formed_and_unique():
    seen = set()
    for split in SPLITS:
        for ref in read(split, "ref"):
            assert REF_RE.match(ref), ref
            assert ref not in seen, f"{ref} in two splits"
            seen.add(ref)
    assert len(seen) == EXPECTED_TOTAL


def test_splits_disjoint():
    sets = {s: set(read(s, "ref")) for s in SPLITS}
    assert not sets["train"] & sets["dev"]
    assert not sets["train"] & sets["test"]
    assert not sets["dev"] & sets["test"]


@pytest.mark.parametrize("split", SPLITS)
def test_splits_deterministic(split):
    refs = read(split, "ref")
    digest = hashlib.sha256("\n".join(refs).encode("utf-8")).hexdigest()
    assert digest == EXPECTED_REF_SHA256[split]


def test_first_refs():
    assert read("train", "ref")[:3] == ("Gen 1:1", "Gen 1:2", "Gen 1:3")
    assert read("dev", "ref")[:3] == ("Gen 1:26", "Gen 2:8", "Gen 3:10")
    assert read("test", "ref")[:3] == ("Gen 1:25", "Gen 3:5", "Gen 4:3")
    assert read("train", "ref")[-1] == "Rev 22:21"


@pytest.mark.parametrize("split", SPLITS)
def test_canonical_order(split):
    refs = read(split, "ref")
    books = []
    for ref in refs:
        book = split_ref(ref)[0]
        if not books or books[-1] != book:
            assert book not in books, f"{split}: book {book} comes back"
            books.append(book)
    pos = {b: i for i, b in enumerate(books)}
    keys = [(pos[b], c, v) for b, c, v in map(split_ref, refs)]
    assert keys == sorted(keys)
    if split == "train":
        assert len(books) == 66


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("kind", KINDS)
def test_gzip_header_has_no_timestamp(split, kind):
    head = (CORPUS / f"{split}.{kind}.gz").read_bytes()[:10]
    assert head[:2] == b"\x1f\x8b"
    assert head[4:8] == b"\x00\x00\x00\x00"  # mtime = 0


# --- dropped verses and chapters -----------------------------------------------


def test_dropped_chapters_and_verses_absent():
    p = pairs()
    dropped_chapters = {
        ("Num", 13),
        ("Num", 30),
        ("Judg", 14),
        ("1Sam", 24),
        ("1Kgs", 22),
        ("1Chr", 21),
        ("2Chr", 33),
        ("Job", 39),
        ("Job", 40),
        ("Hos", 12),
        ("Jonah", 2),
    }
    for ref in p:
        assert split_ref(ref)[:2] not in dropped_chapters, ref
    for ref in (
        "Matt 23:13",
        "Matt 23:14",
        "1John 5:7",
        "Rom 14:23",
        "Rom 16:25",
        "Rom 16:26",
        "Rom 16:27",
        "Luke 17:36",
        "Acts 8:37",
        "Acts 15:34",
        "Acts 24:7",
        "2Cor 13:14",
    ):
        assert ref not in p, ref
    # neighbours of the dropped chapters survive
    assert "Num 12:1" in p or "Num 14:1" in p
    assert "Jonah 1:1" in p or "Jonah 3:1" in p


# --- spot checks ------------------------------------------------------------------


def test_genesis_1_1():
    _, es, en = pairs()["Gen 1:1"]
    assert en == "In the beginning, God created the heavens and the earth."
    assert es == "En el principio crió Dios los cielos y la tierra."


def test_footnote_junction_does_not_glue_words():
    everything = "\n".join(en for _, _, en in pairs().values())
    assert "God created" in everything
    assert "Godcreated" not in everything
    # Matt 1:1 has a footnote right after "Christ,"
    assert pairs()["Matt 1:1"][2] == (
        "The book of the genealogy of Jesus Christ, the son of David, the son of Abraham."
    )


def test_spanish_enclitic_kept_as_one_word():
    p = pairs()
    _, es, _ = p["Matt 19:26"]
    assert es.startswith("Y mirándolos Jesús, les dijo:"), es
    words = {w for _, s, _ in p.values() for w in s.split()}
    assert "mirándo" not in words
    # Strong's pieces that are not enclitics get a space
    assert "tocaren sólo la una" in p["Num 10:4"][1]
    assert "Díganlo los redimidos" in p["Ps 107:2"][1]


def test_psalm_superscription_kept_speaker_label_dropped():
    p = pairs()
    assert p["Ps 3:1"][2].startswith("A Psalm by David, when he fled from Absalom his son. Yahweh,")
    assert p["Ps 3:1"][1].startswith("Salmo de David, cuando huía de delante de Absalom su hijo.")
    assert p["Song 1:2"][2].startswith("Let him kiss me")


def test_revelation_ends_without_glossary():
    _, es, en = pairs()["Rev 22:21"]
    assert en == "The grace of the Lord Jesus Christ be with all the saints. Amen."
    assert es == "La gracia de nuestro Señor Jesucristo sea con todos vosotros. Amén."


def test_epistle_subscription_cut():
    assert pairs()["Rom 16:24"][1].endswith("Amén.")
    assert pairs()["Heb 13:25"][1] == "La gracia sea con todos vosotros. Amén."


def test_the_length_filters_keep_a_pair_at_their_limits():
    # data.max_length and data.max_length_ratio are the longest kept, not the first skipped
    from types import SimpleNamespace

    from seqkit.data.corpus import Cleaning, tokenize_parallel

    def words(lines):
        return [[1] * len(line.split()) for line in lines]

    tokenizer = SimpleNamespace(encode_src=words, encode_tgt=words)
    src = ["a b c d e", "a b c d e f", "a b", "a b", "a b c"]
    tgt = ["a b c d e", "a b c d e", "a b c d", "a b c d e", "a b c d e f"]  # (either side too long)
    cleaning = Cleaning()
    ids = tokenize_parallel(tokenizer, src, tgt, max_length=5, max_length_ratio=2.0, cleaning=cleaning)  # type: ignore[arg-type]
    assert ids.kept == [0, 2] and (cleaning.too_long, cleaning.ratio) == (2, 1)


def test_the_held_out_dev_pairs_follow_the_seed():
    from seqkit.data.corpus import hold_out

    assert hold_out(1000, 50, 1) == hold_out(1000, 50, 1) != hold_out(1000, 50, 2)
    assert len(hold_out(1000, 500, 1)) == 100  # at most a tenth
