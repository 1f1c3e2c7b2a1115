"""aggregates.csv (the Economic Index layout: geo_id, geography, facet, level, variable, cluster_name, value) read
back as the tables the differencing attack works on, so a release holding only that file is attacked too.

- facet "cluster": one node per (level, cluster_name), variables count / users / share_pct / share_of_parent_pct;
- facet "cluster::<f>": one cell per (level, "<cluster name>::<value>"), variables count / users / share_pct; the
  value "(suppressed)" is the node's suppressed row (its share only).

Shares are percents under `_pct` names (`PERCENT_VARIABLES`), read back as the fractions the cluster and facet
tables hold: the decimal shifted two places (`fraction`), so a printed 1.1 is the share 0.011 with the
precision it was printed to (the LP's share tolerance is read from that). A release written before shares were
percents has `share` / `share_of_parent` rows holding the fractions themselves: read as they are.

The tree's structure: where the directory also has a cluster table (clusters.parquet, tree.json or the
explorer's node table) whose names give every node of the CSV, its ids and parents (and, from
clusters.parquet, where unpublished children exist) are used, with the CSV's numbers. Otherwise the tree is
inferred from the CSV alone, as a reader would: "Other in <name>" hangs under the node <name> one level up;
a node's parent is the one node a level up whose count equals count / share_of_parent (within the share's
printed precision); a node with no such single candidate joins no parent (its own cells still count).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from clio_engine.audit.files import RunView

COLUMNS = {"facet", "level", "variable", "cluster_name", "value"}
SUPPRESSED = "(suppressed)"
OTHER_PREFIX = "Other in "
UNKNOWN_PARENT = "(parent not derivable)"
# aggregates.csv's percent variables → the fraction they are read back as (older releases: the fraction's name)
PERCENT_VARIABLES = {"share_pct": "share", "share_of_parent_pct": "share_of_parent"}


def fraction(percent) -> float:
    """A published percent (its text, or a number) as a fraction: the decimal shifted two places, exact, so the
    fraction keeps the percent's printed precision (1.1 → 0.011, not 1.1 / 100 = 0.011000000000000001)."""
    from decimal import Decimal, InvalidOperation

    try:
        return float(Decimal(str(percent).strip()).scaleb(-2))
    except (InvalidOperation, ValueError):
        return float(percent) / 100  # whatever float() reads that Decimal does not


def is_aggregates(rows: list[dict]) -> bool:
    return bool(rows) and COLUMNS <= set(rows[0])


def view_from_aggregates(view: RunView, name: str) -> RunView | None:
    """A view whose clusters and facets are the numbers of the long table `name` (None when it has no node rows)."""
    nodes: dict[tuple[int, str], dict] = defaultdict(dict)
    cells: dict[tuple[str, int, str], dict] = defaultdict(dict)
    for r in view.tables.get(name) or []:
        try:
            level, value = int(float(r["level"])), float(r["value"])
        except (TypeError, ValueError, KeyError):
            continue
        facet, var, label = str(r.get("facet") or ""), str(r.get("variable") or ""), str(r.get("cluster_name") or "")
        if var in PERCENT_VARIABLES and (facet == "cluster" or facet.startswith("cluster::")):
            var, value = PERCENT_VARIABLES[var], fraction(r["value"])
        if facet == "cluster":
            nodes[level, label][var] = value
        elif facet.startswith("cluster::"):
            cells[facet[len("cluster::"):], level, label][var] = value
    if not nodes:
        return None
    ids = _ids_from_structure(view, nodes)
    complete = ids is not None and (view.clusters_file == "clusters.parquet" if view.tree_complete is None
                                    else view.tree_complete)
    ids = ids or _inferred_ids(nodes)
    clusters = _cluster_rows(view, nodes, ids)
    facets = []
    by_level = defaultdict(list)
    for level, label in nodes:
        by_level[level].append(label)
    for (facet, level, label), vals in cells.items():
        node_label = max((n for n in by_level[level] if label.startswith(n + "::")), key=len, default=None)
        if node_label is None:
            node_label, _, _ = label.rpartition("::")
        value = label[len(node_label) + 2:]
        nid = ids.get((level, node_label))
        if nid is None:
            continue
        hidden = value == SUPPRESSED
        count = vals.get("count")
        facets.append(dict(level=level, cluster=nid, node=None, facet=facet, value=None if hidden else value,
                           records=None if hidden or count is None else int(round(count)),
                           users=None if hidden or vals.get("users") is None else int(round(vals["users"])),
                           share=vals.get("share"), suppressed=hidden))
    return replace(view, clusters=clusters, clusters_file=name, facets=facets, facets_file=name, tables={},
                   tree_complete=complete)


def display_names(rows: list[dict]) -> dict[str, str]:
    """id → the cluster_name aggregates.csv gives a published row (as `pipeline.release` writes it: " (<id>)"
    after a name that occurs twice at one level, an apostrophe before a formula-like name)."""
    pub = [r for r in rows if r.get("published")]
    seen: dict[tuple, int] = defaultdict(int)
    for r in pub:
        seen[r.get("level"), r.get("name") or ""] += 1
    out = {}
    for r in pub:
        label = (r.get("name") or "") + (f" ({r['id']})" if seen[r.get("level"), r.get("name") or ""] > 1 else "")
        out[r["id"]] = "'" + label if label[:1] in ("=", "+", "-", "@", "\t", "\r") else label
    return out


def _ids_from_structure(view: RunView, nodes: dict) -> dict | None:
    """(level, cluster_name) → id from the directory's cluster table, when it names every node of the CSV."""
    if not view.clusters:
        return None
    rows = {r["id"]: r for r in view.clusters}
    ids = {(int(rows[nid]["level"]), label): nid for nid, label in display_names(view.clusters).items()
           if rows[nid].get("level") is not None}
    return ids if all(key in ids for key in nodes) else None


def _inferred_ids(nodes: dict) -> dict:
    return {(level, label): f"{level}:{label}" for level, label in nodes}


def _cluster_rows(view: RunView, nodes: dict, ids: dict) -> list[dict]:
    def values(key):
        v = nodes[key]
        count = v.get("count")
        return dict(size=None if count is None else int(round(count)),
                    users=None if v.get("users") is None else int(round(v["users"])),
                    share=v.get("share"), share_of_parent=v.get("share_of_parent"), published=True)

    if view.clusters and all(nid in {r["id"] for r in view.clusters} for nid in ids.values()):
        by_id = {nid: key for key, nid in ids.items()}
        out = []
        for r in view.clusters:  # the table's structure (ids, parents, hidden children); the CSV's numbers
            row = dict(r)
            key = by_id.get(r["id"])
            if key is not None and key in nodes:
                row.update(values(key))
            else:
                row.update(size=None, users=None, share=None, share_of_parent=None, published=False)
            out.append(row)
        # a tree.json or explorer table lists published rows only: the structure stays incomplete there
        return out
    top = max(level for level, _ in nodes)
    count = {key: v.get("count") for key, v in nodes.items()}
    out = []
    for (level, label) in nodes:
        row = dict(id=ids[level, label], level=level, kind="cluster", name=label, **values((level, label)))
        parent = None
        if level < top:
            parent = UNKNOWN_PARENT
            if label.startswith(OTHER_PREFIX) and (level + 1, label[len(OTHER_PREFIX):]) in nodes:
                row["kind"] = "other"
                parent = ids[level + 1, label[len(OTHER_PREFIX):]]
            else:
                parent = _parent_by_share(level, label, nodes, count, ids) or UNKNOWN_PARENT
        row["parent"] = parent
        out.append(row)
    return out


def _parent_by_share(level, label, nodes, count, ids):
    from clio_engine.audit.differencing import share_tolerance

    c, sop = count.get((level, label)), nodes[level, label].get("share_of_parent")
    if not c or not sop or sop <= 0:
        return None
    tol = share_tolerance(sop)
    lo, hi = c / (sop + tol), (c / (sop - tol) if sop > tol else float("inf"))
    found = [key for key, n in count.items() if key[0] == level + 1 and n is not None and lo - 1e-9 <= n <= hi + 1e-9]
    return ids[found[0]] if len(found) == 1 else None
