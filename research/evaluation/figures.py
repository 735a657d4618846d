"""Figures of a run's predictions: MAE per group, predicted vs true age, error by age, confusion
matrices, Challenge-N sweep and per-group rates, and a face grid of best / worst / per-age-group
predictions.

Every figure is drawn from a predictions table or from the breakdown tables of
``research.evaluation.breakdowns`` (passed in, not recomputed); only the face grid reads images,
and only the few it shows. Figures are ``matplotlib.figure.Figure`` objects (no pyplot state).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from research.data.archive import iter_files
from research.evaluation.metrics import confusion
from research.outputs import save_figure
from research.vocabulary import AGE_GROUPS, ETHNICITIES, GENDERS, age_group

STYLE = {"axes.grid": True, "axes.grid.axis": "y", "grid.alpha": 0.3, "axes.axisbelow": True,
         "axes.spines.top": False, "axes.spines.right": False, "font.size": 11, "axes.titlesize": 12,
         "axes.labelsize": 11, "xtick.labelsize": 9.5, "ytick.labelsize": 10, "legend.fontsize": 9.5,
         "figure.titlesize": 14}
TYPE_COLORS = {"overall": "#555555", "age_group": "#3b6ea8", "gender": "#6a9f58", "ethnicity": "#d9822b",
               "ethnicity_x_gender": "#8e6bb3"}
GENDER_COLORS = {"male": "#3b6ea8", "female": "#d9822b"}
FPR_COLOR, FRICTION_COLOR = "#c0392b", "#3b6ea8"
PANEL_TITLES = {"age_group": "Age group (years)", "gender": "Gender", "ethnicity": "Ethnicity",
                "ethnicity_x_gender": "Ethnicity x gender (n = male / female)"}
DPI, FACE_DPI = 150, 100  # the face grid is photographs: a lower dpi keeps its PNG small
THUMBNAIL_PX = 96
ERROR_BIN_YEARS, MIN_BIN_IMAGES = 5, 10
GENDER_SHORT = {0: "M", 1: "F"}


def _interval_bars(ax, x, part: pd.DataFrame, color, width: float = 0.75, label: str | None = None):
    # clipped: a one-image group's draws equal its MAE up to rounding
    yerr = np.clip([part["age_mae"] - part["age_mae_low"], part["age_mae_high"] - part["age_mae"]], 0, None)
    return ax.bar(x, part["age_mae"], width, yerr=yerr, color=color, capsize=3, label=label,
                  error_kw={"elinewidth": 1, "ecolor": "0.25"})


def plot_mae_by_group(table: pd.DataFrame) -> Figure:
    """Age MAE with 95% bootstrap intervals per age group, gender, ethnicity and ethnicity x gender."""
    overall = table[table["group_type"] == "overall"].iloc[0]
    fig = Figure(figsize=(13, 9), layout="constrained")
    # Panel widths follow the number of bars (7, 2 / 5, 10).
    axes = fig.subplot_mosaic([["age_group"] * 3 + ["gender"] * 2,
                               ["ethnicity"] * 2 + ["ethnicity_x_gender"] * 3])
    for group_type, ax in axes.items():
        part = table[table["group_type"] == group_type]
        if group_type == "ethnicity_x_gender":
            ethnicities = [e for e in ETHNICITIES.values() if part["group"].str.startswith(e + " ").any()]
            x = np.arange(len(ethnicities))
            for offset, gender in ((-0.2, "male"), (0.2, "female")):
                rows = part.set_index("group").reindex([f"{e} {gender}" for e in ethnicities])
                _interval_bars(ax, x + offset, rows, GENDER_COLORS[gender], 0.4, gender)
            sizes = part.set_index("group")["n"]
            ax.set_xticks(x, [f"{e}\n(n={sizes.get(e + ' male', 0):,} / {sizes.get(e + ' female', 0):,})"
                              for e in ethnicities])
        else:
            x = np.arange(len(part))
            bars = _interval_bars(ax, x, part, TYPE_COLORS[group_type])
            ax.bar_label(bars, [f"{v:.2f}" for v in part["age_mae"]], fontsize=8.5, padding=2,
                         label_type="center", color="white")
            ax.set_xticks(x, [f"{g}\n(n={n:,})" for g, n in zip(part["group"], part["n"], strict=True)])
        ax.axhline(overall["age_mae"], color="0.2", ls="--", lw=1, label=f"overall {overall['age_mae']:.2f}")
        ax.set(title=f"{PANEL_TITLES[group_type]}", xlabel=PANEL_TITLES[group_type], ylabel="Age MAE (years)")
        ax.set_ylim(0, table["age_mae_high"].max() * 1.12)
        ax.legend(loc="upper left", ncols=3)
    fig.suptitle(f"Age MAE by group on the test split (n = {int(overall['n']):,}), "
                 "95% bootstrap intervals; dashed line: overall MAE")
    return fig


def plot_pred_vs_true(frame: pd.DataFrame) -> Figure:
    """Hexbin of predicted against true age with the identity line."""
    true_age, pred_age = frame["age"].to_numpy(float), frame["pred_age"].to_numpy(float)
    low, top = max(0.0, min(true_age.min(), pred_age.min()) - 2), max(true_age.max(), pred_age.max()) + 2
    fig = Figure(figsize=(7.5, 6.5), layout="constrained")
    ax = fig.subplots()
    hexes = ax.hexbin(true_age, pred_age, gridsize=45, bins="log", mincnt=1, cmap="viridis",
                      extent=(low, top, low, top))
    ax.plot([low, top], [low, top], color="#c0392b", lw=1.5, label="identity (prediction = truth)")
    ax.set(xlim=(low, top), ylim=(low, top), aspect="equal", xlabel="True age (years)",
           ylabel="Predicted age (years)",
           title=f"Predicted vs true age, test split (n = {len(frame):,}, "
                 f"MAE {np.abs(pred_age - true_age).mean():.2f} years)")
    ax.legend(loc="upper left")
    ax.grid(True, axis="both")
    fig.colorbar(hexes, ax=ax, label="Images per hexagon (count, log scale)")
    return fig


def error_by_age_table(frame: pd.DataFrame, width: int = ERROR_BIN_YEARS) -> pd.DataFrame:
    """Mean absolute and signed error per ``width``-year bin of true age, with counts."""
    error = frame["pred_age"].to_numpy(float) - frame["age"].to_numpy(float)
    low = (frame["age"].to_numpy() // width) * width
    table = pd.DataFrame({"low": low, "abs": np.abs(error), "signed": error})
    out = table.groupby("low").agg(n=("abs", "size"), mean_abs_error=("abs", "mean"),
                                   mean_signed_error=("signed", "mean")).reset_index()
    out["centre"] = out["low"] + (width - 1) / 2
    return out


def plot_error_by_age(frame: pd.DataFrame) -> Figure:
    """Mean absolute and signed error by true age (5-year bins), with the images per bin below."""
    table = error_by_age_table(frame)
    shown = table[table["n"] >= MIN_BIN_IMAGES]
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    ax, ax_n = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(shown["centre"], shown["mean_abs_error"], "o-", color=FRICTION_COLOR, label="mean absolute error")
    ax.plot(shown["centre"], shown["mean_signed_error"], "s-", color=FPR_COLOR,
            label="mean signed error (+ = estimated too old)")
    ax.axhline(0, color="0.2", lw=1)
    ax.set(ylabel="Error (years)",
           title=f"Age error by true age ({ERROR_BIN_YEARS}-year bins; bins with < {MIN_BIN_IMAGES} "
                 "test images not drawn)")
    ax.legend(loc="upper left")
    ax_n.bar(table["centre"], table["n"], width=ERROR_BIN_YEARS * 0.85, color="0.6")
    ax_n.set(xlabel="True age (years)", ylabel="Images (count)")
    return fig


def _confusion_panel(ax, matrix: np.ndarray, names: list[str], what: str):
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), share in np.ndenumerate(shares):
        ax.text(j, i, f"{100 * share:.1f}%\n({matrix[i, j]:,})", ha="center", va="center", fontsize=8.5,
                color="white" if share > 0.6 else "0.1")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.grid(False)
    ax.spines[:].set_visible(True)
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set(xlabel=f"Predicted {what}", ylabel=f"True {what}",
           title=f"{what.capitalize()}\n(accuracy {100 * accuracy:.1f}%, n = {matrix.sum():,})")
    return image


def plot_confusion(frame: pd.DataFrame) -> Figure:
    """Gender and ethnicity confusion matrices, row-normalised, with counts (race -1 excluded).
    A model with no ethnicity head (every pred_race missing) gets the gender panel only."""
    known = frame["race"] >= 0
    has_race = frame["pred_race"].notna().any()
    fig = Figure(figsize=(10.5, 5.4) if has_race else (5.2, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 5]}) if has_race else [fig.subplots()]
    genders = confusion(frame["gender"].to_numpy(), frame["pred_gender"].to_numpy(), 2)
    image = _confusion_panel(axes[0], genders, list(GENDERS.values()), "gender")
    if has_race:
        races = frame.loc[known, "pred_race"].to_numpy().astype(int)
        image = _confusion_panel(axes[1], confusion(frame.loc[known, "race"].to_numpy(), races, 5),
                                 list(ETHNICITIES.values()), "ethnicity")
    fig.colorbar(image, ax=axes, label="Share of the true class (row-normalised)", shrink=0.85)
    fig.suptitle("Confusion matrices on the test split: share of each true class (count)")
    return fig


def plot_challenge_sweep(sweep: pd.DataFrame, operating_point: dict | None) -> Figure:
    """Minors let through and adults 25+ asked for ID against the Challenge-N threshold."""
    fig = Figure(figsize=(10, 7), layout="constrained")
    ax = fig.subplots()
    for split, style, width in (("test", "-", 2.0), ("val", "--", 1.2)):
        part = sweep[sweep["split"] == split]
        if part.empty:
            continue
        name = "test" if split == "test" else "validation"
        ax.plot(part["threshold"], 100 * part["fpr_13_17"], style, color=FPR_COLOR, lw=width,
                label=f"13-17 estimated at N or above (let through), {name}")
        ax.plot(part["threshold"], 100 * part["friction_25plus"], style, color=FRICTION_COLOR, lw=width,
                label=f"25+ estimated below N (asked for ID), {name}")
    ax.axvline(25, color="0.2", ls=":", lw=1.5, label="N = 25 (Challenge 25)")
    if operating_point:
        threshold = operating_point["threshold"]
        target = 100 * operating_point["max_minor_pass_rate"]
        ax.axvline(threshold, color="#7d3c98", ls="-.", lw=1.5,
                   label=f"operating threshold {threshold:g} (validation: <= {target:g}% minors let through)")
        ax.axhline(target, color="#7d3c98", lw=0.8, alpha=0.6, label=f"{target:g}% target")
    ax.set(xlabel="Challenge threshold N: ID asked when estimated age < N (years)",
           ylabel="Share of the age band (%)", ylim=(-2, 102), xlim=(sweep["threshold"].min(),
                                                                  sweep["threshold"].max()),
           title="Challenge-N threshold sweep: minors let through vs adults asked for ID")
    fig.legend(loc="outside lower center", ncols=2, fontsize=9)
    return fig


def plot_challenge_by_group(challenge: pd.DataFrame, threshold: float = 25) -> Figure:
    """Per-group Challenge-N rates at one threshold, with Wilson 95% intervals and group sizes."""
    part = challenge[challenge["threshold"] == threshold].reset_index(drop=True)
    fig = Figure(figsize=(11, 9.5), layout="constrained")
    axes = fig.subplots(2, 1)
    panels = (("fpr_13_17", "n_13_17", f"13-17 estimated {threshold:g}+ (let through)"),
              ("friction_25plus", "n_25plus", f"25+ estimated under {threshold:g} (asked for ID)"))
    x = np.arange(len(part))
    colors = [TYPE_COLORS[t] for t in part["group_type"]]
    for ax, (rate, count, title) in zip(axes, panels, strict=True):
        values = 100 * part[rate]
        low, high = 100 * part[f"{rate}_low"], 100 * part[f"{rate}_high"]
        yerr = np.clip(np.nan_to_num([values - low, high - values]), 0, None)
        ax.bar(x, values, color=colors, yerr=yerr, capsize=3, error_kw={"elinewidth": 1, "ecolor": "0.25"})
        for xi, value, top in zip(x, values, values + yerr[1], strict=True):  # above the interval
            ax.annotate(f"{value:.1f}%", (xi, top), xytext=(0, 4), textcoords="offset points", ha="center",
                        fontsize=8.5)
        ax.set_xticks(x, [f"{g}\n(n={n:,})" for g, n in zip(part["group"], part[count], strict=True)])
        ax.set(title=title, ylabel="Share of the age band (%)",
               xlabel="Group (n = test images of the age band in the group)")
        ax.set_ylim(0, max(5.0, float((100 * part[f"{rate}_high"]).max()) * 1.15))
    fig.suptitle(f"Challenge {threshold:g} by group on the test split (95% Wilson intervals; "
                 "grey overall, green gender, orange ethnicity)")
    return fig


def select_faces(frame: pd.DataFrame, seed: int, extremes: int = 8, per_group: int = 2) -> dict:
    """Rows to show: the ``extremes`` smallest and largest absolute errors and ``per_group`` random
    rows per age group (seeded)."""
    ranked = frame.assign(abs_error=(frame["pred_age"] - frame["age"]).abs())
    ranked = ranked.sort_values(["abs_error", "file"], kind="stable")
    groups = ranked["age"].map(age_group)
    rng = np.random.default_rng(seed)
    by_group = {}
    for label, _, _ in AGE_GROUPS:
        members = ranked[(groups == label).to_numpy()].sort_values("file")
        if len(members):
            chosen = rng.choice(len(members), min(per_group, len(members)), replace=False)
            by_group[label] = members.iloc[np.sort(chosen)]
    return {"best": ranked.head(extremes), "worst": ranked.tail(extremes).iloc[::-1], "age_group": by_group}


def load_thumbnails(data: Path, names: set[str], size: int = THUMBNAIL_PX) -> dict[str, np.ndarray]:
    """``size``-pixel RGB thumbnails of the named files, read in one pass over the archive or folder."""
    thumbs = {}
    for name, blob in iter_files(Path(data), only=names):
        image = Image.open(io.BytesIO(blob)).convert("RGB")
        thumbs[name] = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS))
    if missing := set(names) - thumbs.keys():
        raise FileNotFoundError(f"{len(missing)} test files are not in {data}: {sorted(missing)[:5]}")
    return thumbs


def _face_caption(row: pd.Series) -> str:
    def ethnicity(code: float) -> str:
        return "?" if pd.isna(code) else ETHNICITIES.get(int(code), "?")

    return (f"true {row['age']} · pred {row['pred_age']:.1f}\n"
            f"{GENDER_SHORT[int(row['gender'])]}→{GENDER_SHORT[int(row['pred_gender'])]} · "
            f"{ethnicity(row['race'])}→{ethnicity(row['pred_race'])}")


def _face_cells(subfig, cells: list[list[pd.Series | None]], thumbs: dict[str, np.ndarray], ncols: int,
                headers: list[str] | None = None) -> None:
    """One thumbnail per cell with its caption; None leaves a cell empty (columns stay aligned)."""
    axes = subfig.subplots(len(cells), ncols, squeeze=False)
    for i, row in enumerate(cells):
        for j, ax in enumerate(axes[i]):
            ax.set(xticks=[], yticks=[])
            ax.spines[:].set_visible(False)
            ax.grid(False)
            record = row[j] if j < len(row) else None
            if record is not None:
                ax.imshow(thumbs[record["file"]])
                header = f"age group {headers[j]}\n" if headers and i == 0 else ""
                ax.set_title(header + _face_caption(record), fontsize=8.5, pad=2)


def plot_faces(selection: dict, thumbs: dict[str, np.ndarray], seed: int) -> Figure:
    """Best and worst predictions by absolute age error, and random faces per age group."""
    groups = selection["age_group"]
    per_group = max((len(p) for p in groups.values()), default=0)
    ncols = max(len(selection["best"]), len(groups), 1)
    fig = Figure(figsize=(1.4 * ncols, 4.2 + 2.2 * per_group), layout="constrained")
    parts = fig.subfigures(3, 1, height_ratios=[1, 1, max(per_group, 1) * 1.05])
    for subfig, key, title in ((parts[0], "best", "Smallest absolute age error"),
                               (parts[1], "worst", "Largest absolute age error")):
        _face_cells(subfig, [[row for _, row in selection[key].iterrows()]], thumbs, ncols)
        subfig.suptitle(f"{title} ({len(selection[key])} faces)", fontsize=11)
    cells = [[p.iloc[k] if len(p) > k else None for p in groups.values()] for k in range(per_group)]
    if cells:
        _face_cells(parts[2], cells, thumbs, ncols, headers=list(groups))
    parts[2].suptitle(f"Random test faces, {per_group} per age group (seed {seed})", fontsize=11)
    fig.suptitle("Test predictions: true and predicted age (years); gender M/F and ethnicity, true→predicted")
    return fig


def write_figures(out: Path, frame: pd.DataFrame, tables: dict[str, pd.DataFrame],
                  operating_point: dict | None, data: Path | None, seed: int) -> list[str]:
    """Draw and save every figure that the tables allow; the face grid only when ``data`` is given."""
    makers = {
        "mae_by_group": lambda: plot_mae_by_group(tables["by_group"]),
        "pred_vs_true": lambda: plot_pred_vs_true(frame),
        "error_by_age": lambda: plot_error_by_age(frame),
        "confusion": lambda: plot_confusion(frame),
    }
    if "challenge_sweep" in tables:
        makers["challenge_sweep"] = lambda: plot_challenge_sweep(tables["challenge_sweep"], operating_point)
        makers["challenge_by_group"] = lambda: plot_challenge_by_group(tables["challenge_by_group"])
    if data is not None:
        def faces() -> Figure:
            selection = select_faces(frame, seed)
            parts = [selection["best"], selection["worst"], *selection["age_group"].values()]
            return plot_faces(selection, load_thumbnails(data, set(pd.concat(parts)["file"])), seed)
        makers["faces_grid"] = faces
    with matplotlib.rc_context(STYLE):  # fonts and grid for these figures only, no global rcParams
        for name, make in makers.items():
            save_figure(Path(out) / f"{name}.png", make(), dpi=FACE_DPI if name == "faces_grid" else DPI)
    return [f"{name}.png" for name in makers]
