"""Differencing across releases: the sizes and facet cells of several releases of one base clustering in one LP.

Two releases of the same records and base clusters with another hierarchy (levels, top, mode) or other floors
hide different siblings. A base cluster that one release hides only by secondary suppression is published in
the other, and subtracting it from the first release's Other row gives back the size of a cluster below the
floors; each release alone passes `audit`. Here the tree equations of every release (`differencing._Tree`)
share one unknown per base cluster (a level-0 cluster id) and one clustered total, so the LP bounds each
suppressed count given every number of all of them, as someone holding all the releases would.

Releases are taken to be of one base clustering when their trees list every node (clusters.parquet), list the
same level-0 cluster ids, and every base cluster two of them publish has one size in both (within their noise
bounds): what someone holding them would check. Releases of other clusterings share nothing here (another
clustering of the same records is judged by its own floors and, under noise, its own draws). Facet cells are
joined the same way, per facet: one unknown per (base cluster, value) over the values any of them shows, and a
base cluster's cell is judged where no release shows it.
"""
from __future__ import annotations

from clio_engine.audit.differencing import UNLISTED, _cell_rows, _slack, _Tree, cell_finding, facet_system
from clio_engine.audit.files import RunView, Violation
from clio_engine.lp_bounds import LP, verdict

ATTACK = "differencing-across-releases"


def base_sizes(view: RunView) -> dict[str, float | None] | None:
    """{level-0 cluster id: published size or None} of a view whose tree lists every node; None otherwise."""
    complete = view.clusters_file == "clusters.parquet" if view.tree_complete is None else view.tree_complete
    if not view.clusters or not complete:
        return None
    out = {}
    for r in view.clusters:
        if r.get("level") == 0 and r.get("kind", "cluster") == "cluster":
            size = r.get("size")
            out[r["id"]] = float(size) if r.get("published") and size is not None else None
    return out or None


def one_clustering(a: RunView, b: RunView) -> bool:
    """Whether releases `a` and `b` are of one base clustering (see the module docstring)."""
    sa, sb = base_sizes(a), base_sizes(b)
    if sa is None or sb is None or sa.keys() != sb.keys():
        return False
    slack = _slack(a) + _slack(b)
    return all(abs(sa[k] - sb[k]) <= slack for k in sa if sa[k] is not None and sb[k] is not None)


def groups(views: list[RunView]) -> list[list[int]]:
    """Index groups of ≥ 2 views to attack together: each set of views that are pairwise of one clustering
    (connected views that are not all pairwise so are attacked pair by pair)."""
    n = len(views)
    linked = {(i, j) for i in range(n) for j in range(i + 1, n) if one_clustering(views[i], views[j])}
    seen, out = set(), []
    for i in range(n):
        if i in seen:
            continue
        component, todo = {i}, [i]
        while todo:
            k = todo.pop()
            for j in range(n):
                if j not in component and ((min(j, k), max(j, k)) in linked):
                    component.add(j)
                    todo.append(j)
        seen |= component
        members = sorted(component)
        if len(members) < 2:
            continue
        if all((x, y) in linked for x in members for y in members if x < y):
            out.append(members)
        else:
            out += [[x, y] for x in members for y in members if x < y and (x, y) in linked]
    return out


def attack(views: list[RunView], labels: list[str], already: set[tuple[int, str]] = frozenset(),
           cells: bool = True) -> list[Violation]:
    """Violations that only the releases together give: `views` [R] with their `labels` [R] (how each is named
    in a violation's file); `already`: (view index, "node <id>") pairs a view's own audit reported; `cells`:
    also the facet cells (the sizes take 0.3 s on the 20,000-record demo's two releases, its cells 39 s).

    What is judged is what no release publishes: each base cluster every release of the group hides, and for
    each node a release hides (a parent, an Other row) the sum of its base clusters that no release publishes
    (its other base clusters are published by another release, so its size alone gives nothing away)."""
    out = []
    for members in groups(views):
        out += _sizes(views, labels, members, already)
        facets = sorted({r["facet"] for i in members for r in views[i].facets or ()}) if cells else []
        for facet in facets:
            out += _cells(views, labels, members, facet, already)
    return out


def _sizes(views, labels, members, already) -> list[Violation]:
    """The joint LP of the sizes (see `attack`)."""
    out = []
    lp = LP()
    shared = {None: None, **{nid: None for nid in base_sizes(views[members[0]])}}
    trees = {i: _Tree(views[i], lp, shared) for i in members}
    shown = {nid for i in members for nid, r in trees[i].row.items() if nid in shared and r.get("published")}
    targets = {}  # variable → (view index, node id)
    for i in members:
        for nid in trees[i].targets:
            hidden = sorted(b for b in _base_below(trees[i], nid) if b not in shown)
            if len(hidden) == 1:
                targets.setdefault(shared[hidden[0]], (i, hidden[0]))
            elif hidden:
                total = lp.var()
                lp.eq.append(({total: 1.0, **{shared[b]: -1.0 for b in hidden}}, 0.0))
                targets[total] = (i, nid)
    bounds = lp.solve(dict.fromkeys(targets, "node"), max(views[i].min_records for i in members))
    if bounds is None:
        return []  # inconsistent together after all (one_clustering allowed noise): no joint equations
    for var, (i, nid) in targets.items():
        where = f"node {nid}"
        if (i, where) in already or bounds.get(var) is None:
            continue
        if why := verdict(*bounds[var], views[i].min_records, "node"):
            others = ", ".join(labels[j] for j in members if j != i)
            what = (f"size {why}" if nid in shared else f"records in base clusters no release publishes {why}")
            out.append(Violation(ATTACK, f"{labels[i]}/{views[i].clusters_file}", where,
                                 f"{what}, with {others}"))
    return out


def _base_below(tree: _Tree, nid: str) -> set[str]:
    """Level-0 cluster ids under node `nid` of `tree` (an Other row: under its parent's unpublished children)."""
    row = tree.row.get(nid, {})
    if row.get("kind", "cluster") != "cluster":
        todo = [c for c in tree.children.get(row.get("parent"), []) if not tree.row.get(c, {}).get("published")]
    else:
        todo = [nid]
    out = set()
    while todo:
        n = todo.pop()
        if tree.row.get(n, {}).get("level") == 0:
            out.add(n)
        else:
            todo += tree.children.get(n, [])
    return out


def _cells(views, labels, members, facet, already) -> list[Violation]:
    """The joint LP of one facet: each release's cell system (`differencing.facet_system`) over shared base
    cluster sizes and shared base cells; judged: each base cluster's cell of a value that no release shows."""
    lp = LP()
    shared = {None: None, **{nid: None for nid in base_sizes(views[members[0]])}}
    trees = {i: _Tree(views[i], lp, shared) for i in members}
    values = sorted({r["value"] for i in members for rows in _cell_rows(views[i], facet).values() for r in rows
                     if not r["suppressed"] and r["value"] is not None})
    cells: dict = {}
    for i in members:
        facet_system(views[i], facet, lp, trees[i], values, cells)
    shown = set()
    for i in members:
        for nid, rows in _cell_rows(views[i], facet).items():
            shown |= {(nid, r["value"]) for r in rows if not r["suppressed"]}
    targets = {var: key for key, var in cells.items() if key[1] != UNLISTED and key not in shown}
    bounds = lp.solve(dict.fromkeys(targets, "cell"), max(views[i].min_records for i in members))
    if bounds is None:
        return []
    out = []
    for var, (nid, value) in sorted(targets.items(), key=lambda kv: (kv[1][0], str(kv[1][1]))):
        if bounds.get(var) is None or not (why := verdict(*bounds[var], views[members[0]].min_records, "cell")):
            continue
        hiding = [i for i in members if not any(r["value"] == value and not r["suppressed"]
                                                 for r in _cell_rows(views[i], facet).get(nid, []))]
        i = hiding[0]
        published = trees[i].row.get(nid, {}).get("published")
        where = f"node {nid} {facet}={value}" + (" (suppressed)" if published else "")
        if (i, where) in already:
            continue
        others = ", ".join(labels[j] for j in members if j != i)
        out.append(Violation(ATTACK, f"{labels[i]}/{views[i].facets_file}", where,
                             f"{cell_finding(where, 'cell', why)}, with {others}"))
    return out
