"""How the prediction command decides Challenge N, from the rules the release carries (rules.json,
written by research.evaluation.rules and copied into the release by research.release.rules).

For each face the command takes the release's age distribution, applies the release's age
correction (if it carries one), and reports the estimate (the distribution's mean), the calibrated
age interval at the stated level and P(age < N) (the distribution's mass below N). It asks for ID
under one rule:

  threshold    the estimate is below N
  interval     the lower end of the calibrated ``level`` interval is below N
  probability  P(age < N) is above p

By default the rule and its parameter are the operating point chosen on validation for N (the rule
that asks the fewest adults 25+ while letting at most 2% of 13-17 year-olds through there).

A release without rules.json (an older export, a test release) falls back to the uncalibrated
interval: estimate +- z sd of the model's own distribution (``interval_z`` of the predict config),
the interval rule at that z, no age correction; the command says so in its output.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from research.models.age_distribution import apply_correction, mass_below, moments
from research.models.age_interval import calibrated_interval, interval_lower_end, level_key
from research.models.heads import NUM_AGE_BINS

RULES = ("threshold", "interval", "probability")
MAX_AGE = NUM_AGE_BINS - 1
ID_CHECK, NO_CHECK = "ID check", "no ID check"


class RuleError(ValueError):
    """A rule the release cannot apply (no operating point for N, a level it was not calibrated at)."""


@dataclasses.dataclass(frozen=True)
class Decision:
    """The command's Challenge-N rule and the release's interval and age correction."""

    rule: str
    challenge: float
    parameter: float | None  # interval: its level (fallback: z); probability: p; threshold: None
    source: str  # where the rule and parameter come from, in words
    interval: dict | None = None  # the release's calibration; None: the uncalibrated fallback
    stated_level: float | None = None
    z: float = 0.0  # the fallback interval's width in sd
    correction: dict | None = None
    test_rates: dict | None = None  # the operating point's rates on test (rules.json)

    def estimates(self, age_probs) -> dict[str, np.ndarray]:
        """Per face: the corrected distribution's mean and sd, the stated interval and P(age < N)."""
        probs = apply_correction(age_probs, self.correction)
        age, std = moments(probs)
        low, high = self.stated_interval(age, std)
        return {"age": age, "age_std": std, "age_low": low, "age_high": high,
                "p_under": mass_below(probs, self.challenge)}

    def stated_interval(self, age, std) -> tuple[np.ndarray, np.ndarray]:
        """The interval reported with each estimate, clipped to [0, 116]."""
        age = np.asarray(age, float)
        if self.interval is None:
            low, high = interval_lower_end(age, std, self.z), age + self.z * np.asarray(std, float)
        else:
            low, high = calibrated_interval(age, std, self.stated_level, self.interval)
        return low, np.minimum(high, MAX_AGE)

    def asks(self, age, std, p_under) -> np.ndarray:
        """Is ID asked of each face (arrays of estimates, sds and P(age < N))."""
        age = np.asarray(age, float)
        if self.rule == "threshold":
            return age < self.challenge
        if self.rule == "probability":
            return np.asarray(p_under, float) > self.parameter
        if self.interval is None:
            return (age < self.challenge) | (interval_lower_end(age, std, self.parameter) < self.challenge)
        return calibrated_interval(age, std, self.parameter, self.interval)[0] < self.challenge

    def reason(self, age: float, std: float, p_under: float, asked: bool) -> str:
        n = f"{self.challenge:g}"
        if self.rule == "probability":
            return f"P(age < {n}) = {p_under:.3f} is {'above' if asked else 'at most'} {self.parameter:g}"
        if age < self.challenge:
            return f"estimate {age:.1f} is below {n}"
        if self.rule == "threshold":
            return f"estimate {age:.1f} is at or above {n}"
        what = (f"estimate - {self.parameter:g} sd" if self.interval is None else
                f"the {100 * self.parameter:g}% calibrated interval")
        if asked:
            low = self.lower_end(age, std)
            return f"{what} starts at {low:.1f}, below {n}"
        return f"the estimate and {what} are at or above {n}"

    def lower_end(self, age: float, std: float) -> float:
        if self.interval is None:
            return float(interval_lower_end(age, std, self.parameter))
        return float(calibrated_interval([age], [std], self.parameter, self.interval)[0][0])

    def describe(self) -> dict:
        """The rule as the command's output states it."""
        return {"rule": self.rule, "parameter": self.parameter, "source": self.source,
                "test_rates": self.test_rates}


def _levels(interval: dict) -> list[float]:
    return sorted(float(k) for k in interval["quantiles"])


def decision_for(rules: dict | None, challenge: float, rule: str = "", parameter: float | None = None,
                 z: float = 0.0, stated_level: float | None = None) -> Decision:
    """The Decision for Challenge ``challenge``: ``rule`` and ``parameter`` as given, else the
    release's operating point chosen on validation for that N; ``rules`` None: the fallback."""
    if rule and rule not in RULES:
        raise RuleError(f"the rule must be one of {', '.join(RULES)}, not {rule!r}")
    if rules is None:
        return _fallback(challenge, rule or "interval", parameter, z)
    interval = rules["interval"]
    stated = interval["stated_level"] if stated_level is None else stated_level
    if level_key(stated) not in interval["quantiles"]:
        raise RuleError(f"the release's interval is calibrated at levels {_levels(interval)}, not {stated:g}")
    point = rules["challenges"].get(f"{challenge:g}")
    chosen = rule or (point["default_rule"] if point else "interval")
    common = {"interval": interval, "stated_level": stated, "correction": rules.get("age_correction")}
    if chosen == "threshold":
        source = "the estimate alone"
        return Decision("threshold", challenge, None, source, test_rates=_rates(point, chosen), **common)
    if parameter is None:
        if point is None and chosen == "probability":
            raise RuleError(f"the release has no operating point for Challenge {challenge:g} "
                            f"(it has {', '.join(rules['challenges'])}): give the probability rule's p")
        parameter = point["rules"][chosen]["parameter"] if point else stated
        source = (f"the operating point chosen on validation for Challenge {challenge:g}" if point else
                  f"no operating point for Challenge {challenge:g}: the stated {100 * stated:g}% interval")
        rates = _rates(point, chosen)
    else:
        source, rates = "given on the command line", None
    if chosen == "interval" and level_key(parameter) not in interval["quantiles"]:
        raise RuleError(f"the release's interval is calibrated at levels {_levels(interval)}, "
                        f"not {parameter:g}")
    if chosen == "probability" and not 0 <= parameter < 1:
        raise RuleError(f"the probability rule's p must be in [0, 1), not {parameter:g}")
    return Decision(chosen, challenge, float(parameter), source, test_rates=rates, **common)


def _rates(point: dict | None, rule: str) -> dict | None:
    return point["rules"][rule]["test"] if point else None


def _fallback(challenge: float, rule: str, parameter: float | None, z: float) -> Decision:
    if rule == "probability" and parameter is None:
        raise RuleError("this release carries no rules.json (no operating point): give the probability "
                        "rule's p, or attach the rules (scripts/export_model.py --rules-only)")
    if rule == "interval":
        parameter = z if parameter is None else parameter
    source = "fallback: the release carries no rules.json (uncalibrated interval, no age correction)"
    return Decision(rule, challenge, None if rule == "threshold" else float(parameter), source, z=z)
