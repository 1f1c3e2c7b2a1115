"""Publication thresholds (SPEC §4): published flags, Other roll-ups and noisy counts against a pandas reference."""
import numpy as np
import pandas as pd
import pytest

from clio_engine.errors import ConfigError, InputError
from clio_engine.privacy import LevelPublication, publish
from clio_engine.privacy.thresholds import meets_thresholds

pytestmark = pytest.mark.unit


def random_tree(seed, sizes=(60, 12, 4), n_records=4000, n_users=300, noise_share=0.05):
    """Labels of every level derived from random parents; skewed cluster sizes and user activity so that
    some clusters fall under the floors and users repeat within clusters."""
    rng = np.random.default_rng(seed)
    parents = [rng.integers(0, n_up, n) for n, n_up in zip(sizes[:-1], sizes[1:])]
    parents.append(np.full(sizes[-1], -1))
    weights = rng.pareto(1.0, sizes[0]) + 0.05
    base = rng.choice(sizes[0], n_records, p=weights / weights.sum())
    base[rng.random(n_records) < noise_share] = -1
    labels = [base]
    for parent in parents[:-1]:
        labels.append(np.where(labels[-1] >= 0, parent[np.maximum(labels[-1], 0)], -1))
    activity = 1.0 / np.arange(1, n_users + 1)
    users = rng.choice(n_users, n_records, p=activity / activity.sum())
    return labels, parents, users


def reference(labels, parents, users, min_users, min_records):
    """Straightforward pandas/python: groupby size + nunique per node, top-down flags, Other per parent."""
    df = pd.DataFrame({"user": users, **{f"l{i}": lab for i, lab in enumerate(labels)}})
    top = len(parents) - 1
    out = [None] * len(parents)
    for level in range(top, -1, -1):
        col = f"l{level}"
        rows = df[df[col] >= 0]
        n = len(parents[level])
        grouped = rows.groupby(col)["user"]
        records = grouped.size().reindex(range(n), fill_value=0).to_numpy()
        n_users = grouped.nunique().reindex(range(n), fill_value=0).to_numpy()
        parent_of = parents[level] if level < top else np.zeros(n, dtype=int)
        parent_pub = out[level + 1]["published"] if level < top else [True]
        published = np.array([n_users[i] >= min_users and records[i] >= min_records and parent_pub[parent_of[i]]
                              for i in range(n)])
        m = len(parent_pub)
        o_rec, o_usr, o_pub = np.zeros(m, int), np.zeros(m, int), np.zeros(m, bool)
        for p in range(m):
            hidden = [i for i in range(n) if not published[i] and parent_of[i] == p]
            sub = rows[rows[col].isin(hidden)]
            o_rec[p], o_usr[p] = len(sub), sub["user"].nunique()
            o_pub[p] = bool(hidden) and parent_pub[p] and o_usr[p] >= min_users and o_rec[p] >= min_records
        out[level] = dict(records=records, users=n_users, published=published,
                          other_records=o_rec, other_users=o_usr, other_published=o_pub)
    return out


def one_level(counts, overlap=False):
    """Single (top) level: counts = [(n_users, n_records), ...] per node → labels, parents, users.
    With overlap every node draws from the same user codes 0.., else from disjoint ranges."""
    labels, users, offset = [], [], 0
    for node, (n_users, n_records) in enumerate(counts):
        labels += [node] * n_records
        users += [offset + i % n_users for i in range(n_records)]
        offset += 0 if overlap else n_users
    return [np.array(labels)], [np.full(len(counts), -1)], np.array(users)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pandas_reference_on_random_tree(seed):
    labels, parents, users = random_tree(seed)
    got = publish(labels, parents, users, min_users=8, min_records=40, secondary=False)  # reference: primary only
    want = reference(labels, parents, users, 8, 40)
    assert len(got) == 3 and all(isinstance(g, LevelPublication) for g in got)
    # The case must exercise both outcomes, or agreement proves little.
    assert 0 < got[0].published.sum() < len(parents[0])
    assert got[0].other_records.sum() > 0
    for level, (g, w) in enumerate(zip(got, want)):
        for key in ("records", "users", "published", "other_records", "other_users", "other_published"):
            np.testing.assert_array_equal(getattr(g, key), w[key], err_msg=f"level {level} {key}")
        np.testing.assert_array_equal(g.reported_records, g.records)  # no epsilon → no noise
        np.testing.assert_array_equal(g.reported_users, g.users)
        np.testing.assert_array_equal(g.reported_other_records, g.other_records)
        assert g.records.dtype == np.int64 and g.users.dtype == np.int64 and g.published.dtype == bool
    assert [len(g.other_records) for g in got] == [12, 4, 1]  # per parent; one root bucket at the top


def test_threshold_is_inclusive_at_the_floor():
    labels, parents, users = one_level([(5, 15), (4, 15), (5, 14), (4, 14)])
    pub = publish(labels, parents, users, min_users=5, min_records=15)[0]
    np.testing.assert_array_equal(pub.published, [True, False, False, False])


def test_other_bucket_counts_the_union_of_users_not_their_sum():
    # Nodes 1 and 2 fail; they share user codes 0..3, so their union has 4 users, not 8.
    labels, parents, users = one_level([(10, 30), (4, 12), (4, 12)], overlap=True)
    pub = publish(labels, parents, users, min_users=5, min_records=15, secondary=False)[0]
    np.testing.assert_array_equal(pub.published, [True, False, False])
    assert pub.other_records.tolist() == [24] and pub.other_users.tolist() == [4]
    assert not pub.other_published[0]  # 24 records but only 4 users
    # Secondary suppression: total − 30 would give the 4-user bucket's 24 records, so node 0 is hidden too.
    pub = publish(labels, parents, users, min_users=5, min_records=15)[0]
    np.testing.assert_array_equal(pub.published, [False, False, False])
    np.testing.assert_array_equal(pub.primary_published, [True, False, False])
    pub = publish(labels, parents, users, min_users=4, min_records=12)[0]
    np.testing.assert_array_equal(pub.published, [True, True, True])
    assert pub.other_records.tolist() == [0] and not pub.other_published[0]  # nothing hidden: no bucket


def test_other_bucket_published_when_union_passes():
    labels, parents, users = one_level([(20, 40), (3, 10), (3, 10)])  # disjoint users: union 6, 20 records
    pub = publish(labels, parents, users, min_users=5, min_records=15)[0]
    assert pub.other_users.tolist() == [6] and pub.other_records.tolist() == [20]
    assert pub.other_published.tolist() == [True]


def test_noise_records_are_ignored():
    labels, parents, users = random_tree(3)
    extra = 500
    noisy_labels = [np.concatenate([lab, np.full(extra, -1)]) for lab in labels]
    noisy_users = np.concatenate([users, np.arange(10_000, 10_000 + extra)])  # users seen nowhere else
    a = publish(labels, parents, users, min_users=8, min_records=40)
    b = publish(noisy_labels, parents, noisy_users, min_users=8, min_records=40)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.users, y.users)
        np.testing.assert_array_equal(x.records, y.records)
        np.testing.assert_array_equal(x.other_users, y.other_users)


def chain_tree(n_nodes=20, n_users=5, n_records=15):
    """Two levels, each base node the only child of its own parent, every node exactly at the floor."""
    labels0, parents, users = one_level([(n_users, n_records)] * n_nodes)
    parents = [np.arange(n_nodes), np.full(n_nodes, -1)]
    return [labels0[0], labels0[0].copy()], parents, users


def test_parent_unpublished_forces_child_unpublished_under_noise():
    labels, parents, users = chain_tree()
    overruled = 0
    for seed in range(10):
        base, top = publish(labels, parents, users, min_users=5, min_records=15, epsilon=0.5, seed=seed)
        assert not (base.published & ~top.published[parents[0]]).any()
        own = meets_thresholds(base.reported_users, base.reported_records, 5, 15)
        overruled += int((own & ~base.published).sum())
        # Other in an unpublished parent is never shown: it would name that parent.
        assert not (base.other_published & ~top.published).any()
    # True counts are identical on both levels, so only noise can make a child pass where its parent
    # fails: the top-down rule must have overruled some children's own verdicts.
    assert overruled > 0


def test_noise_is_deterministic_per_seed_and_differs_across_seeds():
    labels, parents, users = random_tree(4)
    run = lambda seed: publish(labels, parents, users, min_users=8, min_records=40, epsilon=0.2, seed=seed)
    a, b, c = run(7), run(7), run(8)
    for x, y in zip(a, b):
        for key in ("reported_records", "reported_users", "published", "reported_other_records", "other_published"):
            np.testing.assert_array_equal(getattr(x, key), getattr(y, key))
    assert any((x.reported_records != z.reported_records).any() for x, z in zip(a, c))


# The noise's scale against the declared one (KS over 250 seeds): tests/test_noise.py.


def test_decisions_follow_noised_counts():
    labels, parents, users = random_tree(5)
    for level in publish(labels, parents, users, min_users=8, min_records=40, epsilon=0.3, seed=1):
        own = meets_thresholds(level.reported_users, level.reported_records, 8, 40)
        assert not (level.published & ~own).any()
    clipped = publish(*one_level([(1, 1)] * 200), min_users=0, min_records=0, epsilon=0.01)[0]
    assert (clipped.reported_records >= 0).all() and (clipped.reported_records == 0).any()


def test_huge_epsilon_reports_true_counts():
    labels, parents, users = random_tree(6)
    for level in publish(labels, parents, users, min_users=8, min_records=40, epsilon=1e9):
        np.testing.assert_array_equal(level.reported_records, level.records)
        np.testing.assert_array_equal(level.reported_users, level.users)


def _bad(kind):
    labels, parents, users = random_tree(0, sizes=(6, 2), n_records=50)
    if kind == "levels":
        return labels, parents[:1], users
    if kind == "length":
        return labels, parents, users[:-1]
    if kind == "label_high":
        labels[0] = labels[0].copy(); labels[0][3] = 6
    if kind == "label_low":
        labels[0] = labels[0].copy(); labels[0][3] = -2
    if kind == "parent_range":
        parents[0] = parents[0].copy(); parents[0][0] = 2
    if kind == "top_parent":
        parents[1] = np.array([-1, 0])
    if kind == "inconsistent":
        labels[1] = labels[1].copy(); i = int(np.flatnonzero(labels[1] >= 0)[0]); labels[1][i] = 1 - labels[1][i]
    if kind == "float_labels":
        labels[0] = labels[0].astype(float)
    if kind == "negative_user":
        users = users.copy(); users[0] = -1
    return labels, parents, users


@pytest.mark.parametrize("kind,words", [
    ("levels", "levels"), ("length", "records"), ("label_high", "outside [-1, 6)"), ("label_low", "outside"),
    ("parent_range", "parents[0]"), ("top_parent", "all -1"), ("inconsistent", "disagrees"),
    ("float_labels", "integers"), ("negative_user", "user_codes"),
])
def test_bad_input_raises_one_line_input_error(kind, words):
    labels, parents, users = _bad(kind)
    with pytest.raises(InputError) as err:
        publish(labels, parents, users, min_users=5, min_records=15)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs,name", [
    (dict(min_users=-1, min_records=15), "min_users"), (dict(min_users=5, min_records=1.5), "min_records"),
    (dict(min_users=5, min_records=15, epsilon=0), "epsilon"),
    (dict(min_users=5, min_records=15, epsilon=float("nan")), "epsilon"),
    (dict(min_users=5, min_records=15, seed=-1), "seed"),
])
def test_bad_parameters_raise_config_error(kwargs, name):
    labels, parents, users = random_tree(0, sizes=(6, 2), n_records=50)
    with pytest.raises(ConfigError, match=name):
        publish(labels, parents, users, **kwargs)
