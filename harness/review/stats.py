"""Statistics of human grades: agreement, Bradley-Terry strengths, bootstrap intervals, correlations.

Pure numpy on plain arrays; `harness.review.analysis` shapes the store's grades into these inputs.
Each agreement statistic follows the textbook definition and is checked against the reference
implementations (scikit-learn `cohen_kappa_score`, statsmodels `fleiss_kappa`, the `krippendorff`
package) to 1e-9 in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from harness.metrics.stats import bootstrap_statistic


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int


# agreement -------------------------------------------------------------------------------------------------
def cohen_kappa(a: Sequence, b: Sequence, weights: str | None = None) -> float:
    """Cohen's kappa of two raters on the same items; weights None, 'linear' or 'quadratic'."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError("two equally long, non-empty rating lists are needed")
    labels = np.unique(np.concatenate([a, b]))
    ia, ib = np.searchsorted(labels, a), np.searchsorted(labels, b)
    k = len(labels)
    observed = np.zeros((k, k))
    np.add.at(observed, (ia, ib), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    grid = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
    if weights is None:
        disagreement = (grid > 0).astype(float)
    elif weights in ("linear", "quadratic"):
        disagreement = grid if weights == "linear" else grid**2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    return float(1.0 - (disagreement * observed).sum() / (disagreement * expected).sum())


def category_counts(ratings: np.ndarray, categories: Sequence | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An items x categories table of how many raters chose each category; ratings is raters x items (NaN: none)."""
    ratings = np.asarray(ratings, dtype=float)
    present = ratings[~np.isnan(ratings)]
    cats = np.unique(present) if categories is None else np.asarray(categories, dtype=float)
    table = (ratings.T[..., None] == cats[None, None, :]).sum(axis=1)
    return table.astype(float), cats


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' kappa from an items x categories count table with the same number of ratings per item."""
    table = np.asarray(table, dtype=float)
    per_item = table.sum(axis=1)
    m = per_item[0]
    if m < 2 or not np.all(per_item == m):
        raise ValueError("Fleiss' kappa needs the same number (at least two) of ratings for every item")
    p_cat = table.sum(axis=0) / table.sum()
    p_item = ((table * table).sum(axis=1) - m) / (m * (m - 1.0))
    p_exp = float((p_cat * p_cat).sum())
    return float((p_item.mean() - p_exp) / (1.0 - p_exp))


def krippendorff_alpha(ratings: np.ndarray, level: str = "nominal") -> float:
    """Krippendorff's alpha of a raters x units matrix (NaN: no rating); level nominal, ordinal or interval."""
    counts, values = category_counts(ratings)  # units x values
    pairable = counts.sum(axis=1)
    counts = counts[pairable >= 2]
    m_u = counts.sum(axis=1)
    # coincidences: o_ck = sum_u n_uc * (n_uk - [c == k]) / (m_u - 1)
    outer = counts[:, :, None] * counts[:, None, :] - counts[:, :, None] * np.eye(len(values))[None]
    observed = (outer / (m_u - 1.0)[:, None, None]).sum(axis=0)
    n_v = observed.sum(axis=0)
    n = n_v.sum()
    expected = (np.outer(n_v, n_v) - np.diag(n_v)) / (n - 1.0)
    delta = _distance(values, n_v, level)
    return float(1.0 - (observed * delta).sum() / (expected * delta).sum())


def _distance(values: np.ndarray, n_v: np.ndarray, level: str) -> np.ndarray:
    if level == "nominal":
        return (values[:, None] != values[None, :]).astype(float)
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_v)])
        i = np.arange(len(values))
        lo, hi = np.minimum.outer(i, i), np.maximum.outer(i, i)
        between = cum[hi + 1] - cum[lo]  # sum of n_g for g from lo to hi, both included
        return (between - (n_v[lo] + n_v[hi]) / 2.0) ** 2
    raise ValueError(f"level must be nominal, ordinal or interval, got {level!r}")


# Bradley-Terry -----------------------------------------------------------------------------------------------
def bradley_terry(wins: np.ndarray, prior: float = 0.0, tol: float = 1e-12, max_iter: int = 100_000) -> np.ndarray:
    """Log-strengths (mean 0) from a k x k matrix, wins[i, j] = times i beat j (a tie counts 0.5 to each).

    Hunter's (2004) MM iteration. `prior` adds that many tied pseudo-games to every pair that met, so a
    candidate that never won keeps a finite strength.
    """
    wins = np.asarray(wins, dtype=float)
    games = wins + wins.T
    if prior:
        met = games > 0
        wins = wins + met * prior / 2.0
        games = wins + wins.T
    total = wins.sum(axis=1)
    p = np.ones(len(wins))
    with np.errstate(all="ignore"):  # a winless candidate's strength runs to 0 without a prior
        p = _mm(games, total, p, tol, max_iter)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.log(p)
    finite = np.isfinite(log_p)
    return log_p - np.mean(log_p[finite]) if finite.any() else log_p


def _mm(games: np.ndarray, total: np.ndarray, p: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    for _ in range(max_iter):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = np.where(denom > 0, total / np.where(denom > 0, denom, 1.0), p)
        new = new / np.exp(np.mean(np.log(np.maximum(new, 1e-300))))
        if not np.max(np.abs(new - p)) >= tol:  # converged (or NaN from a strength at 0)
            return new
        p = new
    return p


# bootstrap and correlation --------------------------------------------------------------------------------------
def bootstrap(n_units: int, statistic: Callable[[np.ndarray], np.ndarray], n_resamples: int = 1000,
              seed: int = 0, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile intervals of a vector statistic of resampled units: `harness.metrics.stats.bootstrap_statistic`.

    statistic(indices) -> vector, for indices into the units (the identity gives the point estimate).
    Returns (value, low, high), each a vector; NaN resamples (a candidate absent from one) are ignored.
    """
    return bootstrap_statistic(n_units, statistic, n_resamples, seed, confidence)


def correlations(human: Sequence[float], machine: Sequence[float]) -> dict[str, float]:
    """Kendall's tau-b and Spearman's rho (with p-values) between human and machine per-item values."""
    h, m = np.asarray(human, dtype=float), np.asarray(machine, dtype=float)
    keep = ~(np.isnan(h) | np.isnan(m))
    h, m = h[keep], m[keep]
    out = {"n": int(len(h)), "kendall_tau": np.nan, "kendall_p": np.nan, "spearman_rho": np.nan, "spearman_p": np.nan}
    if len(h) >= 3 and np.ptp(h) > 0 and np.ptp(m) > 0:
        tau = scipy_stats.kendalltau(h, m)
        rho = scipy_stats.spearmanr(h, m)
        out.update(kendall_tau=float(tau.statistic), kendall_p=float(tau.pvalue),
                   spearman_rho=float(rho.statistic), spearman_p=float(rho.pvalue))
    return out
