"""The data sections: cleaning, the cleaned data's make-up and the two split protocols."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from research.report.results import Results, num, pct, table

CONFLICT_EXAMPLES = 4  # conflicting groups shown, widest age spread first


def _conflicting(results: Results) -> tuple[pd.DataFrame, pd.Series]:
    """The images of conflicting duplicate groups, and each group's age spread (max - min)."""
    dup = results.csv("cleaning/duplicate_groups.csv")
    rows = dup[dup["status"] == "conflicting_labels"]
    spread = rows.groupby("duplicate_group")["age"].agg(lambda a: a.max() - a.min())
    return rows, spread


def cleaning_numbers(results: Results) -> dict[str, str]:
    """What cleaning checked, removed and kept (results/cleaning, results/eda summaries)."""
    clean, eda = results.json("cleaning/summary.json"), results.json("eda/summary.json")
    rows, spread = _conflicting(results)
    groups = rows.groupby("duplicate_group")
    differs = {k: int((groups[k].nunique() > 1).sum()) for k in ("age", "gender", "race")}
    policy = clean["policy"]
    return {
        "in": num(clean["images_in"]),
        "out": num(clean["images_out"]),
        "removed": num(clean["images_in"] - clean["images_out"]),
        "removed_pct": pct(1 - clean["images_out"] / clean["images_in"]),
        "corrupt": num(eda["status_counts"]["corrupt"]),
        "missing": num(eda["status_counts"]["missing_label"]),
        "race_missing": num(clean["race_missing_kept"]),
        "groups": num(clean["duplicate_groups"]),
        "byte": num(clean["duplicate_groups_byte_identical"]),
        "near": num(clean["duplicate_groups_near_identical"]),
        "in_groups": num(clean["images_in_duplicate_groups"]),
        "conflicting_groups": num(clean["duplicate_groups_conflicting"]),
        "conflicting_images": num(clean["status_counts"]["conflicting_labels"]),
        "dupes": num(clean["status_counts"]["duplicate"]),
        "phash": policy["phash_max_distance"],
        "mad": num(policy["thumb_max_mad"]),
        "thumb": policy["thumb_size"],
        "size": "x".join(map(str, policy["image_size"])),
        "age_diff": num(differs["age"]),
        "gender_diff": num(differs["gender"]),
        "race_diff": num(differs["race"]),
        "median_spread": num(spread.median()),
        "max_spread": num(spread.max()),
        "over10": num((spread > 10).sum()),
        "seconds": num(clean["wall_time_s"], 1),
    }


def cleaning_table(results: Results) -> Markdown:
    """Images per cleaning status and reason."""
    frame = results.csv("cleaning/cleaning_table.csv")
    frame = frame.assign(images=frame["images"].map(num)).rename(columns={"images": "images (n)"})
    return table(
        frame, "Cleaning outcome per status and reason (results/cleaning/cleaning_table.csv).", "cleaning"
    )


def conflict_examples(results: Results, count: int = CONFLICT_EXAMPLES) -> Markdown:
    """The conflicting groups with the widest age spread: their files and labels."""
    rows, spread = _conflicting(results)
    ranked = rows.assign(spread=rows["duplicate_group"].map(spread)).sort_values(
        ["spread", "duplicate_group"], ascending=[False, True]
    )
    first = ranked["duplicate_group"].drop_duplicates().head(count)
    shown = ranked[ranked["duplicate_group"].isin(first)][
        ["duplicate_group", "file", "age", "gender", "race"]
    ]
    shown = shown.rename(columns={"duplicate_group": "group"})
    return table(
        shown,
        f"The {len(first)} conflicting groups with the widest age spread: one photograph, several "
        "labels (gender 0 male, 1 female; race 0-4 White, Black, Asian, Indian, Others; "
        "results/cleaning/duplicate_groups.csv).",
        "conflicts",
    )


def eda_numbers(results: Results) -> dict[str, object]:
    """The cleaned data's ages, genders, ethnicities and what cleaning removed (results/eda)."""
    eda = results.json("eda/summary.json")
    ages, common = eda["age"], eda["most_common_ages"]
    groups = results.csv("eda/age_group_counts.csv").set_index("age_group")["percent"]
    ethnicities = results.csv("eda/ethnicity_counts.csv").set_index("ethnicity")["percent"]
    stats = results.csv("eda/age_stats_by_group.csv").set_index(["grouping", "group"])["median"]
    removed = results.csv("eda/before_after.csv").set_index(["variable", "category"])["percent_removed"]
    cells = eda["largest_gender_ethnicity_cell"], eda["smallest_gender_ethnicity_cell"]
    return {
        "mean": num(ages["mean"], 1),
        "median": num(ages["median"]),
        "min": ages["min"],
        "max": ages["max"],
        "top_age": common[0]["age"],
        "top_n": num(common[0]["images"]),
        "second_age": common[1]["age"],
        "decade": eda["largest_decade"]["0-9"]["decade"],
        "decade_pct": num(eda["largest_decade"]["0-9"]["percent"], 1),
        "group": eda["largest_age_group"]["age_group"],
        "group_pct": num(eda["largest_age_group"]["percent"], 1),
        "under18": num(eda["under_18"]["percent"], 1),
        "teen_pct": num(groups.loc["13-17"], 1),
        "male": num(eda["gender"]["male"]),
        "female": num(eda["gender"]["female"]),
        "white_pct": num(ethnicities.loc["White"], 1),
        "others_pct": num(ethnicities.loc["Others"], 1),
        "big_cell": cells[0]["cell"],
        "big_n": num(cells[0]["images"]),
        "small_cell": cells[1]["cell"],
        "small_n": num(cells[1]["images"]),
        "asian_median": num(stats.loc[("ethnicity", "Asian")]),
        "white_median": num(stats.loc[("ethnicity", "White")]),
        "female_median": num(stats.loc[("gender", "female")]),
        "male_median": num(stats.loc[("gender", "male")]),
        "others_removed": num(removed.loc[("ethnicity", "Others")], 1),
        "all_removed": num(removed.loc[("all", "all")], 1),
    }


def ethnicity_median_age(results: Results, ethnicity: str) -> str:
    """The median age of one ethnicity in the cleaned data."""
    stats = results.csv("eda/age_stats_by_group.csv").set_index(["grouping", "group"])
    return num(stats.loc[("ethnicity", ethnicity), "median"])


def _split_row(splits: dict, protocol: str, rule: str) -> dict[str, str]:
    sizes = splits[protocol]["sizes"]
    total = sum(sizes.values())
    return {
        "protocol": protocol,
        **{k: f"{num(sizes[k])} ({pct(sizes[k] / total, 0)})" for k in ("train", "val", "test")},
        "rule": rule,
    }


def split_table(results: Results) -> Markdown:
    """Train, validation and test sizes of the two protocols."""
    splits = results.json("splits/summary.json")
    return table(
        pd.DataFrame(
            [
                _split_row(splits, "utkface", "clean images, stratified by age group x gender x ethnicity"),
                _split_row(
                    splits, "coral", "the CORAL benchmark split; validation carved from its train file"
                ),
            ]
        ),
        "The two evaluation protocols (results/splits/summary.json).",
        "splits",
    )


def split_numbers(results: Results) -> dict[str, object]:
    """The split seed and the coral split's sizes and age range."""
    splits = results.json("splits/summary.json")
    coral = splits["coral"]
    ages = results.csv("splits/coral.csv")["age"]
    return {
        "coral_test": num(coral["coral_test_rows"]),
        "coral_train": num(coral["coral_train_rows"]),
        "coral_clean": num(coral["train_removed_by_cleaning"]),
        "coral_dup": num(coral["train_removed_duplicate_of_test"]),
        "seed": splits["seed"],
        "coral_min": ages.min(),
        "coral_max": ages.max(),
    }
