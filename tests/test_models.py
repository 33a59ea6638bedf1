"""The model parts: padding never leaks into the encoder or the attention."""

from __future__ import annotations

import pytest
import torch

from seqkit.config import ModelConfig
from seqkit.data.batches import make_batch
from seqkit.data.tokenizer import BOS
from seqkit.models.seq2seq import Seq2Seq


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_padding_changes_nothing(cell, attention):
    torch.manual_seed(0)
    cfg = ModelConfig(
        cell=cell,
        attention=attention,
        embedding_size=8,
        encoder_hidden_size=6,
        decoder_hidden_size=10,
        encoder_layers=2,
        decoder_layers=2,
        dropout=0.0,
    )
    model = Seq2Seq(cfg, 20, 20).eval()
    sources = [[5, 6, 7, 8, 9, 10], [11, 12]]
    padded = make_batch(sources, None, [0, 1])
    alone = make_batch(sources, None, [1])
    with torch.no_grad():
        enc_padded, state_padded = model.encode(padded.src, padded.src_lengths)
        enc_alone, state_alone = model.encode(alone.src, alone.src_lengths)
        # the short sentence's memory and first state are the same with or without a longer neighbour
        torch.testing.assert_close(enc_padded.memory[1, :3], enc_alone.memory[0])
        torch.testing.assert_close(state_padded.hidden[:, 1], state_alone.hidden[:, 0])
        logits, _, weights = model.step(torch.tensor([BOS, BOS]), state_padded, enc_padded)
        logits_alone, _, _ = model.step(torch.tensor([BOS]), state_alone, enc_alone)
    torch.testing.assert_close(logits[1], logits_alone[0])
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    assert torch.all(weights[1, 3:] == 0)  # no attention on padding
    assert torch.all(weights[1, :3] > 0)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("copying", [False, True], ids=["plain", "copy-coverage"])
def test_teacher_forcing_fast_path_is_the_stepwise_decoder(cell, layers, copying):
    """The rearranged Bahdanau loop gives the outputs and gradients of stepping `_step` position by position
    (with copy and coverage: the gate's logits, the attention and the coverage losses too)."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        cell=cell,
        embedding_size=8,
        encoder_hidden_size=6,
        decoder_hidden_size=10,
        decoder_layers=layers,
        dropout=0.0,
        copy=copying,
        coverage=copying,
    )
    model = Seq2Seq(cfg, 20, 20)
    batch = make_batch([[5, 6, 7, 8, 9], [11, 12]], [[4, 5, 6], [7, 8, 9, 10, 11, 12]], [0, 1])
    results = []
    for path in (model.decoder._bahdanau_sequence, model.decoder._stepwise):
        model.zero_grad()
        encoded, state = model.encode(batch.src, batch.src_lengths)
        embedded = model.decoder.embedding(batch.tgt_in)
        forced = path(embedded, state, encoded.memory, encoded.keys, encoded.mask)
        outputs = [forced.pre_outputs, forced.copy_logits, forced.weights, forced.coverage_losses]
        outputs = [o for o in outputs if o is not None]
        assert len(outputs) == (4 if copying else 1)
        sum(o.pow(2).sum() for o in outputs).backward()
        results.append(
            (
                [o.detach() for o in outputs],
                {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
            )
        )
    (fast, fast_grads), (plain, plain_grads) = results
    for a, b in zip(fast, plain, strict=True):
        torch.testing.assert_close(a, b)
    assert fast_grads.keys() == plain_grads.keys()
    for name, grad in plain_grads.items():
        torch.testing.assert_close(fast_grads[name], grad, msg=name)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("keep_bytes", [0, 2**20], ids=["recomputed", "kept"])
def test_chunked_loss_equals_cross_entropy_of_the_full_logits(label_smoothing, keep_bytes, monkeypatch):
    """The fused output layer + cross-entropy gives autograd's loss, likelihood, accuracy and gradients,
    over chunks, whether the backward pass recomputes the logits or reuses the forward pass's."""
    from seqkit.models import softmax

    monkeypatch.setattr(softmax, "CHUNK_TOKENS", 3)  # several chunks, the last one short
    monkeypatch.setattr(softmax, "KEEP_BYTES", keep_bytes)
    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=8, encoder_hidden_size=6, decoder_hidden_size=10, dropout=0.0)
    model = Seq2Seq(cfg, 20, 20)
    batch = make_batch([[5, 6, 7], [8]], [[4, 5, 6, 7], [9]], [0, 1])
    real = batch.tgt_out != 0
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)
    expected = torch.nn.functional.cross_entropy(
        logits[real], batch.tgt_out[real], reduction="sum", label_smoothing=label_smoothing
    )
    nll, correct = _fused_loss_and_gradients_equal(model, batch, expected, label_smoothing)
    unsmoothed = torch.nn.functional.cross_entropy(logits[real], batch.tgt_out[real], reduction="sum")
    torch.testing.assert_close(nll, unsmoothed.detach())  # never smoothed
    assert not nll.requires_grad
    assert int(correct) == int((logits[real].argmax(-1) == batch.tgt_out[real]).sum())


def _fused_loss_and_gradients_equal(model: Seq2Seq, batch, expected: torch.Tensor, label_smoothing: float):
    """Asserts that the model's fused loss on `batch` equals `expected` (an autograd loss of the same
    model), and so do its gradients; returns the fused pass's likelihood and accuracy."""
    expected.backward()
    expected_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    loss, nll, correct = model(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out, label_smoothing)
    loss.backward()
    torch.testing.assert_close(loss, expected)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected_grads[name], msg=name)
    return nll, correct


def test_bahdanau_scores_and_gradients_are_those_of_torchs_tanh():
    """The fused scores (a tanh written as 2 sigmoid(2x) - 1, recomputed in the backward pass) give the
    scores and gradients of autograd's own graph of v . tanh(keys + query), saturated values included."""
    from seqkit.models.attention import _AdditiveScores

    torch.manual_seed(0)
    keys = (torch.randn(3, 7, 16) * 4).requires_grad_()  # up to about +-15: tanh saturates
    query = torch.randn(3, 16, requires_grad=True)
    v = torch.randn(16, requires_grad=True)
    grad_scores = torch.randn(3, 7)
    expected = torch.tanh(keys + query.unsqueeze(1)) @ v
    expected_grads = torch.autograd.grad(expected, (keys, query, v), grad_scores)
    scores = _AdditiveScores.apply(keys, query, v)
    grads = torch.autograd.grad(scores, (keys, query, v), grad_scores)
    torch.testing.assert_close(scores, expected)
    for name, grad, expected_grad in zip(("keys", "query", "v"), grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad, msg=name)


def _model_that_never_saw(unseen: list[int], vocab: int = 20) -> Seq2Seq:
    """A small model whose output layer excludes the pieces `unseen`, as training excludes the pieces
    that are no target in its data (softmax.exclude_unseen)."""
    from seqkit.models.softmax import exclude_unseen

    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=8, encoder_hidden_size=6, decoder_hidden_size=10, dropout=0.0)
    model = Seq2Seq(cfg, vocab, vocab)
    seen = torch.ones(vocab, dtype=torch.bool)
    seen[unseen] = False
    exclude_unseen(model.decoder.output, seen)
    return model


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_the_loss_over_the_pieces_training_saw_is_the_whole_layers(label_smoothing):
    """Computed over the pieces the output layer gives, the loss, likelihood, accuracy and gradients are
    those of the whole layer, whose other pieces have probability 0 (label smoothing spreads over the
    given pieces); the excluded rows get no gradient, so training never moves them."""
    from seqkit.models.softmax import UNSEEN_LOGIT, given_pieces

    unseen = [0, 2, 11, 12, 13, 15, 17]  # PAD, BOS and pieces no target holds
    model = _model_that_never_saw(unseen)
    pieces = given_pieces(model.decoder.output)
    assert pieces is not None and sorted(set(range(20)) - set(pieces.tolist())) == unseen
    batch = make_batch([[5, 6, 7], [8], [12, 13, 4]], [[4, 5, 6, 7], [9], [14, 10, 16, 18, 19]], [0, 1, 2])
    real = batch.tgt_out != 0
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)[real]  # (tokens, 20), the whole layer
    assert bool((logits[:, unseen] == UNSEEN_LOGIT).all())
    columns = torch.full((20,), -1, dtype=torch.long)
    columns[pieces] = torch.arange(len(pieces))
    expected = torch.nn.functional.cross_entropy(
        logits[:, pieces], columns[batch.tgt_out[real]], reduction="sum", label_smoothing=label_smoothing
    )
    if not label_smoothing:  # the same as over the whole layer: the excluded pieces add exp(-1e4) = 0
        whole = torch.nn.functional.cross_entropy(logits, batch.tgt_out[real], reduction="sum")
        torch.testing.assert_close(expected, whole)
    nll, correct = _fused_loss_and_gradients_equal(model, batch, expected, label_smoothing)
    unsmoothed = torch.nn.functional.cross_entropy(logits, batch.tgt_out[real], reduction="sum")
    torch.testing.assert_close(nll, unsmoothed.detach())
    assert int(correct) == int((logits.argmax(-1) == batch.tgt_out[real]).sum())
    output = model.decoder.output
    assert not output.weight.grad[unseen].any() and not output.bias.grad[unseen].any()


def test_a_target_the_layer_never_gives_is_scored_as_unknown_or_as_impossible():
    """A dev piece that no training target held: the output layer scores it as the unknown piece, as a
    vocabulary without it would; for a copy model (which may still copy it) its likelihood is 0."""
    from seqkit.data.tokenizer import UNK
    from seqkit.models.softmax import UNSEEN_LOGIT, token_cross_entropy

    model = _model_that_never_saw([0, 2, 12]).eval()
    features = torch.randn(3, 10)
    with torch.no_grad():
        as_given, _, _ = token_cross_entropy(features, model.decoder.output, torch.tensor([5, 12, 7]))
        as_unknown, _, _ = token_cross_entropy(features, model.decoder.output, torch.tensor([5, UNK, 7]))
        impossible, nll, _ = token_cross_entropy(
            features, model.decoder.output, torch.tensor([5, 12, 7]), unseen_as_unknown=False
        )
    torch.testing.assert_close(as_given, as_unknown)
    assert as_given[1] < 20  # a finite score, not 1e4
    assert impossible[1] == -UNSEEN_LOGIT
    torch.testing.assert_close(impossible[[0, 2]], as_given[[0, 2]])
    torch.testing.assert_close(nll, impossible.sum())


def test_a_model_trained_on_new_data_learns_the_pieces_it_now_sees():
    """Training from a model whose layer excluded pieces (train.init_from on other data) gives the pieces the
    new data holds a bias of 0 again and keeps those the model already gave (fine-tuning on a smaller
    corpus loses none); UNK and EOS are always kept. Without `keep_given` the pieces the data lack go."""
    from seqkit.data.tokenizer import EOS, UNK
    from seqkit.models.softmax import UNSEEN_LOGIT, exclude_unseen, given_pieces

    seen = torch.ones(20, dtype=torch.bool)
    seen[[0, 2, 5, UNK, EOS]] = False
    model = _model_that_never_saw([0, 2, 12, 13])
    output = model.decoder.output
    trained_row = output.weight[5].clone()
    exclude_unseen(output, seen, keep_given=True)
    assert given_pieces(output).tolist() == [1, *range(3, 20)]
    assert output.bias[12] == 0 and output.bias[13] == 0 and not output.weight[[12, 13]].any()
    assert torch.equal(output.weight[5], trained_row)  # the piece the new data lack is kept as it was
    model = _model_that_never_saw([0, 2, 12, 13])
    output = model.decoder.output
    exclude_unseen(output, seen)
    assert given_pieces(output).tolist() == [1, 3, 4, *range(6, 20)]
    assert output.bias[5] == UNSEEN_LOGIT and not output.weight[5].any()


def test_a_tied_layer_keeps_its_rows_the_decoder_reads():
    """With tied embeddings a row of the output layer is also an input embedding (BOS, never a target, is
    every sentence's first input): only the bias excludes a piece, and its probability is still 0."""
    from seqkit.data.tokenizer import BOS
    from seqkit.models.softmax import UNSEEN_LOGIT, exclude_unseen

    torch.manual_seed(0)
    cfg = ModelConfig(
        embedding_size=10, encoder_hidden_size=6, decoder_hidden_size=10, dropout=0.0, tie_embeddings=True
    )
    model = Seq2Seq(cfg, 20, 20).eval()
    bos_embedding = model.decoder.embedding.weight[BOS].clone()
    seen = torch.ones(20, dtype=torch.bool)
    seen[[0, BOS, 7]] = False
    exclude_unseen(model.decoder.output, seen, zero_rows=False)
    assert torch.equal(model.decoder.embedding.weight[BOS], bos_embedding)
    assert model.decoder.output.bias[7] == UNSEEN_LOGIT
    batch = make_batch([[5, 6, 7]], [[4, 5, 6]], [0])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(batch.src, batch.src_lengths, batch.tgt_in), dim=-1)
    assert bool((log_probs[..., [0, BOS, 7]].exp() == 0).all())


def test_the_coverage_is_an_input_not_a_path_back_into_earlier_attention():
    # with the gradient through it the demo recipe's gradient norms grew to 1,000 (models/decoder.py)
    from seqkit.models.decoder import _covered

    weights = torch.rand(2, 3, requires_grad=True)
    covered = _covered(torch.zeros(2, 3), weights)
    assert torch.equal(covered, weights.detach()) and not covered.requires_grad
