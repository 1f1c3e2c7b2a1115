"""Share changes between two periods (or runs), with intervals from a bootstrap over users.

    from clio_engine.economic.compare import compare_periods
    table = compare_periods(a, b, dimensions=["cluster", "collaboration"], min_users=50, min_records=100)
    table.attrs["left_out"]   # {"cluster": 12, "collaboration": 0}: values held back by the floors

Users are the unit of resampling: one user's records are correlated (the same person asks about the same
things), so resampling records would make intervals far too narrow whenever a few users write many
records. Each replicate draws the users of each period with replacement (multinomial counts per user,
periods independent) and recomputes every share as a ratio of weighted sums, which is one sparse
product: [V, U] user × value counts times [U, B] weights.

Shares are percentages of a period's records (0–100), missing values included in the denominator as a
value of their own that is never reported; change = share_b − share_a in percentage points.

What is held back (per dimension, the same values in both periods; `attrs["left_out"]` counts them):
- the floors: a value below min_users / min_records in either period;
- dominance: a value where one user holds more than `max_user_share` of its records in either period,
  or more than `max_user_variance_share` of the spread its interval is made of. A share's bootstrap
  variance is Σ_u (c_u − s·t_u)² / N² (c_u: the user's records of the value, t_u: of the period, s: the
  share), so an interval dominated by one term tells that user's count. The record share alone missed it:
  a user with 25 records of a parent of ~250 (10%), others writing one record each there, was 78% of the
  parent's variance, and a review solved the interval back to 25 of 25;
- the complement: N = 100·records/share is public, so N − Σ reported records is the hidden part of a
  period (held-back values plus missing). It must be 0, or ≥ min_records records of ≥ min_users users
  over ≥ 2 hidden values, as in `privacy.complementary`; else the smallest reported value is held back
  too, until both periods hold. Missing records below the floors count as one hidden value; missing
  records that pass them are taken as known (they could be shown), so they protect nothing.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import ndtr

from clio_engine.errors import ConfigError, InputError
from clio_engine.privacy.complementary import protect_groups
from clio_engine.privacy.thresholds import meets_thresholds, validate_privacy_params

COLUMNS = ["dimension", "value", "share_a", "share_b", "change", "ci_low", "ci_high", "p_value",
           "significant", "records_a", "records_b"]
CORRECTIONS = ("holm", "bh", "none")
USER = "user"
# Weights drawn at once are at most this many [replicates × users] entries (float64: 64 MB), so 1000
# replicates over 100k users run in chunks instead of one 800 MB matrix.
_CHUNK_ENTRIES = 8_000_000


def compare_periods(a: pd.DataFrame, b: pd.DataFrame, *, dimensions: Sequence[str], min_users: int,
                    min_records: int, max_user_share: float = 0.5, max_user_variance_share: float = 0.5,
                    n_boot: int = 1000, alpha: float = 0.05, correction: str = "holm", seed: int = 0) -> pd.DataFrame:
    """One row per (dimension, value) that passes the privacy floors, the dominance rule (no user holds more
    than max_user_share of its records) and the complement rule in both periods (see the module docstring).

    a, b: one row per record, with a `user` column and every dimension column (None/NaN = missing).
    Returns the COLUMNS, sorted by dimension (in the order given) then |change| descending:
    share_a, share_b [%], change [pp], ci_low/ci_high: the (1 − alpha) percentile interval of the
    change over n_boot user-level replicates; p_value: two-sided, from the bootstrap standard error
    (see `_p_values`); significant: after `correction` across the values of one dimension;
    records_a, records_b: record counts. attrs["left_out"] = {dimension: values held back, for any reason}.
    """
    dims = _validate(a, b, dimensions, min_users, min_records, n_boot, alpha, correction, seed)
    _validate_share(max_user_share)
    _validate_share(max_user_variance_share, "max_user_variance_share")
    users_a, n_users_a = _user_codes(a, "a")
    users_b, n_users_b = _user_codes(b, "b")
    totals_a = np.bincount(users_a, minlength=n_users_a).astype(np.float64)  # [U_a] records per user
    totals_b = np.bincount(users_b, minlength=n_users_b).astype(np.float64)

    kept, left_out = [], {}
    for dim in dims:
        values, codes_a, codes_b = _encode(a[dim], b[dim], dim)
        counts_a = _user_value_counts(users_a, codes_a, n_users_a, len(values))  # [U_a, V] csc
        counts_b = _user_value_counts(users_b, codes_b, n_users_b, len(values))
        passes = np.ones(len(values), dtype=bool)
        for counts, totals in ((counts_a, totals_a), (counts_b, totals_b)):
            passes &= meets_thresholds(counts.getnnz(axis=0), _col_sums(counts), min_users, min_records)
            passes &= ~_dominated(counts, max_user_share)
            passes &= ~_variance_dominated(counts, totals, max_user_variance_share)
        passes = _protect_complement(passes, [(counts_a, codes_a, users_a), (counts_b, codes_b, users_b)],
                                     min_users, min_records)
        left_out[dim] = int((~passes).sum())
        cols = np.flatnonzero(passes)
        # only the reported columns enter the bootstrap; the denominators (all records) stay whole
        kept.append((dim, values[cols], counts_a[:, cols].T.tocsr(), counts_b[:, cols].T.tocsr()))

    replicates = _bootstrap_changes([(k[2], k[3]) for k in kept], totals_a, totals_b, n_boot, seed)

    frames = []
    for (dim, values, cnt_a, cnt_b), boot in zip(kept, replicates):
        records_a = np.asarray(cnt_a.sum(axis=1)).ravel().astype(np.int64)
        records_b = np.asarray(cnt_b.sum(axis=1)).ravel().astype(np.int64)
        share_a = 100.0 * records_a / len(a)
        share_b = 100.0 * records_b / len(b)
        change = share_b - share_a
        if len(values):
            ci_low, ci_high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=1)
        else:
            ci_low = ci_high = np.empty(0)
        p = _p_values(change, boot)
        frame = pd.DataFrame({
            "dimension": dim, "value": pd.Series(list(values), dtype=object), "share_a": share_a,
            "share_b": share_b, "change": change, "ci_low": ci_low, "ci_high": ci_high, "p_value": p,
            "significant": multiple_testing(p, alpha, correction), "records_a": records_a,
            "records_b": records_b,
        }, columns=COLUMNS)
        order = np.lexsort((np.arange(len(frame)), -np.abs(change)))  # stable: ties keep first-seen order
        frames.append(frame.iloc[order])

    # empty frames are left out of the concat (pandas warns on them); the first keeps dtypes when all are
    out = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    out = out.astype({"dimension": object, "value": object, "significant": bool,
                      "records_a": np.int64, "records_b": np.int64})
    out.attrs["left_out"] = left_out
    out.attrs.update(n_boot=n_boot, alpha=alpha, correction=correction, seed=seed)
    return out


def multiple_testing(p: np.ndarray, alpha: float, method: str) -> np.ndarray:
    """[m] bool rejections at family-wise (holm) or false-discovery (bh) level alpha; none: p ≤ alpha."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if method not in CORRECTIONS:
        raise ConfigError(f"correction must be one of {', '.join(CORRECTIONS)}, got {method!r}")
    if m == 0 or method == "none":
        return p <= alpha
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    rank = np.arange(1, m + 1)
    reject_sorted = np.zeros(m, dtype=bool)
    if method == "holm":
        # step-down: reject while p_(i) ≤ alpha / (m − i + 1), stop at the first that fails
        ok = ranked <= alpha / (m - rank + 1)
        n_reject = m if ok.all() else int(np.argmin(ok))
    else:
        # step-up: the largest k with p_(k) ≤ k·alpha/m rejects the k smallest
        ok = np.flatnonzero(ranked <= rank * alpha / m)
        n_reject = int(ok[-1]) + 1 if len(ok) else 0
    reject_sorted[:n_reject] = True
    out = np.empty(m, dtype=bool)
    out[order] = reject_sorted
    return out


# ---- what is held back ---------------------------------------------------------------------------------

def _dominated(counts: sp.csc_matrix, max_user_share: float) -> np.ndarray:
    """[V] bool: one user holds more than max_user_share of the value's records (counts: [U, V] csc)."""
    if counts.shape[1] == 0:
        return np.zeros(0, dtype=bool)
    top = counts.max(axis=0).toarray().ravel()  # [V] the heaviest user's records
    return top > max_user_share * _col_sums(counts)


def _variance_dominated(counts: sp.csc_matrix, totals: np.ndarray, max_share: float) -> np.ndarray:
    """[V] bool: one user of the value holds more than max_share of Σ_u (c_u − s·t_u)², the sum the share's
    bootstrap variance is made of (counts: [U, V] csc; totals: [U] records per user; s = C / N). Users
    without records of the value add s²·t_u² each (summed through Σ t_u²); they are not candidates, as
    their term tells only how much they wrote in all, of no value in particular."""
    n_values = counts.shape[1]
    if n_values == 0:
        return np.zeros(0, dtype=bool)
    totals = np.asarray(totals, np.float64)
    share = _col_sums(counts) / max(float(totals.sum()), 1.0)  # [V] as a fraction of the period's records
    column = np.repeat(np.arange(n_values), np.diff(counts.indptr))  # [nnz] the value of each entry
    t = totals[counts.indices]
    term = (counts.data - share[column] * t) ** 2  # [nnz] the users of each value
    inside = np.bincount(column, weights=term, minlength=n_values)
    outside = share ** 2 * (float((totals ** 2).sum()) - np.bincount(column, weights=t ** 2, minlength=n_values))
    top = np.zeros(n_values)
    np.maximum.at(top, column, term)
    return top > max_share * (inside + np.maximum(outside, 0.0))


def _protect_complement(shown: np.ndarray, periods: list[tuple[sp.csc_matrix, np.ndarray, np.ndarray]],
                        min_users: int, min_records: int) -> np.ndarray:
    """[V] bool shown mask after secondary suppression of each period's hidden part.

    periods: per period (counts [U, V] csc, codes [N] (−1 = missing), users [N]). A value hidden for one
    period is hidden in both, which grows the other period's hidden part: repeat until nothing changes.
    """
    shown = shown.copy()
    while True:
        before = shown.copy()
        for counts, codes, users in periods:
            shown &= _protect_period(shown, counts, codes, users, min_users, min_records)
        if (shown == before).all():
            return shown


def _protect_period(shown: np.ndarray, counts: sp.csc_matrix, codes: np.ndarray, users: np.ndarray,
                    min_users: int, min_records: int) -> np.ndarray:
    """[V] bool: `shown` less the smallest values `protect_groups` hides so that this period's hidden part
    (hidden values + missing records) pins no single value. Values without records here are no part."""
    size = _col_sums(counts).astype(np.int64)
    parts = np.flatnonzero(size > 0)  # an empty value hides nothing, so it must not count as a hidden part
    missing = codes < 0
    n_missing = int(missing.sum())
    missing_users = np.zeros(counts.shape[0], dtype=bool)
    missing_users[users[missing]] = True
    if n_missing >= min_records and int(missing_users.sum()) >= min_users:
        # Missing records that pass the floors could be shown as a value of their own: treat their count as
        # known (other tables may state it), so the held-back values alone must satisfy the rule.
        n_missing, missing_users[:] = 0, False

    def users_ok(_group: int, hidden: np.ndarray) -> bool:
        in_hidden = np.asarray(counts[:, parts[hidden]].sum(axis=1)).ravel() > 0
        return int((in_hidden | missing_users).sum()) >= min_users

    kept = protect_groups(np.zeros(len(parts), np.int64), size[parts], shown[parts], np.ones(1, bool),
                          min_records=min_records, users_ok=users_ok, extra_hidden=np.array([n_missing]),
                          known_hidden=np.array([int(n_missing > 0)]))
    out = shown.copy()
    out[parts] = kept
    return out


# ---- inputs -------------------------------------------------------------------------------------------

def _validate_share(max_user_share, name: str = "max_user_share") -> None:
    """A one-line ConfigError unless 0 < the share ≤ 1 (1 turns that dominance rule off)."""
    if (isinstance(max_user_share, bool) or not isinstance(max_user_share, (int, float, np.number))
            or not 0 < max_user_share <= 1):
        raise ConfigError(f"{name} must lie in (0, 1], got {max_user_share!r}")


def _validate(a, b, dimensions, min_users, min_records, n_boot, alpha, correction, seed) -> list[str]:
    """The dimension list; a one-line ConfigError / InputError for the first bad argument."""
    validate_privacy_params(min_users, min_records, None, seed)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 100:
        raise ConfigError(f"n_boot must be an integer >= 100, got {n_boot!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) or not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha!r}")
    if correction not in CORRECTIONS:
        raise ConfigError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    if isinstance(dimensions, str) or not isinstance(dimensions, Sequence):
        raise ConfigError(f"dimensions must be a list of column names, got {dimensions!r}")
    dims = list(dimensions)
    if not dims:
        raise ConfigError("dimensions is empty: name at least one column to compare")
    if len(set(dims)) != len(dims):
        raise ConfigError(f"dimensions names a column twice: {dims}")
    if USER in dims:
        raise ConfigError(f"'{USER}' is the resampling unit and cannot also be a dimension")
    for name, frame in (("a", a), ("b", b)):
        if not isinstance(frame, pd.DataFrame):
            raise InputError(f"period {name} must be a pandas DataFrame, got {type(frame).__name__}")
        if USER not in frame.columns:
            raise InputError(f"period {name} has no '{USER}' column")
        missing = [d for d in dims if d not in frame.columns]
        if missing:
            raise InputError(f"period {name} has no dimension column {missing[0]!r}")
        if len(frame) == 0:
            raise InputError(f"period {name} is empty (no records)")
    return dims


def _user_codes(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, int]:
    """[N] int64 user index per record and the number of distinct users; missing ids are an error."""
    try:
        codes, uniques = pd.factorize(frame[USER], use_na_sentinel=True)
    except TypeError as exc:
        raise InputError(f"period {name}: column '{USER}' holds unhashable ids ({exc})") from None
    n_missing = int((codes < 0).sum())
    if n_missing:
        raise InputError(f"period {name}: column '{USER}' has {n_missing} missing ids")
    return codes.astype(np.int64), len(uniques)


def _encode(col_a: pd.Series, col_b: pd.Series, dim: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Common value codes for both periods: values [V] object, codes_a [N_a], codes_b [N_b]; −1 = missing.

    Codes are numbered in first-seen order over a then b, so the output order is deterministic.
    """
    both = pd.concat([col_a.astype(object), col_b.astype(object)], ignore_index=True)
    try:
        codes, uniques = pd.factorize(both, use_na_sentinel=True)
    except TypeError as exc:  # lists, dicts: a value must be one hashable label
        raise InputError(f"dimension column {dim!r} holds unhashable values ({exc})") from None
    values = np.empty(len(uniques), dtype=object)
    values[:] = list(uniques)
    return values, codes[: len(col_a)].astype(np.int64), codes[len(col_a):].astype(np.int64)


def _user_value_counts(users: np.ndarray, codes: np.ndarray, n_users: int, n_values: int) -> sp.csc_matrix:
    """[U, V] csc float64 record counts; missing values (−1) are left out (they live in the totals)."""
    seen = codes >= 0
    data = np.ones(int(seen.sum()), dtype=np.float64)
    matrix = sp.coo_matrix((data, (users[seen], codes[seen])), shape=(n_users, n_values)).tocsc()
    matrix.sum_duplicates()  # so getnnz counts distinct users per value
    return matrix


def _col_sums(matrix: sp.spmatrix) -> np.ndarray:
    return np.asarray(matrix.sum(axis=0)).ravel()


# ---- bootstrap ----------------------------------------------------------------------------------------

def _bootstrap_changes(per_dim: list[tuple[sp.csr_matrix, sp.csr_matrix]], totals_a: np.ndarray,
                       totals_b: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    """Per dimension, [V_d, B] replicate changes (pp). per_dim: (counts_a [V_d, U_a], counts_b [V_d, U_b]).

    All dimensions share each replicate's draw of users, as they would share one resampled dataset.
    """
    rng_a, rng_b = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    out = [np.empty((c_a.shape[0], n_boot)) for c_a, _ in per_dim]
    n_users = max(len(totals_a), len(totals_b))
    step = max(1, min(n_boot, _CHUNK_ENTRIES // n_users))
    for start in range(0, n_boot, step):
        size = min(step, n_boot - start)
        w_a = _multinomial_weights(rng_a, len(totals_a), size)  # [U_a, size]
        w_b = _multinomial_weights(rng_b, len(totals_b), size)
        den_a = totals_a @ w_a  # [size] records in each replicate; ≥ 1 since every user has a record
        den_b = totals_b @ w_b
        for (c_a, c_b), dest in zip(per_dim, out):
            if c_a.shape[0]:
                dest[:, start:start + size] = 100.0 * ((c_b @ w_b) / den_b - (c_a @ w_a) / den_a)
    return out


def _multinomial_weights(rng: np.random.Generator, n_users: int, size: int) -> np.ndarray:
    """[U, size] float64: how often each user is drawn when U users are drawn with replacement."""
    out = np.empty((n_users, size))
    # 64 replicates at a time: each replicate's counts fill one U-long row (the scatter stays in cache),
    # then the small block is transposed into the [U, size] layout the sparse product reads
    for start in range(0, size, 64):
        k = min(64, size - start)
        dtype = np.int32 if k * n_users < 2**31 else np.int64
        picks = rng.integers(0, n_users, size=(k, n_users), dtype=dtype)
        picks += (np.arange(k, dtype=dtype) * n_users)[:, None]
        counts = np.bincount(picks.ravel(), minlength=k * n_users).reshape(k, n_users)
        out[:, start:start + k] = counts.T
    return out


def _p_values(change: np.ndarray, boot: np.ndarray) -> np.ndarray:
    """[V] two-sided p for change = 0: 2·Φ(−|change| / sd of the replicates).

    The bootstrap supplies the standard error; a normal tail turns it into p. Counting replicates on
    the far side of 0 instead cannot go below ~2/(B + 1), which Holm across hundreds of values (alpha/m
    ≈ 0.0003 for 200) could never reach with B = 1000. A zero spread (every replicate equal) gives p = 1
    for no change and 0 otherwise.
    """
    if boot.shape[0] == 0:
        return np.empty(0)
    se = boot.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(change) / se
    z = np.where(se > 0, z, np.where(change == 0, 0.0, np.inf))
    return np.minimum(1.0, 2.0 * ndtr(-z))
