"""Period comparison (clio_engine.economic.compare): shares against pandas, the privacy floors, calibration
under no change, power for planted shifts, interval coverage, and why users (not records) are resampled.

All data is drawn here with numpy. Users are "loyal": each has a favourite value that many of their
records repeat, so records of one user are correlated, as in real usage; a record's marginal distribution
is still exactly `probs`, which makes the true share of a value known.
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from clio_engine.economic.compare import COLUMNS, compare_periods, multiple_testing
from clio_engine.errors import ConfigError, InputError

pytestmark = pytest.mark.unit


def zipf_probs(n_values: int, exponent: float = 0.7, missing: float = 0.0) -> np.ndarray:
    """[n_values + 1]: Zipf-like value probabilities; the last entry is the missing value's."""
    p = 1.0 / np.arange(1, n_values + 1) ** exponent
    return np.append((1 - missing) * p / p.sum(), missing)


def draw_period(rng, probs, n_users, mean_records, loyalty, user_prefix=None, column="cluster"):
    """One row per record: user ids (ints, or strings with a prefix) and value names v000.. (None = missing).

    Each user writes 1 + Poisson(mean − 1) records; each record repeats the user's favourite (drawn from
    probs) with probability `loyalty`, otherwise it is a fresh draw from probs.
    """
    n_records = 1 + rng.poisson(mean_records - 1, n_users)
    user = np.repeat(np.arange(n_users), n_records)
    favourite = rng.choice(len(probs), n_users, p=probs)[user]
    fresh = rng.choice(len(probs), len(user), p=probs)
    code = np.where(rng.random(len(user)) < loyalty, favourite, fresh)
    names = np.array([f"v{i:03d}" for i in range(len(probs) - 1)] + [None], dtype=object)
    ids = user if user_prefix is None else np.array([f"{user_prefix}{u}" for u in user], dtype=object)
    return pd.DataFrame({"user": ids, column: names[code]})


def naive_record_interval(count_a, n_a, count_b, n_b, rng, n_boot=2000, alpha=0.05):
    """Percentile interval (pp) of a share change when records, not users, are resampled."""
    boot_a = rng.binomial(n_a, count_a / n_a, n_boot) / n_a
    boot_b = rng.binomial(n_b, count_b / n_b, n_boot) / n_b
    return np.quantile(100 * (boot_b - boot_a), [alpha / 2, 1 - alpha / 2])


# ---- exact numbers ------------------------------------------------------------------------------------

def test_shares_changes_and_counts_match_pandas():
    rng = np.random.default_rng(1)
    frames = []
    for n in (3000, 2500):
        frames.append(pd.DataFrame({
            "user": rng.integers(0, 400, n),
            "cluster": rng.choice(["alpha", "beta", "gamma", "delta", None], n, p=[.4, .3, .15, .1, .05]),
            "collaboration": rng.choice([1, 2, 3, np.nan], n, p=[.5, .3, .15, .05]),
            "country": rng.choice(["US", "NA", "FR", None], n, p=[.5, .2, .2, .1]),  # "NA" is Namibia
        }))
    a, b = frames
    dims = ["country", "cluster", "collaboration"]
    out = compare_periods(a, b, dimensions=dims, min_users=20, min_records=30, n_boot=200, seed=3)

    assert list(out.columns) == COLUMNS
    for dim in dims:
        counts_a = a[dim].value_counts()  # pandas drops NaN/None here; the denominator keeps them
        counts_b = b[dim].value_counts()
        ref = pd.DataFrame({"records_a": counts_a, "records_b": counts_b}).dropna().astype(int)
        ref["share_a"] = 100 * ref.records_a / len(a)
        ref["share_b"] = 100 * ref.records_b / len(b)
        got = out[out.dimension == dim].set_index("value")
        assert sorted(got.index, key=str) == sorted(ref.index, key=str)
        ref = ref.loc[got.index]
        np.testing.assert_array_equal(got.records_a, ref.records_a)
        np.testing.assert_array_equal(got.records_b, ref.records_b)
        np.testing.assert_allclose(got.share_a, ref.share_a, rtol=1e-12)
        np.testing.assert_allclose(got.share_b, ref.share_b, rtol=1e-12)
        np.testing.assert_allclose(got.change, ref.share_b - ref.share_a, rtol=1e-12, atol=1e-12)
        assert (np.diff(np.abs(got.change.to_numpy())) <= 0).all(), "not sorted by |change| descending"
        assert not got.index.isna().any()
    # dimensions come in the order asked for, each block contiguous
    assert list(dict.fromkeys(out.dimension)) == dims
    assert "NA" in set(out[out.dimension == "country"].value), "Namibia must not be read as missing"
    assert (out.ci_low <= out.ci_high).all() and out.p_value.between(0, 1).all()
    assert out.attrs["left_out"] == {d: 0 for d in dims}


def test_same_seed_same_result_other_seed_other_intervals():
    rng = np.random.default_rng(2)
    probs = zipf_probs(30, missing=0.05)
    a, b = draw_period(rng, probs, 500, 4, 0.5), draw_period(rng, probs, 500, 4, 0.5, "u")
    kw = dict(dimensions=["cluster"], min_users=5, min_records=5, n_boot=300)
    first, again = compare_periods(a, b, seed=7, **kw), compare_periods(a, b, seed=7, **kw)
    pd.testing.assert_frame_equal(first, again)
    other = compare_periods(a, b, seed=8, **kw)
    np.testing.assert_array_equal(first.change, other.change)
    assert not np.allclose(first.ci_low, other.ci_low)


# ---- privacy floors -----------------------------------------------------------------------------------

def _records(value, users_and_counts):
    return [(u, value) for u, k in users_and_counts for _ in range(k)]


def test_values_under_the_floors_never_appear_and_are_counted():
    min_users, min_records = 3, 6
    fill_a = _records("filler", [(100 + i, 3) for i in range(10)])
    fill_b = _records("filler", [(200 + i, 3) for i in range(10)])
    a = (fill_a + _records("at_floor", [(1, 2), (2, 2), (3, 2)])        # exactly 3 users, 6 records
         + _records("few_users", [(1, 10), (2, 10)])                     # 2 users
         + _records("few_records", [(4, 1), (5, 1), (6, 1), (7, 1), (8, 1)])  # 5 records
         + _records("only_a", [(1, 3), (2, 3), (3, 3)])
         + _records("fails_in_b", [(4, 3), (5, 3), (6, 3)])
         + _records(None, [(9, 40)]))                                     # missing: denominator only
    b = (fill_b + _records("at_floor", [(11, 2), (12, 2), (13, 2)])
         + _records("few_users", [(11, 10), (12, 10)])
         + _records("few_records", [(11, 3), (12, 3), (13, 3)])         # passes here, not in a
         + _records("only_b", [(14, 6), (15, 6), (16, 6)])
         + _records("fails_in_b", [(14, 2), (15, 2)])
         + _records(None, [(17, 5)]))
    a = pd.DataFrame(a, columns=["user", "task"])
    b = pd.DataFrame(b, columns=["user", "task"])
    out = compare_periods(a, b, dimensions=["task"], min_users=min_users, min_records=min_records, n_boot=100)

    def passing(frame):
        g = frame.dropna().groupby("task").user.agg(["nunique", "size"])
        return set(g.index[(g["nunique"] >= min_users) & (g["size"] >= min_records)])

    reported = passing(a) & passing(b)
    every_value = set(a.task.dropna()) | set(b.task.dropna())
    assert set(out.value) == reported == {"filler", "at_floor"}
    assert out.attrs["left_out"] == {"task": len(every_value - reported)} == {"task": 5}
    # the missing records still count in each period's denominator
    row = out.set_index("value").loc["at_floor"]
    assert row.share_a == pytest.approx(100 * 6 / len(a)) and row.share_b == pytest.approx(100 * 6 / len(b))


def test_nothing_passes_gives_an_empty_table_with_the_columns():
    a = pd.DataFrame({"user": [1, 2], "cluster": ["x", "y"]})
    out = compare_periods(a, a.copy(), dimensions=["cluster"], min_users=5, min_records=5, n_boot=100)
    assert list(out.columns) == COLUMNS and len(out) == 0
    assert out.attrs["left_out"] == {"cluster": 2}


# ---- calibration and power ----------------------------------------------------------------------------

NULL_KW = dict(dimensions=["cluster"], min_users=5, min_records=10, n_boot=1000)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_no_change_flags_at_most_the_expected_false_positives(seed):
    rng = np.random.default_rng(seed)
    probs = zipf_probs(200, missing=0.1)
    a = draw_period(rng, probs, 3000, 6, 0.5)
    b = draw_period(rng, probs, 3000, 6, 0.5, user_prefix="b")
    out = compare_periods(a, b, seed=seed, **NULL_KW)
    tested = len(out)
    assert tested >= 180  # of 200: a few tail values that one loyal user dominates are held back
    # Holm keeps the chance of any false flag at 5%: with these seeds, none
    assert int(out.significant.sum()) == 0
    # uncorrected, about alpha of the values fall below 0.05 (binomial(≈200, .05): mean 10, sd ≈ 3.1)
    raw = int((out.p_value <= 0.05).sum())
    assert 2 <= raw <= 22, f"{raw} of {tested} values with p ≤ 0.05 under no change"


def test_planted_shifts_are_exactly_the_ones_flagged():
    planted = ["v005", "v015", "v030"]
    probs_a = zipf_probs(200, missing=0.2)
    probs_b = probs_a.copy()
    idx = [5, 15, 30]
    probs_b[idx] *= 2
    probs_b[-1] -= probs_a[idx].sum()  # the extra mass comes from missing, so no other share moves
    for seed in (21, 22):
        rng = np.random.default_rng(seed)
        a = draw_period(rng, probs_a, 4000, 6, 0.5)
        b = draw_period(rng, probs_b, 4000, 6, 0.5, user_prefix="b")
        out = compare_periods(a, b, seed=seed, **NULL_KW)
        flagged = out[out.significant]
        assert sorted(flagged.value) == planted, f"seed {seed}: flagged {sorted(flagged.value)}"
        assert (flagged.ci_low > 0).all()
        # the reported change estimates the planted one (true change = p_a in pp), within a few SEs
        true = 100 * probs_a[idx]
        got = flagged.set_index("value").loc[planted]
        np.testing.assert_allclose(got.change, true, atol=0.5)
        assert ((got.ci_low < true) & (true < got.ci_high)).sum() >= 2


def test_one_heavy_user_is_not_a_significant_change():
    """Period b has one user with 300 records of v000: records say +2.7 pp, users say it is one person."""
    rng = np.random.default_rng(31)
    probs = np.append(np.full(20, 1 / 20), 0.0)
    a = draw_period(rng, probs, 2000, 5, 0.0)
    b = draw_period(rng, probs, 2000, 5, 0.0, user_prefix="b")
    b = pd.concat([b, pd.DataFrame({"user": ["heavy"] * 300, "cluster": ["v000"] * 300})], ignore_index=True)
    held = compare_periods(a, b, dimensions=["cluster"], min_users=5, min_records=10, seed=31)
    assert "v000" not in set(held.value)  # by default: the heavy user is most of its variance (the interval says 300)
    out = compare_periods(a, b, dimensions=["cluster"], min_users=5, min_records=10, seed=31,
                          max_user_variance_share=1.0)  # the statistics, with that privacy rule off
    row = out.set_index("value").loc["v000"]
    assert row.change > 2.0
    assert not row.significant and row.ci_low < 0 < row.ci_high and row.p_value > 0.1

    low, high = naive_record_interval(row.records_a, len(a), row.records_b, len(b), rng)
    assert low > 0, "resampling records would call this change real"
    assert (high - low) < 0.3 * (row.ci_high - row.ci_low)
    # without the heavy user's records the user-level interval is of the record-level width again
    b_light = b[b.user != "heavy"]
    light = compare_periods(a, b_light, dimensions=["cluster"], min_users=5, min_records=10, seed=31)
    light_row = light.set_index("value").loc["v000"]
    assert light_row.ci_high - light_row.ci_low < 1.5 * (high - low)


def test_intervals_cover_the_true_change_about_95_percent():
    probs_a = np.array([.30, .20, .15, .12, .10, .08, .05, 0.0])
    probs_b = np.array([.25, .22, .15, .10, .12, .06, .05, .05])  # last entry: missing
    true = 100 * (probs_b[:-1] - probs_a[:-1])
    covered = total = 0
    rng = np.random.default_rng(41)
    for rep in range(150):
        a = draw_period(rng, probs_a, 400, 5, 0.6)
        b = draw_period(rng, probs_b, 400, 5, 0.6, user_prefix="b")
        out = compare_periods(a, b, dimensions=["cluster"], min_users=1, min_records=1, n_boot=400,
                              correction="none", seed=rep)
        idx = out.value.str[1:].astype(int).to_numpy()
        covered += int(((out.ci_low <= true[idx]) & (true[idx] <= out.ci_high)).sum())
        total += len(out)
    coverage = covered / total
    assert total >= 150 * 7
    assert 0.92 <= coverage <= 0.98, f"coverage {coverage:.3f} over {total} intervals"


# ---- corrections --------------------------------------------------------------------------------------

def _holm_reference(p, alpha):
    order = sorted(range(len(p)), key=lambda i: p[i])
    reject = [False] * len(p)
    for step, i in enumerate(order):
        if p[i] > alpha / (len(p) - step):
            break
        reject[i] = True
    return reject


def _bh_reference(p, alpha):
    ranked = sorted(p)
    k = max([r for r in range(1, len(p) + 1) if ranked[r - 1] <= r * alpha / len(p)], default=0)
    cut = ranked[k - 1] if k else -1.0
    return [x <= cut for x in p]


@pytest.mark.parametrize("seed", range(5))
def test_corrections_match_their_definitions(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 0.01, 6), rng.uniform(0, 1, 40), [0.003, 0.003]]).round(4)
    rng.shuffle(p)
    assert multiple_testing(p, 0.05, "holm").tolist() == _holm_reference(p.tolist(), 0.05)
    assert multiple_testing(p, 0.05, "bh").tolist() == _bh_reference(p.tolist(), 0.05)
    assert multiple_testing(p, 0.05, "none").tolist() == (p <= 0.05).tolist()


def test_correction_is_applied_per_dimension():
    rng = np.random.default_rng(5)
    probs = zipf_probs(40, missing=0.0)
    a = draw_period(rng, probs, 1500, 4, 0.3)
    b = draw_period(rng, zipf_probs(40, exponent=0.6), 1500, 4, 0.3, "b")
    a["task"] = a.cluster.str[:3]  # a second dimension with fewer values (v00, v01, ...)
    b["task"] = b.cluster.str[:3]
    for correction in ("holm", "bh", "none"):
        out = compare_periods(a, b, dimensions=["cluster", "task"], min_users=5, min_records=5, n_boot=300,
                              correction=correction, alpha=0.1)
        for _, block in out.groupby("dimension"):
            np.testing.assert_array_equal(block.significant,
                                          multiple_testing(block.p_value.to_numpy(), 0.1, correction))
    assert out.significant.any(), "a flatter distribution in b should move some shares"


# ---- errors -------------------------------------------------------------------------------------------

GOOD = pd.DataFrame({"user": [1, 2, 3], "cluster": ["x", "y", "x"]})


@pytest.mark.parametrize("change, error, words", [
    (dict(a=GOOD.drop(columns="user")), InputError, "period a has no 'user' column"),
    (dict(b=GOOD.drop(columns="cluster")), InputError, "period b has no dimension column 'cluster'"),
    (dict(a=GOOD.iloc[:0]), InputError, "period a is empty"),
    (dict(b=GOOD.assign(user=[1, None, 3])), InputError, "period b: column 'user' has 1 missing ids"),
    (dict(a=GOOD.assign(cluster=[["x"], ["y"], ["x"]])), InputError, "'cluster' holds unhashable values"),
    (dict(alpha=0.0), ConfigError, "alpha must lie in (0, 1)"),
    (dict(alpha=1.5), ConfigError, "alpha must lie in (0, 1)"),
    (dict(n_boot=99), ConfigError, "n_boot must be an integer >= 100"),
    (dict(correction="bonferroni"), ConfigError, "correction must be one of holm, bh, none"),
    (dict(dimensions="cluster"), ConfigError, "dimensions must be a list"),
    (dict(dimensions=[]), ConfigError, "dimensions is empty"),
    (dict(min_users=-1), ConfigError, "min_users must be an integer >= 0"),
])
def test_bad_input_is_one_line_error(change, error, words):
    kw = dict(a=GOOD, b=GOOD, dimensions=["cluster"], min_users=1, min_records=1, n_boot=100)
    kw.update(change)
    with pytest.raises(error) as info:
        compare_periods(kw.pop("a"), kw.pop("b"), **kw)
    assert words in str(info.value) and "\n" not in str(info.value)


# ---- scale --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_100k_records_2k_values_1000_replicates():
    """Scale only (how fast is benchmarks/economic_layer.py's business, not a test's)."""
    rng = np.random.default_rng(51)
    probs = zipf_probs(2000, exponent=0.5, missing=0.02)
    a = draw_period(rng, probs, 20_000, 5, 0.3)
    b = draw_period(rng, probs, 20_000, 5, 0.3, user_prefix="b")
    out = compare_periods(a, b, dimensions=["cluster"], min_users=5, min_records=5, n_boot=1000)
    assert len(a) > 95_000 and len(out) > 1900
    assert np.isfinite(out[["ci_low", "ci_high", "p_value"]].to_numpy()).all()
    assert (out.ci_low <= out.ci_high).all()
