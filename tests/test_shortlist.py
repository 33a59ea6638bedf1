"""The vocabulary shortlist: the alignment finds translations, a shortlist of every piece changes nothing,
a smaller one decodes within its columns, and training, `seqkit shortlist` and `--shortlist` agree."""

from __future__ import annotations

import io
import math
import os
import shutil

import numpy as np
import pytest
import torch

import seqkit
from seqkit.config import DecodeConfig, ModelConfig
from seqkit.data.tokenizer import SPECIALS
from seqkit.decoding import shortlist
from seqkit.decoding.search import (
    beam_search,
    decode_corpus,
    greedy_search,
    max_output_lengths,
    source_batch,
)
from seqkit.decoding.torch_steps import Seq2SeqSteps
from seqkit.errors import ModelDirError
from seqkit.models.seq2seq import Seq2Seq
from seqkit.runtime import devices
from tests.helpers import assert_one_line_error, seqkit_here, write_toy

VOCAB = 40
FIRST = len(SPECIALS)


def _flat(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    return np.array([i for r in rows for i in r], dtype=np.int64), offsets


def test_the_alignment_finds_each_pieces_translation_not_the_most_frequent_piece():
    """Source piece s translates to target piece s + 40 (in reversed order); every target sentence also
    has piece 5 twice, which co-occurs with every source piece more often than any translation does."""
    rng = np.random.default_rng(0)
    src_rows, tgt_rows = [], []
    for _ in range(400):
        words = rng.integers(6, VOCAB, rng.integers(2, 8)).tolist()
        src_rows.append(words)
        tgt_rows.append([5, *(w + VOCAB for w in reversed(words)), 5])
    built = shortlist.build(*_flat(src_rows), *_flat(tgt_rows), VOCAB, 2 * VOCAB, translations=3, frequent=1)
    for piece in range(6, VOCAB):
        assert built.translations[piece, 0] == piece + VOCAB
    assert built.translations[6:].min() >= 0  # each seen piece keeps its 3 (it sees more than 3 targets)
    assert built.translations[:6].max() == -1  # never seen: no candidates
    assert built.frequent.tolist() == [5]


def test_the_links_made_a_few_pairs_at_a_time_are_those_made_at_once(monkeypatch):
    # (made at once, their temporaries were the peak of a large corpus' training: 1.7 GB)
    rng = np.random.default_rng(1)
    src_rows = [rng.integers(FIRST, VOCAB, rng.integers(1, 9)).tolist() for _ in range(300)]
    tgt_rows = [rng.integers(FIRST, 2 * VOCAB, rng.integers(1, 9)).tolist() for _ in range(300)]
    flat = (*_flat(src_rows), *_flat(tgt_rows))
    at_once = shortlist.lexical_table(*flat, VOCAB, 2 * VOCAB)
    monkeypatch.setattr(shortlist, "CHUNK_PAIRS", 7)  # (300 pairs: the last chunk is shorter)
    for whole, chunked in zip(at_once, shortlist.lexical_table(*flat, VOCAB, 2 * VOCAB), strict=True):
        assert np.array_equal(whole, chunked)
    monkeypatch.setattr(shortlist, "MAX_LINKS", 2000)  # a sample of the pairs, chunked the same way
    sampled = shortlist.lexical_table(*flat, VOCAB, 2 * VOCAB)
    monkeypatch.setattr(shortlist, "CHUNK_PAIRS", 1024)
    for alone, chunked in zip(shortlist.lexical_table(*flat, VOCAB, 2 * VOCAB), sampled, strict=True):
        assert np.array_equal(alone, chunked)


def test_more_translations_than_target_pieces_keeps_them_all():
    # --translations 2000000000 was a MemoryError: beyond the target vocabulary it only adds -1 padding
    rng = np.random.default_rng(0)
    rows = [rng.integers(FIRST, VOCAB, 5).tolist() for _ in range(50)]
    every = shortlist.build(*_flat(rows), *_flat(rows), VOCAB, VOCAB, translations=VOCAB)
    huge = shortlist.build(*_flat(rows), *_flat(rows), VOCAB, VOCAB, translations=2_000_000_000)
    assert np.array_equal(huge.translations, every.translations)


def test_the_sample_keeps_within_its_links_counting_null_in_corpus_order():
    # each target position links to every source position and to NULL: (source + 1) x target links
    rng = np.random.default_rng(2)
    src_lengths, tgt_lengths = rng.integers(1, 9, 200), rng.integers(1, 9, 200)
    links = (src_lengths + 1) * tgt_lengths
    for budget in (500, 1234, int(links.sum()) - 1):
        taken = shortlist._sample(src_lengths, tgt_lengths, budget, seed=1)
        assert links[taken].sum() <= budget < links[taken].sum() + links.max()  # full, not over
        assert np.all(np.diff(taken) > 0)  # corpus order
    assert shortlist._sample(src_lengths, tgt_lengths, int(links.sum()), seed=1).tolist() == list(range(200))


def test_the_lexical_table_is_a_distribution_over_targets_for_each_source_piece():
    # IBM Model 1's t(target | source): each source piece's probabilities sum to 1
    rng = np.random.default_rng(1)
    src_rows = [rng.integers(FIRST, VOCAB, rng.integers(1, 9)).tolist() for _ in range(100)]
    tgt_rows = [rng.integers(FIRST, 2 * VOCAB, rng.integers(1, 9)).tolist() for _ in range(100)]
    source, target, prob = shortlist.lexical_table(*_flat(src_rows), *_flat(tgt_rows), VOCAB, 2 * VOCAB)
    seen = np.unique(source)
    assert len(seen) == VOCAB - FIRST and np.allclose(np.bincount(source, prob)[seen], 1.0)


def test_the_frequent_pieces_are_real_pieces_even_where_unk_is_most_frequent():
    # the specials are always decoded over: a slot of the frequent ones given to <unk> is a piece lost
    rows = [[1, 1, 1, 7], [1, 1, 8, 7], [1, 9, 7, 8]]  # <unk> (1) the most frequent target piece
    built = shortlist.build(*_flat(rows), *_flat(rows), VOCAB, VOCAB, translations=2, frequent=3)
    assert built.frequent.tolist() == [7, 8, 9]


@pytest.fixture(scope="module")
def random_model_and_sources():
    """An untrained model: its outputs spread over the whole vocabulary, so a shortlist has work to do."""
    torch.manual_seed(3)
    cfg = ModelConfig(embedding_size=16, encoder_hidden_size=16, decoder_hidden_size=24, dropout=0.0)
    model = Seq2Seq(cfg, VOCAB, VOCAB).eval()
    generator = torch.Generator().manual_seed(4)
    sources = [
        torch.randint(4, VOCAB, (int(n),), generator=generator).tolist() for n in torch.randint(1, 12, (40,))
    ]
    return model, sources


def _decode(steps, sources, beam_size: int, batch_size: int = 16):
    cfg = DecodeConfig(beam_size=beam_size, batch_size=batch_size, max_length_ratio=1.5, max_length_offset=3)
    return decode_corpus(steps, sources, cfg)


@pytest.mark.parametrize("beam_size", [1, 4])
@pytest.mark.parametrize("quantize", [False, True])
def test_a_shortlist_of_every_piece_decodes_as_the_whole_vocabulary(
    random_model_and_sources, beam_size, quantize
):
    """In float32 and in int8 (`--quantize`, whose restricted layer stays int8)."""
    model, sources = random_model_and_sources
    model = devices.quantize_int8(model) if quantize else model
    every = shortlist.Shortlist(np.arange(FIRST, VOCAB), np.full((VOCAB, 1), -1))
    plain = _decode(Seq2SeqSteps(model), sources, beam_size)
    listed = _decode(shortlist.ShortlistSteps(Seq2SeqSteps(model), every), sources, beam_size)
    assert [[h.tokens for h in hs] for hs in listed] == [[h.tokens for h in hs] for hs in plain]
    for hs, gs in zip(listed, plain, strict=True):
        for h, g in zip(hs, gs, strict=True):
            assert math.isclose(h.log_prob, g.log_prob, rel_tol=1e-5, abs_tol=1e-5)


@pytest.mark.parametrize("quantize", [False, True])
def test_a_smaller_shortlist_writes_only_its_columns_and_beam_one_is_greedy(
    random_model_and_sources, quantize
):
    """In int8 each batch packs its own columns' rows of the layer, unpacked once for every batch."""
    model, sources = random_model_and_sources
    model = devices.quantize_int8(model) if quantize else model
    # source piece s may become s or s + 1; nothing else but the specials
    candidates = np.array([[s, s + 1] if FIRST <= s < VOCAB - 1 else [-1, -1] for s in range(VOCAB)])
    small = shortlist.Shortlist(np.zeros(0, dtype=np.int64), candidates)
    steps = shortlist.ShortlistSteps(Seq2SeqSteps(model), small)
    greedy = _decode(steps, sources, 1, batch_size=1)  # one at a time: each sentence its own columns
    for source, (best,) in zip(sources, greedy, strict=True):
        assert set(best.tokens) <= {*source, *(s + 1 for s in source)} | set(range(FIRST))
    plain = _decode(Seq2SeqSteps(model), sources, 1, batch_size=1)
    assert [g[0].tokens for g in greedy] != [p[0].tokens for p in plain]  # the restriction did something
    for source in sources:  # beam search itself (decode_corpus would send a beam of 1 to greedy search)
        src, lengths = source_batch([source], [0])
        limits = max_output_lengths(lengths, DecodeConfig(max_length_ratio=1.5, max_length_offset=3))
        (beam_one,) = beam_search(steps, src, lengths, limits, beam_size=1, alpha=0.0)
        (greedy_one,) = greedy_search(steps, src, lengths, limits)
        assert beam_one[0].tokens == greedy_one.tokens
    beam = _decode(steps, sources, 4, batch_size=1)
    for source, (best, *_) in zip(sources, beam, strict=True):
        assert math.isfinite(best.score)
        assert set(best.tokens) <= {*source, *(s + 1 for s in source)} | set(range(FIRST))


def test_training_writes_it_the_command_rebuilds_it_and_translate_uses_it(reverse_model, tmp_path):
    trained = shortlist.Shortlist.load(reverse_model / shortlist.FILE)
    model_dir = tmp_path / "model"
    shutil.copytree(reverse_model, model_dir)
    (model_dir / shortlist.FILE).unlink()
    lines = "a b c d\ne f g\n"
    missing = seqkit_here("translate", model_dir, "--shortlist", stdin=lines)
    assert_one_line_error(missing, "shortlist.npz does not exist", "seqkit shortlist")
    built = seqkit_here("shortlist", model_dir)
    assert built.returncode == 0, built.stderr
    rebuilt = shortlist.Shortlist.load(model_dir / shortlist.FILE)
    assert np.array_equal(rebuilt.translations, trained.translations)
    assert np.array_equal(rebuilt.frequent, trained.frequent)
    command = seqkit_here("translate", model_dir, "--shortlist", "--beam-size", 3, stdin=lines)
    assert command.returncode == 0, command.stderr
    model = seqkit.load(model_dir, device="cpu")
    results = model.translate(lines.splitlines(), beam_size=3, shortlist=True)
    assert command.stdout.decode().splitlines() == [r.text for r in results]
    assert command.stdout.decode().splitlines() == ["d c b a", "g f e"]  # the toy task, still learned exactly


def test_a_shortlist_of_other_vocabularies_is_refused(reverse_model, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(reverse_model, model_dir)
    other = shortlist.Shortlist(np.arange(4, 9), np.full((3, 2), -1))
    shortlist.write(model_dir, other)
    result = seqkit_here("translate", model_dir, "--shortlist", stdin="a b\n")
    assert_one_line_error(result, "shortlist.npz: made for other vocabularies", "seqkit shortlist")
    # the right rows, and a piece one past the target vocabulary (an IndexError at the first batch)
    vocabulary = seqkit.load(model_dir).tokenizer
    rows = np.zeros((vocabulary.src_vocab_size, 2), dtype=np.int64)
    shortlist.write(model_dir, shortlist.Shortlist(np.array([vocabulary.tgt_vocab_size]), rows))
    result = seqkit_here("translate", model_dir, "--shortlist", stdin="a b\n")
    assert_one_line_error(result, "shortlist.npz: made for other vocabularies", "seqkit shortlist")
    wrong_type = seqkit_here("shortlist", model_dir, "--translations", 0)
    assert_one_line_error(wrong_type, "--translations 0")
    # one cut short (zipfile.BadZipFile: a traceback, and the server's 500 in plain text)
    shutil.copy(reverse_model / shortlist.FILE, model_dir / shortlist.FILE)
    os.truncate(model_dir / shortlist.FILE, 100)
    result = seqkit_here("translate", model_dir, "--shortlist", stdin="a b\n")
    assert_one_line_error(result, "shortlist.npz: unreadable", "seqkit shortlist")


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


TABLE = np.full((VOCAB, 2), -1)
DAMAGED_SHORTLISTS = {  # each was a traceback (TypeError, IndexError, numpy's advice to allow pickles)
    "a .npy under the .npz name": _npy(np.arange(5)),
    "0-d frequent": _npz(frequent=np.array(5), translations=TABLE),
    "0-d translations": _npz(frequent=np.arange(4, 9), translations=np.array(5)),
    "1-d translations": _npz(frequent=np.arange(4, 9), translations=np.arange(VOCAB)),
    "an id below -1": _npz(frequent=np.array([-7]), translations=TABLE),
    "a padding id among the frequent": _npz(frequent=np.array([-1]), translations=TABLE),
    "translations below -1": _npz(frequent=np.arange(4, 9), translations=np.full((VOCAB, 2), -3)),
    "float ids": _npz(frequent=np.arange(4.0, 9.0), translations=TABLE),
    "object arrays": _npz(frequent=np.array([4, "a"], dtype=object), translations=TABLE),
    "text": b"not a shortlist\n",
    "an empty file": b"",
}


@pytest.mark.parametrize(
    ("rows", "highest"),
    [(VOCAB + 1, 5), (VOCAB - 1, 5), (VOCAB, VOCAB)],
    ids=["rows+1", "rows-1", "id=vocab"],
)
def test_a_shortlist_one_row_or_one_id_off_the_vocabularies_is_refused(rows, highest, tmp_path):
    other = shortlist.Shortlist(np.array([4, highest]), np.full((rows, 2), -1))
    shortlist.write(tmp_path, other)
    with pytest.raises(ModelDirError, match="shortlist.npz: made for other vocabularies"):
        shortlist.read(tmp_path, VOCAB, VOCAB)
    shortlist.write(tmp_path, shortlist.Shortlist(np.array([4, VOCAB - 1]), np.full((VOCAB, 2), -1)))
    assert shortlist.read(tmp_path, VOCAB, VOCAB).frequent.tolist() == [4, VOCAB - 1]


@pytest.mark.parametrize("data", DAMAGED_SHORTLISTS.values(), ids=DAMAGED_SHORTLISTS.keys())
def test_a_damaged_shortlist_is_one_error_that_says_how_to_rebuild_it(data, tmp_path):
    (tmp_path / shortlist.FILE).write_bytes(data)
    with pytest.raises(ModelDirError, match="shortlist.npz: unreadable .*seqkit shortlist") as raised:
        shortlist.read(tmp_path, VOCAB, VOCAB)
    assert "allow_pickle" not in str(raised.value)


def test_a_shortlist_of_other_data_leaves_the_runs_cache_alone(reverse_model, tmp_path):
    # the arrays of the other data replaced the run's own, and the next resume tokenized its corpus again
    from seqkit.training.seq2seq import build_shortlist

    model_dir = tmp_path / "model"
    shutil.copytree(reverse_model, model_dir)
    cache = sorted(p.name for p in (model_dir / "cache").glob("train-*"))
    assert cache
    other = write_toy(tmp_path / "other", "reverse", train_count=300)
    built = build_shortlist(model_dir, train=f"{other}/train")
    assert shortlist.Shortlist.load(model_dir / shortlist.FILE).translations.shape == built.translations.shape
    assert sorted(p.name for p in (model_dir / "cache").glob("train-*")) == cache
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".shortlist-")]
