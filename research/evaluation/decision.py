"""Challenge-N decision curves: minors let through against adults asked for ID, for three rules.

A rule asks for ID when

  threshold    the estimate is below t                        (curve over t; N plays no part)
  interval     the estimate - z * sd is below N               (curve over z >= 0, per N: the
                                                               prediction command's rule)
  probability  the model's P(age < N) is above p              (curve over p, per N; needs the
                                                               full age distribution: the release)

Each point of a curve is four shares: 13-17 and 13-16 year-olds let through, adults 25+ and
18-24 year-olds asked, with percentile bootstrap bands (research.evaluation.bootstrap) overall,
per gender and per ethnicity. The operating point of each rule is chosen on the *validation*
curve (the fewest adults 25+ asked with at most ``max_minor_pass_rate`` of 13-17 year-olds let
through) and then read once off the test curve.

curves.csv columns: run, split, rule, challenge (NaN for threshold), parameter, group_type, group,
n_<band>, and per rate <rate>, <rate>_low, <rate>_high (CURVE_RATES).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from tqdm import tqdm

from research.data import archive, pipeline
from research.data.cache import decode_resize
from research.evaluation.bootstrap import percentile_interval, resample_indices
from research.inference import mixture_distribution_step
from research.models.age_interval import interval_lower_end
from research.models.heads import NUM_AGE_BINS
from research.outputs import save_figure, write_csv, write_json
from research.provenance import provenance
from research.vocabulary import CHALLENGE_AGE, ETHNICITIES, GENDERS, MINORS, YOUNG_ADULTS, band_key, in_band

DECISION_CHALLENGES = (21, 25, 30)  # the challenge ages retailers use (Challenge 21, 25, 30)
YOUNG_MINORS = (MINORS[0], MINORS[1] - 1)  # 13-16: below the age some products are sold at
MAX_MINOR_PASS_RATE = 0.02  # operating points: at most this share of 13-17 year-olds let through
RULES = ("threshold", "interval", "probability")
GRIDS = {"threshold": np.arange(0.0, NUM_AGE_BINS + 0.5, 0.5),  # 117 years asks every face
         "interval": np.round(np.arange(0.0, 4.001, 0.05), 2),
         # steps of 0.01, and finer below 0.01 where a strict cap on minors puts p
         "probability": np.unique(np.round(np.concatenate([np.arange(0.0, 1.0001, 0.01),
                                                           np.geomspace(1e-4, 0.01, 9)]), 6))}
GROUP_TYPES = ("overall", "gender", "ethnicity")
# rate name -> (band of true ages, whether the rate counts those asked (else those let through)).
CURVE_RATES = {f"fpr_{band_key(MINORS)}": (MINORS, False),
               f"fpr_{band_key(YOUNG_MINORS)}": (YOUNG_MINORS, False),
               f"friction_{CHALLENGE_AGE}plus": ((CHALLENGE_AGE, 1000), True),
               f"friction_{band_key(YOUNG_ADULTS)}": (YOUNG_ADULTS, True)}
FPR, FRICTION = f"fpr_{band_key(MINORS)}", f"friction_{CHALLENGE_AGE}plus"


def p_under_column(challenge: int) -> str:
    return f"p_under_{challenge}"


def count_name(rate: str) -> str:
    """n_13_17 for fpr_13_17: the column with the band's size."""
    return "n_" + rate.split("_", 1)[1]


# ---- the release's age distribution ---------------------------------------------------------

def decoded_images(source: Path, files: pd.Series, size: int) -> np.ndarray:
    """The files' images at ``size`` px, decoded as the training cache decoded crops, in order."""
    position = {name: i for i, name in enumerate(files)}
    images = np.zeros((len(files), size, size, 3), np.uint8)
    seen = np.zeros(len(files), bool)
    for name, blob in tqdm(archive.iter_files(Path(source), only=position), total=len(files),
                           desc="decode", unit="img"):
        images[position[name]], seen[position[name]] = decode_resize(blob, size), True
    if not seen.all():
        raise FileNotFoundError(f"{(~seen).sum()} files are not in {source}, e.g. {list(files[~seen][:3])}")
    return images


def release_distributions(members: tuple[dict, ...], weights: tuple[float, ...], apply_fn, tta_flip: bool,
                          images: np.ndarray, table: pd.DataFrame, batch_size: int,
                          challenges: tuple[int, ...] = DECISION_CHALLENGES) -> pd.DataFrame:
    """One row per image of ``table`` (file, age, gender, race): the mixture's pred_age and age_std
    (``research.inference.mixture_step``, as the prediction command computes them) and
    p_under_<N>, the mass of its age distribution on ages below N."""
    step = jax.jit(functools.partial(mixture_distribution_step, apply_fn=apply_fn, tta_flip=tta_flip,
                                     weights=weights))
    parts = []
    for chunk, real in pipeline.eval_batches(images, np.arange(len(images)), batch_size):
        out = jax.device_get(step(members, chunk))
        parts.append({k: np.asarray(out[k][:real]) for k in ("age", "age_std", "age_probs")})
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    frame = table[["file", "age", "gender", "race"]].reset_index(drop=True).copy()
    frame["pred_age"], frame["age_std"] = out["age"].astype(float), out["age_std"].astype(float)
    for n in challenges:
        frame[p_under_column(n)] = mass_below(out["age_probs"], n)
    return frame


def mass_below(age_probs: np.ndarray, challenge: int) -> np.ndarray:
    """P(age < N) per row of distributions over ages 0..116: the mass on ages 0 .. N-1."""
    return np.asarray(age_probs, np.float64)[:, :challenge].sum(axis=1)


def agreement(mine: pd.DataFrame, committed: pd.DataFrame, column: str = "pred_age") -> dict:
    """How ``mine`` matches a committed predictions table (both rounded to the CSV's 4 decimals)."""
    joined = mine[["file", column]].merge(committed[["file", column]], on="file", suffixes=("", "_committed"))
    diff = np.abs(np.round(joined[column], 4) - joined[f"{column}_committed"])
    return {"rows": len(mine), "matched_files": len(joined),
            "equal_to_4_decimals": float((diff < 5e-5).mean()),
            "max_abs_difference": float(diff.max()) if len(diff) else float("nan")}


# ---- decisions and curves -------------------------------------------------------------------

def asks(frame: pd.DataFrame, rule: str, challenge: float | None, params: np.ndarray) -> np.ndarray:
    """(parameters x faces) booleans: is ID asked of each face under each parameter of the rule."""
    params = np.asarray(params, float)[:, None]
    est = frame["pred_age"].to_numpy(float)[None, :]
    if rule == "threshold":
        return est < params
    if rule == "interval":
        std = frame["age_std"].to_numpy(float)[None, :]
        return interval_lower_end(est, std, params) < challenge
    if rule == "probability":
        return frame[p_under_column(int(challenge))].to_numpy(float)[None, :] > params
    raise ValueError(f"rule must be one of {RULES}, not {rule!r}")


def point_rates(ask: np.ndarray, age: np.ndarray) -> dict[str, np.ndarray]:
    """Each CURVE_RATES share per parameter (NaN for an empty band)."""
    out = {}
    for rate, (band, counts_asked) in CURVE_RATES.items():
        members = in_band(age, band)
        event = ask[:, members] if counts_asked else ~ask[:, members]
        out[rate] = event.mean(axis=1) if members.any() else np.full(len(ask), np.nan)
    return out


def resample_counts(n: int, resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Blocks (k x n) of how often each row is drawn in each resample of ``resample_indices``."""
    for idx in resample_indices(n, resamples, rng):
        flat = (idx + n * np.arange(len(idx))[:, None]).ravel()
        yield np.bincount(flat, minlength=len(idx) * n).reshape(len(idx), n).astype(np.float32)


def band_draws(ask: np.ndarray, age: np.ndarray, resamples: int, rng: np.random.Generator) -> dict:
    """Bootstrap draws (resamples x parameters) of each CURVE_RATES share, rows resampled together."""
    draws: dict[str, list[np.ndarray]] = {rate: [] for rate in CURVE_RATES}
    masks = {rate: in_band(age, band) for rate, (band, _) in CURVE_RATES.items()}
    for counts in resample_counts(len(age), resamples, rng):
        for rate, (_, counts_asked) in CURVE_RATES.items():
            members = masks[rate]
            event = (ask[:, members] if counts_asked else ~ask[:, members]).astype(np.float32)
            weight = counts[:, members]
            total = weight.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                shares = weight @ event.T / np.where(total > 0, total, 1)
            draws[rate].append(np.where(total > 0, shares, np.nan))
    return {rate: np.concatenate(v) for rate, v in draws.items()}


def group_masks(frame: pd.DataFrame,
                group_types: tuple[str, ...]) -> Iterator[tuple[int, str, str, np.ndarray]]:
    """(position, group type, group, row mask) of each non-empty group."""
    names = {"overall": {"all": None}, "gender": GENDERS, "ethnicity": ETHNICITIES}
    column = {"gender": "gender", "ethnicity": "race"}
    for t, group_type in enumerate(group_types):
        for g, (code, label) in enumerate(names[group_type].items() if group_type != "overall" else
                                          [(None, "all")]):
            mask = (np.ones(len(frame), bool) if group_type == "overall"
                    else (frame[column[group_type]] == code).to_numpy())
            if mask.any():
                yield t * 100 + g, group_type, label, mask


def rule_parts(frame: pd.DataFrame, rules: tuple[str, ...], challenges: tuple[int, ...],
               grids: dict[str, np.ndarray]) -> list[tuple[str, float, np.ndarray]]:
    """(rule, challenge, parameters) of every curve a table supports."""
    parts = []
    for rule in rules:
        if rule == "interval" and frame["age_std"].isna().any():
            continue  # a regression head has no spread
        if rule == "probability" and not all(p_under_column(n) in frame for n in challenges):
            continue
        for n in ([np.nan] if rule == "threshold" else challenges):
            parts.append((rule, n, np.asarray(grids[rule], float)))
    return parts


def curves(frame: pd.DataFrame, resamples: int, seed: int, level: float, rules: tuple[str, ...] = RULES,
           challenges: tuple[int, ...] = DECISION_CHALLENGES, group_types: tuple[str, ...] = GROUP_TYPES,
           grids: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The long curve table of one predictions table (one split): every rule it supports, every
    parameter, every group. Each group's resamples come from its own generator (seed, group), shared
    by all rules, so two rules' bands are drawn from the same resamples."""
    parts = rule_parts(frame, rules, challenges, grids or GRIDS)
    rows = []
    for position, group_type, group, mask in group_masks(frame, group_types):
        part = frame[mask].reset_index(drop=True)
        age = part["age"].to_numpy(float)
        ask = np.concatenate([asks(part, rule, n, params) for rule, n, params in parts])
        point = point_rates(ask, age)
        rng = np.random.default_rng([seed, position])
        draws = band_draws(ask, age, resamples, rng) if resamples else None
        table = pd.DataFrame({"rule": [r for r, _, p in parts for _ in p],
                              "challenge": [n for _, n, p in parts for _ in p],
                              "parameter": np.concatenate([p for _, _, p in parts]) if parts else []})
        table.insert(3, "group_type", group_type)
        table.insert(4, "group", group)
        for rate, (band, _) in CURVE_RATES.items():
            table[count_name(rate)] = int(in_band(age, band).sum())
        for rate in CURVE_RATES:
            table[rate] = point[rate]
            bands = (np.array([percentile_interval(draws[rate][:, j], level) for j in range(len(ask))])
                     if draws is not None and len(ask) else np.full((len(ask), 2), np.nan))
            table[f"{rate}_low"], table[f"{rate}_high"] = bands[:, 0], bands[:, 1]
        rows.append(table)
    return pd.concat(rows, ignore_index=True)


# ---- operating points -----------------------------------------------------------------------

def choose_parameter(val_curve: pd.DataFrame, max_minor_pass_rate: float) -> tuple[float, bool]:
    """The parameter of a validation curve (one rule, one N, overall) that asks the fewest adults 25+
    while letting at most ``max_minor_pass_rate`` of 13-17 year-olds through (ties: fewer minors
    through, then the earlier parameter). When none reaches the cap: the fewest minors let through,
    and False."""
    feasible = val_curve[val_curve[FPR] <= max_minor_pass_rate]
    reached = not feasible.empty
    pool = feasible if reached else val_curve[val_curve[FPR] == val_curve[FPR].min()]
    best = pool.sort_values([FRICTION, FPR, "parameter"], kind="stable").iloc[0]
    return float(best["parameter"]), reached


def _rates_at(curve: pd.DataFrame, parameter: float) -> dict:
    """[value, low, high] of each rate (None for a share of an empty band) and the band sizes."""
    row = curve[np.isclose(curve["parameter"], parameter)].iloc[0]

    def value(x) -> float | None:
        return None if pd.isna(x) else float(x)

    return {rate: [value(row[rate]), value(row[f"{rate}_low"]), value(row[f"{rate}_high"])]
            for rate in CURVE_RATES} | {count_name(r): int(row[count_name(r)]) for r in CURVE_RATES}


def operating_points(table: pd.DataFrame, max_minor_pass_rate: float = MAX_MINOR_PASS_RATE) -> dict:
    """run -> rule -> challenge ('any' for threshold) -> the parameter chosen on validation, whether it
    reached the cap there, and the validation and test rates (test: [value, low, high]) overall and
    per group at that parameter."""
    out: dict = {}
    overall = table[table["group_type"] == "overall"]
    for (run, rule, n), val in overall[overall["split"] == "val"].groupby(
            ["run", "rule", "challenge"], dropna=False, sort=False):
        parameter, reached = choose_parameter(val, max_minor_pass_rate)
        same = ((table["run"] == run) & (table["rule"] == rule)
                & (table["challenge"].isna() if pd.isna(n) else table["challenge"] == n))
        test = table[same & (table["split"] == "test")]
        key = "any" if pd.isna(n) else str(int(n))
        out.setdefault(run, {}).setdefault(rule, {})[key] = {
            "parameter": parameter, "target_reached_on_validation": reached,
            "validation": _rates_at(val, parameter),
            "test": _rates_at(test[test["group_type"] == "overall"], parameter),
            "test_by_group": {f"{group_type}:{group}": _rates_at(part, parameter)
                              for (group_type, group), part in test[test["group_type"] != "overall"]
                              .groupby(["group_type", "group"], sort=False)}}
    return out


def decision_table(frames: dict[str, dict[str, pd.DataFrame]], resamples: int, seed: int, level: float,
                   rules: tuple[str, ...] = RULES, group_types: tuple[str, ...] = GROUP_TYPES,
                   grids: dict[str, np.ndarray] | None = None,
                   grouped: tuple[str, ...] | None = None) -> pd.DataFrame:
    """curves.csv: ``frames`` is run -> split -> predictions table; validation curves are overall
    only (they choose the operating points), test curves per group too for the ``grouped`` runs
    (all when None)."""
    parts = []
    for run, splits in frames.items():
        for split, frame in splits.items():
            by_group = split == "test" and (grouped is None or run in grouped)
            table = curves(frame, resamples, seed, level, rules,
                           group_types=group_types if by_group else ("overall",), grids=grids)
            table.insert(0, "run", run)
            table.insert(1, "split", split)
            parts.append(table)
    return pd.concat(parts, ignore_index=True)


# ---- figures --------------------------------------------------------------------------------

RULE_STYLE = {"threshold": ("estimate < t", "#555555"), "interval": ("estimate - z sd < N", "#3b6ea8"),
              "probability": ("P(age < N) > p", "#c0392b")}
PANELS = ((FRICTION, FPR), (f"friction_{band_key(YOUNG_ADULTS)}", f"fpr_{band_key(YOUNG_MINORS)}"))
AXIS_NAMES = {FPR: "13-17 let through (%)", f"fpr_{band_key(YOUNG_MINORS)}": "13-16 let through (%)",
              FRICTION: f"{CHALLENGE_AGE}+ asked for ID (%)",
              f"friction_{band_key(YOUNG_ADULTS)}": "18-24 asked for ID (%)"}


def _curve(ax, part: pd.DataFrame, x: str, y: str, color: str, label: str, band: bool = True) -> None:
    part = part.sort_values([x, y])
    ax.plot(100 * part[x], 100 * part[y], color=color, lw=1.6, label=label)
    if band:
        ax.fill_between(100 * part[x], 100 * part[f"{y}_low"], 100 * part[f"{y}_high"], color=color,
                        alpha=0.15, lw=0)


def _select(table: pd.DataFrame, run: str, rule: str, n: float, group_type: str = "overall") -> pd.DataFrame:
    keep = ((table["run"] == run) & (table["split"] == "test") & (table["rule"] == rule)
            & (table["group_type"] == group_type))
    return table[keep & (table["challenge"].isna() if rule == "threshold" else table["challenge"] == n)]


def plot_curves(table: pd.DataFrame, points: dict, run: str, max_minor_pass_rate: float):
    """Rows: 13-17 through vs 25+ asked, 13-16 through vs 18-24 asked; columns: challenge ages. Test
    curves of each rule with 95% bands; dots: the operating points chosen on validation."""
    fig = Figure(figsize=(13, 8.5), layout="constrained")
    axes = fig.subplots(2, len(DECISION_CHALLENGES), sharex="row", sharey="row")
    for col, n in enumerate(DECISION_CHALLENGES):
        for row, (x, y) in enumerate(PANELS):
            ax = axes[row, col]
            for rule, (label, color) in RULE_STYLE.items():
                part = _select(table, run, rule, n)
                if part.empty:
                    continue
                _curve(ax, part, x, y, color, label)
                point = points.get(run, {}).get(rule, {}).get("any" if rule == "threshold" else str(n))
                if point:
                    ax.plot(100 * point["test"][x][0], 100 * point["test"][y][0], "o", color=color, ms=7,
                            mec="black")
            if row == 0:
                ax.axhline(100 * max_minor_pass_rate, color="0.3", ls=":", lw=1)
                ax.set_title(f"Challenge {n}")
            ax.set(xlabel=AXIS_NAMES[x], ylabel=AXIS_NAMES[y] if col == 0 else None)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=9)
    fig.suptitle(f"{run}: decision curves on the test split (95% bootstrap bands; dots: operating points "
                 f"chosen on validation for <= {100 * max_minor_pass_rate:g}% of 13-17 let through)")
    return fig


def plot_groups(table: pd.DataFrame, run: str, n: int = CHALLENGE_AGE):
    """Per-gender and per-ethnicity test curves (13-17 through vs 25+ asked) of the interval and
    probability rules at Challenge ``n``, with 95% bands."""
    rules = [r for r in ("interval", "probability") if not _select(table, run, r, n).empty]
    fig = Figure(figsize=(12, 4.2 * len(rules)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rules), 2, sharex=True, sharey=True))
    for row, rule in enumerate(rules):
        for col, group_type in enumerate(("gender", "ethnicity")):
            ax = axes[row, col]
            part = _select(table, run, rule, n, group_type)
            for i, (group, curve) in enumerate(part.groupby("group", sort=False)):
                sizes = curve[count_name(FPR)].iloc[0], curve[count_name(FRICTION)].iloc[0]
                label = f"{group} (n = {sizes[0]} / {sizes[1]})"
                _curve(ax, curve, FRICTION, FPR, colormaps["tab10"](i), label)
            ax.set(title=f"{RULE_STYLE[rule][0]}, by {group_type}", xlabel=AXIS_NAMES[FRICTION],
                   ylabel=AXIS_NAMES[FPR] if col == 0 else None)
            ax.legend(fontsize=8.5, title="group (n 13-17 / 25+)", title_fontsize=8.5)
            ax.grid(alpha=0.3)
    fig.suptitle(f"{run}, Challenge {n}: decision curves per group on the test split (95% bootstrap bands)")
    return fig


def plot_runs(table: pd.DataFrame, n: int = CHALLENGE_AGE):
    """Every run's interval-rule test curve at Challenge ``n`` (13-17 through vs 25+ asked)."""
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.subplots()
    for i, run in enumerate(table["run"].unique()):
        part = _select(table, run, "interval", n)
        if not part.empty:
            _curve(ax, part, FRICTION, FPR, colormaps["tab10"](i % 10), run, band=False)
    ax.set(xlabel=AXIS_NAMES[FRICTION], ylabel=AXIS_NAMES[FPR],
           title=f"Challenge {n}, ask when estimate - z sd < {n}: every run on the test split")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return fig


def write_decision(frames: dict[str, dict[str, pd.DataFrame]], inputs: list[Path], out: Path, resamples: int,
                   seed: int, level: float, release: str,
                   max_minor_pass_rate: float = MAX_MINOR_PASS_RATE) -> dict:
    """curves.csv, operating_points.json (with provenance and the inputs' sha256) and the figures."""
    table = decision_table(frames, resamples, seed, level, grouped=(release,))  # groups: the release only
    points = operating_points(table, max_minor_pass_rate)
    write_csv(out / "curves.csv", table, float_format="%.4f")
    record = {"chosen_on": "validation", "scored_on": "test", "max_minor_pass_rate": max_minor_pass_rate,
              "criterion": f"fewest {FRICTION} with {FPR} <= max_minor_pass_rate",
              "rules": {r: RULE_STYLE[r][0] for r in RULES}, "challenges": list(DECISION_CHALLENGES),
              "grids": {r: [float(GRIDS[r][0]), float(GRIDS[r][-1]), float(GRIDS[r][1] - GRIDS[r][0])]
                        for r in RULES},
              "bootstrap": {"resamples": resamples, "seed": seed, "level": level}, "release": release,
              "inputs": {str(p): archive.sha256_file(p) for p in inputs}, "runs": points,
              "provenance": provenance()}
    write_json(out / "operating_points.json", record)
    save_figure(out / "curves.png", plot_curves(table, points, release, max_minor_pass_rate))
    save_figure(out / "groups.png", plot_groups(table, release))
    save_figure(out / "runs.png", plot_runs(table))
    return record
