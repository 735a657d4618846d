"""The release's age bias per age group, and its correction chosen on validation.

Estimates are pulled towards the middle of the age range: children and teenagers are estimated too
old, the old too young. Corrections compared (fitted on validation, scored once on test):

  none               the release as it is
  label_prior        its age distribution divided by the training-age prior^tau and renormalised
                     (logit adjustment, Menon et al. 2021), tau chosen on validation
  deshrink           the estimate moved part way (lambda, chosen on validation) to the inverse of
                     the monotone E[estimate | true age] fitted on validation, the distribution
                     translated with it (an estimate_map correction)
  isotonic           the estimate mapped to the monotone E[true age | estimate] (lambda 1)
  inverse_isotonic   deshrink with lambda 1 (the full inverse), for reference

Both corrections are applied to the distribution (research.models.age_distribution), and each
estimate is the corrected distribution's mean, as the prediction command computes it. The maps
are fitted on validation, so there they are scored out of fold (each fold's faces mapped by a map
fitted on the other folds); release_corrected_val.csv holds those out-of-fold distributions, which
is what the interval calibration and the operating points downstream are chosen on.

bands.csv columns: method, split, band (AGE_GROUPS labels and "all"), n, mean_signed_error,
mean_signed_error_low, mean_signed_error_high, mae, mae_low, mae_high, and the change of the mean
signed error against "none" (bias_change, bias_change_low, bias_change_high; paired resamples).
challenge.csv columns: method, split, challenge, and per rate (fpr_13_17, friction_18_24,
friction_25plus) its value, _low and _high: the estimate alone at Challenge N.
choice.csv columns: method (label_prior, deshrink), parameter (tau, lambda), age_mae,
max_abs_band_error, fpr_13_17 and the mean signed error per age group, on validation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.optimize import isotonic_regression

from research.data.archive import sha256_file
from research.evaluation.bootstrap import percentile_interval, rate_draws, resample_indices
from research.evaluation.metrics import FPR_MINORS, FRICTION_ADULTS, FRICTION_YOUNG, challenge_rates
from research.models.age_distribution import (
    apply_correction,
    estimate_map_correction,
    label_prior_correction,
    mass_below,
    moments,
    prior_adjusted,
)
from research.models.heads import NUM_AGE_BINS
from research.outputs import save_figure, write_csv, write_json
from research.provenance import provenance
from research.vocabulary import AGE_GROUPS, CHALLENGE_AGE, MINORS, YOUNG_ADULTS, band_label, in_band

METHODS = ("none", "label_prior", "deshrink", "isotonic", "inverse_isotonic")
FITTED = {"deshrink": "inverse_isotonic", "isotonic": "isotonic", "inverse_isotonic": "inverse_isotonic"}
BANDS = tuple(label for label, _, _ in AGE_GROUPS)
RATES = (FPR_MINORS, FRICTION_YOUNG, FRICTION_ADULTS)


def training_prior(ages, smoothing_sd: float, pseudo_count: float) -> np.ndarray:
    """The training split's age histogram over ages 0..116, smoothed with a Gaussian kernel of
    ``smoothing_sd`` years and ``pseudo_count`` added per age, normalised to sum 1."""
    counts = np.bincount(np.asarray(ages, int), minlength=NUM_AGE_BINS)[:NUM_AGE_BINS].astype(float)
    if smoothing_sd > 0:
        grid = np.arange(NUM_AGE_BINS, dtype=float)
        kernel = np.exp(-0.5 * ((grid[:, None] - grid[None, :]) / smoothing_sd) ** 2)
        counts = (kernel / kernel.sum(axis=0, keepdims=True)) @ counts  # each age's count spread, kept whole
    smoothed = counts + pseudo_count
    return smoothed / smoothed.sum()


def band_of(age) -> np.ndarray:
    """The AGE_GROUPS label of each true age."""
    age = np.asarray(age)
    out = np.empty(len(age), dtype=object)
    for label, low, high in AGE_GROUPS:
        out[(age >= low) & (age <= high)] = label
    return out


def band_errors(age, estimate) -> dict[str, float]:
    """Mean signed error (estimate - true) per age group, and the overall MAE."""
    age, estimate = np.asarray(age, float), np.asarray(estimate, float)
    error, bands = estimate - age, band_of(age)
    out = {"age_mae": float(np.abs(error).mean())}
    out.update({band: float(error[bands == band].mean()) for band in BANDS if (bands == band).any()})
    return out


def curve_row(age, estimate, method: str, parameter: float) -> dict:
    """The choice table's row of one corrected estimate: MAE, band errors, the largest |one|."""
    errors = band_errors(age, estimate)
    rates = challenge_rates(np.asarray(age, float), np.asarray(estimate, float), CHALLENGE_AGE)
    return {"method": method, "parameter": float(parameter), "age_mae": errors["age_mae"],
            "max_abs_band_error": max(abs(errors[b]) for b in BANDS if b in errors),
            FPR_MINORS: rates[FPR_MINORS], **{b: errors[b] for b in BANDS if b in errors}}


def choose_parameter(curve: pd.DataFrame, max_mae_increase: float) -> float:
    """The parameter whose largest |band mean signed error| is smallest among those whose MAE is at
    most ``max_mae_increase`` above parameter 0's (the uncorrected model; ties: the smaller one)."""
    base = float(curve.loc[np.isclose(curve["parameter"], 0.0), "age_mae"].iloc[0])
    allowed = curve[curve["age_mae"] <= base + max_mae_increase + 1e-12]
    return float(allowed.sort_values(["max_abs_band_error", "parameter"], kind="stable").iloc[0]["parameter"])


# ---- the monotone maps of the estimate -------------------------------------------------------

def _increasing_fit(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Knots (unique x, the isotonic fit of y on x there) of an increasing least-squares fit."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    order = np.argsort(x, kind="stable")
    unique, start, counts = np.unique(x[order], return_index=True, return_counts=True)
    means = np.add.reduceat(y[order], start) / counts
    return unique, isotonic_regression(means, weights=counts.astype(float), increasing=True).x


def fit_isotonic(estimate, age) -> dict:
    """estimate -> E[true age | estimate], monotone (applied by interpolation between knots)."""
    x, fit = _increasing_fit(estimate, age)
    return {"x": x, "y": fit}


def fit_inverse_isotonic(estimate, age) -> dict:
    """estimate -> the true age whose monotone E[estimate | true age] equals it (flat stretches of
    that fit are one knot at their mean age)."""
    ages, fit = _increasing_fit(age, estimate)
    levels, start, counts = np.unique(fit, return_index=True, return_counts=True)
    return {"x": levels, "y": np.add.reduceat(ages, start) / counts}


def apply_map(mapping: dict, estimate) -> np.ndarray:
    return np.interp(np.asarray(estimate, float), mapping["x"], mapping["y"])


FITS = {"isotonic": fit_isotonic, "inverse_isotonic": fit_inverse_isotonic}


def map_correction(method: str, estimate, age, lam: float) -> dict:
    """The estimate_map correction of a fitted map (FITTED[method]) with weight ``lam``."""
    mapping = FITS[FITTED[method]](estimate, age)
    return estimate_map_correction(mapping["x"], mapping["y"], lam)


def out_of_fold(method: str, probs, age, lam: float, folds: int, seed: int) -> np.ndarray:
    """Each face's distribution corrected by the map of ``method`` (weight ``lam``) fitted on the
    other folds: how the map fitted on all of validation will treat faces it has not seen."""
    probs, age = np.asarray(probs, float), np.asarray(age, float)
    estimate = moments(probs)[0]
    fold = np.random.default_rng(seed).permutation(len(age)) % folds
    out = np.empty_like(probs)
    for k in range(folds):
        correction = map_correction(method, estimate[fold != k], age[fold != k], lam)
        out[fold == k] = apply_correction(probs[fold == k], correction)
    return out


# ---- the tables ------------------------------------------------------------------------------

def corrected_frame(table: pd.DataFrame, probs, challenges: tuple[int, ...]) -> pd.DataFrame:
    """release_<split>.csv's columns (file, age, gender, race, pred_age, age_std, p_under_<N>)
    from the distributions ``probs`` of ``table``'s faces."""
    frame = table[["file", "age", "gender", "race"]].reset_index(drop=True).copy()
    frame["pred_age"], frame["age_std"] = moments(probs)
    for n in challenges:
        frame[f"p_under_{n}"] = mass_below(probs, n)
    return frame


def band_table(age, estimates: dict[str, np.ndarray], split: str, resamples: int, seed: int,
               level: float) -> pd.DataFrame:
    """Per method and age group (and "all"): n, mean signed error and MAE with bootstrap intervals,
    and the change of the mean signed error against "none" (the same resamples for every method)."""
    age = np.asarray(age, float)
    bands = band_of(age)
    rows = []
    for b, band in enumerate((*BANDS, "all")):
        members = np.flatnonzero(bands == band) if band != "all" else np.arange(len(age))
        if not len(members):
            continue
        errors = {m: np.asarray(e, float)[members] - age[members] for m, e in estimates.items()}
        draws = {m: [] for m in errors}
        rng = np.random.default_rng([seed, b])
        for idx in resample_indices(len(members), resamples, rng):
            for m, e in errors.items():
                draws[m].append(np.stack([e[idx].mean(axis=1), np.abs(e[idx]).mean(axis=1)]))
        for m, e in errors.items():
            d = np.concatenate(draws[m], axis=1) if resamples else np.full((2, 1), np.nan)
            change = d[0] - np.concatenate(draws["none"], axis=1)[0] if resamples else d[0]
            rows.append({"method": m, "split": split, "band": band, "n": len(members),
                         "mean_signed_error": e.mean(), **_interval("mean_signed_error", d[0], level),
                         "mae": np.abs(e).mean(), **_interval("mae", d[1], level),
                         "bias_change": e.mean() - errors["none"].mean(),
                         **_interval("bias_change", change, level)})
    return pd.DataFrame(rows)


def _interval(name: str, draws: np.ndarray, level: float) -> dict:
    low, high = percentile_interval(draws, level) if np.isfinite(draws).all() else (np.nan, np.nan)
    return {f"{name}_low": low, f"{name}_high": high}


def challenge_table(age, estimates: dict[str, np.ndarray], split: str, challenge: float, resamples: int,
                    seed: int, level: float) -> pd.DataFrame:
    """The estimate-alone Challenge-N rates of every method with bootstrap intervals (same resamples)."""
    age = np.asarray(age, float)
    members = {FPR_MINORS: in_band(age, MINORS), FRICTION_YOUNG: in_band(age, YOUNG_ADULTS),
               FRICTION_ADULTS: age >= CHALLENGE_AGE}
    rows = []
    for m, estimate in estimates.items():
        passed = np.asarray(estimate, float) >= challenge
        events = {FPR_MINORS: passed, FRICTION_YOUNG: ~passed, FRICTION_ADULTS: ~passed}
        draws = {r: [] for r in RATES}
        for idx in resample_indices(len(age), resamples, np.random.default_rng(seed)):
            for r in RATES:
                draws[r].append(rate_draws(events[r].astype(float), members[r], idx))
        row = {"method": m, "split": split, "challenge": challenge}
        for r in RATES:
            row[r] = float(events[r][members[r]].mean()) if members[r].any() else np.nan
            row.update(_interval(r, np.concatenate(draws[r]) if resamples else np.array([np.nan]), level))
            row[f"{r}_low"], row[f"{r}_high"] = row.pop(f"{r}_low"), row.pop(f"{r}_high")
        rows.append(row)
    return pd.DataFrame(rows)


def by_age(age, estimates: dict[str, np.ndarray], split: str, min_faces: int) -> pd.DataFrame:
    """Mean signed error per true age (ages with at least ``min_faces`` faces), per method."""
    age = np.asarray(age, int)
    rows = []
    for m, estimate in estimates.items():
        error = np.asarray(estimate, float) - age
        for a in np.unique(age):
            mask = age == a
            if mask.sum() >= min_faces:
                rows.append({"method": m, "split": split, "age": int(a), "n": int(mask.sum()),
                             "mean_signed_error": float(error[mask].mean())})
    return pd.DataFrame(rows)


# ---- the stage -------------------------------------------------------------------------------

def corrections(val_probs, val_age, prior, config) -> tuple[dict[str, dict | None], pd.DataFrame]:
    """Each method's correction (fitted on all of validation; tau and lambda chosen there) and the
    validation choice table of the two with a parameter."""
    estimate = moments(val_probs)[0]
    rows = [curve_row(val_age, moments(prior_adjusted(val_probs, prior, tau))[0], "label_prior", tau)
            for tau in config.taus]
    for lam in config.lambdas:
        mapped = out_of_fold("deshrink", val_probs, val_age, lam, config.folds, config.seed)
        rows.append(curve_row(val_age, moments(mapped)[0], "deshrink", lam))
    choice = pd.DataFrame(rows)
    tau = choose_parameter(choice[choice["method"] == "label_prior"], config.max_mae_increase)
    lam = choose_parameter(choice[choice["method"] == "deshrink"], config.max_mae_increase)
    maps = {m: map_correction(m, estimate, val_age, lam if m == "deshrink" else 1.0) for m in FITTED}
    return {"none": None, "label_prior": label_prior_correction(prior, tau), **maps}, choice


def corrected(split: str, probs, age, method: str, correction: dict | None, config) -> np.ndarray:
    """The split's distributions under a method: out of fold on validation for a fitted map."""
    if split == "val" and method in FITTED:
        return out_of_fold(method, probs, age, correction["lambda"], config.folds, config.seed)
    return apply_correction(probs, correction)


def choose_method(bands: pd.DataFrame, max_mae_increase: float) -> str:
    """On validation: the method with the smallest largest |age-group mean signed error| whose
    overall MAE is at most ``max_mae_increase`` above the uncorrected model's ("none" always is)."""
    val = bands[bands["split"] == "val"]
    overall = val[val["band"] == "all"].set_index("method")["mae"]
    worst = val[val["band"] != "all"].assign(abs_error=lambda f: f["mean_signed_error"].abs()) \
        .groupby("method", sort=False)["abs_error"].max()
    allowed = [m for m in METHODS if m in worst and overall[m] <= overall["none"] + max_mae_increase + 1e-12]
    return min(allowed, key=lambda m: (worst[m], METHODS.index(m)))


METHOD_STYLE = {"none": ("uncorrected", "#555555", "-"),
                "label_prior": ("label-prior correction", "#c0392b", "-"),
                "deshrink": ("de-shrinking map", "#2a9d55", "-"),
                "isotonic": ("isotonic E[age | estimate]", "#3b6ea8", ":"),
                "inverse_isotonic": ("full inverse map", "#2a9d55", ":")}


def plot_bias(ages: pd.DataFrame, choice: pd.DataFrame, chosen: dict[str, float], max_mae_increase: float):
    """Mean signed error per true age on validation and test for each method, and the validation
    choice of tau and lambda (largest |age-group mean signed error| and MAE against the parameter)."""
    fig = Figure(figsize=(16, 4.8), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, split in zip(axes[:2], ("val", "test"), strict=True):
        for method, (label, color, style) in METHOD_STYLE.items():
            part = ages[(ages["split"] == split) & (ages["method"] == method)]
            ax.plot(part["age"], part["mean_signed_error"], style, color=color, label=label,
                    lw=2 if style == "-" else 1.2)
        for _, low, _ in AGE_GROUPS[1:]:
            ax.axvline(low - 0.5, color="#bbbbbb", lw=0.8)
        ax.axhline(0, color="black", lw=0.8)
        ax.set(title=f"{'validation (maps out of fold)' if split == 'val' else 'test'}: mean signed error "
                     "per true age", xlabel="true age (ages with enough faces)",
               ylabel="estimate - true age (years)", xlim=(0, 90))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=9)
    ax = axes[2]
    for method, name in (("label_prior", "tau"), ("deshrink", "lambda")):
        part = choice[choice["method"] == method]
        color = METHOD_STYLE[method][1]
        ax.plot(part["parameter"], part["max_abs_band_error"], color=color,
                label=f"{METHOD_STYLE[method][0]}: largest |age-group error|")
        ax.plot(part["parameter"], part["age_mae"], "--", color=color,
                label=f"{METHOD_STYLE[method][0]}: MAE")
        ax.axvline(chosen[method], color=color, ls=":", lw=1.2)
        ax.annotate(f" {name} = {chosen[method]:g}", (chosen[method], 0.2), color=color, fontsize=9,
                    ha="left", va="bottom")
    start = choice[np.isclose(choice["parameter"], 0.0)].iloc[0]
    ax.axhline(start["age_mae"] + max_mae_increase, color="black", ls=":", lw=1, label="MAE allowed")
    ax.set(title="validation: choosing tau and lambda", xlabel="tau (label prior) or lambda (map)",
           ylabel="years", xlim=(0, 2), ylim=(0, 1.6 * max(start["age_mae"], start["max_abs_band_error"])))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _at(table: pd.DataFrame, method: str, split: str, band: str) -> dict:
    row = table[(table["method"] == method) & (table["split"] == split) & (table["band"] == band)].iloc[0]
    return {k: [float(row[k]), float(row[f"{k}_low"]), float(row[f"{k}_high"])]
            for k in ("mean_signed_error", "mae", "bias_change")} | {"n": int(row["n"])}


def _rates_at(table: pd.DataFrame, method: str, split: str) -> dict:
    row = table[(table["method"] == method) & (table["split"] == split)].iloc[0]
    return {r: [float(row[r]), float(row[f"{r}_low"]), float(row[f"{r}_high"])] for r in RATES}


def bias_tables(tables: dict[str, pd.DataFrame], estimates: dict, config) -> dict[str, pd.DataFrame]:
    """bands, challenge and by_age of both splits."""
    parts: dict[str, list[pd.DataFrame]] = {"bands": [], "challenge": [], "by_age": []}
    for split in ("val", "test"):
        age, est = tables[split]["age"], estimates[split]
        parts["bands"].append(band_table(age, est, split, config.resamples, config.seed, config.level))
        parts["challenge"].append(challenge_table(age, est, split, config.challenge, config.resamples,
                                                  config.seed, config.level))
        parts["by_age"].append(by_age(age, est, split, config.min_faces_per_age))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


def criterion(config) -> str:
    return (f"validation: the method (and its tau or lambda) whose largest |mean signed error| over the "
            f"age groups is smallest while the overall MAE rises at most {config.max_mae_increase:g} years "
            f"over the uncorrected model (fitted maps scored out of fold, {config.folds} folds)")


def write_bias(tables: dict[str, pd.DataFrame], probs: dict[str, np.ndarray], train_ages, config,
               inputs: list[Path], out: Path, challenges: tuple[int, ...]) -> dict:
    """bands.csv, challenge.csv, by_age.csv, choice.csv, the chosen method's corrected release
    tables (release_corrected_<split>.csv), correction.json (the chosen correction, what the release
    carries; null kind when "none" is chosen), summary.json and by_age.png. ``tables``/``probs``:
    split -> the faces (file, age, gender, race) and their distributions, in the same order."""
    out = Path(out)
    prior = training_prior(train_ages, config.prior_smoothing_sd, config.prior_pseudo_count)
    ages = {split: tables[split]["age"].to_numpy(float) for split in ("val", "test")}
    fitted, choice = corrections(probs["val"], ages["val"], prior, config)
    distributions = {split: {m: corrected(split, probs[split], ages[split], m, fitted[m], config)
                             for m in METHODS} for split in ("val", "test")}
    estimates = {split: {m: moments(d)[0] for m, d in by.items()} for split, by in distributions.items()}
    made = bias_tables(tables, estimates, config)
    chosen = choose_method(made["bands"], config.max_mae_increase)
    for name, frame in {**made, "choice": choice}.items():
        write_csv(out / f"{name}.csv", frame, float_format="%.4f")
    for split in ("val", "test"):
        frame = corrected_frame(tables[split], distributions[split][chosen], challenges)
        write_csv(out / f"release_corrected_{split}.csv", frame, float_format="%.4f")
    source = {"inputs": {str(p): sha256_file(p) for p in inputs}, "provenance": provenance()}
    notes = {"method": chosen, "chosen_on": criterion(config)}
    if chosen == "label_prior":
        notes |= {"prior_of": f"the training split's ages ({config.split_file})",
                  "smoothing_sd": config.prior_smoothing_sd, "pseudo_count": config.prior_pseudo_count}
    elif chosen in FITTED:
        notes |= {"map": f"{FITTED[chosen]} fit on the validation split (all of it)"}
    write_json(out / "correction.json", {**(fitted[chosen] or {"kind": None}), **notes, **source})
    parameters = {"label_prior": fitted["label_prior"]["tau"], "deshrink": fitted["deshrink"]["lambda"]}
    splits = ("val", "test")
    summary = {
        "method_chosen_on_validation": chosen, "criterion": criterion(config),
        "tau": parameters["label_prior"], "lambda": parameters["deshrink"],
        "max_mae_increase": config.max_mae_increase, "methods": {m: METHOD_STYLE[m][0] for m in METHODS},
        "bootstrap": {"resamples": config.resamples, "seed": config.seed, "level": config.level},
        "minors": band_label(MINORS), "challenge": config.challenge,
        "bands": {s: {m: {b: _at(made["bands"], m, s, b) for b in (*BANDS, "all")} for m in METHODS}
                  for s in splits},
        "challenge_rates": {s: {m: _rates_at(made["challenge"], m, s) for m in METHODS} for s in splits},
        **source}
    write_json(out / "summary.json", summary)
    save_figure(out / "by_age.png", plot_bias(made["by_age"], choice, parameters, config.max_mae_increase))
    return summary
