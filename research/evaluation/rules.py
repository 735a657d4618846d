"""The prediction command's Challenge-N rules for the release as it ships: its age distribution after
the age correction it carries (if any), the age interval calibrated on those estimates
(research.evaluation.calibration), and each rule's operating point, all chosen on validation and
scored once on test.

The command's rules (research.predict.rules applies them): ask for ID when

  threshold    the estimate is below N                                 (no parameter)
  interval     the lower end of the calibrated ``level`` interval is below N   (parameter: level)
  probability  P(age < N), the distribution's mass below N, is above p      (parameter: p)

The operating point of the interval and probability rules at each N is the parameter that asks the
fewest adults 25+ while letting at most ``max_minor_pass_rate`` of 13-17 year-olds through on
validation (``decision.choose_parameter``); the default rule at N is the rule whose operating point
asks the fewest adults 25+ on validation among those that reach that cap there.

rules.json is what the release carries (research/release/rules.py copies it): release (the params
it is made for), age_correction, interval (the calibration in research.evaluation.calibration's
format for its method; stated_level), coverage (the stated interval on test, overall and per age
group), challenges: {N: {default_rule, rules: {rule:
{parameter, target_reached_on_validation, validation, test}}}}, and where it came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from research.data.archive import sha256_file
from research.evaluation import calibration, decision
from research.evaluation.bootstrap import percentile_interval
from research.models.age_interval import calibrated_interval
from research.outputs import write_csv, write_json
from research.provenance import provenance
from research.vocabulary import MINORS, band_label

RULES = ("threshold", "interval", "probability")
RULE_NAMES = {"threshold": "estimate < N", "interval": "lower end of the calibrated level interval < N",
              "probability": "P(age < N) > p"}
RULE_LEVELS = tuple(round(0.5 + 0.01 * k, 2) for k in range(50))  # 0.50 .. 0.99, the interval rule's grid
STATED_LEVEL = calibration.CHOICE_LEVEL  # the interval the command states


def rule_parameters(rule: str) -> np.ndarray:
    return {"threshold": np.array([np.nan]), "interval": np.asarray(RULE_LEVELS, float),
            "probability": np.asarray(decision.GRIDS["probability"], float)}[rule]


def rule_asks(frame: pd.DataFrame, rule: str, challenge: int, params: np.ndarray,
              interval: dict) -> np.ndarray:
    """(parameters x faces) booleans: is ID asked of each face under each parameter of the rule."""
    est, std = frame["pred_age"].to_numpy(float), frame["age_std"].to_numpy(float)
    if rule == "threshold":
        return np.repeat((est < challenge)[None, :], len(params), axis=0)
    if rule == "interval":
        return np.stack([calibrated_interval(est, std, level, interval)[0] < challenge for level in params])
    if rule == "probability":
        p_under = frame[decision.p_under_column(challenge)].to_numpy(float)
        return p_under[None, :] > np.asarray(params)[:, None]
    raise ValueError(f"rule must be one of {RULES}, not {rule!r}")


def val_curve(frame: pd.DataFrame, rule: str, challenge: int, interval: dict) -> pd.DataFrame:
    params = rule_parameters(rule)
    ask = rule_asks(frame, rule, challenge, params, interval)
    rates = decision.point_rates(ask, frame["age"].to_numpy(float))
    return pd.DataFrame({"parameter": params, **rates})


def rates_with_bands(frame: pd.DataFrame, ask: np.ndarray, resamples: int, seed: int, level: float) -> dict:
    """[value, low, high] of each decision.CURVE_RATES share under one rule (``ask``: one boolean
    per face), and the band sizes."""
    age = frame["age"].to_numpy(float)
    point = decision.point_rates(ask[None, :], age)
    rng = np.random.default_rng(seed)
    draws = decision.band_draws(ask[None, :], age, resamples, rng) if resamples else None
    out = {}
    for rate in decision.CURVE_RATES:
        value = float(point[rate][0])
        band = (percentile_interval(draws[rate][:, 0], level) if draws is not None and np.isfinite(value)
                else [None, None])
        out[rate] = [None if np.isnan(value) else value, *band]
    return out | {decision.count_name(r): int(decision.in_band(age, band).sum())
                  for r, (band, _) in decision.CURVE_RATES.items()}


def operating_point(val: pd.DataFrame, test: pd.DataFrame, rule: str, challenge: int, interval: dict,
                    max_minor_pass_rate: float, resamples: int, seed: int, level: float) -> dict:
    """The rule's parameter chosen on validation, and its validation and test rates there."""
    curve = val_curve(val, rule, challenge, interval)
    if rule == "threshold":
        parameter, reached = None, bool(curve[decision.FPR].iloc[0] <= max_minor_pass_rate)
    else:
        parameter, reached = decision.choose_parameter(curve, max_minor_pass_rate)
    params = np.array([np.nan if parameter is None else parameter])
    rates = {split: rates_with_bands(frame, rule_asks(frame, rule, challenge, params, interval)[0],
                                     resamples if split == "test" else 0, seed, level)
             for split, frame in (("validation", val), ("test", test))}
    return {"parameter": parameter, "target_reached_on_validation": reached, **rates}


def default_rule(points: dict[str, dict]) -> str:
    """The rule whose validation operating point asks the fewest adults 25+ among those reaching
    the cap there (ties: probability, interval, threshold); if none reaches it, the fewest minors through."""
    order = ("probability", "interval", "threshold")
    reached = [r for r in order if points[r]["target_reached_on_validation"]]
    if reached:
        return min(reached, key=lambda r: (points[r]["validation"][decision.FRICTION][0], order.index(r)))
    return min(order, key=lambda r: (points[r]["validation"][decision.FPR][0], order.index(r)))


def coverage_summary(table: pd.DataFrame, method: str, level: float) -> dict:
    part = table[(table["method"] == method) & (np.isclose(table["level"], level))]
    row = {f"{r.group_type}:{r.group}": [float(r.coverage), float(r.coverage_low), float(r.coverage_high)]
           for r in part.itertuples()}
    ages = part[part["group_type"] == "age_group"]
    worst = ages.iloc[ages["coverage"].argmin()]
    return {"level": level, "overall": row["overall:all"], "by_group": row,
            "lowest_age_group": {"group": worst["group"], "coverage": float(worst["coverage"])}}


def write_rules(val: pd.DataFrame, test: pd.DataFrame, correction: dict | None, release: dict,
                inputs: list[Path], out: Path, resamples: int, seed: int, level: float,
                max_minor_pass_rate: float = decision.MAX_MINOR_PASS_RATE,
                challenges: tuple[int, ...] = decision.DECISION_CHALLENGES) -> dict:
    """rules.json and coverage.csv (test) for the release tables ``val`` and ``test`` (release_<split>.csv's
    columns, after ``correction``) of the release ``release`` ({"name", "params_sha256"}: the params
    the rules are made for)."""
    levels = tuple(sorted({*RULE_LEVELS, *calibration.LEVELS}))
    calibrations = {m: calibration.calibrate(val, m, levels) for m in calibration.METHODS}
    method = calibration.choose_method(calibration.out_of_fold_coverage(val, levels=(STATED_LEVEL,)))
    interval = calibrations[method]
    coverage = calibration.coverage_table(test, {method: interval}, calibration.LEVELS, resamples, seed,
                                          level)
    write_csv(out / "coverage.csv", coverage, float_format="%.4f")
    by_n = {}
    for n in challenges:
        points = {r: operating_point(val, test, r, n, interval, max_minor_pass_rate, resamples, seed, level)
                  for r in RULES}
        by_n[str(n)] = {"default_rule": default_rule(points), "rules": points}
    record = {
        "release": release,
        "age_correction": correction,
        "interval": {**interval, "stated_level": STATED_LEVEL, "chosen_on": calibration.CHOSEN_ON},
        "coverage": coverage_summary(coverage, method, STATED_LEVEL),
        "rules": RULE_NAMES, "max_minor_pass_rate": max_minor_pass_rate,
        "criterion": f"fewest {decision.FRICTION} with {decision.FPR} <= max_minor_pass_rate on validation "
                     f"({band_label(MINORS)} let through)",
        "challenges": by_n, "bootstrap": {"resamples": resamples, "seed": seed, "level": level},
        "inputs": {str(p): sha256_file(p) for p in inputs}, "provenance": provenance()}
    write_json(out / "rules.json", record)
    return record
