"""How counts are written in messages and tables: "1 step", "2 steps", "1,024 labels"."""


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` with thousands separators and `noun`, or `plural` (by default `noun` and an s) unless the
    count is 1."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
