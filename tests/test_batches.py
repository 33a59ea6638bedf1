"""Batching: every example once per epoch, within the token budget, in a seeded order."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from seqkit.data.batches import make_batch, training_batches
from seqkit.data.tokenizer import BOS, EOS, PAD
from seqkit.decoding.search import inference_batches


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=300), st.integers(1, 400), st.integers(0, 5))
def test_training_batches_cover_each_example_once_within_budget(sizes, batch_tokens, seed):
    batches = training_batches(sizes, batch_tokens, random.Random(seed))
    assert sorted(i for batch in batches for i in batch) == list(range(len(sizes)))
    for batch in batches:
        # a single over-long example still gets a batch of its own
        assert len(batch) == 1 or len(batch) * max(sizes[i] for i in batch) <= batch_tokens


def test_training_batches_are_seeded_and_bucketed():
    sizes = [random.Random(i).randint(1, 80) for i in range(2000)]
    first = training_batches(sizes, 600, random.Random("1-0"))
    assert first == training_batches(sizes, 600, random.Random("1-0"))
    assert first != training_batches(sizes, 600, random.Random("1-1"))
    padded = sum(len(b) * max(sizes[i] for i in b) for b in first)
    assert padded < 1.1 * sum(sizes)  # sorting within pools keeps padding under 10%


def test_inference_batches_longest_first():
    batches = inference_batches([3, 9, 1, 7, 5], 2)
    assert batches == [[1, 3], [4, 0], [2]]


def test_make_batch_adds_eos_and_bos():
    batch = make_batch([[5, 6, 7], [8]], [[9], [10, 11]], [0, 1])
    assert batch.src.tolist() == [[5, 6, 7, EOS], [8, EOS, PAD, PAD]]
    assert batch.src_lengths.tolist() == [4, 2]
    assert batch.tgt_in.tolist() == [[BOS, 9, PAD], [BOS, 10, 11]]
    assert batch.tgt_out.tolist() == [[9, EOS, PAD], [10, 11, EOS]]
    assert batch.num_tgt_tokens == 5


def test_batches_fill_the_token_budget_exactly():
    # count x longest may reach batch_tokens: 4 examples of 10 tokens are one batch of 40, not 3
    batches = training_batches([10] * 100, 40, random.Random(0))
    assert sorted(len(b) for b in batches) == [4] * 25


def test_each_epoch_makes_new_batches_in_a_new_order():
    sizes = [random.Random(i).randint(1, 80) for i in range(2000)]
    first = training_batches(sizes, 600, random.Random("1-0"))
    second = training_batches(sizes, 600, random.Random("1-1"))
    # other examples share a batch (the examples are shuffled before the pools are sorted) ...
    assert {frozenset(b) for b in first} != {frozenset(b) for b in second}
    # ... and the batches come in no order of length (the batch order is shuffled after the cut)
    longest = [max(sizes[i] for i in b) for b in first]
    assert sum(a > b for a, b in zip(longest, longest[1:], strict=False)) > len(longest) / 4
