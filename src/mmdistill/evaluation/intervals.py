"""95% confidence intervals for benchmark scores: Wilson for accuracies, bootstrap for means."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion `successes / n`, as fractions."""
    if n <= 0:
        raise ValueError(f"a proportion needs n >= 1 trials, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, {n}], got {successes}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else centre - half_width
    high = 1.0 if successes == n else centre + half_width
    return low, high


def bootstrap_interval(values: Sequence[float], seed: int, resamples: int = 10_000,
                       confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values`, reproducible from `seed`."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("a bootstrap interval needs at least one value")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def hierarchical_bootstrap_interval(values: Sequence[Sequence[float]], seed: int,
                                    weights: Sequence[Sequence[float]] | None = None, resamples: int = 10_000,
                                    confidence: float = 0.95) -> tuple[float, float]:
    """Two-level percentile bootstrap interval of the mean over groups (training seeds) of each
    group's estimate, reproducible from `seed`.

    A group's estimate is `sum(values) / sum(weights)` over its items (weights default to 1:
    the mean). Each resample draws as many groups as there are, with replacement, and for
    every drawn group as many of its items, with replacement, so the interval covers both
    the spread between groups and the sampling of items within each. With one group it is
    exactly `bootstrap_interval` of its values (the same draws). A resample whose drawn items
    all have zero weight has no estimate and is left out.
    """
    groups = [np.asarray(group, dtype=float) for group in values]
    group_weights = [np.ones_like(group) for group in groups] if weights is None else \
        [np.asarray(group, dtype=float) for group in weights]
    if not groups or any(group.size == 0 for group in groups):
        raise ValueError("a hierarchical bootstrap interval needs at least one group, each with at least one value")
    if [group.shape for group in groups] != [group.shape for group in group_weights]:
        raise ValueError("values and weights must have the same shape, group by group")
    rng = np.random.default_rng(seed)
    # one group: no group draw, so the item draws are bootstrap_interval's
    picks = rng.integers(0, len(groups), size=(resamples, len(groups))) if len(groups) > 1 else \
        np.zeros((resamples, 1), dtype=int)
    estimates = np.empty(picks.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        for slot in range(picks.shape[1]):
            for index, (group, weight) in enumerate(zip(groups, group_weights)):
                rows = np.flatnonzero(picks[:, slot] == index)
                if rows.size:
                    draws = rng.integers(0, group.size, size=(rows.size, group.size))
                    estimates[rows, slot] = group[draws].sum(axis=1) / weight[draws].sum(axis=1)
    means = estimates.mean(axis=1)
    means = means[np.isfinite(means)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
