"""Strict parsing of UTKFace labels from file names.

UTKFace keeps its labels only in the file name: ``[age]_[gender]_[race]_[datetime].jpg.chip.jpg``.
A field that is absent, not an integer or out of range becomes a *missing* label (-1) with a
reason; nothing is guessed.
"""

from __future__ import annotations

import dataclasses
import re

from research.vocabulary import AGE_RANGE, ETHNICITIES, GENDERS, MISSING

# [labels]_[17-digit capture time-stamp], then ".jpg" and, for aligned crops, ".chip.jpg".
# Two real files have a stray space or a missing dot before "jpg": their labels are intact.
_NAME = re.compile(r"^(?P<labels>.*?)(?:_(?P<stamp>\d{14,}))?(?P<junk>\s*\.?)jpg(?:\.chip\.jpg)?$")


@dataclasses.dataclass(frozen=True)
class Labels:
    """Labels parsed from one file name; -1 marks a missing label."""

    age: int
    gender: int
    race: int
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return MISSING not in (self.age, self.gender, self.race)


def _field(value: str | None, name: str, valid: range | dict, problems: list[str]) -> int:
    if value is None:
        problems.append(f"{name} missing")
        return MISSING
    if not (value.isascii() and value.isdigit()):  # isdigit alone admits '²' (int() fails) and '٣'
        problems.append(f"{name} not an integer ({value!r})")
        return MISSING
    number = int(value)
    if number not in valid:
        problems.append(f"{name} out of range ({number})")
        return MISSING
    return number


def parse_filename(name: str) -> Labels:
    """Parse ``[age]_[gender]_[race]_[datetime].jpg.chip.jpg`` (a bare ``.jpg`` is accepted).

    Fields are read left to right up to the time-stamp, so ``39_1_20170116174525125`` has age 39,
    gender 1 and a missing race. Directory parts of ``name`` are ignored.
    """
    base = name.rsplit("/", 1)[-1]
    match = _NAME.match(base)
    if match is None:
        return Labels(MISSING, MISSING, MISSING, (f"unexpected file name ({base!r})",))
    notes = []
    if match["stamp"] is None:
        notes.append("no capture time-stamp")
    if match["junk"] != ".":
        notes.append(f"irregular separator {match['junk']!r} before 'jpg', labels intact")
    fields: list[str | None] = match["labels"].split("_") if match["labels"] else []
    problems: list[str] = []
    if len(fields) > 3:
        problems.append(f"too many fields ({len(fields)})")
        fields = [None, None, None]
    fields = fields + [None] * (3 - len(fields))
    age = _field(fields[0], "age", range(AGE_RANGE[0], AGE_RANGE[1] + 1), problems)
    gender = _field(fields[1], "gender", GENDERS, problems)
    race = _field(fields[2], "race", ETHNICITIES, problems)
    return Labels(age, gender, race, tuple(problems), tuple(notes))

