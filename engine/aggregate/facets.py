"""Facet breakdowns per published cluster, and cluster shares of the whole and of their parent (SPEC §3-§4).

A facet cell (node × value) is shown only if it passes the same floors as a cluster: ≥ `min_users`
distinct users and ≥ `min_records` records. The cells of a node under the floors are merged into one
suppressed row that carries their combined share and no counts, so the shown rows plus that row still
sum to the whole node and no count of a small cell is ever emitted. Secondary suppression
(engine.privacy.complementary) keeps that row at 0 or ≥ the floor and, with `protect_hierarchy`, stops
a parent's cell minus its children's from pinning a hidden one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from clio_engine.errors import ConfigError, InputError
from clio_engine.privacy.thresholds import (as_index_array, check_labels, distinct_per_group, meets_thresholds,
                                       sorted_unique, validate_privacy_params)
from clio_engine.privacy.complementary import protect_groups

if TYPE_CHECKING:
    from clio_engine.privacy.noise import NoisePlan

MISSING = "(missing)"

SCHEMA = pa.schema([
    ("node", pa.int64()), ("facet", pa.string()), ("value", pa.string()), ("records", pa.int64()),
    ("users", pa.int64()), ("share", pa.float64()), ("suppressed", pa.bool_()),
])


@dataclass
class FacetCells:
    """One facet's non-empty (node, value) cells of one level, before the table is built.

    node, value [k] int64 (value indexes `names`), records, users [k] true counts, reported_records,
    reported_users [k] (noised when epsilon is set), primary [k] bool (passes the floors), shown [k] bool
    (after secondary suppression), node_records [n] true records per published node. record_cell and
    record_users: each kept record's cell and user (for distinct users of a set of hidden cells);
    record_rows: each kept record's row in the input (to tell which of a parent's records sit in no child cell).
    """

    facet: str
    names: np.ndarray
    node: np.ndarray
    value: np.ndarray
    records: np.ndarray
    users: np.ndarray
    reported_records: np.ndarray
    reported_users: np.ndarray
    primary: np.ndarray
    shown: np.ndarray
    node_records: np.ndarray
    record_cell: np.ndarray
    record_users: np.ndarray
    epsilon: float | None = None
    node_sizes: np.ndarray | None = None  # [n] published (noised) node sizes: the share denominator with epsilon
    record_rows: np.ndarray | None = None  # [kept records] int64 input rows, ascending

    def decide(self) -> tuple[np.ndarray, np.ndarray]:
        """(cell records [k], node records [n]) that suppression decisions use: the numbers a subtraction
        of published ones yields — the true counts, or with noise the noised (consistent) ones."""
        if self.epsilon is None:
            return self.records, self.node_records
        sizes = self.node_sizes if self.node_sizes is not None else np.bincount(
            self.node, weights=self.reported_records, minlength=len(self.node_records)).astype(np.int64)
        return self.reported_records, sizes


def facet_shares(node_labels: np.ndarray, published: np.ndarray, facet_values, user_codes: np.ndarray, *,
                 facet: str, min_users: int, min_records: int, epsilon: float | None = None,
                 seed: int = 0, secondary: bool = True, noise: "NoisePlan | None" = None) -> pa.Table:
    """Long table of one facet's value shares in each published node of one level.

    node_labels [N] int64 (−1 ignored), published [n] bool, facet_values [N] strings or None/NaN (which
    count as the value "(missing)"), user_codes [N] int64 ≥ 0. Columns: node, facet, value (null on the
    suppressed row), records (noised when epsilon is set; null when suppressed), users (likewise), share
    (cell records / node records; from the noised counts when epsilon is set), suppressed. Rows sorted by
    node, share descending, value. Noise comes from a Generator seeded with (seed, crc32(facet)), so facets
    draw independently; pass a different seed per level. secondary: the suppressed row of a node holds 0 or
    ≥ min_records records (≥ min_users users) in ≥ 2 cells, else the node's smallest shown cell joins it
    (engine.privacy.complementary); `protect_hierarchy` adds the rule across levels.
    """
    cells = facet_cells(node_labels, published, facet_values, user_codes, facet=facet, min_users=min_users,
                        min_records=min_records, epsilon=epsilon, seed=seed, secondary=secondary, noise=noise)
    return facet_table(cells)


def facet_cells(node_labels, published, facet_values, user_codes, *, facet: str, min_users: int,
                min_records: int, epsilon: float | None = None, seed: int = 0, secondary: bool = True,
                node_sizes: np.ndarray | None = None, noise: "NoisePlan | None" = None) -> FacetCells:
    """The cells of `facet_shares` with primary and (per node) secondary suppression decided. node_sizes [n]:
    the nodes' published (noised) sizes, the share denominator when epsilon is set (else the noised cells' sum)."""
    validate_privacy_params(min_users, min_records, epsilon, seed)
    if not isinstance(facet, str) or not facet:
        raise ConfigError(f"facet must be a non-empty string, got {facet!r}")
    labels, published, users = _validate(node_labels, published, user_codes)
    noise = _plan(noise, epsilon, 1, facet)
    if noise is not None:  # one level: a tree whose nodes are all at the top
        return _noised_cells_tree([labels], [published], [np.full(len(published), -1, np.int64)], facet_values,
                                  users, facet=facet, min_users=min_users, min_records=min_records, noise=noise,
                                  seed=seed, secondary=secondary,
                                  node_sizes=None if node_sizes is None else [np.asarray(node_sizes, np.int64)])[0]
    codes, names = encode_values(facet_values, len(labels))

    keep = labels >= 0
    keep[keep] = published[labels[keep]]
    cell_node, cell_value, records, cell_users, record_cell = _cell_counts(labels[keep], codes[keep], users[keep],
                                                                           len(names))
    node_records = np.bincount(labels[keep], minlength=len(published)).astype(np.int64)
    shown = meets_thresholds(cell_users, records, min_users, min_records)
    cells = FacetCells(facet, names, cell_node, cell_value, records, cell_users, records.copy(), cell_users.copy(),
                       shown.copy(), shown, node_records, record_cell, users[keep], None, None, np.flatnonzero(keep))
    if secondary:
        protect_nodes(cells, min_users=min_users, min_records=min_records)
    return cells


def protect_nodes(cells: FacetCells, *, min_users: int, min_records: int) -> None:
    """Per node: the suppressed row holds 0 or ≥ min_records records, ≥ min_users users, in ≥ 2 cells."""
    users_of = _users_by_group(cells.record_cell, cells.record_users, len(cells.node))

    def users_ok(_g, hidden):
        if min_users <= 1 or cells.epsilon is not None:  # with noise: records only, on the noised cells
            return True
        return len(np.unique(np.concatenate([users_of(i) for i in hidden]))) >= min_users

    size, node_size = cells.decide()
    active = node_size > 0
    cells.shown = protect_groups(cells.node, size, cells.shown, active, min_records=min_records,
                                 users_ok=users_ok)


def _users_by_group(group: np.ndarray, users: np.ndarray, n_groups: int):
    """group [k], users [k] → a function g ↦ the users [·] of the items in group g (one sort, then slices)."""
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    return lambda g: users[order[bounds[g]:bounds[g + 1]]]


def _hidden_part_users_ok(child: FacetCells, parent: FacetCells, min_users: int):
    """users_ok for the groups of `protect_hierarchy` (one per parent cell (P, v)): the hidden part — the
    child's hidden cells of the group plus the records of (P, v) in P's hidden children, which have no child
    cells — has ≥ min_users distinct users. Counted on the records' user codes, not by adding per-cell user
    counts: one user can sit in several cells (a review found 15 records of one user in two hidden cells)."""
    if min_users <= 1:
        return None
    if child.record_rows is None or parent.record_rows is None:
        raise InputError("protect_hierarchy needs each FacetCells' record_rows to count the users of a difference")
    outside = ~np.isin(parent.record_rows, child.record_rows, assume_unique=True)  # in hidden children
    m = len(parent.node)
    cell_out, users_out = parent.record_cell[outside], parent.record_users[outside]
    n_users = int(users_out.max()) + 1 if users_out.size else 1
    distinct_outside = distinct_per_group(cell_out, users_out, m, n_users)
    users_outside = _users_by_group(cell_out, users_out, m)
    users_in_cell = _users_by_group(child.record_cell, child.record_users, len(child.node))

    def users_ok(g, hidden):
        if distinct_outside[g] >= min_users:
            return True
        outside_users = users_outside(g)
        if len(hidden) and int(child.users[hidden].max()) >= min_users:
            return True
        u = np.concatenate([outside_users] + [users_in_cell(i) for i in hidden])
        return len(np.unique(u)) >= min_users

    return users_ok


def protect_hierarchy(child: FacetCells, parent: FacetCells, parent_of: np.ndarray, published: np.ndarray, *,
                      min_users: int, min_records: int, occupied: np.ndarray | None = None) -> None:
    """Across levels: a parent's shown cell (P, v) minus its children's shown cells of v must not pin a
    hidden one (hidden sum 0, or ≥ min_records records from ≥ min_users distinct users over ≥ 2 unknowns:
    hidden children count as unknowns, and their records of v count in the users); a
    parent's hidden cell must not equal the sum of its children's cells with nothing unknown (else the
    smallest child cell is hidden too). Then the per-node rule again, and all three until nothing changes.
    parent_of [n_child] int64, published [n_child] bool (this level's nodes); occupied [n_child] bool: nodes holding
    records (default all): an empty hidden child is no unknown (an assign run's clusters the reference hid)."""
    n_values = len(parent.names)
    key_of = {int(k): i for i, k in enumerate(parent.node * n_values + parent.value)}
    pcell = np.array([key_of.get(int(k), -1) for k in parent_of[child.node] * n_values + child.value], np.int64)
    unknown = ~published if occupied is None else ~published & occupied
    hidden_kids = np.bincount(parent_of[unknown], minlength=len(parent.node_records))
    m = len(parent.node)
    child_size, parent_size = child.decide()[0], parent.decide()[0]
    group = np.where(pcell >= 0, pcell, m)  # cells under no parent cell: one inactive group
    listed = np.bincount(group, weights=child_size, minlength=m + 1)[:m].astype(np.int64)
    active = np.append(parent.shown, False)
    extra = np.append(parent_size - listed, 0)  # records of value v in hidden children
    n_extra = np.append(hidden_kids[parent.node], 0)
    users_ok = _hidden_part_users_ok(child, parent, min_users)
    # The two rules feed each other: the per-node rule may hide a cell that is then the only unknown of its
    # parent's group (found on the demo: parent ios 229 − shown 73 − 42 pinned a cell of 114 that the node
    # rule had just hidden), and the group rule may leave a node's suppressed row with one cell. Both only
    # ever hide more, so repeating them until nothing changes ends, with both holding.
    while True:
        before = child.shown.copy()
        child.shown = protect_groups(group, child_size, child.shown, active, min_records=min_records,
                                     users_ok=users_ok, known_hidden=n_extra, extra_hidden=extra)
        # A hidden parent cell with no unknown child part is the sum of shown cells: hide the smallest of them.
        has_hidden_row = np.zeros(len(child.node_records), bool)
        has_hidden_row[child.node[~child.shown]] = True
        for g in np.flatnonzero(~parent.shown):
            members = np.flatnonzero(group == g)
            kids = np.flatnonzero(parent_of == parent.node[g])
            unknown = hidden_kids[parent.node[g]] + int(sum(has_hidden_row[c] for c in kids
                                                            if not np.any(child.node[members[child.shown[members]]] == c)))
            if unknown == 0 and len(members):
                shown_members = members[child.shown[members]]
                if len(shown_members):
                    child.shown[shown_members[np.argmin(child_size[shown_members])]] = False
        protect_nodes(child, min_users=min_users, min_records=min_records)
        if np.array_equal(before, child.shown):
            return


def facet_cells_tree(node_labels: list[np.ndarray], published: list[np.ndarray], parents: list[np.ndarray],
                     facet_values, user_codes, *, facet: str, min_users: int, min_records: int,
                     epsilon: float | None = None, seed: int = 0, secondary: bool = True,
                     node_sizes: list[np.ndarray] | None = None, noise: "NoisePlan | None" = None,
                     known_unions: Sequence[Collection[str | None]] = ()) -> list[FacetCells]:
    """One facet's cells at every level (base first), decided top-down: each level's cells are protected
    against its parents' (`protect_hierarchy`) when `secondary`. With noise (a NoisePlan, or `epsilon`
    alone for a plan covering this facet only) the cells are noised as engine.privacy.noise describes and
    `node_sizes` (each level's noised sizes) are the totals they are made consistent with.
    known_unions: sets of values (None = missing) whose summed whole-run records another table publishes (the
    Economic Index's not_classified row of the values it hides); every level protects each sum as well."""
    floors = dict(min_users=min_users, min_records=min_records)
    validate_privacy_params(min_users, min_records, epsilon, seed)
    noise = _plan(noise, epsilon, len(node_labels), facet)
    if noise is not None and any(len(u) for u in known_unions):
        raise ConfigError("known_unions (the Economic Index's hidden values) are not supported with noise")
    if noise is not None:
        users = as_index_array(user_codes, "user_codes")
        return _noised_cells_tree([as_index_array(x, "node_labels") for x in node_labels],
                                  [np.asarray(x, bool) for x in published], [as_index_array(x, "parents") for x in parents],
                                  facet_values, users, facet=facet, **floors, noise=noise, seed=seed,
                                  secondary=secondary, node_sizes=node_sizes)
    out: list[FacetCells | None] = [None] * len(node_labels)
    top = len(node_labels) - 1
    unions = _union_values(known_unions, facet_values, user_codes) if secondary else None
    for level in range(top, -1, -1):
        out[level] = facet_cells(node_labels[level], published[level], facet_values, user_codes, facet=facet,
                                 seed=seed, secondary=secondary, **floors)
        if not secondary:
            continue
        if level < top:
            parent, parent_of = out[level + 1], as_index_array(parents[level], "parents")
        else:
            parent = _known_totals(node_labels[top], facet_values, user_codes, facet)
            parent_of = np.zeros(len(published[top]), np.int64)
        _protect_level(out[level], parent, parent_of, np.asarray(published[level], bool), node_labels[level],
                       unions, **floors)
    return out  # type: ignore[return-value]


def _union_values(known_unions: Sequence[Collection[str | None]], facet_values, user_codes):
    """(codes [N], users [N], [value indexes [u] per non-empty union]) in `encode_values`' names; None when
    there is no union (then nothing more is encoded)."""
    unions = [u for u in known_unions if len(u)]
    if not unions:
        return None
    users = as_index_array(user_codes, "user_codes")
    codes, names = encode_values(facet_values, len(users))
    index = {n: i for i, n in enumerate(names)}
    spelled = [{MISSING if v is None else str(v) for v in u} for u in unions]
    return codes, users, [np.array(sorted(index[v] for v in s if v in index), np.int64) for s in spelled]


def _protect_level(cells: FacetCells, parent: FacetCells, parent_of: np.ndarray, published: np.ndarray, labels,
                   unions, *, min_users: int, min_records: int) -> None:
    """One level against its parents' cells (`protect_hierarchy`; the top level's parent is the whole run,
    `_known_totals`) and, at every level, against each union's known sum (`protect_union`: a level's cells of
    the union's values and its unclustered records sum to the same published total, whatever the level),
    repeated until nothing changes (each rule may leave the other a lone hidden cell; both only ever hide)."""
    labels = as_index_array(labels, "node_labels")
    occupied = np.bincount(labels[labels >= 0], minlength=len(published)) > 0
    floors = dict(min_users=min_users, min_records=min_records)
    if unions is None:
        protect_hierarchy(cells, parent, parent_of, published, occupied=occupied, **floors)
        return
    codes, users, value_sets = unions
    while True:
        before = cells.shown.copy()
        protect_hierarchy(cells, parent, parent_of, published, occupied=occupied, **floors)
        for values in value_sets:
            protect_union(cells, labels, codes, users, published, values, **floors)
        if np.array_equal(before, cells.shown):
            return


def protect_union(cells: FacetCells, labels: np.ndarray, codes: np.ndarray, users: np.ndarray,
                  published: np.ndarray, values: np.ndarray, *, min_users: int, min_records: int) -> None:
    """One level's cells of `values` [u] (value indexes) as one group whose whole-run total is known: its
    unknown part — hidden cells, the values' records in unpublished nodes and in no cluster — must hold 0,
    or ≥ min_records records from ≥ min_users users over ≥ 2 unknowns (each unpublished node one, the
    unclustered records one); else its smallest shown cell is hidden too (`protect_groups`).
    labels, codes, users [N] (labels: the level's node per record, −1: no cluster), published [n] bool."""
    if not len(values):
        return
    size = cells.decide()[0]
    in_union = np.isin(codes, values)
    clustered = labels >= 0
    outside = in_union & ~clustered  # the union's records in no cell here: unclustered, or in unpublished nodes
    outside[clustered] = in_union[clustered] & ~published[labels[clustered]]
    occupied = np.bincount(labels[clustered], minlength=len(published)) > 0  # an empty node is no unknown
    unknown_parts = int((~published & occupied).sum()) + int((in_union & ~clustered).any())
    users_in_cell = _users_by_group(cells.record_cell, cells.record_users, len(cells.node))
    outside_users = users[outside]

    def users_ok(_g, hidden):
        if min_users <= 1:
            return True
        return len(np.unique(np.concatenate([outside_users] + [users_in_cell(i) for i in hidden]))) >= min_users

    group = np.where(np.isin(cells.value, values), 0, 1)  # group 1: every other cell, left alone
    cells.shown = protect_groups(group, size, cells.shown, np.array([True, False]), min_records=min_records,
                                 users_ok=users_ok, known_hidden=np.array([unknown_parts, 0]),
                                 extra_hidden=np.array([int(outside.sum()), 0]))


def _known_totals(top_labels: np.ndarray, facet_values, user_codes, facet: str) -> FacetCells:
    """The whole run as one node above the top level, every value's total taken as known: another table may
    publish it (the Economic Index's records per country and per collaboration mode are exactly these), and
    then a value's total minus the top nodes' shown cells of it would pin a lone hidden one. So the top
    level's cells of each value are protected like any children's under a shown parent cell."""
    labels = np.where(np.asarray(top_labels) >= 0, 0, -1)
    root = facet_cells(labels, np.array([True]), facet_values, user_codes, facet=facet, min_users=1, min_records=1,
                       secondary=False)
    root.shown = np.ones(len(root.node), bool)
    return root


def _plan(noise, epsilon, n_levels: int, facet: str):
    """The NoisePlan to use: the caller's, or one for this facet alone when only epsilon is given."""
    from clio_engine.privacy.noise import plan_noise

    if noise is not None:
        if epsilon is not None and abs(epsilon - noise.epsilon) > 1e-12:
            raise ConfigError(f"epsilon = {epsilon} disagrees with the noise plan's total {noise.epsilon}")
        if f"facet:{facet}/records/level0" not in noise.queries:
            raise ConfigError(f"the noise plan has no budget for facet {facet!r}")
        return noise
    return plan_noise(epsilon, None, n_levels=n_levels, facets=(facet,))


def _noised_cells_tree(labels, published, parents, facet_values, users, *, facet, min_users, min_records, noise,
                       seed, secondary, node_sizes) -> list[FacetCells]:
    """The noised path of `facet_cells_tree` (labels, published, parents validated; users [N] int64).

    Per level, the cells of every node (published or not) are one noised query, projected per node onto
    the node's noised size (`consistent_parts`), so a node's cells sum to its published size; cell users
    are one more query per level (none without user ids). Levels are independent queries, so a parent's
    cell is not the exact sum of its children's: the cross-level rule of `protect_hierarchy` (which
    assumes it is) is left out, and the within-node rule runs on the noised cells. A cell is shown only
    when both its exact counts (after the contribution bound) and its noised counts pass the floors."""
    from clio_engine.privacy.noise import bounded_records, consistent_parts

    n_levels = len(labels)
    if len(published) != n_levels or len(parents) != n_levels:
        raise InputError(f"facet tree needs one labels, published and parents array per level, got "
                         f"{len(labels)}, {len(published)}, {len(parents)}")
    for level in range(n_levels):
        _validate(labels[level], published[level], users)
    noise = noise.over(labels)  # the tree's draws, as the privacy stage's (`NoisePlan.over`)
    keep = bounded_records(users, noise.bound, seed)  # the same records count as in the privacy stage
    labels = [np.where(keep, lab, -1) for lab in labels]
    codes, names = encode_values(facet_values, len(users))
    n_values = len(names)
    has_user_ids = f"facet:{facet}/users/level0" in noise.queries
    out: list[FacetCells] = []
    for level in range(n_levels):
        n_nodes = len(published[level])
        m = labels[level] >= 0
        node, value, records, cell_users, record_cell = _cell_counts(labels[level][m], codes[m], users[m], n_values)
        noised = noise.noised(records, f"facet:{facet}/records/level{level}", seed)
        sizes = (np.asarray(node_sizes[level], np.int64) if node_sizes is not None else
                 np.bincount(node, weights=noised, minlength=n_nodes).astype(np.int64))
        reported = consistent_parts(noised, node, sizes)
        reported_users = (np.minimum(noise.noised(cell_users, f"facet:{facet}/users/level{level}", seed), reported)
                          if has_user_ids else reported.copy())
        on = published[level][node]  # cells of published nodes only
        index = np.cumsum(on) - 1
        record_on = on[record_cell]
        node_records = np.bincount(labels[level][m][record_on], minlength=n_nodes).astype(np.int64)
        # Shown only when the exact counts pass as well as the noised ones (the floors are about people).
        shown = (meets_thresholds(reported_users[on], reported[on], min_users, min_records)
                 & meets_thresholds(cell_users[on], records[on], min_users, min_records))
        cells = FacetCells(facet, names, node[on], value[on], records[on], cell_users[on], reported[on],
                           reported_users[on], shown.copy(), shown, node_records, index[record_cell[record_on]],
                           users[m][record_on], noise.epsilon, sizes, np.flatnonzero(m)[record_on])
        if secondary:
            protect_nodes(cells, min_users=min_users, min_records=min_records)
        out.append(cells)
    return out


def facet_table(cells: FacetCells) -> pa.Table:
    """The long table: shown cells with counts and shares, one suppressed row per node with hidden cells."""
    shown = cells.shown
    # With noise, shares come from noised counts only (issue 10 finding 6: exact shares gave exact sizes away).
    numerator, node_total = cells.decide()
    denominator = np.maximum(node_total[cells.node], 1)
    share = numerator / denominator
    shown_sum = np.bincount(cells.node[shown], weights=numerator[shown], minlength=len(cells.node_records))
    hidden_nodes = np.unique(cells.node[~shown])
    # The suppressed row is the node's rest: its size minus the shown cells (≥ 0), so a node's shares sum to 1.
    hidden_shares = np.maximum(node_total[hidden_nodes] - shown_sum[hidden_nodes], 0) / np.maximum(
        node_total[hidden_nodes], 1)
    return _build_table(cells.facet, cells.names, cells.node[shown], cells.value[shown],
                        cells.reported_records[shown], cells.reported_users[shown], share[shown],
                        hidden_nodes, hidden_shares)


def encode_values(values, n: int) -> tuple[np.ndarray, np.ndarray]:
    """[N] values → (codes [N] int64, names [V] str sorted). None/NaN become MISSING, a real category (a
    literal "(missing)" string joins it); other values are compared as their str(), so 1 and "1" are one.

    Numeric numpy arrays and Arrow arrays (plain or dictionary-encoded) are factorised without making a
    Python object per record: only the V distinct values become strings (10M records of a string facet
    as Python objects are ~1 GB; their codes are 80 MB)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return _encode_arrow(values, n)
    if isinstance(values, np.ndarray) and values.dtype.kind in "iufb":
        if values.ndim != 1 or len(values) != n:
            raise InputError(f"facet_values must be 1-D with {n} values, got shape {values.shape}")
        codes, uniques = pd.factorize(values, use_na_sentinel=True)  # NaN → −1, as in the object path
        return _merge_names(codes, [u.item() for u in uniques])
    array = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    if array.ndim != 1 or len(array) != n:
        raise InputError(f"facet_values must be 1-D with {n} values, got shape {array.shape}")
    codes, uniques = pd.factorize(array, use_na_sentinel=True)  # hashing: O(N), no sort of N strings
    return _merge_names(codes, list(uniques))


def _encode_arrow(values, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`encode_values` of an Arrow array: its dictionary's V values become strings, nulls and NaN MISSING."""
    if len(values) != n:
        raise InputError(f"facet_values must be 1-D with {n} values, got {len(values)}")
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    if not chunks:
        return _merge_names(np.zeros(0, np.int64), [])
    encoded = [c if pa.types.is_dictionary(c.type) else c.dictionary_encode() for c in chunks]
    parts, uniques = [], []
    for c in encoded:  # each chunk has its own dictionary: offset its indices past the earlier ones
        idx = c.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        parts.append(np.where(idx >= 0, idx + len(uniques), -1))
        uniques.extend(c.dictionary.to_pylist())
    # A NaN in the dictionary is a missing value: named MISSING, it merges with the missing category.
    uniques = [MISSING if u is None or (isinstance(u, float) and np.isnan(u)) else u for u in uniques]
    return _merge_names(np.concatenate(parts), uniques)


def _merge_names(codes: np.ndarray, uniques: list) -> tuple[np.ndarray, np.ndarray]:
    """codes [N] into `uniques` (−1 = missing) → (codes into the sorted distinct str() names, names)."""
    labels = np.array([str(u) for u in uniques] + [MISSING], dtype=object)
    codes = np.where(codes < 0, len(uniques), codes)
    names, inverse = np.unique(labels, return_inverse=True)  # sort the V distinct values, merge str twins
    return inverse.astype(np.int64)[codes], names


def _cell_counts(nodes, codes, users, n_values):
    """Records [k] and distinct users [k] of each non-empty (node, value) cell, cells in (node, value) order,
    and each record's cell."""
    keys = nodes * n_values + codes
    cell_keys = sorted_unique(keys)
    cell_of_record = np.searchsorted(cell_keys, keys)
    records = np.bincount(cell_of_record, minlength=len(cell_keys))
    n_users = int(users.max()) + 1 if users.size else 1
    cell_users = distinct_per_group(cell_of_record, users, len(cell_keys), n_users)
    return cell_keys // n_values, cell_keys % n_values, records.astype(np.int64), cell_users, cell_of_record


def _build_table(facet, names, nodes, values, records, users, shares, hidden_nodes, hidden_shares) -> pa.Table:
    """Shown rows + suppressed rows, sorted by node, share descending, value (suppressed last on ties)."""
    all_nodes = np.concatenate([nodes, hidden_nodes]).astype(np.int64)
    all_shares = np.concatenate([shares, hidden_shares]).astype(np.float64)
    value_rank = np.concatenate([values, np.full(len(hidden_nodes), len(names))])  # names are sorted
    order = np.lexsort((value_rank, -all_shares, all_nodes))
    n_shown = len(nodes)
    is_hidden = order >= n_shown
    value_col = [None if r == len(names) else names[r] for r in value_rank[order]]
    def counts(shown: np.ndarray) -> pa.Array:  # suppressed rows get null, never a number
        padded = np.concatenate([shown, np.zeros(len(hidden_nodes), np.int64)])[order]
        return pa.array(padded, type=pa.int64(), mask=is_hidden)

    return pa.table({
        "node": pa.array(all_nodes[order], type=pa.int64()),
        "facet": pa.array([facet] * len(order), type=pa.string()),
        "value": pa.array(value_col, type=pa.string()),
        "records": counts(records),
        "users": counts(users),
        "share": pa.array(all_shares[order], type=pa.float64()),
        "suppressed": pa.array(is_hidden, type=pa.bool_()),
    }, schema=SCHEMA)


def _validate(node_labels, published, user_codes):
    labels = as_index_array(node_labels, "node_labels")
    published = np.asarray(published)
    if published.ndim != 1 or (published.size and published.dtype != np.bool_):
        raise InputError(f"published must be a 1-D bool array, got dtype {published.dtype} "
                         f"shape {published.shape}")
    users = as_index_array(user_codes, "user_codes")
    if len(users) != len(labels):
        raise InputError(f"node_labels has {len(labels)} records but user_codes has {len(users)}")
    if users.size and users.min() < 0:
        raise InputError(f"user_codes must be >= 0, got {int(users.min())}")
    check_labels(labels, len(published), "node_labels")
    return labels, published.astype(bool, copy=False), users


def cluster_shares(records: np.ndarray, parent: np.ndarray,
                   parent_records: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """records [n], parent [n] (−1 at the top), parent_records [n_parent] or None →
    (share_of_total [n], share_of_parent [n]) float64.

    Without parent_records (the top level), and for any node whose parent is −1, share_of_parent is the
    share of the total. A zero denominator gives a share of 0 rather than NaN.
    """
    records = np.asarray(records, dtype=np.float64)
    parent = as_index_array(parent, "parent")
    if records.ndim != 1 or len(parent) != len(records):
        raise InputError(f"records has shape {records.shape} but parent has {len(parent)} entries")
    share_of_total = _safe_divide(records, np.full_like(records, records.sum()))
    if parent_records is None:
        return share_of_total, share_of_total.copy()
    parent_records = np.asarray(parent_records, dtype=np.float64)
    check_labels(parent, len(parent_records), "parent")
    at_top = parent < 0
    denominator = np.where(at_top, records.sum(), parent_records[np.maximum(parent, 0)])
    return share_of_total, _safe_divide(records, denominator)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out
