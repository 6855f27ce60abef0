"""Which hyperparameters move an outcome (energy or a metric), and how sure we are.

Two statistics per hyperparameter, each with a 95 % interval:

* **rank correlation**: Spearman's rho (numeric and two-level hyperparameters; Fisher-z
  interval) or, for unordered choices with three or more levels, the correlation ratio of
  the outcome's ranks (bootstrap interval). Robust to monotone non-linearity and outliers;
  the ranking is by its absolute value.
* **standardised regression coefficient** (SRC): ordinary least squares of the
  standardised outcome on all varying hyperparameters at once (choices one-hot coded,
  wide positive ranges on a log10 scale), with t intervals from the OLS standard errors.
  Unlike the marginal correlation, it holds the other hyperparameters fixed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperjoule.report.analysis._stats import (
    MIN_PAIRS_FOR_INTERVAL,
    FloatArray,
    Interval,
    bootstrap_ci,
    correlation_ratio,
    ranks,
    spearman_ci,
    standardised_coefficients,
)
from hyperjoule.report.load._frame import HP_PREFIX, hp_columns

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MIN_RUNS",
    "MIN_RUNS_RELIABLE",
    "SensitivityResult",
    "is_log_scale",
    "sensitivity",
    "varying_hyperparameters",
]

MIN_RUNS = 4
"""Below this many runs no sensitivity is computed."""

MIN_RUNS_RELIABLE = 20
"""Below this many runs the result carries a warning that the intervals are wide."""

_BOOTSTRAP_MAX_ROWS = 5000  # bootstrap on a sample: the interval width is what matters

RANK_METHOD = "Spearman rho, Fisher-z 95% CI (SE = sqrt(1.06/(n-3)))"
RATIO_METHOD = "correlation ratio of outcome ranks (unordered choice), bootstrap 95% CI"
SRC_METHOD = "standardised OLS coefficient, t 95% CI; other hyperparameters held fixed"


@dataclass
class SensitivityResult:
    """Sensitivity of one outcome to the hyperparameters of one group of runs.

    Attributes:
        outcome: The outcome column (``energy_total_j``, ``metric_test_accuracy``).
        n: Runs used (with the outcome present).
        table: One row per varying hyperparameter, most influential first. Columns:
            ``hyperparameter``, ``kind`` (numeric/choice), ``scale`` (linear/log10),
            ``n``, ``rank_corr``, ``rank_corr_low``, ``rank_corr_high``,
            ``rank_method``, ``src``, ``src_low``, ``src_high``, ``src_note``.
        r2: R^2 of the regression, None when it could not be fitted.
        warnings: Why the figures deserve caution (too few runs, no regression, ...).
    """

    outcome: str
    n: int
    table: pd.DataFrame
    r2: float | None
    warnings: list[str] = field(default_factory=list)


def is_log_scale(values: FloatArray) -> bool:
    """True for values that look log-uniformly spread (learning rates, weight decays).

    They must be positive and span a factor of 20 or more, and their median must lie
    nearer the geometric than the arithmetic middle of their range: a uniform draw from
    (0, 0.5) spans a large factor too, but its median sits in the arithmetic middle.
    """
    v = values[np.isfinite(values)]
    if v.size < 3 or v.min() <= 0 or v.max() / v.min() < 20:
        return False
    low, high, median = float(v.min()), float(v.max()), float(np.median(v))
    geometric, arithmetic = math.sqrt(low * high), (low + high) / 2
    return abs(math.log(median / geometric)) < abs(math.log(median / arithmetic))


def _numeric(series: pd.Series[Any]) -> FloatArray | None:
    """The values as floats (booleans as 0/1), or None for a text-valued hyperparameter."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    return None


def varying_hyperparameters(runs: pd.DataFrame) -> list[str]:
    """The ``hp_*`` columns with at least two distinct values among ``runs``."""
    return [c for c in hp_columns(runs.columns) if runs[c].nunique(dropna=True) >= 2]


@dataclass
class _Predictor:
    name: str
    kind: str
    scale: str
    values: FloatArray  # numeric value (log10 when scale is log10), or category code
    levels: list[str] = field(default_factory=list)
    columns: list[int] = field(default_factory=list)  # design-matrix columns


def _predictor(name: str, series: pd.Series[Any]) -> _Predictor:
    numeric = _numeric(series)
    if numeric is not None:
        if is_log_scale(numeric):
            return _Predictor(name, "numeric", "log10", np.log10(numeric))
        return _Predictor(name, "numeric", "linear", numeric)
    codes, uniques = series.factorize(sort=True)
    values = codes.astype(np.float64)
    values[codes < 0] = np.nan
    return _Predictor(name, "choice", "levels", values, [str(u) for u in uniques])


def _rank_stat(pred: _Predictor, y: FloatArray) -> tuple[Interval, str]:
    if pred.kind == "numeric" or len(pred.levels) == 2:
        return spearman_ci(pred.values, y), RANK_METHOD
    keep = np.isfinite(pred.values) & np.isfinite(y)
    codes = pred.values[keep].astype(np.int64)
    yr = ranks(y[keep])
    n = int(codes.size)
    if n < MIN_RUNS:
        return Interval(math.nan, math.nan, math.nan, n), RATIO_METHOD
    eta = correlation_ratio(codes, yr)
    if n < MIN_PAIRS_FOR_INTERVAL:
        return Interval(eta, math.nan, math.nan, n), RATIO_METHOD
    rng = np.random.default_rng(1)
    if n > _BOOTSTRAP_MAX_ROWS:
        pick = rng.choice(n, _BOOTSTRAP_MAX_ROWS, replace=False)
        codes, yr = codes[pick], yr[pick]
    low, high = bootstrap_ci(lambda idx: correlation_ratio(codes[idx], yr[idx]), codes.size)
    return Interval(eta, low, high, n), RATIO_METHOD


def _design(preds: list[_Predictor], n: int) -> FloatArray:
    blocks: list[FloatArray] = []
    col = 0
    for pred in preds:
        if pred.kind == "numeric":
            blocks.append(pred.values.reshape(n, 1))
            pred.columns = [col]
            col += 1
            continue
        # One-hot against the first level; a missing value stays missing in every column.
        dummies = np.stack([pred.values == k for k in range(1, len(pred.levels))], axis=1)
        dummies = dummies.astype(np.float64)
        dummies[~np.isfinite(pred.values)] = np.nan
        blocks.append(dummies)
        pred.columns = list(range(col, col + dummies.shape[1]))
        col += dummies.shape[1]
    return np.concatenate(blocks, axis=1) if blocks else np.empty((n, 0))


def sensitivity(
    runs: pd.DataFrame,
    outcome: str = "energy_total_j",
    hyperparameters: list[str] | None = None,
) -> SensitivityResult:
    """Rank the hyperparameters by their effect on ``outcome`` over ``runs``.

    Pass runs of one target/model (their hyperparameters differ between targets); failed
    runs should be left out by the caller when their outcome is not comparable.

    Args:
        runs: Rows of the flat run table.
        outcome: The outcome column.
        hyperparameters: ``hp_*`` columns to consider; None: every one that varies.
    """
    import pandas as pd

    data = runs[runs[outcome].notna()]
    n = len(data)
    names = varying_hyperparameters(data) if hyperparameters is None else hyperparameters
    warnings: list[str] = []
    rows: list[dict[str, Any]] = []
    if n < MIN_RUNS:
        warnings.append(f"too few runs for a sensitivity analysis (n={n}; needs {MIN_RUNS})")
        names = []
    elif n < MIN_RUNS_RELIABLE:
        warnings.append(
            f"only {n} runs: the intervals are wide, treat the ranking as a hint "
            f"(at least {MIN_RUNS_RELIABLE} runs recommended)"
        )
    if not names and n >= MIN_RUNS:
        warnings.append("no hyperparameter varies across these runs")
    y = data[outcome].to_numpy(dtype=np.float64, na_value=np.nan)
    preds = [_predictor(name, data[name]) for name in names]
    regression = None
    if preds:
        regression = standardised_coefficients(_design(preds, n), y)
        if regression is None:
            width = sum(max(len(p.columns), 1) for p in preds)
            if n < width + 4:
                warnings.append(
                    f"no regression coefficients (SRC): {n} runs are too few for {width} "
                    f"predictor(s); at least {width + 4} are needed"
                )
            else:
                warnings.append(
                    "no regression coefficients (SRC): some hyperparameters always changed "
                    "together in these runs, so their separate effects cannot be told apart"
                )
    for pred in preds:
        stat, method = _rank_stat(pred, y)
        src = Interval(math.nan, math.nan, math.nan, n)
        note = ""
        if regression is not None and pred.columns:
            coefs = [regression.coefficients[c] for c in pred.columns]
            src = max(coefs, key=lambda c: -1.0 if math.isnan(c.value) else abs(c.value))
            if pred.kind == "choice":
                level = pred.levels[1 + coefs.index(src)]
                note = f"{level} vs {pred.levels[0]}"
        rows.append(
            {
                "hyperparameter": pred.name.removeprefix(HP_PREFIX),
                "kind": pred.kind,
                "scale": pred.scale,
                "n": stat.n,
                "rank_corr": stat.value,
                "rank_corr_low": stat.low,
                "rank_corr_high": stat.high,
                "rank_method": method,
                "src": src.value,
                "src_low": src.low,
                "src_high": src.high,
                "src_note": note,
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "hyperparameter",
            "kind",
            "scale",
            "n",
            "rank_corr",
            "rank_corr_low",
            "rank_corr_high",
            "rank_method",
            "src",
            "src_low",
            "src_high",
            "src_note",
        ],
    )
    if not table.empty:
        order = table["rank_corr"].abs().fillna(-1.0).to_numpy()
        table = table.iloc[np.argsort(-order, kind="stable")].reset_index(drop=True)
    return SensitivityResult(
        outcome=outcome,
        n=n,
        table=table,
        r2=None if regression is None else regression.r2,
        warnings=warnings,
    )
