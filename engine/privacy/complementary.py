"""Secondary (complementary) suppression: no hidden count may follow from the published ones (SPEC §4).

Primary suppression hides each node or cell below the floors. Where a published total is the sum of
parts (a parent's size = Σ its children; a node's size = Σ its facet cells; a parent's facet cell =
Σ its children's cells of that value), the hidden parts' sum is the published total minus the shown
parts: anyone can subtract. The rule, applied per such group until it holds:

    the hidden parts of a group sum to 0, or to ≥ min_records records (with ≥ min_users distinct
    users where the caller can count them) spread over ≥ 2 non-empty hidden parts;
    else the smallest shown part of the group is hidden as well, and the group is checked again.

Then the difference (the "Other" bucket, the suppressed row) is itself a publishable aggregate, and no
single hidden part is pinned: with two or more unknowns in the group each one's feasible interval is
[0, difference] as far as this group goes (`clio-engine audit` solves the whole system to check).
Hiding a part adds to its other groups' hidden sums, but it can also make it the *only* hidden part of
another group, which then pins it; so where parts belong to two families of groups (a facet cell is in its
node's row and in its parent's cell of that value) the caller repeats the rules until nothing changes
(`aggregate.facets.protect_hierarchy`). Levels are settled top-down (a level's decisions never depend on
the level below).

Decisions use true counts, the ones the subtraction would recover (without noise they are the
published counts). The cost (records in published parts before and after) is reported by the callers.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def protect_groups(group: np.ndarray, size: np.ndarray, shown: np.ndarray, active: np.ndarray, *,
                   min_records: int, users_ok: Callable[[int, np.ndarray], bool] | None = None,
                   known_hidden: np.ndarray | None = None, extra_hidden: np.ndarray | None = None) -> np.ndarray:
    """Shown mask after complementary suppression of every active group.

    group [k] int64 (the group of each part), size [k] int64 true records, shown [k] bool (primary
    decision), active [m] bool (groups whose total is published; the others are left alone).
    users_ok(g, hidden_parts_index) → bool: the hidden parts of group g have enough distinct users.
    extra_hidden [m] int64: hidden records of each group that are not among the k parts (e.g. the cells of
    hidden children, which have no rows); known_hidden [m] int64: how many such unlisted unknown parts.
    Returns a new [k] bool mask (only ever fewer parts shown than `shown`).
    """
    group = np.asarray(group, dtype=np.int64)
    size = np.asarray(size, dtype=np.int64)
    shown = np.asarray(shown, dtype=bool).copy()
    m = len(active)
    extra = np.zeros(m, np.int64) if extra_hidden is None else np.asarray(extra_hidden, np.int64)
    extra_n = np.zeros(m, np.int64) if known_hidden is None else np.asarray(known_hidden, np.int64)
    order = np.lexsort((np.arange(len(size)), size, group))  # per group, smallest part first
    starts = np.searchsorted(group[order], np.arange(m + 1))
    for g in np.flatnonzero(active):
        members = order[starts[g]:starts[g + 1]]
        while True:
            hidden = members[~shown[members]]
            total = int(size[hidden].sum()) + int(extra[g])
            # An empty hidden part is no unknown: a reader who knows it is empty (an assign run's clusters the
            # reference run hid take no record) would read the whole hidden sum as one part's size.
            n_hidden = int((size[hidden] > 0).sum()) + int(extra_n[g])
            if total == 0 or (total >= min_records and n_hidden >= 2
                              and (users_ok is None or users_ok(int(g), hidden))):
                break
            candidates = members[shown[members]]
            if not len(candidates):
                break  # every part hidden: the hidden sum is the published total itself
            shown[candidates[0]] = False  # members are sorted by size, so this is the smallest shown part
    return shown


def published_share(records: np.ndarray, shown: np.ndarray, total: int) -> float:
    """Share of `total` records that sit in shown parts (rounded to 6 digits for the manifest)."""
    return round(float(np.asarray(records)[np.asarray(shown, bool)].sum()) / max(int(total), 1), 6)
