"""Small pieces of English for generated sentences: lists of names, counts of a whole, plurals."""

from __future__ import annotations

from collections.abc import Iterable


def join_names(names: Iterable[str], conjunction: str = "and") -> str:
    """'a', 'a and b', 'a, b and c'."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """'1 group', '7 groups' (``plural_form`` for irregular nouns)."""
    return f"{count:,} {singular if count == 1 else plural_form or singular + 's'}"


def share_of(part: int, whole: int, noun: str) -> str:
    """How many of ``whole`` things (``noun``, plural): 'all 7 groups', 'both groups', 'none of the
    7 groups', '3 of the 7 groups' -- never '7 of these 7 groups'."""
    if whole == 0:
        return f"no {noun}"
    if part == whole:
        return f"both {noun}" if whole == 2 else f"all {whole:,} {noun}"
    if part == 0:
        return f"neither of the two {noun}" if whole == 2 else f"none of the {whole:,} {noun}"
    return f"{part:,} of the {whole:,} {noun}"


def capitalised(text: str) -> str:
    """The sentence with its first letter in upper case (the rest untouched)."""
    return text[:1].upper() + text[1:]
