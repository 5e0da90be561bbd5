"""Agreement, Bradley-Terry, bootstrap and correlation statistics against reference implementations."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from scipy import optimize
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from harness.review.stats import (
    bootstrap,
    bradley_terry,
    category_counts,
    cohen_kappa,
    correlations,
    fleiss_kappa,
    krippendorff_alpha,
)

SQUALITY = Path(__file__).resolve().parents[2] / "shared" / "data" / "squality_human_eval_ratings.jsonl"
TOL = 1e-9


@pytest.fixture(scope="module")
def squality() -> tuple[np.ndarray, list[str]]:
    """Raters x items matrix of the `overall` rating (0-100), NaN where a rater did not rate the item."""
    if not SQUALITY.is_file():
        pytest.skip(f"real rating data absent: {SQUALITY} (../shared/data is not part of the project)")
    rows = [json.loads(line) for line in SQUALITY.read_text(encoding="utf-8").splitlines()]
    raters = sorted({r["rater"] for row in rows for r in row["ratings"]})
    matrix = np.full((len(raters), len(rows)), np.nan)
    for j, row in enumerate(rows):
        for rating in row["ratings"]:
            matrix[raters.index(rating["rater"]), j] = rating["overall"]
    return matrix, raters


def binned(matrix: np.ndarray) -> np.ndarray:
    """0-100 into five ordered bins 0..4 (for nominal statistics)."""
    return np.where(np.isnan(matrix), np.nan, np.minimum(matrix // 20, 4))


def test_squality_shape(squality):
    matrix, raters = squality
    assert matrix.shape == (4, 300)
    assert raters == ["2", "3", "6", "8"]
    assert np.all((~np.isnan(matrix)).sum(axis=0) == 3)  # three raters per item, one missing cell each


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("bins", [False, True])
def test_krippendorff_matches_package_on_squality(squality, level, bins):
    matrix = binned(squality[0]) if bins else squality[0]
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    assert krippendorff_alpha(matrix, level) == pytest.approx(expected, abs=TOL)


def test_fleiss_matches_statsmodels_on_squality(squality):
    table, categories = category_counts(binned(squality[0]))
    assert list(categories) == [0, 1, 2, 3, 4]
    assert fleiss_kappa(table) == pytest.approx(statsmodels_fleiss(table, method="fleiss"), abs=TOL)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_matches_sklearn_on_every_squality_pair(squality, weights):
    matrix = squality[0]
    pairs = 0
    for i, j in combinations(range(len(matrix)), 2):
        both = ~np.isnan(matrix[i]) & ~np.isnan(matrix[j])
        for data in (matrix, binned(matrix)):
            a, b = data[i, both], data[j, both]
            assert cohen_kappa(a, b, weights) == pytest.approx(cohen_kappa_score(a, b, weights=weights), abs=TOL)
        pairs += 1
    assert pairs == 6


HAND_RATERS = np.array([  # Krippendorff's (2011) worked example: 4 coders, 12 units, missing cells
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
])


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_hand_case(level, published):
    """The textbook example: the package's value, and the published three decimals."""
    value = krippendorff_alpha(HAND_RATERS, level)
    assert value == pytest.approx(krippendorff.alpha(HAND_RATERS, level_of_measurement=level), abs=TOL)
    assert round(value, 3) == published


def test_cohen_hand_cases():
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "a", "b", "b"]) == 1.0
    # 20 items: observed agreement 0.7, expected 0.5 -> kappa 0.4
    a = ["y"] * 10 + ["n"] * 10
    b = ["y"] * 7 + ["n"] * 3 + ["y"] * 3 + ["n"] * 7
    assert cohen_kappa(a, b) == pytest.approx(0.4, abs=TOL)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=TOL)
    rng = np.random.default_rng(3)
    x, y = rng.integers(1, 6, 50), rng.integers(1, 6, 50)
    for weights in (None, "linear", "quadratic"):
        assert cohen_kappa(x, y, weights) == pytest.approx(cohen_kappa_score(x, y, weights=weights), abs=TOL)


def test_fleiss_hand_case():
    """Fleiss (1971) / Wikipedia example: 10 items, 14 raters, 5 categories, kappa 0.210."""
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(table) == pytest.approx(statsmodels_fleiss(table), abs=TOL)
    assert round(fleiss_kappa(table), 3) == 0.210
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[1, 1], [3, 0]])


def _bt_mle(wins: np.ndarray) -> np.ndarray:
    """The Bradley-Terry maximum-likelihood log-strengths by direct optimisation (mean 0)."""
    k = len(wins)

    def nll(beta: np.ndarray) -> float:
        diff = beta[:, None] - beta[None, :]
        return float(np.sum(wins * np.logaddexp(0.0, -diff)))

    beta = optimize.minimize(nll, np.zeros(k), method="BFGS", options={"gtol": 1e-10}).x
    return beta - beta.mean()


def test_bradley_terry_two_players_closed_form():
    beta = bradley_terry(np.array([[0, 6], [2, 0]]))
    assert beta[0] - beta[1] == pytest.approx(np.log(6 / 2), abs=TOL)
    assert beta.sum() == pytest.approx(0.0, abs=TOL)


def test_bradley_terry_matches_likelihood_optimum():
    wins = np.array([[0, 7, 3, 5], [4, 0, 6, 2], [5, 3, 0, 8], [1, 6, 2, 0]], dtype=float)
    assert bradley_terry(wins) == pytest.approx(_bt_mle(wins), abs=1e-6)


def test_bradley_terry_prior_keeps_a_winless_candidate_finite():
    wins = np.array([[0, 5], [0, 0]])
    assert np.isinf(bradley_terry(wins)).any() or bradley_terry(wins)[1] < -20
    beta = bradley_terry(wins, prior=0.5)
    assert np.all(np.isfinite(beta)) and beta[0] > beta[1]
    assert beta[0] - beta[1] == pytest.approx(np.log(5.25 / 0.25), abs=TOL)


def test_bootstrap_interval_covers_and_is_reproducible():
    values = np.random.default_rng(0).normal(3.0, 1.0, 200)
    value, low, high = bootstrap(len(values), lambda idx: np.array([values[idx].mean()]), 500, seed=1)
    assert low[0] < value[0] < high[0]
    assert value[0] == pytest.approx(values.mean())
    assert high[0] - low[0] == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.25)
    again = bootstrap(len(values), lambda idx: np.array([values[idx].mean()]), 500, seed=1)
    assert again[1][0] == low[0] and again[2][0] == high[0]


def test_correlations_match_scipy_and_skip_constants():
    from scipy import stats

    h = [1, 2, 2, 3, 4, 5, 5]
    m = [0.1, 0.3, 0.2, 0.5, 0.4, 0.9, 0.8]
    out = correlations(h, m)
    assert out["n"] == 7
    assert out["kendall_tau"] == pytest.approx(stats.kendalltau(h, m).statistic, abs=TOL)
    assert out["spearman_rho"] == pytest.approx(stats.spearmanr(h, m).statistic, abs=TOL)
    assert np.isnan(correlations([3, 3, 3], [1, 2, 3])["kendall_tau"])
    assert correlations([1, np.nan, 2, 3], [1, 2, np.nan, 3])["n"] == 2
