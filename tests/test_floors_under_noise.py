"""The floors are a promise about people (SPEC §4): no published node, "Other" bucket or facet cell, and no
difference of published numbers, stands for fewer than `min_users` users or `min_records` records.

A (review dec2, F2): with `privacy.epsilon` the floors were applied to the noised counts only; the noise scale
dwarfs the floors, so nodes and cells of one user were published. Now the exact counts must pass too.
B (review dec2, F3): a parent's facet cell minus its children's shown cells of that value (and a value's
whole-run total minus the top level's shown cells) was checked on records only: 15 records of ONE user were
published as a difference. Now the hidden part needs ≥ min_users distinct users as well."""
from __future__ import annotations

import numpy as np

from clio_engine.aggregate.facets import facet_cells_tree, facet_table
from clio_engine.privacy import publish
from clio_engine.privacy.noise import plan_noise

FLOORS = dict(min_users=5, min_records=15)


def _true_counts(mask: np.ndarray, users: np.ndarray) -> tuple[int, int]:
    return int(mask.sum()), len(np.unique(users[mask]))


# ---- A: floors on exact counts as well as noised ones ----------------------------------------------------

def _tiny_and_big_tree():
    """Two levels. Top: 2 nodes. Base: 10 big nodes (30 users × 4 records) and 80 tiny ones (one user, 2
    records each), alternating between the two parents. Each user sits in one node."""
    labels0, users = [], []
    user = 0
    for node in range(90):
        n_users, per_user = (30, 4) if node < 10 else (1, 2)
        for _ in range(n_users):
            labels0 += [node] * per_user
            users += [user] * per_user
            user += 1
    labels0, users = np.array(labels0), np.array(users)
    parent0 = np.arange(90) % 2
    return [labels0, parent0[labels0]], [parent0, np.array([-1, -1])], users


def test_noised_publish_never_shows_a_node_or_other_bucket_below_the_floors_in_truth():
    labels, parents, users = _tiny_and_big_tree()
    pubs = publish(labels, parents, users, epsilon=1.0, seed=3, **FLOORS)
    for level, pub in enumerate(pubs):
        for node in np.flatnonzero(pub.published):
            records, n_users = _true_counts(labels[level] == node, users)
            assert records >= 15 and n_users >= 5, (level, node, records, n_users, pub.reported_records[node])
        # "Other in X": the union of X's hidden children
        group = parents[level] if level < len(pubs) - 1 else np.zeros(len(pub.published), np.int64)
        for g in np.flatnonzero(pub.other_published):
            hidden_nodes = np.flatnonzero((group == g) & ~pub.published)
            records, n_users = _true_counts(np.isin(labels[level], hidden_nodes), users)
            assert records >= 15 and n_users >= 5, (level, g, records, n_users)
    assert pubs[1].published.all() and pubs[0].published[:10].sum() >= 5  # big nodes still get through


def _facet_data():
    """One published node of 160 users; 10 common values (10 users × 4 records each) and 60
    rare values of one user with 2 records each."""
    values, users = [], []
    user = 0
    for v in range(10):
        for _ in range(10):
            values += [f"c{v}"] * 4
            users += [user] * 4
            user += 1
    for v in range(60):
        values += [f"r{v}"] * 2
        users += [user] * 2
        user += 1
    return np.array(values, dtype=object), np.array(users)


def test_noised_facet_cells_are_shown_only_when_their_exact_counts_pass():
    values, users = _facet_data()
    labels = [np.zeros(len(users), np.int64)]
    plan = plan_noise(1.0, 2, n_levels=1, facets=("v",))
    pubs = publish(labels, [np.array([-1])], users, noise=plan, seed=5, **FLOORS)
    cells = facet_cells_tree(labels, [np.array([True])], [np.array([-1])], values, users, facet="v", noise=plan,
                             seed=5, node_sizes=[pubs[0].reported_records], **FLOORS)
    shown = facet_table(cells[0]).to_pandas().query("not suppressed")
    assert len(shown)  # common values can still be shown
    for row in shown.itertuples():
        records, n_users = _true_counts(values == row.value, users)
        assert records >= 15 and n_users >= 5, (row.value, row.records, records, n_users)


# ---- B: differences across levels need min_users users ---------------------------------------------------

def _shown_keys(cells) -> set[tuple[int, str]]:
    return {(int(n), str(cells.names[v])) for n, v, s in zip(cells.node, cells.value, cells.shown) if s}


def _differences_from_few_users(labels, parents, values, users, cells, min_users=5):
    """Every published difference across levels — a shown parent cell (P, v), or v's whole-run total, minus
    the shown cells of v one level down — whose records come from fewer than min_users users (and are > 0)."""
    found = []
    top = len(labels) - 1
    for level in range(top + 1):
        below = _shown_keys(cells[level])
        if level < top:
            wholes = [(labels[level + 1] == p) & (values == v) for p, v in _shown_keys(cells[level + 1])]
            names = list(_shown_keys(cells[level + 1]))
        else:
            names = [("run", v) for v in np.unique(values)]
            wholes = [(labels[top] >= 0) & (values == v) for _, v in names]
        for (p, v), whole in zip(names, wholes):
            rest = whole & ~np.array([(int(c), str(x)) in below for c, x in zip(labels[level], values)])
            # nothing shown below: the difference is the whole (a shown cell, or a total taken as known)
            if rest.any() and rest.sum() < whole.sum() and len(np.unique(users[rest])) < min_users:
                found.append((level, p, v, int(rest.sum()), len(np.unique(users[rest]))))
    return found


def _node_with_cover(node: int, heavy_value: str, heavy_records: int, first_user: int):
    """A node's records: 40 of "X" (10 users), five rare values of one user × 3 records each (so its own
    suppressed row is already ≥ 15 records / 5 users), and `heavy_records` of `heavy_value` from user 999."""
    values, users = [], []
    for u in range(10):
        values += ["X"] * 4
        users += [first_user + u] * 4
    for k in range(5):
        values += [f"rare{node}_{k}"] * 3
        users += [first_user + 10 + k] * 3
    values += [heavy_value] * heavy_records
    users += [999] * heavy_records
    return [node] * len(values), values, users


def _heavy_user_tree():
    """Parent P with children c0, c1, c2 (all published). (c0, ZZ) = 15 records / 5 users, shown; user 999
    holds 8 ZZ records in c1 and 7 in c2 (hidden cells). (P, ZZ) = 30 / 6, shown, so (P, ZZ) − (c0, ZZ) = 15
    records of one user."""
    labels0, values, users = [], [], []
    for u in range(5):
        labels0 += [0] * 3
        values += ["ZZ"] * 3
        users += [100 + u] * 3
    for u in range(5):  # c0 also has a big X cell
        labels0 += [0] * 4
        values += ["X"] * 4
        users += [200 + u] * 4
    for node, heavy, first in ((1, 8, 300), (2, 7, 400)):
        lab, val, usr = _node_with_cover(node, "ZZ", heavy, first)
        labels0 += lab
        values += val
        users += usr
    labels0 = np.array(labels0)
    return labels0, np.array(values, dtype=object), np.array(users)


def test_a_cross_level_facet_difference_needs_min_users_users():
    labels0, values, users = _heavy_user_tree()
    labels = [labels0, np.zeros_like(labels0)]
    parents = [np.array([0, 0, 0]), np.array([-1])]
    published = [np.array([True, True, True]), np.array([True])]
    cells = facet_cells_tree(labels, published, parents, values, users, facet="v", **FLOORS)
    assert _differences_from_few_users(labels, parents, values, users, cells) == []
    assert ("ZZ" in {v for _, v in _shown_keys(cells[1])})  # the parent's cell itself is still shown


def test_a_whole_run_total_minus_top_level_cells_needs_min_users_users():
    labels0, values, users = _heavy_user_tree()  # the three nodes as the top level, the run as their parent
    labels = [labels0]
    cells = facet_cells_tree(labels, [np.array([True, True, True])], [np.array([-1, -1, -1])], values, users,
                             facet="v", **FLOORS)
    assert _differences_from_few_users(labels, None, values, users, cells) == []
