"""step_code/monitor.py's statistics against independent references: scipy's KS and chi-square tests on the same
samples (hypothesis property tests), PSI against the textbook formula on numpy's histogram, DPPL/DI by hand.

What is pinned is the wiring a monitor gets wrong: which values reach the test (missing values and strings out),
how two samples' categories become one contingency table, which bin a value on an edge falls in."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, chisquare, ks_2samp

from tests._steps_util import load_step

monitor = load_step("monitor")

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=1, max_size=80)
small_ints = st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=80)
categories = st.lists(st.sampled_from(["a", "b", "c", "d", "Yes", "3"]), min_size=1, max_size=60)
THRESHOLDS = {
    "psi": 0.2,
    "psi_bins": 10,
    "ks_p_value": 0.001,
    "ks_statistic": 0.1,
    "chi_square_p_value": 0.001,
    "missing_rate_change": 0.1,
    "unseen_categories": 0.01,
}


def _with_missing(values: list, missing: int) -> pd.Series:
    return pd.Series(values + [None] * missing + ["NA"] * (missing // 2), dtype=object)


@settings(max_examples=60, deadline=None)
@given(samples | small_ints, samples | small_ints, st.integers(0, 5), st.integers(0, 5))
def test_numeric_drift_ks_is_scipys_on_the_present_values(
    base: list, cur: list, base_missing: int, cur_missing: int
) -> None:
    b_series, c_series = _with_missing(base, base_missing), _with_missing(cur, cur_missing)
    result = monitor.numeric_drift("x", b_series, c_series, THRESHOLDS)
    expected = ks_2samp(np.array(base, float), np.array(cur, float))
    assert result["ks_statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert result["ks_p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    # missing: None and preprocess's NA words, as preprocess reads a CSV
    n_b, n_c = len(base) + base_missing + base_missing // 2, len(cur) + cur_missing + cur_missing // 2
    assert monitor.missing_rate(b_series) == pytest.approx((base_missing + base_missing // 2) / n_b)
    assert monitor.missing_rate(c_series) == pytest.approx((cur_missing + cur_missing // 2) / n_c)


def _psi_direct(base: np.ndarray, cur: np.ndarray, bins: int) -> float:
    """The textbook PSI: decile bins of the baseline, shares floored at 1e-4, sum (a - e) ln(a / e)."""
    inner = np.unique(np.quantile(base, np.linspace(0, 1, bins + 1)[1:-1]))
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    e = np.histogram(base, edges)[0] / len(base)
    a = np.histogram(cur, edges)[0] / len(cur)
    e, a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
    return float(sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=True)))


@settings(max_examples=60, deadline=None)
@given(samples | small_ints, samples | small_ints, st.integers(2, 20))
def test_psi_is_the_direct_formula(base: list, cur: list, bins: int) -> None:
    b, c = np.array(base, float), np.array(cur, float)
    psi, _ = monitor.psi_numeric(b, c, bins)
    assert psi == pytest.approx(_psi_direct(b, c, bins), rel=1e-9, abs=1e-12)
    assert psi >= 0
    assert monitor.psi_numeric(b, b, bins)[0] == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(categories, categories)
def test_categorical_drift_is_scipys_chi_square_on_the_contingency_table(base: list, cur: list) -> None:
    result = monitor.categorical_drift("c", pd.Series(base), pd.Series(cur), [], THRESHOLDS)
    cats = sorted(set(base) | set(cur))
    table = np.array([[base.count(k) for k in cats], [cur.count(k) for k in cats]], float)
    if len(cats) < 2:
        assert (result["chi_square"], result["chi_square_p_value"]) == (0.0, 1.0)
    else:
        stat, p, _, _ = chi2_contingency(table, correction=False)
        assert result["chi_square"] == pytest.approx(stat, rel=1e-9, abs=1e-12)
        assert result["chi_square_p_value"] == pytest.approx(p, rel=1e-9, abs=1e-300)
    b, c = table[0] / table[0].sum(), table[1] / table[1].sum()
    b, c = np.maximum(b, 1e-4), np.maximum(c, 1e-4)
    assert result["psi"] == pytest.approx(float(np.sum((c - b) * np.log(c / b))), rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=2, max_size=8))
def test_chi_square_of_a_window_against_a_large_baseline_tends_to_the_goodness_of_fit_test(
    counts: list[int],
) -> None:
    """With a baseline 10^6 times larger, the homogeneity test is scipy's chisquare against the baseline's
    shares: the table is built the right way round."""
    shares = np.array(counts, float) / sum(counts)
    baseline = shares * 1e9
    window = np.array(counts[::-1], float)
    _, p = monitor.chi_square(baseline, window)
    expected = chisquare(window, shares * window.sum())
    assert p == pytest.approx(expected.pvalue, rel=1e-3, abs=1e-12)


def test_unseen_categories_and_keys_follow_preprocess() -> None:
    """3, 3.0 and "3" are one category (preprocess._key); a value never seen in training counts as unseen."""
    base = pd.Series(["a", "b", 3, None] * 25, dtype=object)
    cur = pd.Series(["a", 3.0, "z", "z"] * 25, dtype=object)
    result = monitor.categorical_drift("c", base, cur, ["a", "b", "3"], THRESHOLDS)
    assert result["unseen"] == ["z"]
    assert result["unseen_rate"] == pytest.approx(0.5)
    assert any(v["constraint_check_type"] == "categorical_values_check" for v in result["violations"])


def test_dppl_and_di_by_hand() -> None:
    predicted = np.array([1, 0, 0, 0, 1, 1, 0, 1], float)
    facet = np.array(
        [1, 1, 1, 1, 0, 0, 0, 0], bool
    )  # facet d: a quarter predicted positive, a: three quarters
    dppl, di = monitor.dppl_di(predicted, facet)
    assert dppl == pytest.approx(0.75 - 0.25)
    assert di == pytest.approx(0.25 / 0.75)
    assert monitor.dppl_di(predicted, np.ones(8, bool)) == (None, None)
