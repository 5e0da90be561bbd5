"""The one home of resampling and paired tests: bootstrap intervals, paired bootstrap, randomisation,
McNemar (two- and one-sided), Holm's correction and a generic bootstrap of a statistic over units.

The gate (`harness.gate.stats`), the report (`reports.paired`) and review analysis
(`harness.review.stats`) call these; none of them draws resamples of its own.

A resample is a (B, n) matrix of indices drawn with `np.random.default_rng(seed).choice(n,
(B, n))` (the same draw as sacrebleu's `--paired-bs`). Its row counts times the stats matrix give
the summed statistics of every resample at once, and `metric.scores_from_sums` scores them all:
each resampled score is exactly the corpus score of the resampled corpus. Work is done in blocks
of rows so memory stays near `_BLOCK` numbers whatever B and n are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from harness.errors import HarnessError
from harness.metrics.base import Metric, as_stats

_BLOCK = 4_000_000
METHODS = ("percentile", "bca")
TESTS = ("bootstrap", "mcnemar", "randomization")


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    n: int
    method: str
    confidence: float


@dataclass(frozen=True)
class PairedResult:
    """System b against baseline a on the same examples; `difference` is b - a."""

    score: str
    value_a: float
    value_b: float
    difference: float
    low: float
    high: float
    p_value: float
    test: str
    n: int


def _check(n: int, n_resamples: int, confidence: float) -> None:
    if n < 1:
        raise HarnessError("no examples to resample; score at least one example")
    if n_resamples < 1:
        raise HarnessError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise HarnessError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")


def _blocks(n: int, n_resamples: int) -> Iterator[int]:
    """Row counts of successive blocks, at most `_BLOCK` cells each."""
    rows = max(1, _BLOCK // max(n, 1))
    done = 0
    while done < n_resamples:
        size = min(rows, n_resamples - done)
        yield size
        done += size


def index_blocks(n: int, n_resamples: int, seed: int | None) -> Iterator[np.ndarray]:
    """The bootstrap indices for `seed`, block by block: every routine here resamples with these rows.

    Successive blocks are the rows of one `np.random.default_rng(seed).choice(n, (B, n))` draw (numpy
    draws the same stream whatever the block sizes), so results do not depend on `_BLOCK`.
    """
    rng = np.random.default_rng(seed)
    for rows in _blocks(n, n_resamples):
        yield rng.choice(n, size=(rows, n), replace=True)


def resample_indices(n: int, n_resamples: int, seed: int | None) -> np.ndarray:
    """The (B, n) bootstrap indices that `bootstrap_intervals` and `paired_test` use for `seed`."""
    return np.concatenate(list(index_blocks(n, n_resamples, seed)))


def _counts(indices: np.ndarray, n: int) -> np.ndarray:
    rows = indices.shape[0]
    flat = (indices + n * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)


def resample_counts(n: int, n_resamples: int, seed: int | None) -> np.ndarray:
    """The (B, n) matrix of how often each example is drawn in each resample (rows of `resample_indices`)."""
    return _counts(resample_indices(n, n_resamples, seed), n)


def _resampled_sums(stats_list: list[np.ndarray], n_resamples: int, seed: int | None) -> list[np.ndarray]:
    """Summed stats of every bootstrap resample, for each stats matrix on the same indices."""
    n = stats_list[0].shape[0]
    out: list[list[np.ndarray]] = [[] for _ in stats_list]
    for indices in index_blocks(n, n_resamples, seed):
        counts = _counts(indices, n)
        for acc, stats in zip(out, stats_list, strict=True):
            acc.append(counts @ stats)
    return [np.concatenate(acc) for acc in out]


def resampled_scores(
    metric: Metric, stats: np.ndarray, n_resamples: int = 1000, seed: int | None = 0
) -> dict[str, np.ndarray]:
    """The score of every bootstrap resample (rows of `resample_indices(n, n_resamples, seed)`)."""
    stats = as_stats(stats)
    _check(stats.shape[0], n_resamples, 0.5)
    (sums,) = _resampled_sums([stats], n_resamples, seed)
    return metric.scores_from_sums(sums)


def _bca_bounds(boot: np.ndarray, value: float, jack: np.ndarray, alpha: float) -> tuple[float, float] | None:
    """Bias-corrected and accelerated bounds (Efron 1987); None where BCa is undefined."""
    share = (np.sum(boot < value) + 0.5 * np.sum(boot == value)) / boot.size
    z0 = special.ndtri(share)
    if not np.isfinite(z0):
        return None
    d = jack.mean() - jack
    denom = 6.0 * np.sum(d**2) ** 1.5
    accel = np.sum(d**3) / denom if denom > 0 else 0.0
    z = special.ndtri(np.array([alpha / 2, 1 - alpha / 2]))
    levels = special.ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))
    if not np.all(np.isfinite(levels)):
        return None
    low, high = np.quantile(boot, levels)
    return float(low), float(high)


def bootstrap_intervals(
    metric: Metric,
    stats: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    method: str = "percentile",
) -> dict[str, Interval]:
    """A bootstrap confidence interval for every score of `metric`.

    percentile: the alpha/2 and 1 - alpha/2 quantiles of the resampled scores.
    bca: quantiles moved by the bias correction z0 = Phi^-1(share of resamples below the
    estimate, ties counted half) and the acceleration from the jackknife, whose leave-one-out
    sums are simply `total - row`. Where BCa is undefined (every resample on one side of the
    estimate) the interval falls back to percentile and says so in `method`.
    """
    if method not in METHODS:
        raise HarnessError(f"unknown interval method {method!r}; use one of {', '.join(METHODS)}")
    stats = as_stats(stats)
    n = stats.shape[0]
    _check(n, n_resamples, confidence)
    alpha = 1.0 - confidence
    values = metric.corpus(stats)
    boot = resampled_scores(metric, stats, n_resamples, seed)
    jack = metric.scores_from_sums(stats.sum(axis=0) - stats) if method == "bca" and n > 1 else None
    out = {}
    for score, value in values.items():
        bounds, used = None, "percentile"
        if jack is not None:
            bounds, used = _bca_bounds(boot[score], value, jack[score], alpha), "bca"
        if bounds is None:
            used = "percentile" if method == "percentile" else "percentile (bca undefined)"
            low, high = np.quantile(boot[score], [alpha / 2, 1 - alpha / 2])
            bounds = (float(low), float(high))
        out[score] = Interval(value, bounds[0], bounds[1], n, used, confidence)
    return out


def _bootstrap_p(boot_a: np.ndarray, boot_b: np.ndarray, observed: float) -> float:
    """sacrebleu `--paired-bs`: share of centred |resampled differences| beyond the observed one."""
    sample = np.abs(boot_b - boot_a)
    centred = sample - sample.mean()
    return float((np.sum(centred > abs(observed)) + 1) / (sample.size + 1))


def paired_differences(metric: Metric, score: str, a: np.ndarray, b: np.ndarray, n_resamples: int,
                       seed: int | None) -> np.ndarray:
    """b minus a on each paired bootstrap resample of `score` (the same examples for both; the
    undefined ones dropped). Both stats matrices side by side take one product per block."""
    _check(a.shape[0], n_resamples, 0.5)
    width = a.shape[1]
    (sums,) = _resampled_sums([as_stats(np.hstack([a, b]))], n_resamples, seed)
    diffs = metric.scores_from_sums(sums[..., width:])[score] - metric.scores_from_sums(sums[..., :width])[score]
    return diffs[np.isfinite(diffs)]


def swapped_scores(metric: Metric, a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int | None,
                   flags: type = bool) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Approximate randomisation, block by block: both systems' scores after swapping their outputs on
    each example with probability 1/2. `flags` is the dtype the swaps are drawn as: the two-sided test
    draws bool, the gate int64 (two streams of one seed, both kept so earlier figures reproduce)."""
    rng = np.random.default_rng(seed)
    n = a.shape[0]
    for rows in _blocks(n, n_resamples):
        swap = rng.integers(2, size=(rows, n), dtype=flags).astype(np.float64)
        keep = 1.0 - swap
        yield metric.scores_from_sums(keep @ a + swap @ b), metric.scores_from_sums(swap @ a + keep @ b)


def randomization_differences(metric: Metric, score: str, a: np.ndarray, b: np.ndarray, n_resamples: int,
                              seed: int | None) -> np.ndarray:
    """b minus a on `score` after each random swap of their outputs (the undefined ones dropped)."""
    blocks = swapped_scores(metric, a, b, n_resamples, seed, flags=np.int64)
    diffs = np.concatenate([score_b[score] - score_a[score] for score_a, score_b in blocks])
    return diffs[np.isfinite(diffs)]


def _randomization_p(
    metric: Metric, a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int | None
) -> dict[str, float]:
    """Two-sided: (count of |swapped difference| >= |observed| + 1) / (B + 1), score by score."""
    observed = {k: abs(v - metric.corpus(a)[k]) for k, v in metric.corpus(b).items()}
    beyond = dict.fromkeys(observed, 0)
    for score_a, score_b in swapped_scores(metric, a, b, n_resamples, seed):
        for k in beyond:
            diff = np.abs(score_b[k] - score_a[k])
            beyond[k] += int(np.sum(diff >= observed[k] - 1e-12 * max(1.0, observed[k])))
    return {k: (c + 1) / (n_resamples + 1) for k, c in beyond.items()}


def discordant(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int]:
    """(examples only a got right, examples only b got right) on paired 0/1 values."""
    only_a = int(np.sum((correct_a == 1) & (correct_b == 0)))
    only_b = int(np.sum((correct_a == 0) & (correct_b == 1)))
    return only_a, only_b


def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, int, int]:
    """Exact McNemar: two-sided binomial test on the discordant pairs (statsmodels' exact=True)."""
    from scipy.stats import binom  # scipy.stats is slow to import; only McNemar needs it

    only_a, only_b = discordant(correct_a, correct_b)
    p = min(1.0, 2.0 * float(binom.cdf(min(only_a, only_b), only_a + only_b, 0.5)))
    return p, only_a, only_b


def mcnemar_one_sided(worse, better, n, max_drop: float = 0.0):
    """p of 'b worse than a by more than max_drop' from the discordant counts (`worse`: only a right);
    vectorised over arrays. max_drop 0: exact P(X >= worse), X ~ Bin(worse + better, 1/2); else the
    Wald z-test of the paired difference of proportions against -max_drop."""
    from scipy.stats import binom

    worse, better = np.asarray(worse, dtype=np.float64), np.asarray(better, dtype=np.float64)
    if max_drop == 0:
        return binom.sf(worse - 1, worse + better, 0.5)
    diff = (better - worse) / n
    var = ((worse + better) / n - diff**2) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (diff + max_drop) / np.sqrt(var)
    degenerate = np.where(diff + max_drop >= 0, 1.0, 0.0)
    return np.where(var > 0, special.ndtr(z), degenerate)


def _mcnemar(metric: Metric, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    score = metric.binary_score
    if score is None:
        raise HarnessError(
            f"metric '{metric.name}': McNemar needs a per-example 0/1 score (accuracy, exact_match); "
            "use test='bootstrap' or 'randomization'"
        )
    values_a, values_b = metric.example_values(a)[score], metric.example_values(b)[score]
    for values in (values_a, values_b):
        if not np.all((values == 0) | (values == 1)):
            raise HarnessError(f"metric '{metric.name}': McNemar needs 0/1 per-example values of '{score}'")
    return {score: mcnemar_p(values_a, values_b)[0]}


def paired_test(
    metric: Metric,
    stats_a: np.ndarray,
    stats_b: np.ndarray,
    test: str = "bootstrap",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> dict[str, PairedResult]:
    """Compare system b with baseline a on the same examples, score by score.

    The interval is always the paired-bootstrap percentile interval of b - a (same resample for
    both systems); `test` chooses the p-value: `bootstrap` (sacrebleu's convention), `randomization`
    ((count of |swapped diff| >= |observed| + 1) / (B + 1)) or `mcnemar` (exact, 0/1 metrics only).
    Identical statistics give p = 1 whatever the test.
    """
    if test not in TESTS:
        raise HarnessError(f"unknown paired test {test!r}; use one of {', '.join(TESTS)}")
    a, b = as_stats(stats_a), as_stats(stats_b)
    if a.shape != b.shape:
        raise HarnessError(
            f"metric '{metric.name}': paired test needs the same examples for both systems, got stats of "
            f"shape {a.shape} and {b.shape}"
        )
    _check(a.shape[0], n_resamples, confidence)
    sums_a, sums_b = _resampled_sums([a, b], n_resamples, seed)
    p_values = None
    if test == "mcnemar":
        p_values = _mcnemar(metric, a, b)
    elif test == "randomization":
        p_values = _randomization_p(metric, a, b, n_resamples, seed)
    return paired_from_sums(metric, a, b, sums_a, sums_b, confidence, test, p_values)


def paired_from_sums(metric: Metric, a: np.ndarray, b: np.ndarray, sums_a: np.ndarray, sums_b: np.ndarray,
                     confidence: float = 0.95, test: str = "bootstrap",
                     p_values: dict[str, float] | None = None) -> dict[str, PairedResult]:
    """One PairedResult per score from both systems' resampled sums on the same resamples (rows of
    `resample_counts` times the stats); `p_values` None: the paired bootstrap's own (McNemar gives
    only the 0/1 score)."""
    alpha = 1.0 - confidence
    value_a, value_b = metric.corpus(a), metric.corpus(b)
    boot_a, boot_b = metric.scores_from_sums(sums_a), metric.scores_from_sums(sums_b)
    if p_values is None:
        p_values = {k: _bootstrap_p(boot_a[k], boot_b[k], value_b[k] - value_a[k]) for k in value_a}
    identical = np.array_equal(a, b)
    out = {}
    for score, p in p_values.items():
        low, high = np.quantile(boot_b[score] - boot_a[score], [alpha / 2, 1 - alpha / 2])
        out[score] = PairedResult(
            score=score,
            value_a=value_a[score],
            value_b=value_b[score],
            difference=value_b[score] - value_a[score],
            low=float(low),
            high=float(high),
            p_value=1.0 if identical else float(p),
            test=test,
            n=a.shape[0],
        )
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (compare each with its own alpha)."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]))
    out = np.empty_like(p)
    out[order] = adjusted
    return [float(x) for x in out]


def bootstrap_statistic(n_units: int, statistic: Callable[[np.ndarray], np.ndarray], n_resamples: int = 1000,
                        seed: int | None = 0, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile intervals of a vector statistic of resampled units (raters' items, judged pairs...).

    statistic(indices) -> vector, for indices into the units (the identity gives the point estimate);
    each resample is a row of `resample_indices(n_units, n_resamples, seed)`. Returns (value, low,
    high), each a vector; NaN resamples (a candidate absent from one) are ignored.
    """
    value = np.asarray(statistic(np.arange(n_units)), dtype=float)
    if n_units == 0 or n_resamples <= 0:
        return value, np.full_like(value, np.nan), np.full_like(value, np.nan)
    draws = np.array([statistic(rows) for block in index_blocks(n_units, n_resamples, seed) for rows in block],
                     dtype=float)
    tail = (1.0 - confidence) / 2.0 * 100.0
    with np.errstate(all="ignore"):
        low = np.nanpercentile(draws, tail, axis=0)
        high = np.nanpercentile(draws, 100.0 - tail, axis=0)
    return value, low, high
