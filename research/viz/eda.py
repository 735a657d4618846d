"""Exploratory analysis of cleaned UTKFace: count tables, figures and key facts -> results/eda/.

Every number comes from the cleaning manifest (``research.data.cleaning``: one row per input
file with age, gender, race and status); only the face grids read images, and only the seeded
sample they show. Figures are built on ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from PIL import Image

from research.data.archive import data_checksum, iter_files
from research.data.cleaning import EXCLUDED
from research.outputs import save_figure, write_csv, write_json
from research.provenance import provenance
from research.vocabulary import AGE_GROUPS, ETHNICITIES, GENDERS, MISSING, age_group

UNKNOWN = "unknown"
GENDER_ORDER = [*GENDERS.values(), UNKNOWN]
ETHNICITY_ORDER = [*ETHNICITIES.values(), UNKNOWN]
AGE_GROUP_ORDER = [label for label, _, _ in AGE_GROUPS] + [UNKNOWN]
# Calendar decades (0-9, 10-19, ...) and ten-year bins from the youngest UTKFace age (1-10,
# 11-20, 21-30, ...): the second holds the "21-30" bin usually quoted for UTKFace.
DECADE_STARTS = {"0-9": 0, "1-10": 1}
STYLE = {**sns.axes_style("whitegrid"), "font.size": 11, "axes.titlesize": 12.5, "axes.labelsize": 11,
         "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10, "figure.titlesize": 14}
STAGE_COLORS = {"raw": "#b0b7c3", "kept": "#3b6ea8"}
BAR, HIGHLIGHT = "#3b6ea8", "#d9822b"
DPI, FACE_DPI = 150, 110  # face grids are photographs: a lower dpi keeps their PNGs small


def read_manifest(path: str | Path) -> pd.DataFrame:
    """The cleaning manifest, with empty strings kept as strings (not NaN)."""
    return pd.read_csv(path, keep_default_na=False)


def labelled(manifest: pd.DataFrame) -> pd.DataFrame:
    """Manifest plus ordered categorical gender, ethnicity and age-group columns (-1 -> 'unknown')."""
    frame = manifest.copy()
    frame["gender_label"] = pd.Categorical(frame["gender"].map(GENDERS).fillna(UNKNOWN), GENDER_ORDER)
    frame["ethnicity"] = pd.Categorical(frame["race"].map(ETHNICITIES).fillna(UNKNOWN), ETHNICITY_ORDER)
    groups = [UNKNOWN if age == MISSING else age_group(age) for age in frame["age"]]
    frame["age_group"] = pd.Categorical(groups, AGE_GROUP_ORDER)
    return frame


def _counts(values: pd.Series) -> pd.Series:
    """Counts in category order; the 'unknown' category is dropped when empty."""
    counts = values.value_counts(sort=False)
    return counts.drop(UNKNOWN) if counts.get(UNKNOWN, 0) == 0 else counts


def _percent(part: pd.Series | np.ndarray, whole: int) -> np.ndarray:
    return np.round(100 * np.asarray(part, dtype=float) / max(whole, 1), 2)


def decade_counts(kept: pd.DataFrame) -> pd.DataFrame:
    """Images per ten-year bin, for both binnings in DECADE_STARTS (column ``binning``)."""
    rows = []
    for binning, start in DECADE_STARTS.items():
        for low in range(start, int(kept["age"].max()) + 1, 10):
            rows.append({"binning": binning, "decade": f"{low}-{low + 9}", "low": low, "high": low + 9,
                         "images": int(kept["age"].between(low, low + 9).sum())})
    table = pd.DataFrame(rows)
    table["percent"] = _percent(table["images"], len(kept))
    return table


def age_group_counts(kept: pd.DataFrame) -> pd.DataFrame:
    """Images per AGE_GROUPS group (inclusive bounds)."""
    counts = kept["age_group"].value_counts(sort=False)
    table = pd.DataFrame([{"age_group": label, "low": low, "high": high, "images": int(counts[label])}
                          for label, low, high in AGE_GROUPS])
    table["percent"] = _percent(table["images"], len(kept))
    return table


def category_counts(kept: pd.DataFrame, column: str, code_column: str, names: dict[int, str]) -> pd.DataFrame:
    """Images per category of ``column`` with its integer code (-1 for unknown)."""
    counts = _counts(kept[column])
    codes = {name: code for code, name in names.items()} | {UNKNOWN: MISSING}
    return pd.DataFrame({code_column: [codes[c] for c in counts.index], column: list(counts.index),
                         "images": counts.to_numpy(), "percent": _percent(counts, len(kept))})


def gender_by_ethnicity(kept: pd.DataFrame) -> pd.DataFrame:
    """Gender x ethnicity counts (rows: gender, columns: ethnicity), with totals."""
    table = pd.crosstab(kept["gender_label"], kept["ethnicity"], margins=True, margins_name="total")
    rows = [*_counts(kept["gender_label"]).index, "total"]
    cols = [*_counts(kept["ethnicity"]).index, "total"]
    return table.reindex(index=rows, columns=cols, fill_value=0).rename_axis(index="gender", columns=None)


def age_stats_by_group(kept: pd.DataFrame) -> pd.DataFrame:
    """Mean, median, std, min and max age overall, by gender, by ethnicity and by both."""
    rows = []
    for grouping, keys in (("all", None), ("gender", ["gender_label"]), ("ethnicity", ["ethnicity"]),
                           ("gender x ethnicity", ["gender_label", "ethnicity"])):
        parts = [(("all",), kept)] if keys is None else kept.groupby(keys, observed=True, sort=True)
        for key, part in parts:
            age = part["age"]
            rows.append({"grouping": grouping, "group": " / ".join(key), "images": len(part),
                         "mean": round(age.mean(), 2), "median": age.median(),
                         "std": round(age.std(), 2), "min": age.min(), "max": age.max()})
    return pd.DataFrame(rows)


def before_after(frame: pd.DataFrame) -> pd.DataFrame:
    """Raw vs kept image counts per gender, ethnicity and age group (raw = every input file)."""
    kept = frame[frame["status"] == "kept"]
    rows = [{"variable": "all", "category": "all", "raw": len(frame), "kept": len(kept)}]
    for variable, column in (("gender", "gender_label"), ("ethnicity", "ethnicity"),
                             ("age_group", "age_group")):
        raw, clean = _counts(frame[column]), kept[column].value_counts(sort=False)
        rows += [{"variable": variable, "category": c, "raw": int(raw[c]), "kept": int(clean[c])}
                 for c in raw.index]
    table = pd.DataFrame(rows)
    table["removed"] = table["raw"] - table["kept"]
    table["percent_removed"] = np.round(100 * table["removed"] / table["raw"].clip(lower=1), 2)
    return table


def status_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Images per cleaning status, every known status listed (zeros too)."""
    counts = frame["status"].value_counts()
    order = ["kept", *EXCLUDED, *sorted(set(counts.index) - {"kept", *EXCLUDED})]
    images = [int(counts.get(s, 0)) for s in order]
    return pd.DataFrame({"status": order, "images": images, "percent": _percent(images, len(frame))})


def _bars(ax, labels: list[str], values: Iterable[int], total: int, highlight: bool = False) -> None:
    """Vertical bars labelled with count and share; the tallest highlighted and named if asked."""
    values = np.asarray(list(values))
    colors = [HIGHLIGHT if highlight and i == values.argmax() else BAR for i in range(len(values))]
    bars = ax.bar(labels, values, color=colors)
    ax.bar_label(bars, [f"{v:,}\n{100 * v / total:.1f}%" for v in values], fontsize=8, padding=2)
    ax.margins(y=0.22)
    ax.set_ylabel("Images (count)")
    if highlight:
        top = values.argmax()
        ax.text(0.98, 0.93, f"Most images: {labels[top]} ({values[top]:,}, {100 * values[top] / total:.1f}%)",
                transform=ax.transAxes, ha="right", va="top", fontsize=10, color=HIGHLIGHT, weight="bold")


def plot_age_histogram(kept: pd.DataFrame) -> Figure:
    """Figure 1: 1-year age histogram with a KDE line; the two most common ages annotated."""
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.subplots()
    ages = kept["age"]
    sns.histplot(x=ages, bins=np.arange(ages.min() - 0.5, ages.max() + 1.5), kde=True, ax=ax,
                 color=BAR, edgecolor="none", alpha=0.75, line_kws={"linewidth": 2})
    ax.lines[-1].set_color(HIGHLIGHT)
    ax.lines[-1].set_label("kernel density estimate (scaled to counts)")
    for age, count in ages.value_counts().head(2).items():  # the spikes, to the right of each
        ax.annotate(f"age {age}: {count:,} images", xy=(age + 0.6, count), xytext=(age + 7, count),
                    va="center", fontsize=10, arrowprops={"arrowstyle": "->", "color": "0.3"})
    ax.set(title=f"Age distribution of the {len(kept):,} clean images (1-year bins)", xlabel="Age (years)",
           ylabel="Images per 1-year bin (count)", xlim=(0, ages.max() + 2))
    ax.legend(loc="upper right")
    return fig


def plot_age_groups(decades: pd.DataFrame, groups: pd.DataFrame, total: int) -> Figure:
    """Figure 2: images per ten-year bin (both binnings) and per stratification age group."""
    fig = Figure(figsize=(10, 11), layout="constrained")
    axes = fig.subplots(3, 1)
    for ax, (_, part) in zip(axes, decades.groupby("binning", sort=False), strict=False):
        _bars(ax, list(part["decade"]), part["images"], total, highlight=True)
        names = ", ".join(part["decade"].head(3))
        ax.set(title=f"Ten-year bins {names}, ...", xlabel="Age range (years)")
    _bars(axes[2], list(groups["age_group"]), groups["images"], total, highlight=True)
    axes[2].set(title="Age groups used for stratification and per-group results", xlabel="Age group (years)")
    fig.suptitle(f"Clean images per age range (n = {total:,})")
    return fig


def plot_gender_ethnicity(genders: pd.DataFrame, ethnicities: pd.DataFrame, total: int) -> Figure:
    """Figure 3: gender counts and ethnicity counts."""
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, width_ratios=[1, 2.4])
    _bars(axes[0], list(genders["gender_label"]), genders["images"], total)
    _bars(axes[1], list(ethnicities["ethnicity"]), ethnicities["images"], total)
    axes[0].set(title="Gender", xlabel="Gender (file-name label)")
    axes[1].set(title="Ethnicity", xlabel="Ethnicity (file-name label)")
    fig.suptitle(f"Clean images per gender and ethnicity (n = {total:,})")
    return fig


def plot_age_by_group(kept: pd.DataFrame) -> Figure:
    """Figure 4: age distributions by gender, and by ethnicity split by gender (violins)."""
    genders = [g for g in _counts(kept["gender_label"]).index if g != UNKNOWN]
    races = [r for r in _counts(kept["ethnicity"]).index if r != UNKNOWN]
    known = kept[kept["gender_label"].isin(genders) & kept["ethnicity"].isin(races)]
    fig = Figure(figsize=(12, 5), layout="constrained")
    axes = fig.subplots(1, 2, width_ratios=[1, 2.6], sharey=True)
    palette = dict(zip(genders, sns.color_palette("Set2", len(genders)), strict=True))
    common = {"data": known, "y": "age", "hue": "gender_label", "hue_order": genders, "palette": palette,
              "cut": 0, "inner": "quart"}
    sns.violinplot(x="gender_label", order=genders, legend=False, ax=axes[0], **common)
    sns.violinplot(x="ethnicity", order=races, split=True, ax=axes[1], **common)
    axes[0].set(title="By gender", xlabel="Gender", ylabel="Age (years)")
    axes[1].set(title="By ethnicity, split by gender", xlabel="Ethnicity", ylabel="Age (years)")
    axes[1].legend(title="Gender", loc="upper right")
    left_out = len(kept) - len(known)
    note = f"; {left_out} images with an unknown label left out" if left_out else ""
    fig.suptitle(f"Age by gender and ethnicity (clean images, dashed lines: quartiles{note})")
    return fig


def plot_gender_by_ethnicity(table: pd.DataFrame) -> Figure:
    """Figure 5: heatmap of gender x ethnicity counts (cell: count and share of all clean images)."""
    counts = table.drop(index="total", columns="total")
    total = int(table.loc["total", "total"])
    annot = counts.map(lambda v: f"{v:,}\n{100 * v / total:.1f}%")
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(counts, annot=annot, fmt="", cmap="Blues", linewidths=0.5, ax=ax,
                cbar_kws={"label": "Images (count)"}, annot_kws={"fontsize": 10})
    ax.set(title=f"Clean images per gender and ethnicity (n = {total:,})", xlabel="Ethnicity",
           ylabel="Gender")
    ax.tick_params(axis="y", rotation=0)
    return fig


def _caption(row: pd.Series) -> str:
    gender = {"male": "M", "female": "F"}.get(row["gender_label"], "?")
    return f"{row['age']} · {gender} · {row['ethnicity']}"


def plot_face_grid(rows: list[pd.DataFrame], faces: dict[str, np.ndarray], title: str,
                   row_labels: list[str] | None = None) -> Figure:
    """Figures 6 and 7: one face per cell with 'age · gender · ethnicity' above it."""
    ncols = max([1, *(len(r) for r in rows)])
    fig = Figure(figsize=(1.45 * ncols + (0.9 if row_labels else 0), 1.6 * len(rows) + 0.5),
                 layout="constrained")
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for i, part in enumerate(rows):
        for j, ax in enumerate(axes[i]):
            ax.set(xticks=[], yticks=[])
            ax.spines[:].set_visible(False)
            if j < len(part):
                record = part.iloc[j]
                ax.imshow(faces[record["file"]])
                ax.set_title(_caption(record), fontsize=8, pad=2)
        if row_labels:
            axes[i][0].set_ylabel(row_labels[i], rotation=0, ha="right", va="center", fontsize=10)
    fig.suptitle(title + "\nlabels: age (years) · gender (M/F) · ethnicity", fontsize=12)
    return fig


def plot_before_after(table: pd.DataFrame, statuses: pd.DataFrame) -> Figure:
    """Figure 8: raw vs kept per gender, ethnicity and age group; images excluded per status."""
    fig = Figure(figsize=(13, 9), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    titles = {"gender": "Gender", "ethnicity": "Ethnicity", "age_group": "Age group (years)"}
    for ax, (variable, name) in zip(axes, titles.items(), strict=False):
        part = table[table["variable"] == variable]
        x = np.arange(len(part))
        for offset, stage in ((-0.2, "raw"), (0.2, "kept")):
            ax.bar(x + offset, part[stage], width=0.4, color=STAGE_COLORS[stage], label=stage)
        for xi, height, removed in zip(x, part["raw"], part["percent_removed"], strict=True):
            ax.annotate(f"−{removed:.1f}%" if removed else "0%", (xi, height), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=9)
        ax.set_xticks(x, part["category"])
        ax.margins(y=0.2)
        ax.set(title=f"{name}: raw vs kept (label: share removed)", xlabel=name, ylabel="Images (count)")
        ax.legend(loc="upper right")
    excluded = statuses[statuses["status"] != "kept"]
    bars = axes[3].barh(excluded["status"], excluded["images"], color=HIGHLIGHT)
    axes[3].bar_label(bars, [f"{v:,}" for v in excluded["images"]], fontsize=9, padding=3)
    axes[3].invert_yaxis()
    axes[3].margins(x=0.15)
    axes[3].set(title=f"Excluded by cleaning: {excluded['images'].sum():,} images", xlabel="Images (count)",
                ylabel="Cleaning status")
    raw, kept = table.loc[table["variable"] == "all", ["raw", "kept"]].iloc[0]
    fig.suptitle(f"Before and after cleaning: {raw:,} input files, {kept:,} kept")
    return fig


def load_faces(data: Path, names: Iterable[str]) -> dict[str, np.ndarray]:
    """RGB arrays of the named files, read in one pass over the archive or folder."""
    wanted = set(names)
    faces = {name: np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
             for name, blob in iter_files(data, only=wanted)}
    if missing := wanted - faces.keys():
        raise FileNotFoundError(f"{len(missing)} sampled files are not in {data}: {sorted(missing)[:5]}")
    return faces


def sample_faces(kept: pd.DataFrame, seed: int, grid: tuple[int, int], per_group: int) -> dict:
    """Seeded samples: ``grid`` rows of random clean faces, and ``per_group`` faces per age group."""
    rng = np.random.default_rng(seed)
    pool = kept.sort_values("file")  # manifest row order must not change the sample
    rows, cols = grid
    picked = pool.sample(min(rows * cols, len(pool)), random_state=rng)
    random_rows = [picked.iloc[i * cols:(i + 1) * cols] for i in range(rows)]
    by_group = {label: part.sample(min(per_group, len(part)), random_state=rng).sort_values("age")
                for label, part in pool.groupby("age_group", observed=False, sort=True) if label != UNKNOWN}
    return {"random": random_rows, "age_group": by_group}


def key_facts(kept: pd.DataFrame, frame: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> dict:
    """The numbers the report quotes, all computed from the tables above."""
    def top(table: pd.DataFrame, label: str) -> dict:
        row = table.loc[table["images"].idxmax()]
        return {label: row[label], "images": int(row["images"]), "percent": float(row["percent"])}

    decades, groups, statuses = tables["decade_counts"], tables["age_group_counts"], tables["status_counts"]
    dropped = ["total", UNKNOWN]  # compare cells with a known gender and ethnicity only
    cells = tables["gender_by_ethnicity"].drop(index=dropped, columns=dropped, errors="ignore").stack()
    ages = kept["age"]
    return {
        "images_raw": len(frame), "images_kept": len(kept), "images_excluded": len(frame) - len(kept),
        "largest_decade": {b: top(part, "decade") for b, part in decades.groupby("binning", sort=False)},
        "largest_age_group": top(groups, "age_group"),
        "most_common_ages": [{"age": int(a), "images": int(n)}
                             for a, n in ages.value_counts().head(3).items()],
        "age": {"mean": round(ages.mean(), 2), "median": float(ages.median()), "std": round(ages.std(), 2),
                "min": int(ages.min()), "max": int(ages.max())},
        "under_18": {"images": int((ages < 18).sum()),
                     "percent": float(_percent((ages < 18).sum(), len(kept)))},
        "gender": {str(k): int(v) for k, v in _counts(kept["gender_label"]).items()},
        "ethnicity": {str(k): int(v) for k, v in _counts(kept["ethnicity"]).items()},
        "largest_gender_ethnicity_cell": {"cell": " / ".join(cells.idxmax()), "images": int(cells.max())},
        "smallest_gender_ethnicity_cell": {"cell": " / ".join(cells.idxmin()), "images": int(cells.min())},
        "status_counts": dict(zip(statuses["status"], statuses["images"], strict=True)),
    }


def explore(manifest: pd.DataFrame, data: Path, out: Path, seed: int, grid: tuple[int, int] = (6, 8),
            per_group: int = 8) -> dict:
    """Write every EDA table, figure and ``summary.json`` to ``out``; return the summary.

    ``manifest`` is the cleaning manifest (all input files); ``data`` the archive or folder the
    face grids are read from; ``seed`` fixes which faces the grids show.
    """
    start = time.time()
    out = Path(out)
    frame = labelled(manifest)
    kept = frame[frame["status"] == "kept"]
    tables = {
        "decade_counts": decade_counts(kept), "age_group_counts": age_group_counts(kept),
        "gender_counts": category_counts(kept, "gender_label", "gender", GENDERS),
        "ethnicity_counts": category_counts(kept, "ethnicity", "race", ETHNICITIES),
        "gender_by_ethnicity": gender_by_ethnicity(kept), "age_stats_by_group": age_stats_by_group(kept),
        "before_after": before_after(frame), "status_counts": status_counts(frame),
    }
    for name, table in tables.items():
        write_csv(out / f"{name}.csv", table, index=name == "gender_by_ethnicity")
    samples = sample_faces(kept, seed, grid, per_group)
    faces = load_faces(data, pd.concat([*samples["random"], *samples["age_group"].values()])["file"])
    group_sizes = kept["age_group"].value_counts()
    group_labels = [f"{label}\n(n = {group_sizes[label]:,})" for label in samples["age_group"]]
    n_kept = len(kept)
    with matplotlib.rc_context(STYLE):  # fonts and grid for these figures only, no global rcParams
        figures = {
            "age_histogram": plot_age_histogram(kept),
            "age_group_counts": plot_age_groups(tables["decade_counts"], tables["age_group_counts"], n_kept),
            "gender_ethnicity_counts": plot_gender_ethnicity(tables["gender_counts"],
                                                             tables["ethnicity_counts"], n_kept),
            "age_by_gender_ethnicity": plot_age_by_group(kept),
            "gender_by_ethnicity_heatmap": plot_gender_by_ethnicity(tables["gender_by_ethnicity"]),
            "sample_grid": plot_face_grid(samples["random"], faces, f"Random clean faces (seed {seed})"),
            "age_group_samples": plot_face_grid(list(samples["age_group"].values()), faces,
                                                f"Clean faces per age group (seed {seed})", group_labels),
            "before_after_cleaning": plot_before_after(tables["before_after"], tables["status_counts"]),
        }
        for name, fig in figures.items():
            save_figure(out / f"{name}.png", fig, dpi=FACE_DPI if name.endswith(("grid", "samples")) else DPI)
    summary = {**key_facts(kept, frame, tables),
               "seed": seed, "grid": list(grid), "faces_per_age_group": per_group,
               "tables": [f"{n}.csv" for n in tables], "figures": [f"{n}.png" for n in figures],
               "wall_time_s": round(time.time() - start, 1),
               "provenance": provenance(data_sha256=data_checksum(data))}
    write_json(out / "summary.json", summary)
    return summary

