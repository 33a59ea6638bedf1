"""Corpus metrics from sacrebleu, each score with its signature (perplexity: scoring/likelihood.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF, TER

METRICS = {"bleu": BLEU, "chrf": CHRF, "ter": TER}


@dataclass(frozen=True)
class Score:
    metric: str  # bleu, chrf, ter
    score: float
    signature: str  # e.g. nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0
    text: str  # sacrebleu's own line, e.g. "BLEU = 23.41 55.1/29.0/17.3/10.6 (BP = ...)"

    def to_dict(self) -> dict:
        return {"metric": self.metric, "score": self.score, "signature": self.signature, "text": self.text}


def corpus_score(metric: str, hypotheses: list[str], references: list[list[str]]) -> Score:
    """`references` is a list of reference streams, each as long as `hypotheses`."""
    scorer = METRICS[metric]()
    result = scorer.corpus_score(hypotheses, references)
    return Score(metric, result.score, str(scorer.get_signature()), str(result))
