"""The accuracy budget: is a compressed model within it, over it, or collapsed?

One source for every place that judges a run (the Results table, the Compress tab's
finish line and live warning, the deploy badge, the CLI and later the report), so they
never disagree. Pure Python; imports nothing heavy.

Accuracies are fractions (0.87); drops and budgets are percentage points (1.0 = one
point). ``drop = (baseline - compressed) * 100``; a negative drop is a gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from engine.core.fmt import fmt_drop_points

DEFAULT_BUDGET_PTS = 1.0
COLLAPSE_MIN_PTS = 10.0  # a drop this large is a collapse whatever the budget
COLLAPSE_BUDGET_FACTOR = 5.0  # ... or five budgets, when that is larger

Verdict = Literal["within", "over", "collapsed"]


def check_budget(value: Any) -> float:
    """A valid budget in points (0 ≤ budget ≤ 100) or ValueError with a one-line message."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"accuracy budget must be a number of points, got {value!r}")
    if not 0 <= float(value) <= 100:
        raise ValueError(f"accuracy budget must be between 0 and 100 points, got {value}")
    return float(value)


def drop_pts(baseline: float, compressed: float) -> float:
    """Accuracy drop in points (negative when the compressed model is better)."""
    return (float(baseline) - float(compressed)) * 100.0


def collapse_pts(budget_pts: float) -> float:
    """The drop (points) from which a run counts as collapsed under ``budget_pts``."""
    return max(COLLAPSE_MIN_PTS, COLLAPSE_BUDGET_FACTOR * budget_pts)


def verdict(baseline: float, compressed: float, budget_pts: float) -> Verdict:
    """``within`` (drop ≤ budget), ``over`` or ``collapsed`` (drop ≥ ``collapse_pts``)."""
    drop = drop_pts(baseline, compressed)
    if drop <= budget_pts + 1e-9:
        return "within"
    return "collapsed" if drop >= collapse_pts(budget_pts) else "over"


def change_text(baseline: float, compressed: float) -> str:
    """ "drop 1.20 pts", "gain 0.83 pts" or "no change" (never "drop: 0.83 pts better")."""
    return fmt_drop_points(drop_pts(baseline, compressed))


VERDICT_TEXT: dict[str, str] = {
    "within": "within the {budget:g}-point budget",
    "over": "over the {budget:g}-point budget",
    "collapsed": "accuracy collapsed",
}


def verdict_text(v: Verdict, budget_pts: float) -> str:
    return VERDICT_TEXT[v].format(budget=budget_pts)


def training_alarm(baseline: float, val_accuracy: float, budget_pts: float) -> bool:
    """True when a validation accuracy during training is already at collapse level."""
    return drop_pts(baseline, val_accuracy) >= collapse_pts(budget_pts)


@dataclass(frozen=True)
class Suggestion:
    """One thing to try next: ``text`` for people, ``action`` a stable key for buttons."""

    action: str
    text: str


def suggestions(recipe: dict[str, Any], v: Verdict) -> list[Suggestion]:
    """What to try when a run of ``recipe`` (a recipe dict, schema 2) is over budget.

    Empty when ``v`` is ``within``. Suggestions follow from the recipe's own steps, most
    likely remedy first; the last ones point at the analysis tools.
    """
    if v == "within":
        return []
    steps = {s.get("type"): s for s in recipe.get("steps", []) if isinstance(s, dict)}
    out: list[Suggestion] = []
    prune = steps.get("prune")
    if prune is not None:
        sparsity = float(prune.get("target_sparsity", 0.0) or 0.0)
        lower = max(0.0, round(sparsity - 0.2, 2))
        out.append(
            Suggestion(
                "lower_sparsity", f"Lower the target sparsity ({sparsity:.0%} → {lower:.0%})."
            )
        )
        out.append(
            Suggestion(
                "skip_edges",
                "Leave the first and last layers dense (they hold few weights and much "
                "of the accuracy).",
            )
        )
    cluster = steps.get("cluster")
    if cluster is not None:
        n = int(cluster.get("clusters", 16) or 16)
        out.append(Suggestion("more_clusters", f"Use more clusters ({n} → {n * 2})."))
    trained = [s for s in steps.values() if "epochs" in s]
    if trained:
        out.append(Suggestion("more_epochs", "Fine-tune for more epochs."))
    if prune is not None or cluster is not None or "distill" in steps:
        out.append(Suggestion("int8_only", "Try int8 quantization alone: it rarely costs a point."))
    elif "qat" not in steps and steps.get("quantize", {}).get("mode") == "int8":
        out.append(Suggestion("qat", "Add quantization-aware training before the int8 conversion."))
    return out
