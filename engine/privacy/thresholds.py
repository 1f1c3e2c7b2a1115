"""Publication thresholds and "Other in <parent>" roll-ups (SPEC §4).

A node of the hierarchy is **published** iff it has ≥ `min_users` distinct users, ≥ `min_records` records,
and its parent is published. Unpublished nodes roll up into one "Other" bucket per parent (one bucket for
the root at the top level); that bucket is shown only if it passes the same thresholds.

With `privacy.epsilon` set (a `NoisePlan`, engine.privacy.noise): each user counts with at most B
records; each level's sizes get discrete-Laplace noise and are made consistent top-down (children
projected onto their parent's size, so parent = Σ children exactly); distinct users per level and per Other bucket are noised queries of their own.
A node or Other bucket is shown only when both its exact counts (users and records after the contribution
bound, which never exceed the unbounded ones) and its noised counts pass the floors: the floors are a
promise about people, and a noise scale far above them would otherwise publish groups of one user.
Which nodes are shown thus depends on exact counts, outside ε (engine.privacy.noise says so).
Secondary suppression and which children fall into Other then run on the noised counts.

Distinct users are counted on (node, user) pairs made unique once at the base level and projected up
the tree level by level, so the work is one sort of N keys plus sorts of ever fewer pairs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clio_engine.errors import ConfigError, InputError

if TYPE_CHECKING:
    from clio_engine.privacy.noise import NoisePlan


@dataclass(frozen=True)
class LevelPublication:
    """What one level may show. n = nodes at this level; m = nodes one level up (1 at the top: the root).

    records, users [n] int64: true counts. reported_records, reported_users [n] int64: the same, noised when
    epsilon is set. published [n] bool. other_records, other_users [m] int64: true counts of the union of
    this level's unpublished children of each parent. other_published [m] bool. reported_other_records,
    reported_other_users [m] int64: the Other counts to emit (noised when epsilon is set).
    primary_published [n] bool: published before secondary suppression (the cost is the difference).
    """

    records: np.ndarray
    users: np.ndarray
    reported_records: np.ndarray
    reported_users: np.ndarray
    published: np.ndarray
    other_records: np.ndarray
    other_users: np.ndarray
    other_published: np.ndarray
    reported_other_records: np.ndarray
    reported_other_users: np.ndarray
    primary_published: np.ndarray | None = None  # [n] bool: the decision before secondary suppression


# ---- helpers shared with engine.aggregate ------------------------------------------------------------

def validate_privacy_params(min_users, min_records, epsilon, seed) -> None:
    """ConfigError naming the first bad parameter: thresholds and seed are ints ≥ 0, epsilon > 0 or None."""
    for name, value in (("min_users", min_users), ("min_records", min_records), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
    if epsilon is not None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.number)) \
                or not np.isfinite(epsilon) or epsilon <= 0:
            raise ConfigError(f"epsilon must be a finite number > 0 or None, got {epsilon!r}")


def as_index_array(values, name: str) -> np.ndarray:
    """1-D int64 view of an integer array; InputError for any other shape or dtype."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def check_labels(labels: np.ndarray, n_nodes: int, name: str) -> None:
    """Labels must lie in [-1, n_nodes); -1 marks a record outside every node (noise)."""
    bad = (labels < -1) | (labels >= n_nodes)
    if bad.any():
        raise InputError(f"{name} has {int(bad.sum())} labels outside [-1, {n_nodes}), "
                         f"e.g. {int(labels[bad][0])}")


def meets_thresholds(users: np.ndarray, records: np.ndarray, min_users: int, min_records: int) -> np.ndarray:
    """[k] bool: both floors reached (≥, so exactly the floor passes)."""
    return (users >= min_users) & (records >= min_records)


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """np.unique(keys) for int64 by sort + neighbour compare. numpy 2.4's np.unique takes a hash path that
    measured ~50× slower than this on 2M mostly-distinct keys (1.6 s vs 0.03 s on the 2-core CI box)."""
    ordered = np.sort(keys)
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def distinct_per_group(groups: np.ndarray, users: np.ndarray, n_groups: int, n_users: int) -> np.ndarray:
    """[k] group ids, [k] user codes → [n_groups] int64 distinct users per group (one sort, no loops)."""
    keys = sorted_unique(groups * n_users + users)
    return np.bincount(keys // n_users, minlength=n_groups).astype(np.int64)


# ---- publish ----------------------------------------------------------------------------------------

def publish(node_labels: list[np.ndarray], parents: list[np.ndarray], user_codes: np.ndarray, *,
            min_users: int, min_records: int, epsilon: float | None = None,
            seed: int = 0, secondary: bool = True, noise: "NoisePlan | None" = None,
            withheld: np.ndarray | None = None) -> list[LevelPublication]:
    """Decide which nodes of every level are published and count the Other bucket of each parent.

    node_labels[l]: [N] int64, each record's node at level l (0 = base … L−1 = top), −1 = noise (ignored).
    parents[l]: [n_l] int64, the tree's `levels[l].parent` (index into level l+1; −1 at the top).
    user_codes: [N] int64 in 0..U−1 (pass arange(N) when the run has no user ids).
    noise: the run's NoisePlan (engine.privacy.noise) — a run with facets passes the plan that also covers
    them; `epsilon` alone builds a plan for these counts only (default contribution bound, user ids).
    Returns one LevelPublication per level, base first; `records`/`users` are the true counts of the
    records that count (after the contribution bound), `reported_*` what may be published.
    secondary: complementary suppression (engine.privacy.complementary): per published parent (and the
    root, whose total of clustered records is published), the hidden children's records sum to 0 or to
    ≥ min_records (with ≥ min_users users, counted exactly without noise) over ≥ 2 hidden children, else
    the smallest published sibling is suppressed too, so parent − Σ published children never reveals a
    hidden size. With noise the rule runs on the noised sizes, which are what a subtraction yields.
    withheld: [n_0] bool base clusters never published whatever their counts: the members of the buckets of
    small clusters (engine.privacy.buckets), so that what is hidden does not depend on the hierarchy. They
    count as published before secondary suppression where they pass the floors (the cost shows).
    """
    from clio_engine.privacy.noise import bounded_records, consistent_parts, plan_noise

    validate_privacy_params(min_users, min_records, epsilon, seed)
    labels, parents, users = _validate_tree_inputs(node_labels, parents, user_codes)
    if noise is None:
        noise = plan_noise(epsilon, None, n_levels=len(parents))
    elif epsilon is not None and abs(epsilon - noise.epsilon) > 1e-12:
        raise ConfigError(f"epsilon = {epsilon} disagrees with the noise plan's total {noise.epsilon}")
    if noise is not None:  # each user counts with at most B records in every table
        noise = noise.over(labels)  # draws of this tree's counts, not of another clustering's
        keep = bounded_records(users, noise.bound, seed)
        labels = [np.where(keep, lab, -1) for lab in labels]
    has_user_ids = noise is None or "users/level0" in noise.queries
    n_users = int(users.max()) + 1 if users.size else 1
    sizes = [len(p) for p in parents]
    if withheld is not None:
        withheld = np.asarray(withheld, dtype=bool)
        if withheld.shape != (sizes[0],):
            raise InputError(f"withheld must be {sizes[0]} booleans, one per base cluster; got shape {withheld.shape}")
    _check_key_range(max(sizes), n_users)

    pairs = _distinct_pairs_per_level(labels[0], users, parents, n_users)
    records = [np.bincount(lab[lab >= 0], minlength=n).astype(np.int64) for lab, n in zip(labels, sizes)]
    user_counts = [np.bincount(pairs[level][0], minlength=n).astype(np.int64) for level, n in enumerate(sizes)]
    if noise is None:
        reported, reported_users = [r.copy() for r in records], [u.copy() for u in user_counts]
    else:  # each level noised; top-down, children projected onto their parent's size (parent = Σ children)
        reported = [np.zeros(0, np.int64)] * len(parents)
        reported[-1] = noise.noised(records[-1], f"records/level{len(parents) - 1}", seed)
        for level in range(len(parents) - 2, -1, -1):
            reported[level] = consistent_parts(noise.noised(records[level], f"records/level{level}", seed),
                                               parents[level], reported[level + 1])
        # A node cannot have more users than records: clamping is post-processing and removes an absurdity.
        reported_users = [np.minimum(noise.noised(u, f"users/level{level}", seed), reported[level])
                          if has_user_ids else reported[level].copy() for level, u in enumerate(user_counts)]

    top = len(parents) - 1
    out: list[LevelPublication | None] = [None] * len(parents)
    parent_published = np.ones(1, dtype=bool)  # the root is always shown
    # Top-down: a child's decision needs its parent's, which with noise is not implied by the counts.
    for level in range(top, -1, -1):
        group = parents[level] if level < top else np.zeros(sizes[level], dtype=np.int64)
        out[level] = _publish_level(records[level], user_counts[level], reported[level], reported_users[level],
                                    pairs[level], group, parent_published, n_users, min_users, min_records,
                                    secondary, noise, f"other_users/level{level}" if has_user_ids else None, seed,
                                    withheld if level == 0 else None)
        parent_published = out[level].published
    return out  # type: ignore[return-value]


def _publish_level(records, users, reported_records, reported_users, pairs, group, parent_published, n_users,
                   min_users, min_records, secondary, noise, other_users_query, seed, withheld=None) -> LevelPublication:
    """One level. records, users, reported_* [n_nodes]; pairs = (node [P], user [P]) distinct; group
    [n_nodes] parent or 0 at the top; parent_published [m] bool."""
    pair_nodes, pair_users = pairs
    # The floors are a promise about people: the exact counts must pass as well as the published ones.
    published = meets_thresholds(reported_users, reported_records, min_users, min_records)
    if noise is not None:
        published &= meets_thresholds(users, records, min_users, min_records)
    published &= parent_published[group]
    primary = published.copy()
    if withheld is not None:
        published &= ~withheld
    if secondary:  # on the numbers a subtraction would use: the true ones, or the noised ones with noise
        decide = records if noise is None else reported_records
        published = _complementary(group, decide, published, parent_published, pairs, min_users, min_records,
                                   count_users=noise is None)

    n_groups = len(parent_published)
    hidden = ~published
    other_records = np.bincount(group[hidden], weights=records[hidden], minlength=n_groups).astype(np.int64)
    in_hidden = hidden[pair_nodes]
    other_users = distinct_per_group(group[pair_nodes[in_hidden]], pair_users[in_hidden], n_groups, n_users)
    if noise is None:
        reported_other_records, reported_other_users = other_records.copy(), other_users.copy()
    else:  # Other = parent − Σ published children, in noised numbers; its users are a query of their own
        reported_other_records = np.bincount(group[hidden], weights=reported_records[hidden],
                                             minlength=n_groups).astype(np.int64)
        reported_other_users = (np.minimum(noise.noised(other_users, other_users_query, seed), reported_other_records)
                                if other_users_query else reported_other_records.copy())
    # "Other in X" names X, so it needs X shown; and a bucket with no hidden child is not a bucket.
    has_hidden_child = np.bincount(group[hidden], minlength=n_groups) > 0
    other_published = (meets_thresholds(reported_other_users, reported_other_records, min_users, min_records)
                       & meets_thresholds(other_users, other_records, min_users, min_records)
                       & parent_published & has_hidden_child)
    return LevelPublication(records, users, reported_records, reported_users, published,
                            other_records, other_users, other_published,
                            reported_other_records, reported_other_users, primary)


def _complementary(group, records, published, parent_published, pairs, min_users, min_records,
                   count_users: bool = True) -> np.ndarray:
    """Secondary suppression of one level's nodes, per published parent (engine.privacy.complementary)."""
    from clio_engine.privacy.complementary import protect_groups

    pair_nodes, pair_users = pairs  # sorted by node (keys were node·U + user)
    bounds = np.searchsorted(pair_nodes, np.arange(len(records) + 1))

    def users_ok(_g, hidden):
        if min_users <= 1 or not count_users:  # with noise the Other bucket's users are a noised query
            return True
        users = np.concatenate([pair_users[bounds[i]:bounds[i + 1]] for i in hidden])
        return len(np.unique(users)) >= min_users

    return protect_groups(group, records, published, parent_published, min_records=min_records, users_ok=users_ok)


def _distinct_pairs_per_level(base_labels, users, parents, n_users) -> list[tuple[np.ndarray, np.ndarray]]:
    """Distinct (node, user) pairs of every level: sort once at the base, then project through `parents`.

    Valid because the labels were checked to follow the tree: a record's node at l+1 is its node's parent.
    """
    keep = base_labels >= 0
    keys = sorted_unique(base_labels[keep] * n_users + users[keep])
    nodes, pair_users = keys // n_users, keys % n_users
    out = [(nodes, pair_users)]
    for parent in parents[:-1]:
        keys = sorted_unique(parent[nodes] * n_users + pair_users)
        nodes, pair_users = keys // n_users, keys % n_users
        out.append((nodes, pair_users))
    return out


def _validate_tree_inputs(node_labels, parents, user_codes):
    """Arrays as int64, checked: equal lengths, labels and parents in range, labels consistent with the tree."""
    if not isinstance(node_labels, (list, tuple)) or not isinstance(parents, (list, tuple)):
        raise InputError("node_labels and parents must be lists with one array per level")
    if len(node_labels) == 0 or len(node_labels) != len(parents):
        raise InputError(f"node_labels has {len(node_labels)} levels but parents has {len(parents)}; "
                         "both need the same number ≥ 1")
    users = as_index_array(user_codes, "user_codes")
    if users.size and users.min() < 0:
        raise InputError(f"user_codes must be >= 0, got {int(users.min())}")
    labels = [as_index_array(x, f"node_labels[{i}]") for i, x in enumerate(node_labels)]
    parents = [as_index_array(x, f"parents[{i}]") for i, x in enumerate(parents)]
    for level, lab in enumerate(labels):
        if len(lab) != len(users):
            raise InputError(f"node_labels[{level}] has {len(lab)} records but user_codes has {len(users)}")
        check_labels(lab, len(parents[level]), f"node_labels[{level}]")
    top = len(parents) - 1
    for level, parent in enumerate(parents):
        if level == top:
            if (parent != -1).any():
                raise InputError(f"parents[{level}] is the top level and must be all -1")
            continue
        n_up = len(parents[level + 1])
        if parent.size and (parent.min() < 0 or parent.max() >= n_up):
            raise InputError(f"parents[{level}] must index level {level + 1}, i.e. lie in [0, {n_up})")
        expected = np.where(labels[level] >= 0, parent[np.maximum(labels[level], 0)], -1)
        wrong = int((expected != labels[level + 1]).sum())
        if wrong:
            raise InputError(f"node_labels[{level + 1}] disagrees with parents[{level}] "
                             f"for {wrong} records")
    return labels, parents, users


def _check_key_range(n_nodes: int, n_users: int) -> None:
    """Pairs are packed as node·U + user in int64; refuse sizes where that would overflow."""
    if n_nodes * n_users >= 2 ** 62:
        raise InputError(f"{n_nodes} nodes × {n_users} user codes is too large to pack into int64 keys")
