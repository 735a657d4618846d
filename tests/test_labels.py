"""The strict file-name parser: good names, the real malformed names, and every kind of bad field."""

import pytest

from research.data.labels import parse_filename
from research.vocabulary import AGE_GROUPS, MISSING, age_group

STAMP = "20170116174525125"


@pytest.mark.parametrize("name, expected", [
    (f"25_0_1_{STAMP}.jpg.chip.jpg", (25, 0, 1)),
    (f"1_1_4_{STAMP}.jpg.chip.jpg", (1, 1, 4)),  # lowest age, highest race
    (f"116_0_0_{STAMP}.jpg.chip.jpg", (116, 0, 0)),  # highest age
    (f"60_1_3_{STAMP}.jpg", (60, 1, 3)),  # bare .jpg (unaligned images)
    (f"UTKFace/25_0_2_{STAMP}.jpg.chip.jpg", (25, 0, 2)),  # directory part ignored
])
def test_good_names(name, expected):
    labels = parse_filename(name)
    assert (labels.age, labels.gender, labels.race) == expected
    assert labels.complete
    assert labels.problems == () and labels.notes == ()


@pytest.mark.parametrize("name, expected, note", [
    ("24_0_1_20170116220224657 .jpg.chip.jpg", (24, 0, 1), "' .'"),  # stray space before ".jpg"
    ("55_0_0_20170116232725357jpg.chip.jpg", (55, 0, 0), "''"),  # missing dot before "jpg"
])
def test_real_irregular_separators_keep_labels_with_a_note(name, expected, note):
    labels = parse_filename(name)
    assert (labels.age, labels.gender, labels.race) == expected
    assert labels.complete and labels.problems == ()
    assert len(labels.notes) == 1
    assert "irregular separator" in labels.notes[0] and note in labels.notes[0]


def test_real_name_without_race_has_race_missing():
    labels = parse_filename("39_1_20170116174525125.jpg.chip.jpg")
    assert (labels.age, labels.gender, labels.race) == (39, 1, MISSING)
    assert not labels.complete
    assert labels.problems == ("race missing",)


def test_missing_time_stamp_is_a_note_not_a_problem():
    labels = parse_filename("25_0_1.jpg.chip.jpg")
    assert (labels.age, labels.gender, labels.race) == (25, 0, 1)
    assert labels.problems == () and labels.notes == ("no capture time-stamp",)


@pytest.mark.parametrize("name, expected, problem", [
    (f"0_0_1_{STAMP}.jpg.chip.jpg", (MISSING, 0, 1), "age out of range (0)"),
    (f"117_0_1_{STAMP}.jpg.chip.jpg", (MISSING, 0, 1), "age out of range (117)"),
    (f"25_2_1_{STAMP}.jpg.chip.jpg", (25, MISSING, 1), "gender out of range (2)"),
    (f"25_0_5_{STAMP}.jpg.chip.jpg", (25, 0, MISSING), "race out of range (5)"),
])
def test_out_of_range_field_is_missing_others_kept(name, expected, problem):
    labels = parse_filename(name)
    assert (labels.age, labels.gender, labels.race) == expected
    assert labels.problems == (problem,)
    assert not labels.complete


@pytest.mark.parametrize("name, expected, bad", [
    (f"x_0_1_{STAMP}.jpg.chip.jpg", (MISSING, 0, 1), ["age"]),
    (f"25_a_1_{STAMP}.jpg.chip.jpg", (25, MISSING, 1), ["gender"]),
    (f"25_0_1.5_{STAMP}.jpg.chip.jpg", (25, 0, MISSING), ["race"]),
    (f"25_-1_1_{STAMP}.jpg.chip.jpg", (25, MISSING, 1), ["gender"]),  # a sign is not a digit
    (f"25__1_{STAMP}.jpg.chip.jpg", (25, MISSING, 1), ["gender"]),  # empty field
    (f" 25_0_1_{STAMP}.jpg.chip.jpg", (MISSING, 0, 1), ["age"]),
    # Non-ASCII digits: str.isdigit() accepts them, but they are not UTKFace labels.
    (f"\u00b2_0_1_{STAMP}.jpg.chip.jpg", (MISSING, 0, 1), ["age"]),  # superscript two: int() fails
    (f"\u06635_0_1_{STAMP}.jpg.chip.jpg", (MISSING, 0, 1), ["age"]),  # Arabic-Indic three
])
def test_non_integer_fields_are_missing(name, expected, bad):
    labels = parse_filename(name)
    assert (labels.age, labels.gender, labels.race) == expected
    assert [p.split()[0] for p in labels.problems] == bad
    assert all("not an integer" in p for p in labels.problems)


@pytest.mark.parametrize("name", [
    f"25_0_1_3_{STAMP}.jpg.chip.jpg",
    f"25_0_{STAMP}_1.jpg.chip.jpg",  # a stamp in the middle is not a stamp
    f"25_0_1_{STAMP}.jpg.chip.jpg.jpg",
])
def test_too_many_fields_discards_every_label(name):
    labels = parse_filename(name)
    assert (labels.age, labels.gender, labels.race) == (MISSING,) * 3
    assert labels.problems[0] == "too many fields (4)"


@pytest.mark.parametrize("name", [
    f"25_0_1_{STAMP}.png",
    f"25_0_1_{STAMP}.jpg.chip.png",
    f"25_0_1_{STAMP}.JPG",
    f"25_0_1_{STAMP}.jpeg",
    "",
])
def test_unexpected_suffix_is_an_unexpected_name(name):
    labels = parse_filename(name)
    assert (labels.age, labels.gender, labels.race) == (MISSING,) * 3
    assert len(labels.problems) == 1 and labels.problems[0].startswith("unexpected file name")


def test_bare_jpg_suffix_is_only_jpg_not_any_text():
    assert parse_filename(f"25_0_1_{STAMP}.jpg").complete
    assert not parse_filename(f"25_0_1_{STAMP}.jpg.txt").complete


@pytest.mark.parametrize("age, group", [
    (0, "0-12"), (1, "0-12"), (12, "0-12"), (13, "13-17"), (17, "13-17"), (18, "18-24"), (24, "18-24"),
    (25, "25-34"), (34, "25-34"), (35, "35-44"), (44, "35-44"), (45, "45-59"), (59, "45-59"),
    (60, "60+"), (116, "60+"),
])
def test_age_group_bounds(age, group):
    assert age_group(age) == group


def test_age_groups_cover_every_valid_age_once():
    for age in range(0, 117):
        assert sum(low <= age <= high for _, low, high in AGE_GROUPS) == 1, age
    with pytest.raises(ValueError, match="outside every age group"):
        age_group(-1)
