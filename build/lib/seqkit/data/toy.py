"""Tiny deterministic tasks (copy, reverse, sort) for tests and quick experiments.

Each example is a sequence of letters separated by spaces, e.g. `c a d` -> `d a c` for reverse.
"""

from __future__ import annotations

import random
from collections.abc import Callable

TASKS: dict[str, Callable[[list[str]], list[str]]] = {
    "copy": lambda symbols: list(symbols),
    "reverse": lambda symbols: symbols[::-1],
    "sort": sorted,
}


def make_pairs(
    task: str, count: int, seed: int = 0, alphabet: str = "abcdefgh", min_length: int = 2, max_length: int = 7
) -> list[tuple[str, str]]:
    """`count` (source, target) pairs of `task`, the same for the same seed."""
    if task not in TASKS:
        raise ValueError(f"unknown toy task {task!r}; valid: {', '.join(TASKS)}")
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        symbols = [rng.choice(alphabet) for _ in range(rng.randint(min_length, max_length))]
        pairs.append((" ".join(symbols), " ".join(TASKS[task](symbols))))
    return pairs
