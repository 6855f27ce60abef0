"""Small statistics with numpy only: t intervals, rank correlation, regression, bootstrap.

Every interval here is a two-sided 95 % interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "MIN_PAIRS_FOR_INTERVAL",
    "FloatArray",
    "Interval",
    "Regression",
    "bootstrap_ci",
    "correlation_ratio",
    "mean_ci",
    "observed_domain",
    "ranks",
    "spearman_ci",
    "standardised_coefficients",
    "t_quantile_975",
]

FloatArray = npt.NDArray[np.float64]

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
_Z975 = 1.959963984540054


def t_quantile_975(df: float) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        return math.nan
    if df <= 30:
        return _T975[int(df) - 1]
    # Cornish-Fisher expansion around the normal quantile; error < 1e-4 above 30 df.
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95 % interval (``low``/``high`` NaN when not computable)."""

    value: float
    low: float
    high: float
    n: int

    def contains(self, x: float) -> bool:
        """True when ``x`` lies inside the interval."""
        return self.low <= x <= self.high


FRACTION_WORDS = (
    "acc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "auc",
    "map",
    "iou",
    "dice",
    "rank1",
    "top1",
    "top5",
    "fraction",
    "share",
)
"""Words naming a metric that is a fraction when every observed value lies in [0, 1]."""


def observed_domain(values: npt.ArrayLike, name: str = "") -> tuple[float, float]:
    """The range an interval of ``values`` may cover: no bound beyond what they can take.

    Non-negative when every observed value is (energy, time, perplexity, loss), and
    within [0, 1] when, besides, every value is at most 1 and ``name`` says a fraction
    (accuracy, precision, mAP, ...). Otherwise unbounded.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0 or float(x.min()) < 0:
        return -math.inf, math.inf
    words = name.removeprefix("metric_").lower().replace("-", "_").split("_")
    fraction = any(w in FRACTION_WORDS for w in words)
    return 0.0, 1.0 if fraction and float(x.max()) <= 1.0 else math.inf


def mean_ci(values: npt.ArrayLike, name: str = "") -> Interval:
    """Mean of the finite values with a t interval (NaN interval below two values).

    The interval is clipped to the values' :func:`observed_domain` (no negative energy
    or perplexity, no accuracy above 1).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = t_quantile_975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    lowest, highest = observed_domain(x, name)
    return Interval(mean, max(mean - half, lowest), min(mean + half, highest), n)


def ranks(values: npt.ArrayLike) -> FloatArray:
    """Average ranks (1-based; ties share their mean rank)."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Runs of equal values: each gets the mean of the ranks it spans.
    starts = np.concatenate(([True], sorted_x[1:] != sorted_x[:-1]))
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.append(first, x.size))
    mean_rank = first + (counts + 1) / 2.0
    out = np.empty(x.size, dtype=np.float64)
    out[order] = mean_rank[group]
    return out


def _pearson(x: FloatArray, y: FloatArray) -> float:
    xc = x - x.mean()
    yc = y - y.mean()
    denom = math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc)))
    return math.nan if denom == 0 else float(np.dot(xc, yc)) / denom


MIN_PAIRS_FOR_INTERVAL = 10
"""Fewest pairs for which :func:`spearman_ci` gives an interval."""


def spearman_ci(x: npt.ArrayLike, y: npt.ArrayLike) -> Interval:
    """Spearman's rank correlation with a Fisher-z interval.

    The standard error is ``sqrt(1.06 / (n - 3))`` (Fieller, Hartley and Pearson 1957),
    the usual correction of Fisher's ``1 / sqrt(n - 3)`` for rank correlation. Pairs with a
    missing value are dropped; below four pairs, or when either side is constant, the
    estimate is NaN; below :data:`MIN_PAIRS_FOR_INTERVAL` pairs the interval is.
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = int(xa.size)
    if n < 4:
        return Interval(math.nan, math.nan, math.nan, n)
    rho = _pearson(ranks(xa), ranks(ya))
    if math.isnan(rho) or n < MIN_PAIRS_FOR_INTERVAL:
        # Below ten pairs the Fisher-z approximation is too rough to print an interval.
        return Interval(rho, math.nan, math.nan, n)
    clipped = min(max(rho, -0.999999), 0.999999)
    z = math.atanh(clipped)
    half = _Z975 * math.sqrt(1.06 / (n - 3))
    return Interval(rho, math.tanh(z - half), math.tanh(z + half), n)


def correlation_ratio(codes: npt.NDArray[np.int64], y: FloatArray) -> float:
    """Bias-adjusted correlation ratio of ``y`` on integer category ``codes``: 0 none, 1 all.

    The plain ratio (eta) is above 0 even without any effect; the adjustment
    ``1 - (1 - eta^2)(n - 1)/(n - k)`` (as for adjusted R^2) removes most of that bias.
    """
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return math.nan
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=y)
    present = counts > 0
    k = int(present.sum())
    n = int(y.size)
    if n <= k:
        return math.nan
    means = sums[present] / counts[present]
    eta2 = float(np.sum(counts[present] * (means - y.mean()) ** 2)) / total
    adjusted = 1.0 - (1.0 - eta2) * (n - 1) / (n - k)
    return math.sqrt(min(max(adjusted, 0.0), 1.0))


def bootstrap_ci(
    statistic: Any,
    n: int,
    *,
    resamples: int = 200,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(indices)`` over bootstrap resamples of ``n`` rows.

    The generator is seeded, so a report is the same every time it is written.
    """
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        value = statistic(rng.integers(0, n, size=n))
        if math.isfinite(value):
            values.append(value)
    if len(values) < resamples // 2:
        return math.nan, math.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class Regression:
    """Standardised regression coefficients of one outcome on several predictors.

    Attributes:
        coefficients: One interval per predictor (a t interval from the OLS standard error).
        r2: Coefficient of determination of the fit.
        n: Rows used.
    """

    coefficients: list[Interval]
    r2: float
    n: int


def standardised_coefficients(x: FloatArray, y: FloatArray) -> Regression | None:
    """OLS of standardised ``y`` on standardised columns of ``x``; None when not estimable.

    Rows with a missing value are dropped. A constant column gets a NaN coefficient. Needs
    at least three rows more than predictors plus the intercept (residual degrees of
    freedom for the intervals).
    """
    keep = np.isfinite(y) & np.all(np.isfinite(x), axis=1)
    x, y = x[keep], y[keep]
    n, p = x.shape
    if n < p + 4 or float(y.std()) == 0:
        return None  # fewer than 3 residual degrees of freedom: no usable interval
    sd = x.std(axis=0)
    varying = sd > 0
    xs = (x[:, varying] - x[:, varying].mean(axis=0)) / sd[varying]
    ys = (y - y.mean()) / y.std()
    design = np.column_stack([np.ones(n), xs])
    beta, _res, rank, _sv = np.linalg.lstsq(design, ys, rcond=None)
    if rank < design.shape[1]:
        return None  # collinear predictors: coefficients are not identified
    resid = ys - design @ beta
    dof = n - design.shape[1]
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.inv(design.T @ design)
    se = np.sqrt(np.diag(cov))[1:]
    t = t_quantile_975(dof)
    coefs: list[Interval] = []
    k = 0
    for is_varying in varying:
        if not is_varying:
            coefs.append(Interval(math.nan, math.nan, math.nan, n))
            continue
        b = float(beta[k + 1])
        coefs.append(Interval(b, b - t * float(se[k]), b + t * float(se[k]), n))
        k += 1
    r2 = 1.0 - float(resid @ resid) / float(ys @ ys)
    return Regression(coefs, r2, n)
