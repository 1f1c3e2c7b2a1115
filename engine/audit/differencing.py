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
suppressed row's total: a violation only below the floor). Not yet read as equations: aggregates.csv
(its counts are checked against the floor by `groupby`), the explorer's rounded facet shares, users.

With `privacy.epsilon` in the manifest, published counts are Laplace-noised, so equalities among them
hold only up to the noise: each published count becomes an interval of ± ceil(ln(1000)/ε) (the noise
stays inside it with probability 0.999), and so does each share's count (a share may be a ratio of noised
counts, so it pins nothing exactly). Instead, each noised published node's facet shares are read as
fractions (`Fraction(share).limit_denominator`): a common denominator inside the noise interval other
than the published size is the node's exact size (shares computed from exact counts).

For each suppressed count we solve min and max (`scipy.optimize.linprog`, HiGHS, the LP relaxation of
the integer problem). A violation: the interval's largest integer is ≥ 1 and either below min_records, or
the interval holds exactly one integer (the count is pinned). A suppressed row's total (a published
aggregate) is reported only below the floor; cells of unpublished nodes only when pinned. Distinct-user
counts are not additive and are left out. One LP per facet (cells of every node and value, sizes shared),
solved twice per target: the demo (2,000 records, 3 facets) audits in ~10 s on 2 cores.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from fractions import Fraction

import numpy as np

from clio_engine.audit.files import RunView, Violation

ATTACK = "differencing"
UNLISTED = "(unlisted)"
TOL = 1e-7  # least share tolerance: tighter bands make HiGHS call consistent full-precision data infeasible
ROUND = 1e-3  # LP bounds within this of an integer count as that integer


class _LP:
    """A small LP built row by row: variables with bounds, equalities and ≤ rows, then min/max of one variable."""

    def __init__(self):
        self.lo: list[float] = []
        self.hi: list[float | None] = []
        self.eq: list[tuple[dict, float]] = []
        self.le: list[tuple[dict, float]] = []
        self._A = None

    def var(self, lo: float = 0.0, hi: float | None = None) -> int:
        self.lo.append(lo)
        self.hi.append(hi)
        return len(self.lo) - 1

    def fix(self, i: int, value: float, slack: float) -> None:
        self.lo[i], self.hi[i] = max(value - slack, 0.0), value + slack

    def share(self, count: int, denominator: int, s: float, slack: float = 0.0) -> None:
        """(s − tol)·denominator − slack ≤ count ≤ (s + tol)·denominator + slack."""
        tol = _tolerance(s)
        self.le.append(({count: 1.0, denominator: -(s + tol)}, slack))
        self.le.append(({count: -1.0, denominator: s - tol}, slack))

    def _matrices(self):
        from scipy.sparse import csr_matrix

        def build(rows):
            if not rows:
                return None, None
            r, c, v = [], [], []
            for k, (coefs, _) in enumerate(rows):
                for j, x in coefs.items():
                    r.append(k), c.append(j), v.append(x)
            return csr_matrix((v, (r, c)), shape=(len(rows), len(self.lo))), np.array([b for _, b in rows])
        return build(self.eq), build(self.le)

    def bounds(self, i: int) -> tuple[float | None, float | None]:
        """(min, max) of variable i over the feasible set; None where unbounded; (None, None) if infeasible."""
        from scipy.optimize import linprog

        if self._A is None:
            self._A = self._matrices()
        (A_eq, b_eq), (A_ub, b_ub) = self._A
        out = []
        for sign in (1.0, -1.0):
            c = np.zeros(len(self.lo))
            c[i] = sign
            res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=list(zip(self.lo, self.hi)),
                          method="highs")
            if res.status == 2:
                return None, None
            out.append(None if res.status == 3 else sign * res.fun)
        return out[0], out[1]


def _tolerance(s: float) -> float:
    text = repr(float(s))
    if "e" in text:
        return TOL
    decimals = len(text.split(".")[1]) if "." in text else 0
    return max(0.5 * 10.0 ** -decimals, TOL)


def _slack(view: RunView) -> float:
    return 0.0 if view.epsilon is None else float(math.ceil(math.log(1000) / view.epsilon))


def _verdict(lo, hi, floor: int, mode: str = "node") -> str | None:
    """mode "node": pinned at any value or bounded below the floor; "total": below the floor only (a
    suppressed row's total is a published aggregate); "cell": pinned only."""
    if hi is None:
        return None
    hi_i = math.floor(hi + ROUND)
    lo_i = math.ceil((lo or 0.0) - ROUND)
    if hi_i < 1:
        return None
    if lo_i == hi_i and (mode != "total" or hi_i < floor):
        return f"pinned to {hi_i} by the published numbers"
    if hi_i < floor and mode != "cell":
        return f"bounded to [{lo_i}, {hi_i}] by the published numbers, below min_records {floor}"
    return None


class _Tree:
    """Size variables of every node and the tree's equalities, shared by the size and facet systems."""

    def __init__(self, view: RunView, lp: _LP):
        self.view, self.lp = view, lp
        slack = _slack(view)
        rows = view.clusters or []
        self.complete = view.clusters_file == "clusters.parquet"
        self.row = {r["id"]: r for r in rows}
        self.size: dict[str | None, int] = {None: lp.var()}  # None: the clustered total T
        for r in rows:
            self.size[r["id"]] = lp.var()
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
        parents = sorted(set(kids) | set(others), key=lambda p: (p is not None, str(p)))
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
    if not view.clusters:
        return []
    out = []
    lp = _LP()
    tree = _Tree(view, lp)
    for nid in tree.targets:
        lo, hi = lp.bounds(tree.size[nid])
        if lo is None and hi is None:
            out.append(Violation(ATTACK, view.clusters_file, "tree", "published sizes are inconsistent (LP infeasible)"))
            break
        if (why := _verdict(lo, hi, view.min_records, "total" if nid in tree.rests else "node")):
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


def _facet(view: RunView, facet: str) -> list[Violation]:
    lp = _LP()
    tree = _Tree(view, lp)
    slack = _slack(view)
    by_node = _cell_rows(view, facet)
    values = sorted({r["value"] for rows in by_node.values() for r in rows if not r["suppressed"] and r["value"] is not None})
    values.append(UNLISTED)
    cell = {(n, v): lp.var() for n in tree.members for v in values}
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
    out = []
    for n, h in hidden_rows.items():
        lo, hi = lp.bounds(h)
        if lo is None and hi is None:
            return [Violation(ATTACK, "facets.parquet", f"facet {facet}", "published cells are inconsistent (LP infeasible)")]
        if (why := _verdict(lo, hi, view.min_records, "total")):
            out.append(Violation(ATTACK, "facets.parquet", f"node {n} {facet}=(suppressed)", f"suppressed cells' total {why}"))
    published_values = {n: {r["value"] for r in rows if not r["suppressed"]} for n, rows in by_node.items()}
    for n in tree.members:
        if n in by_node or (n in tree.row and tree.row[n].get("published")):
            continue
        for v in sorted(published_values.get(tree.parent_of.get(n), ())):
            lo, hi = lp.bounds(cell[n, v])
            if (why := _verdict(lo, hi, view.min_records, "cell")):
                out.append(Violation(ATTACK, "facets.parquet", f"node {n} {facet}={v}", f"cell of an unpublished node {why}"))
    return out


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
            if abs(float(f) - s) > _tolerance(s):  # rounded shares: within half a unit of the last digit
                den = 0
                break
            den = den * f.denominator // math.gcd(den, f.denominator)
        if den <= 1:
            continue
        candidates = [m for m in range(den, limit + 1, den) if abs(m - size) <= slack]
        if len(candidates) == 1 and candidates[0] != size:
            out.append(Violation(ATTACK, "facets.parquet", f"node {nid}",
                                 f"facet shares are fractions of {candidates[0]}: the exact size behind the "
                                 f"noised published size {size}"))
    return out
