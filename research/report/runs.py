"""The models the report shows: the runs and ensembles of ``experiments.HEADLINE`` with test metrics.

A trained run has a training summary (profile, epochs, device); an ensemble trains nothing of its
own and records its members instead (``kind: ensemble`` in its summary.json).
"""

from __future__ import annotations

from dataclasses import dataclass

from research.configs import experiments
from research.report.results import Results
from research.report.wording import join_names
from research.runs.folder import run_seconds


@dataclass(frozen=True)
class TestedModels:
    """Summaries and test metrics of every model in headline order that has metrics_test.json."""

    summaries: dict[str, dict]
    metrics: dict[str, dict]

    @classmethod
    def read(cls, results: Results, names: tuple[str, ...] = experiments.HEADLINE) -> TestedModels:
        """The models of ``names`` (headline order) whose metrics_test.json exists."""
        found = [n for n in names if results.exists(f"runs/{n}/metrics_test.json")]
        return cls(
            {n: results.json(f"runs/{n}/summary.json") for n in found},
            {n: results.json(f"runs/{n}/metrics_test.json") for n in found},
        )

    @property
    def names(self) -> list[str]:
        return list(self.metrics)

    def protocol(self, name: str) -> str:
        return self.summaries[name]["protocol"]

    def is_ensemble(self, name: str) -> bool:
        return self.summaries[name].get("kind") == "ensemble"

    def trained(self) -> list[str]:
        """The models that were trained (not mixtures of other runs)."""
        return [n for n in self.names if not self.is_ensemble(n)]

    def ensembles(self) -> list[str]:
        return [n for n in self.names if self.is_ensemble(n)]

    def on(self, protocol: str, single: bool = False) -> list[str]:
        """The models evaluated under ``protocol``; ``single``: trained runs only."""
        return [n for n in (self.trained() if single else self.names) if self.protocol(n) == protocol]

    def best(self, names: list[str], metric: str = "age_mae") -> str:
        """The model of ``names`` with the lowest ``metric``."""
        return min(names, key=lambda n: self.metrics[n][metric])


def run_minutes(summary: dict) -> float:
    """Training time in minutes (a resumed run counts every epoch)."""
    return run_seconds(summary) / 60


def training_description(summary: dict) -> str:
    """'gpu profile: 200 px, 30 epochs, NVIDIA H100 x1' (the reduced CPU profile named as such)."""
    kind = "reduced CPU profile" if summary.get("reduced_run") else f"{summary['profile']} profile"
    return (
        f"{kind}: {summary['image_size']} px, {summary['epochs']} epochs, "
        f"{summary['device_kind']} x{summary['num_devices']}"
    )


def setup_description(summary: dict) -> str:
    """How a model was made: its training, or for an ensemble the runs it mixes."""
    if summary.get("kind") == "ensemble":
        return f"mixture of {' + '.join(summary['members'])}"
    return training_description(summary)


def ensemble_members(summary: dict) -> str:
    """'a (65 %), b (10 %) and c (25 %)' with weights, or the bare names
    when the members are mixed equally."""
    weights = summary.get("weights") or {}
    if summary.get("weighting", "equal") == "equal" or not weights:
        return join_names(summary["members"])
    return join_names(f"{m} ({100 * weights[m]:.0f} %)" for m in summary["members"])


def intervals_overlap(a: dict, b: dict, name: str = "age_mae") -> bool:
    """Whether two metrics files' bootstrap intervals of ``name`` overlap."""
    (lo_a, hi_a), (lo_b, hi_b) = (m["bootstrap"]["intervals"][name] for m in (a, b))
    return lo_a <= hi_b and lo_b <= hi_a
