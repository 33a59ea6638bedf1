"""What a classifier or forecaster must beat, computed on the same test examples:

    majority                          every example gets the training data's most frequent label
    bag-of-words logistic regression  text: scikit-learn's CountVectorizer (words and word pairs) and
                                      LogisticRegression on the training texts (needs scikit-learn:
                                      `pip install 'seqkit[baselines]'`)
    training mean                     a forecaster of numbers (not a series): the training targets' mean
    persistence                       a series: the next value (or label) is the last one seen
    seasonal persistence              a series with data.season = S: the latest value of the target's
                                      season that the window has seen (S steps before the target, or a
                                      multiple of S when the horizon reaches past one season)

Each baseline is a function of the training examples and the test examples -> predictions (label
strings, or values (examples, outputs)), a string saying why it cannot run, or None where it does not
apply (persistence to examples that are not a series). The two persistences read the test examples
alone (the series they come from), so they are scored when the training data cannot be read.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from seqkit.data.labelled import Examples

Predicted = list[str] | np.ndarray


def majority(train: Examples, test: Examples) -> Predicted:
    # ties go to the label that sorts first, so the baseline does not depend on the data order
    counts = Counter(train.labels)
    best = max(sorted(counts), key=lambda label: counts[label])
    return [best] * len(test)


def bag_of_words(train: Examples, test: Examples) -> Predicted | str | None:
    if train.texts is None or test.texts is None:
        return None
    try:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ImportError:
        return "needs scikit-learn: pip install 'seqkit[baselines]'"
    pipeline = make_pipeline(
        CountVectorizer(ngram_range=(1, 2), min_df=2, lowercase=True, token_pattern=r"(?u)\b\w+\b"),
        LogisticRegression(max_iter=2000, C=1.0),
    )
    if len(set(train.labels)) < 2:
        return "the training data has one label"
    try:
        pipeline.fit(train.texts, train.labels)
    except ValueError:  # "After pruning, no terms remain": text without spaces (Chinese, say) has no words
        return "no word or word pair occurs in two training texts"
    return [str(label) for label in pipeline.predict(test.texts)]


def training_mean(train: Examples, test: Examples) -> Predicted:
    assert train.values is not None
    return np.tile(train.values.mean(0), (len(test), 1))


def persistence(test: Examples) -> Predicted | None:
    return test.naive.get("persistence")


def seasonal(test: Examples) -> Predicted | str | None:
    before = test.naive.get("seasonal")
    if before is None:
        return None
    if np.isnan(before).any() if isinstance(before, np.ndarray) else "" in before:
        return "some test targets lie less than data.season steps into the series"
    return before


CLASSIFIER_BASELINES = {
    "majority": majority,
    "bag-of-words logistic regression": bag_of_words,
}
FORECASTER_BASELINES = {
    "training mean": training_mean,
}
SERIES_BASELINES = {  # of the test examples alone: a classifier's or a forecaster's, after the above
    "persistence": persistence,
    "seasonal persistence": seasonal,
}
