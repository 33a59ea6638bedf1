"""The sequence classifier and forecaster (`model.type = "classifier"`): the encoder seq2seq uses (token
embeddings, or a linear layer for numbers, then a stacked, optionally bidirectional RNN over packed
sequences), pooling over time, dropout and a dense head.

    Keras, as the seed documents write it        seqkit
    Embedding(1000, 64) -> SimpleRNN(128,         model.embedding_size = 64, cell = "rnn",
      activation="relu") -> Dense(10, softmax)    activation = "relu", encoder_hidden_size = 128,
                                                  bidirectional = false, head = "softmax" (10 labels)
    SimpleRNN(50, input_shape=(10, 1)) ->         numbers with data.features = 1, cell = "rnn",
      Dense(1, activation="sigmoid")              encoder_hidden_size = 50, head = "sigmoid"
"""

from __future__ import annotations

import torch
from torch import nn

from seqkit.config import ModelConfig
from seqkit.data.tokenizer import PAD, UNK
from seqkit.models.encoder import Encoder

# the buckets that pairs of neighbouring tokens are hashed into (fastText's word n-grams, Joulin et al.
# 2017): a few collisions among the pairs that occur cost less than a table of every possible pair
PAIR_BUCKETS = 1 << 18


class TokenBag(nn.Module):
    """A linear model of the tokens and of the pairs of neighbouring tokens an input holds, counted: what
    a bag-of-words logistic regression of words and word pairs sees, as logits beside the RNN's
    (`model.bag_of_tokens`). It starts at zero.

    It is trained on its own loss, not on that of the sum, and its gradient is kept out of the clipping
    of the RNN's (`unclipped`), so the RNN learns as it would alone. On the loss of the sum, the bag learns the
    training examples by heart within a few epochs (training accuracy 0.98 on the Spanish genre verses)
    and leaves the RNN little to learn from. With a bag of single tokens, Spanish genre test accuracy was
    0.774 on the loss of the sum against 0.791 on the parts' own losses (bench/README.md)."""

    def __init__(self, vocab_size: int, outputs: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.weights = nn.EmbeddingBag(vocab_size + PAIR_BUCKETS, outputs, mode="sum", padding_idx=PAD)
        nn.init.zeros_(self.weights.weight)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (batch, steps) token ids, PAD after each example's end -> logits (batch, outputs)."""
        return self.weights(self.ids(inputs))  # (batch, outputs)

    def ids(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (batch, steps) -> the rows of `weights` each example counts (batch, 2 * steps - 1): its
        tokens, then its pairs' buckets; PAD where there is nothing to count."""
        first, second = inputs[:, :-1], inputs[:, 1:]  # (batch, steps - 1) each
        pairs = self.vocab_size + (first * 1_000_003 + second) % PAIR_BUCKETS
        pairs = pairs.masked_fill((first == PAD) | (second == PAD), PAD)  # PAD: counted nowhere
        return torch.cat([inputs, pairs], 1)


class SequenceClassifier(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int, features: int, outputs: int):
        """`vocab_size` > 0: the inputs are token ids; else `features` numbers per step. `outputs`: the
        head's size (labels for softmax, 1 for sigmoid, the values to forecast for regression)."""
        super().__init__()
        input_layer = None if vocab_size else nn.Linear(features, cfg.embedding_size)
        self.encoder = Encoder(
            vocab_size,
            cfg.embedding_size,
            cfg.encoder_hidden_size,
            cfg.encoder_layers,
            cfg.bidirectional,
            cfg.cell,
            cfg.dropout,
            input_layer,
            cfg.activation,
        )
        self.pooling = cfg.pooling
        size = self.encoder.output_size
        if self.pooling == "attention":  # additive scores of each state: v . tanh(W h)
            self.attention = nn.Sequential(nn.Linear(size, size), nn.Tanh(), nn.Linear(size, 1, bias=False))
        self.dropout = nn.Dropout(cfg.dropout)
        self.word_dropout = cfg.word_dropout
        self.head = nn.Linear(size, outputs)
        # a linear model of the bag of input tokens beside the RNN: the two are trained each on its own loss
        # (`parts`) and predict together by the sum of their logits
        self.bag = TokenBag(vocab_size, outputs) if cfg.bag_of_tokens and vocab_size else None

    @classmethod
    def from_config(
        cls, cfg: ModelConfig, vocab_size: int, features: int, outputs: int
    ) -> SequenceClassifier:
        return cls(cfg, vocab_size, features, outputs)

    @property
    def unclipped(self) -> tuple[str, ...]:
        """The parameters kept out of gradient clipping (training/gradients.py): the bag's."""
        return ("bag.",) if self.bag is not None else ()

    @property
    def reads_numbers(self) -> bool:
        return isinstance(self.encoder.embedding, nn.Linear)

    def pooled(self, inputs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """inputs (batch, steps[, features]), lengths (batch,) -> the pooled vector (batch, size) and, for
        attention pooling, its weights over the steps (batch, steps), zero at padding."""
        if self.training and self.word_dropout and not self.reads_numbers:
            dropped = torch.rand(inputs.shape, device=inputs.device) < self.word_dropout  # (batch, steps)
            inputs = inputs.masked_fill(dropped & (inputs != PAD), UNK)
        memory, final = self.encoder(inputs, lengths)  # (batch, steps, size), (batch, size)
        if self.pooling == "last":
            return final, None
        steps = torch.arange(memory.size(1), device=memory.device)
        valid = steps[None, :] < lengths.to(memory.device)[:, None]  # (batch, steps)
        if self.pooling == "mean":
            return memory.sum(1) / lengths.to(memory)[:, None], None
        if self.pooling == "max":
            return memory.masked_fill(~valid[..., None], float("-inf")).amax(1), None
        scores = self.attention(memory).squeeze(-1).masked_fill(~valid, float("-inf"))  # (batch, steps)
        weights = scores.softmax(-1)
        return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor, parts: bool = False) -> torch.Tensor:
        """-> the head's outputs (batch, outputs): logits, or standardised values for regression.
        `parts`: each part's outputs apart (parts, batch, outputs): the RNN's, then the bag's, if any."""
        pooled, _ = self.pooled(inputs, lengths)
        if not parts:
            return self.outputs(self.dropout(pooled), inputs)
        rnn = self.head(self.dropout(pooled))
        return torch.stack([rnn] if self.bag is None else [rnn, self.bag(inputs)])

    def outputs(self, pooled: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """pooled (batch, size), inputs (batch, steps[, features]) -> the head's outputs (batch, outputs)."""
        outputs = self.head(pooled)
        return outputs if self.bag is None else outputs + self.bag(inputs)


def head_loss(
    head: str, outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, float, int]:
    """The summed training objective of a batch, its summed unweighted loss, and how many examples the
    head gets right (0 for regression).

    outputs (batch, outputs); targets: label ids (batch,) for softmax and sigmoid, standardised values
    (batch, outputs) for regression; weights (labels,): train.class_weights, or None."""
    functional = nn.functional
    if head == "regression":
        squared = functional.mse_loss(outputs.float(), targets, reduction="none").mean(1)  # (batch,)
        return squared.sum(), float(squared.detach().sum()), 0
    if head == "sigmoid":
        logits = outputs.float().squeeze(1)  # (batch,)
        losses = functional.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none")
        correct = int(((logits > 0).long() == targets).sum())
    else:
        losses = functional.cross_entropy(outputs.float(), targets, reduction="none")  # (batch,)
        correct = int((outputs.argmax(1) == targets).sum())
    objective = (losses * weights[targets]).sum() if weights is not None else losses.sum()
    return objective, float(losses.detach().sum()), correct


def parts_loss(
    head: str, parts: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, float, int]:
    """head_loss of a model of parts (parts, batch, outputs) (SequenceClassifier(parts=True)): the objective
    is the sum of each part's own loss, so that no part's gradient depends on another's outputs; the loss
    and the right answers are those of their sum, the prediction. (The bag is also clipped apart: its
    gradient stays out of the RNN's norm, `SequenceClassifier.unclipped`.)"""
    if len(parts) == 1:  # no bag: the part's own loss is the prediction's, one pass over it
        return head_loss(head, parts[0], targets, weights)
    objective = sum(head_loss(head, part, targets, weights)[0] for part in parts)
    _, loss, correct = head_loss(head, parts.detach().sum(0), targets)
    return objective, loss, correct  # type: ignore[return-value]
