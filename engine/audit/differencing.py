"""Linear differencing attack: LP bounds on every suppressed count, given every published number.

Unknowns (all ≥ 0): the size of every node of clusters.parquet (published or not), of every "Other" row
and the clustered total T; per facet, one cell per (node, value) for every value the facet publishes
anywhere plus one "(unlisted)" value, and per published node one "hidden cells" sum (the suppressed
row). Equalities: a parent's size is the sum of its children's (published, unpublished); an Other row
is the sum of its parent's unpublished children; a node's cells sum to its size; a parent's cell is the
sum of its children's cells; a published node's hidden cells sum to its suppressed row. Published sizes
and cell counts are fixed; every published share s of a known denominator d adds
(s − tol)·d ≤ count ≤ (s + tol)·d, tol = half a unit of the share's last printed digit (≥ 1e-7): a share
at full float precision times its total is the exact count (the fractional attack).

When clusters.parquet is absent (a release), the tree comes from tree.json, or else from the explorer's
node table, which list only published nodes and Other rows: each published parent then gets one unknown
"rest" for the children it does not list (its Other row where it has one; else a sum, judged like a
suppressed row's total: a violation only below the floor).

aggregates.csv (the Economic Index long table) is attacked the same way, on its own numbers
(`audit.aggregates`): on the tree of the directory's cluster table where that names every row of the CSV,
else on a tree inferred from the CSV alone (parents from "Other in <name>" and count / share_of_parent), so a
release holding only aggregates.csv is attacked too. Its numbers and clusters.parquet's are not put in one
LP (a release built by `build_release` holds the same numbers in both). Not read as equations: the
explorer's rounded facet shares, users.

With noise (`privacy.epsilon`) published counts are noised, so equalities among them hold only up to the
noise: each published count becomes an interval of ± ceil(ln(1000)·b), b the manifest's
`privacy.noise.scale` (the largest per-query discrete-Laplace scale; 1/ε where the manifest has no noise plan),
which holds the noise with probability ≥ 0.999; so does each share's count (a share may be a ratio of
noised counts, so it pins nothing exactly). Instead, each noised published node's facet shares are read as
fractions (`Fraction(share).limit_denominator`): a common denominator inside the noise interval other
than the published size is the node's exact size (shares computed from exact counts).

For each suppressed count we bound min and max (HiGHS, the LP relaxation of the integer problem). A
violation: the interval's largest integer is ≥ 1 and either below min_records, or the interval holds
exactly one integer (the count is pinned). A suppressed row's total (a published aggregate) is reported
only below the floor, and so is the sum of a parent cell's hidden child cells (the parent's cell minus
the shown ones); each suppressed cell of a published node, and each cell of an unpublished node, only
when pinned. Distinct-user counts are not additive
and are left out. One system for the sizes and one per facet (cells of every node and value, sizes
shared); `lp_bounds.LP.solve` splits each into independent components once published numbers are constants, keeps
one warm-started HiGHS model per component, and skips targets whose verdict the feasible points already
found settle (exactly: see `lp_bounds.LP`). Timings on 2 cores (run dir and its release): the demo of 2,000 records
~1 s, of 20,000 records ~15 s (30 s with 8 random points per component), the economic demo of 20,000 records
70 s (7 minutes with 8 random points: its country facet has one component of 34,000 cells and 21,600 targets).
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from fractions import Fraction

from clio_engine.audit.files import RunView, Violation
from clio_engine.aggregate.facets import MISSING
from clio_engine.lp_bounds import LP, share_tolerance, verdict

ATTACK = "differencing"
UNLISTED = "(unlisted)"


def _slack(view: RunView) -> float:
    return view.noise_bound


class _Tree:
    """Size variables of every node and the tree's equalities, shared by the size and facet systems."""

    def __init__(self, view: RunView, lp: LP, shared: dict | None = None):
        """`shared`: {node id (None: the total T): variable} of the nodes this tree shares with other trees in
        `lp` (the base clusters of releases of one clustering, `audit.joint`); a shared id gets that variable,
        made here by the first tree that has it."""
        self.view, self.lp = view, lp
        self.shared_ids = frozenset(shared or ())
        slack = _slack(view)
        rows = view.clusters or []
        self.complete = view.clusters_file == "clusters.parquet" if view.tree_complete is None else view.tree_complete
        self.row = {r["id"]: r for r in rows}

        def var(nid):
            if shared is None or nid not in shared:
                return lp.var()
            if shared[nid] is None:
                shared[nid] = lp.var()
            return shared[nid]
        self.size: dict[str | None, int] = {None: var(None)}  # None: the clustered total T
        for r in rows:
            self.size[r["id"]] = var(r["id"])
            if r.get("published") and r.get("size") is not None:
                lp.fix(self.size[r["id"]], float(r["size"]), slack)
        kids, others = defaultdict(list), {}
        for r in rows:
            (kids[r.get("parent")].append(r["id"]) if r.get("kind", "cluster") == "cluster"
             else others.__setitem__(r.get("parent"), r["id"]))
        self.targets: list[str] = [r["id"] for r in rows if not r.get("published")]
        self.rests: set[str] = set()  # unknown sums of unlisted children: judged like a suppressed row's total
        self.members = [r["id"] for r in rows if r.get("kind", "cluster") == "cluster"]  # cells live here
        self.children: dict[str | None, list[str]] = {}
        # rows whose parent the published files do not give (aggregates.csv read alone): each possible parent
        # (a level up) gets an unknown sum of such children, a published sum and no target
        orphan_levels = {r.get("level") for r in rows if r.get("parent") is not None and r.get("parent") not in self.row}
        self.unassigned: set[str] = set()
        adopters = {r["id"] for r in rows if r.get("kind", "cluster") == "cluster" and r.get("level") is not None
                    and r["level"] - 1 in orphan_levels} if not self.complete else set()
        parents = sorted(set(kids) | set(others) | adopters, key=lambda p: (p is not None, str(p)))
        for p in parents:
            if p is not None and p not in self.row:
                continue
            listed = list(kids.get(p, []))
            if self.complete:
                lp.eq.append(({self.size[p]: 1.0, **{self.size[c]: -1.0 for c in listed}}, 0.0))
                if p in others:
                    hidden = [c for c in listed if not self.row[c].get("published")]
                    lp.eq.append(({self.size[others[p]]: 1.0, **{self.size[c]: -1.0 for c in hidden}}, 0.0))
            else:  # tree.json lists published children only: an unknown rest (the Other row where there is one)
                rest = others.get(p)
                if rest is None:
                    rest = f"rest of {p or 'the root'}"
                    self.size[rest] = lp.var()
                    self.targets.append(rest)
                    self.rests.add(rest)
                listed.append(rest)
                self.members.append(rest)
                if p in adopters:
                    extra = f"children of {p} not placed"
                    self.size[extra] = lp.var()
                    self.unassigned.add(extra)
                    listed.append(extra)
                    self.members.append(extra)
                lp.eq.append(({self.size[p]: 1.0, **{self.size[c]: -1.0 for c in listed}}, 0.0))
            self.children[p] = listed
        self.parent_of = {c: p for p, cs in self.children.items() for c in cs}
        for r in rows:
            if not r.get("published"):
                continue
            if r.get("share") is not None:
                lp.share(self.size[r["id"]], self.size[None], float(r["share"]), slack)
            if r.get("share_of_parent") is not None and r.get("parent") in self.size:
                lp.share(self.size[r["id"]], self.size[r.get("parent")], float(r["share_of_parent"]), slack)


def attack(view: RunView) -> list[Violation]:
    from clio_engine.audit.aggregates import is_aggregates, view_from_aggregates

    out = []
    for name in sorted(view.tables):  # aggregates.csv: the same attack on its numbers
        if is_aggregates(view.tables[name]) and (derived := view_from_aggregates(view, name)) is not None:
            out += attack(derived)
    if not view.clusters:
        return out
    lp = LP()
    tree = _Tree(view, lp)
    modes = {tree.size[nid]: "total" if nid in tree.rests else "node" for nid in tree.targets}
    bounds = lp.solve(modes, view.min_records)
    if bounds is None:
        out.append(Violation(ATTACK, view.clusters_file, "tree", "published sizes are inconsistent (LP infeasible)"))
    else:
        for nid in tree.targets:
            v = tree.size[nid]
            if bounds[v] is not None and (why := verdict(*bounds[v], view.min_records, modes[v])):
                out.append(Violation(ATTACK, view.clusters_file, f"node {nid}", f"size {why}"))
    if view.facets:
        for facet in sorted({r["facet"] for r in view.facets}):
            out += _facet(view, facet)
        if view.epsilon is not None:
            out += _fractions(view)
    return out


def _cell_rows(view: RunView, facet: str) -> dict[str, list[dict]]:
    by_node = defaultdict(list)
    for r in view.facets:
        if r["facet"] == facet:
            nid = r.get("cluster") or f"{r['level']}.{r['node']}"
            by_node[nid].append(r)
    return by_node


def facet_values(view: RunView, facet: str) -> list[str]:
    """The values of `facet` some row of `view` shows, sorted (the cells' value axis, "(unlisted)" apart)."""
    return sorted({r["value"] for rows in _cell_rows(view, facet).values() for r in rows
                   if not r["suppressed"] and r["value"] is not None})


def facet_system(view: RunView, facet: str, lp: LP, tree: _Tree, values: list[str],
                 shared_cells: dict | None = None) -> tuple[dict, list[tuple[int, str, str]]]:
    """Adds `facet`'s cells of `view` to `lp` over `tree`: one unknown per (node, value) of `values` + UNLISTED,
    the tree's and the published rows' equations. `shared_cells`: {(node id, value): variable} of cells shared
    with other views' systems (base clusters, `audit.joint`); a listed cell takes that variable, made by the
    first view that has it. Returns ({(node, value): variable}, [(variable, where, mode)] targets)."""
    slack = _slack(view)
    by_node = _cell_rows(view, facet)
    values = [*values, UNLISTED]

    def var(key):
        if shared_cells is None or key[0] not in tree.shared_ids:
            return lp.var()
        if key not in shared_cells:
            shared_cells[key] = lp.var()
        return shared_cells[key]
    cell = {(n, v): var((n, v)) for n in tree.members for v in values}
    for n in tree.members:
        lp.eq.append(({**{cell[n, v]: 1.0 for v in values}, tree.size[n]: -1.0}, 0.0))
    for p, kids in tree.children.items():
        if p is None or p not in tree.members:
            continue
        for v in values:
            lp.eq.append(({cell[p, v]: 1.0, **{cell[c, v]: -1.0 for c in kids}}, 0.0))
    hidden_rows = {}
    for n, rows in by_node.items():
        if n not in tree.size or n not in tree.members:
            continue
        shown = {r["value"] for r in rows if not r["suppressed"]}
        for r in rows:
            if r["suppressed"]:
                continue
            if r.get("records") is not None:
                lp.fix(cell[n, r["value"]], float(r["records"]), slack)
            if r.get("share") is not None:
                lp.share(cell[n, r["value"]], tree.size[n], float(r["share"]), slack)
        hid = [r for r in rows if r["suppressed"]]
        h = lp.var(0.0, None if hid else 0.0)
        lp.eq.append(({h: 1.0, **{cell[n, v]: -1.0 for v in values if v not in shown}}, 0.0))
        for r in hid:
            if r.get("share") is not None:
                lp.share(h, tree.size[n], float(r["share"]), slack)
        if hid:
            hidden_rows[n] = h
    published_values = {n: {r["value"] for r in rows if not r["suppressed"]} for n, rows in by_node.items()}
    unlisted_sum = _known_totals(view, facet, lp, tree, cell, values, published_values)
    targets = [(cell[n, v], f"node {n} {facet}={v}", "cell") for n in tree.members
               if not (n in by_node or n in tree.unassigned or (n in tree.row and tree.row[n].get("published")))
               for v in sorted(published_values.get(tree.parent_of.get(n), ()))]
    # Each hidden cell of a published node (pinned = derivable, at any count) and each group of hidden cells
    # that a shown parent cell sums (parent cell − the children's shown cells of that value: below the floor
    # is a violation, as for a suppressed row's total).
    hidden_cells = [(cell[n, v], f"node {n} {facet}={v} (suppressed)", "cell") for n in hidden_rows
                    for v in values if v != UNLISTED and v not in published_values[n]]
    groups = []
    for p, kids in tree.children.items():
        for v in sorted(published_values.get(p, ())):
            unknown = [c for c in kids if c in tree.members and v not in published_values.get(c, ())]
            if len(unknown) >= 2:
                total = lp.var()
                lp.eq.append(({total: 1.0, **{cell[c, v]: -1.0 for c in unknown}}, 0.0))
                groups.append((total, f"node {p} {facet}={v}: its children's hidden cells", "total"))
    targets = ([(h, f"node {n} {facet}=(suppressed)", "total") for n, h in hidden_rows.items()] + targets
               + hidden_cells + groups + unlisted_sum)
    return cell, targets


def _facet(view: RunView, facet: str) -> list[Violation]:
    lp = LP()
    tree = _Tree(view, lp)
    _, targets = facet_system(view, facet, lp, tree, facet_values(view, facet))
    modes = {var: mode for var, _, mode in targets}
    bounds = lp.solve(modes, view.min_records)
    if bounds is None:
        return [Violation(ATTACK, view.facets_file, f"facet {facet}", "published cells are inconsistent (LP infeasible)")]
    out = []
    for var, where, mode in targets:
        if bounds[var] is None or not (why := verdict(*bounds[var], view.min_records, mode)):
            continue
        out.append(Violation(ATTACK, view.facets_file, where, cell_finding(where, mode, why)))
    return out


def cell_finding(where: str, mode: str, why: str) -> str:
    if mode == "total":
        return f"suppressed cells' total {why}"
    if where.endswith("(suppressed)"):
        return f"suppressed cell {why}"
    return f"cell of an unpublished node {why}"


def _known_totals(view: RunView, facet: str, lp: LP, tree: _Tree, cell: dict, values: list[str],
                  published_values: dict[str, set]) -> list[tuple[int, str, str]]:
    """Rows for a facet value's whole-run total published by another table (`view.facet_totals`): the top
    nodes' cells of the value plus its unclustered records u_v ≥ 0 make the total; where the whole-run record
    count is published too, Σ u_v + T ≤ it (T the clustered total), so when every record is clustered each
    total is exactly a sum of top cells. The table's not_classified row adds one more (`_not_classified`).
    Left out with noise (the totals are noised queries of their own). Returns the targets it adds."""
    totals = view.facet_totals.get(facet)
    top = [n for n in tree.children.get(None, []) if n in tree.members]
    if not totals or not top or view.noise_bound:
        return []
    # The Economic Index strips (and lower-cases collaboration modes): "Directive" and "directive " are one total.
    spelled = defaultdict(list)
    for value in values:
        spelled[_spelling(value)].append(value)
    unclustered = []
    for value, total in totals.items():
        same = spelled.get(_spelling(value))
        if not same:
            continue  # a value no facet row publishes lies in the lumped "(unlisted)" cells: no single equation
        u = lp.var()
        unclustered.append(u)
        lp.eq.append(({**{cell[n, v]: 1.0 for n in top for v in same}, u: 1.0}, float(total)))
    targets = _not_classified(view, facet, lp, top, cell, values, published_values, spelled, unclustered)
    if unclustered and view.usage_total is not None:
        lp.le.append(({**{u: 1.0 for u in unclustered}, tree.size[None]: 1.0}, float(view.usage_total)))
    return targets


def _spelling(value) -> str:
    return str(value).strip().casefold()


def _not_classified(view: RunView, facet: str, lp: LP, top: list[str], cell: dict, values: list[str],
                    published_values: dict[str, set], spelled: dict, unclustered: list) -> list[tuple[int, str, str]]:
    """The table's not_classified row is the summed whole-run records of the values it does not list (red team
    F3: it hid FR and NO, the clusters showed FR's 30, and 33 − 30 gave NO's 3 back). Equation: the top cells of
    the facet's values it does not list + their share x of the "(unlisted)" cells + their unclustered records
    = not_classified; x is the "(unlisted)" cells less the records y of values it lists that no facet row names.
    The records without a value are its missing part: listed when the table's rows fall short of the total
    (then their count is known), else among the hidden ones. Target: not_classified − the shown top cells of
    those values (below the floor and ≥ 1: the hidden values' rest is small)."""
    nc = view.facet_not_classified.get(facet)
    if nc is None:
        return []
    totals = view.facet_totals[facet]
    listed = {v for value in totals for v in spelled.get(_spelling(value), ())}
    rest = None if view.usage_total is None else float(view.usage_total) - sum(totals.values()) - float(nc)
    if rest is not None and rest >= 0.5 and MISSING in values:  # the missing part is shown: a known total
        u = lp.var()
        unclustered.append(u)
        lp.eq.append(({**{cell[n, MISSING]: 1.0 for n in top}, u: 1.0}, rest))
    hidden = [v for v in values if v != UNLISTED and v not in listed
              and (v != MISSING or (rest is not None and rest < 0.5))]
    if rest is None:  # the missing part may be listed or hidden: a slack for its records, not an unclustered sum
        y_max, u_hidden = None, lp.var()
    else:
        y_max = sum(t for value, t in totals.items() if _spelling(value) not in spelled)
        y_max += rest if rest >= 0.5 and MISSING not in values else 0.0
        u_hidden = lp.var()
        unclustered.append(u_hidden)
    x, y = lp.var(), lp.var(0.0, y_max)
    lp.eq.append(({x: 1.0, y: 1.0, **{cell[n, UNLISTED]: -1.0 for n in top}}, 0.0))
    lp.eq.append(({**{cell[n, v]: 1.0 for n in top for v in hidden}, x: 1.0, u_hidden: 1.0}, float(nc)))
    shown = [(n, v) for n in top for v in hidden if v in published_values.get(n, ())]
    if not shown:
        return []  # nothing of those values is published here: the row is the economic table's own total
    r = lp.var()
    lp.eq.append(({r: 1.0, **{cell[key]: 1.0 for key in shown}}, float(nc)))
    return [(r, f"{facet}: not_classified (values the economic table hides) less their shown top cells", "total")]


def _fractions(view: RunView) -> list[Violation]:
    """Noised sizes vs the common denominator of a node's facet shares (shares from exact counts)."""
    slack = _slack(view)
    sizes = {r["id"]: r["size"] for r in view.clusters or [] if r.get("published") and r.get("size") is not None}
    shares = defaultdict(list)
    for r in view.facets:
        nid = r.get("cluster") or f"{r['level']}.{r['node']}"
        if r.get("share") is not None and 0 < r["share"] < 1:
            shares[nid].append(float(r["share"]))
    for r in view.clusters or []:  # clusters.parquet repeats each node's facet shares as JSON
        try:
            table = json.loads(r.get("facet_shares") or "{}")
        except ValueError:
            continue
        for values in table.values() if isinstance(table, dict) else ():
            shares[r["id"]] += [float(x) for x in values.values() if isinstance(x, (int, float)) and 0 < x < 1]
    out = []
    for nid, ss in shares.items():
        size = sizes.get(nid)
        if size is None:
            continue
        limit = int(size + slack)
        den = 1
        for s in ss:
            f = Fraction(s).limit_denominator(limit)
            if abs(float(f) - s) > share_tolerance(s):  # rounded shares: within half a unit of the last digit
                den = 0
                break
            den = den * f.denominator // math.gcd(den, f.denominator)
        if den <= 1:
            continue
        candidates = [m for m in range(den, limit + 1, den) if abs(m - size) <= slack]
        if len(candidates) == 1 and candidates[0] != size:
            out.append(Violation(ATTACK, view.facets_file, f"node {nid}",
                                 f"facet shares are fractions of {candidates[0]}: the exact size behind the "
                                 f"noised published size {size}"))
    return out
