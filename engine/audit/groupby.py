"""Group-by attack: a published table with one row per input record, and the counts a group-by of it yields.

A table is per-record when it maps records to nodes (`level_<k>` columns) or names records (`row`, `text`,
`user_id` columns). Grouping it by `level_k` recovers every node's size (and distinct users where user ids
are there); each recovered count of a node that is not published, and each "Other" bucket that is not
published, is a violation. Published counts below the floor (without noise) are violations too.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

from clio_engine.audit.files import RunView, Violation

ATTACK = "group-by"
RECORD_COLUMNS = ("row", "text", "user_id")
LEVEL = re.compile(r"^level_(\d+)$")


def attack(view: RunView) -> list[Violation]:
    out: list[Violation] = []
    for name, rows in view.tables.items():
        if not rows:
            continue
        cols = list(rows[0])
        levels = sorted(int(m.group(1)) for c in cols if (m := LEVEL.match(c)))
        if levels or any(c in cols for c in RECORD_COLUMNS):
            out.append(Violation(ATTACK, name, f"{len(rows)} rows",
                                 "per-record rows are published (columns: " + ", ".join(cols[:8]) + ")"))
        if levels:
            out += _recovered_counts(view, name, rows, levels)
    out += _published_below_floor(view)
    out += _long_table_below_floor(view)
    return out


def _recovered_counts(view: RunView, name: str, rows: list[dict], levels: list[int]) -> list[Violation]:
    status = {r["id"]: r for r in view.clusters or []}
    out = []
    for level in levels:
        col, up = f"level_{level}", f"level_{level + 1}"
        sizes = Counter(r[col] for r in rows if r.get(col) is not None)
        users = defaultdict(set)
        for r in rows:
            if r.get(col) is not None and r.get("user_id") is not None:
                users[r[col]].add(r["user_id"])
        parent_of = {r[col]: r.get(up) for r in rows if r.get(col) is not None}
        hidden_by_parent: Counter = Counter()
        for node, n in sorted(sizes.items()):
            nid = f"{level}.{int(node)}"
            row = status.get(nid)
            published = bool(row and row.get("published"))
            if not published:
                hidden_by_parent[parent_of.get(node)] += n
                extra = f", {len(users[node])} users" if node in users else ""
                known = "unpublished" if row else "not in clusters.parquet"
                out.append(Violation(ATTACK, name, f"node {nid}", f"{n} records{extra} of an {known} node"))
        for parent, n in sorted(hidden_by_parent.items(), key=lambda kv: str(kv[0])):
            oid = f"{level}.other" if parent is None else f"{level}.other.{int(parent)}"
            row = status.get(oid)
            if row is not None and not row.get("published"):
                out.append(Violation(ATTACK, name, f"node {oid}", f"{n} records in an unpublished Other bucket"))
    return out


def _published_below_floor(view: RunView) -> list[Violation]:
    if view.epsilon is not None or not view.clusters:
        return []
    out = []
    for r in view.clusters:
        if r.get("published") and r.get("size") is not None and 1 <= r["size"] < view.min_records:
            out.append(Violation(ATTACK, view.clusters_file, f"node {r['id']}",
                                 f"published size {r['size']} is below min_records {view.min_records}"))
        if r.get("published") and r.get("users") is not None and 1 <= r["users"] < view.min_users:
            out.append(Violation(ATTACK, view.clusters_file, f"node {r['id']}",
                                 f"published users {r['users']} is below min_users {view.min_users}"))
    return out


COUNT_VARIABLES = ("records", "count", "size", "users", "conversations")


def _long_table_below_floor(view: RunView) -> list[Violation]:
    """aggregates.csv (geo_id, geography, facet, level, variable, cluster_name, value): a count below the floor."""
    if view.epsilon is not None:
        return []
    out = []
    for name, rows in view.tables.items():
        if not rows or not {"variable", "value", "cluster_name"} <= set(rows[0]):
            continue
        for r in rows:
            var = str(r.get("variable") or "")
            floor = view.min_users if "user" in var else view.min_records
            if not (var in COUNT_VARIABLES or var.endswith(("_count", "_records", "_users"))):
                continue
            try:
                value = float(r["value"])
            except (TypeError, ValueError):
                continue
            if 1 <= value < floor:
                out.append(Violation(ATTACK, name, f"{r.get('geo_id', '')}/{r.get('facet', '')}/{r.get('level', '')}/"
                                     f"{r.get('cluster_name', '')}/{var}", f"published count {value:g} is below the floor {floor}"))
    return out
