"""Facet breakdowns per published cluster, and cluster shares of the whole and of their parent (SPEC §3-§4).

A facet cell (node × value) is shown only if it passes the same floors as a cluster: ≥ `min_users`
distinct users and ≥ `min_records` records. The cells of a node under the floors are merged into one
suppressed row that carries their combined share and no counts, so the shown rows plus that row still
sum to the whole node and no count of a small cell is ever emitted.
"""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pyarrow as pa

from clio_engine.errors import ConfigError, InputError
from clio_engine.privacy.thresholds import (as_index_array, check_labels, distinct_per_group, meets_thresholds,
                                       noisy_counts, sorted_unique, validate_privacy_params)

MISSING = "(missing)"

SCHEMA = pa.schema([
    ("node", pa.int64()), ("facet", pa.string()), ("value", pa.string()), ("records", pa.int64()),
    ("users", pa.int64()), ("share", pa.float64()), ("suppressed", pa.bool_()),
])


def facet_shares(node_labels: np.ndarray, published: np.ndarray, facet_values, user_codes: np.ndarray, *,
                 facet: str, min_users: int, min_records: int, epsilon: float | None = None,
                 seed: int = 0) -> pa.Table:
    """Long table of one facet's value shares in each published node of one level.

    node_labels [N] int64 (−1 ignored), published [n] bool, facet_values [N] strings or None/NaN (which
    count as the value "(missing)"), user_codes [N] int64 ≥ 0. Columns: node, facet, value (null on the
    suppressed row), records (noised when epsilon is set; null when suppressed), users (likewise), share
    (cell records / node records, from true counts), suppressed. Rows sorted by node, share descending,
    value. Noise comes from a Generator seeded with (seed, crc32(facet)), so facets draw independently;
    pass a different seed per level.
    """
    validate_privacy_params(min_users, min_records, epsilon, seed)
    if not isinstance(facet, str) or not facet:
        raise ConfigError(f"facet must be a non-empty string, got {facet!r}")
    labels, published, users = _validate(node_labels, published, user_codes)
    codes, names = encode_values(facet_values, len(labels))

    keep = labels >= 0
    keep[keep] = published[labels[keep]]
    cell_node, cell_value, records, cell_users = _cell_counts(labels[keep], codes[keep], users[keep], len(names))
    node_records = np.bincount(labels[keep], minlength=len(published))
    share = records / node_records[cell_node]  # every listed cell has ≥ 1 record, so no 0/0

    rng = np.random.default_rng([seed, zlib.crc32(facet.encode())])
    reported_records = noisy_counts(records, epsilon, rng)
    reported_users = noisy_counts(cell_users, epsilon, rng)
    shown = meets_thresholds(reported_users, reported_records, min_users, min_records)
    hidden_nodes, hidden_shares = _suppressed_rows(cell_node, records, shown, node_records)
    return _build_table(facet, names, cell_node[shown], cell_value[shown], reported_records[shown],
                        reported_users[shown], share[shown], hidden_nodes, hidden_shares)


def encode_values(values, n: int) -> tuple[np.ndarray, np.ndarray]:
    """[N] values → (codes [N] int64, names [V] str sorted). None/NaN become MISSING, a real category (a
    literal "(missing)" string joins it); other values are compared as their str(), so 1 and "1" are one."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values.to_pandas()
    array = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    if array.ndim != 1 or len(array) != n:
        raise InputError(f"facet_values must be 1-D with {n} values, got shape {array.shape}")
    codes, uniques = pd.factorize(array, use_na_sentinel=True)  # hashing: O(N), no sort of N strings
    labels = np.array([str(u) for u in uniques] + [MISSING], dtype=object)
    codes = np.where(codes < 0, len(uniques), codes)
    names, inverse = np.unique(labels, return_inverse=True)  # sort the V distinct values, merge str twins
    return inverse.astype(np.int64)[codes], names


def _cell_counts(nodes, codes, users, n_values):
    """Records [k] and distinct users [k] of each non-empty (node, value) cell, cells in (node, value) order."""
    keys = nodes * n_values + codes
    cell_keys = sorted_unique(keys)
    cell_of_record = np.searchsorted(cell_keys, keys)
    records = np.bincount(cell_of_record, minlength=len(cell_keys))
    n_users = int(users.max()) + 1 if users.size else 1
    cell_users = distinct_per_group(cell_of_record, users, len(cell_keys), n_users)
    return cell_keys // n_values, cell_keys % n_values, records.astype(np.int64), cell_users


def _suppressed_rows(cell_node, records, shown, node_records):
    """(nodes [s], shares [s]): one row per node with any cell under the floors, its combined share."""
    hidden_records = np.bincount(cell_node[~shown], weights=records[~shown], minlength=len(node_records))
    nodes = np.unique(cell_node[~shown])
    return nodes, hidden_records[nodes] / node_records[nodes]


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
