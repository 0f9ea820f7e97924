"""Per-layer allocation of a global compression target (pure numpy, no TensorFlow).

``allocate(rule, target, sizes, ...)`` turns one global fraction (sparsity, or a filter ratio)
into one fraction per layer whose size-weighted mean is ``target`` (within 1e-3), each in
``[0, max_value]``:

- ``uniform``: every layer the same fraction (the old behaviour of a single sparsity).
- ``erk``: Erdős–Rényi-Kernel (Evci et al. 2020, "Rigging the Lottery"): a layer's *density*
  (1 − sparsity) is proportional to (sum of its kernel's dimensions) / (product of them),
  scaled so the global density matches; small layers stay denser, big ones get sparser.
  Layers that would be denser than 1 or sparser than ``max_value`` are clipped and the rest
  rescaled (the scale is solved by bisection, so clipping redistributes exactly).
- ``sensitivity``: greedy on per-layer accuracy curves (``oneshot.prune_curves`` /
  ``sensitivity.json`` entries ``{key: fraction, "accuracy": a}``): repeatedly raise, by a
  small step, the fraction of the layer whose (linearly interpolated) accuracy loss per extra
  removed weight is smallest, until the size-weighted mean reaches the target. Each curve is
  completed with the point (0, baseline): its value at 0 when present, else its best accuracy;
  losses are made non-decreasing (noise never attracts sparsity); beyond the last grid point
  the last segment's slope continues.

``fixed`` layers keep their given fraction (a recipe's per-layer map); the others share the
rest of the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.core.errors import BadInputError

RULES = ("uniform", "sensitivity", "erk")
STEP = 0.005  # the greedy's increment of one layer's fraction
TOLERANCE = 1e-3


def allocate(
    rule: str,
    target: float,
    sizes: Mapping[str, int],
    *,
    curves: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    key: str = "sparsity",
    max_value: float = 0.95,
    fixed: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Per-layer fractions (same keys as ``sizes``, the number of weights of each layer) whose
    size-weighted mean is ``target``; ``fixed`` layers keep their value. Raises BadInputError
    for an unknown rule, missing curves/shapes or an impossible target."""
    if rule not in RULES:
        raise BadInputError(f"unknown allocation rule {rule!r} (one of {', '.join(RULES)})")
    if not sizes:
        raise BadInputError("no layer to allocate a target to")
    if not 0.0 <= target <= 1.0:
        raise BadInputError(f"target {target:g} must be between 0 and 1")
    fixed = dict(fixed or {})
    unknown = sorted(set(fixed) - set(sizes))
    if unknown:
        raise BadInputError(f"per-layer values for unknown layer(s): {', '.join(unknown)}")
    names = list(sizes)
    n = np.array([float(sizes[k]) for k in names])
    if np.any(n <= 0):
        raise BadInputError("every layer must have at least one weight")
    total = float(n.sum())
    free = [k for k in names if k not in fixed]
    fixed_sum = sum(float(fixed[k]) * float(sizes[k]) for k in fixed)
    free_n = float(sum(sizes[k] for k in free))
    wanted = target * total - fixed_sum  # weights the free layers must remove
    out = {k: float(fixed[k]) for k in fixed}
    if not free:
        return out
    high = max_value * free_n
    if wanted < -TOLERANCE * total or wanted > high + TOLERANCE * total:
        what = "the per-layer values" if fixed else "the layers"
        reach = (fixed_sum / total, (fixed_sum + high) / total)
        raise BadInputError(
            f"global target {target:.1%} cannot be reached with {what} "
            f"(possible: {reach[0]:.1%}-{reach[1]:.1%} with at most {max_value:.0%} per layer)"
        )
    wanted = min(max(wanted, 0.0), high)
    sub = {k: sizes[k] for k in free}
    goal = wanted / free_n  # the free layers' own mean
    if rule == "uniform":
        got = {k: goal for k in free}
    elif rule == "erk":
        got = _erk(goal, sub, _need(shapes, free, "shapes", rule), max_value)
    else:
        got = _sensitivity(goal, sub, _need(curves, free, "curves", rule), key, max_value)
    out.update(got)
    return {k: out[k] for k in names}


def _need(table: Mapping[str, Any] | None, names: list[str], what: str, rule: str) -> Any:
    missing = [k for k in names if not table or table.get(k) is None]
    if missing:
        raise BadInputError(f"allocation '{rule}' needs {what} for: {', '.join(missing)}")
    return table


def mean_of(values: Mapping[str, float], sizes: Mapping[str, int]) -> float:
    """The size-weighted mean of per-layer fractions."""
    total = sum(sizes[k] for k in values)
    return sum(values[k] * sizes[k] for k in values) / total if total else 0.0


def _erk(
    goal: float, sizes: Mapping[str, int], shapes: Mapping[str, Sequence[int]], max_value: float
) -> dict[str, float]:
    names = list(sizes)
    n = np.array([float(sizes[k]) for k in names])
    raw = np.array([_erk_score(shapes[k]) for k in names])
    want_density = (1.0 - goal) * n.sum()
    floor = 1.0 - max_value

    def density(eps: float) -> np.ndarray:
        return np.clip(eps * raw, floor, 1.0)

    lo, hi = 0.0, 1.0 / raw.min()  # at hi every layer is dense
    for _ in range(200):
        mid = (lo + hi) / 2
        if float((density(mid) * n).sum()) < want_density:
            lo = mid
        else:
            hi = mid
    d = density((lo + hi) / 2)
    return {k: float(1.0 - d[i]) for i, k in enumerate(names)}


def _erk_score(shape: Sequence[int]) -> float:
    dims = [int(d) for d in shape if d]
    if not dims:
        raise BadInputError("allocation 'erk' needs every layer's kernel shape")
    return float(sum(dims)) / float(np.prod(np.array(dims, dtype=np.float64)))


def _loss_curve(entries: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(fractions, accuracy loss) with (0, 0) first, the loss non-decreasing."""
    points: dict[float, float] = {}
    for e in entries:
        try:
            points[float(e[key])] = float(e["accuracy"])
        except (KeyError, TypeError, ValueError):
            raise BadInputError(
                f"a sensitivity curve entry needs '{key}' and 'accuracy', got {e!r}"
            ) from None
    if not points:
        raise BadInputError("an empty sensitivity curve")
    base = points.get(0.0, max(points.values()))
    points[0.0] = base
    xs = np.array(sorted(points))
    loss = np.maximum.accumulate(np.array([base - points[x] for x in xs]).clip(min=0.0))
    return xs, loss


def _interp(xs: np.ndarray, ys: np.ndarray, x: np.ndarray | float) -> np.ndarray:
    """Linear interpolation, extended past the last point with the last segment's slope."""
    x = np.asarray(x, dtype=np.float64)
    y = np.interp(x, xs, ys)
    if len(xs) > 1:
        slope = max(0.0, (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]))
        y = np.where(x > xs[-1], ys[-1] + slope * (x - xs[-1]), y)
    return y


def _sensitivity(
    goal: float,
    sizes: Mapping[str, int],
    curves: Mapping[str, Sequence[Mapping[str, Any]]],
    key: str,
    max_value: float,
) -> dict[str, float]:
    names = list(sizes)
    n = np.array([float(sizes[k]) for k in names])
    table = [_loss_curve(curves[k], key) for k in names]
    s = np.zeros(len(names))
    need = goal * n.sum()  # weights to remove

    # Ties (flat curves) go to the biggest layer: the same cost removes the most weights.
    bonus = -n / n.max() * 1e-12

    def cost_of(i: int) -> float:
        step = min(STEP, max_value - s[i])
        if step <= 1e-12:
            return np.inf
        xs, ys = table[i]
        extra = float(_interp(xs, ys, s[i] + step) - _interp(xs, ys, s[i]))
        return extra / (step * n[i]) + bonus[i]

    cost = np.array([cost_of(i) for i in range(len(names))])
    while (removed := float((s * n).sum())) < need - 1e-9:
        i = int(np.argmin(cost))
        if not np.isfinite(cost[i]):
            break
        step = min(STEP, max_value - s[i])
        s[i] += min(step, (need - removed) / n[i])
        cost[i] = cost_of(i)
    return {k: float(s[i]) for i, k in enumerate(names)}
