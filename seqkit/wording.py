"""How counts are written in messages and tables: "1 step", "2 steps", "1,024 labels"."""


def counted(count: int, noun: str) -> str:
    """`count` with thousands separators and `noun`, plural unless the count is 1 (nouns with a plain -s)."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
