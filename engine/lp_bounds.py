"""Bounds on unknown counts given every published number, and what they give away: the audit's differencing
attacks and the Economic Index generator's joint check (`economic.joint_check`) both solve with it, so it sits
under neither package.

`LP` is built row by row (variables with bounds, equalities, ≤ rows, share bands); `solve` bounds many
variables at once with HiGHS (scipy's bundled copy, the LP relaxation of the integer problem): one
warm-started model per independent component, `linprog` where the bindings are not usable. `verdict` reads
a target's bounds: pinned, or bounded below the floor.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

TOL = 1e-7  # least share tolerance: tighter bands make HiGHS call consistent full-precision data infeasible
ROUND = 1e-3  # LP bounds within this of an integer count as that integer
MAX_RANDOM_POINTS = 400  # random-objective solves that widen the pool of feasible points before targets are
# solved one by one; they go on while each still settles ≥ 2 open targets (a target's own solve settles one)


class LP:
    """A small LP built row by row: variables with bounds, equalities and ≤ rows; then `solve` bounds many
    variables at once.

    `solve` splits the system first: a variable whose bounds are equal is a constant (moved to the right-hand
    side), and the other variables fall into independent components (variables linked by a row). Each target
    is bounded in its own component only, one HiGHS model per component re-solved with a new objective (warm
    start). Targets whose verdict is already settled by the feasible points found so far are not solved: a
    point with the target at x shows max ≥ x, and two points at x and x' show that the bounds hold more than one
    integer when |x − x'| ≥ 2 (exact: every point the solver returns is feasible, up to its 1e-7 tolerance)."""

    def __init__(self):
        self.lo: list[float] = []
        self.hi: list[float | None] = []
        self.eq: list[tuple[dict, float]] = []
        self.le: list[tuple[dict, float]] = []

    def var(self, lo: float = 0.0, hi: float | None = None) -> int:
        self.lo.append(lo)
        self.hi.append(hi)
        return len(self.lo) - 1

    def fix(self, i: int, value: float, slack: float) -> None:
        """value − slack ≤ x_i ≤ value + slack, within the bounds x_i has (a count two releases publish is
        fixed by both: the true count lies in both intervals)."""
        hi = value + slack if self.hi[i] is None else min(self.hi[i], value + slack)
        self.lo[i], self.hi[i] = max(value - slack, self.lo[i], 0.0), hi

    def share(self, count: int, denominator: int, s: float, slack: float = 0.0) -> None:
        """(s − tol)·denominator − slack ≤ count ≤ (s + tol)·denominator + slack."""
        tol = share_tolerance(s)
        self.le.append(({count: 1.0, denominator: -(s + tol)}, slack))
        self.le.append(({count: -1.0, denominator: s - tol}, slack))

    def bounds(self, i: int) -> tuple[float | None, float | None]:
        """(min, max) of variable i over the feasible set; None where unbounded; (None, None) if infeasible."""
        result = self.solve({i: "exact"}, 0)
        return (None, None) if result is None else result[i]

    def solve(self, targets: dict[int, str], floor: int) -> dict[int, tuple | None] | None:
        """{target: (min, max) or None where its verdict (`verdict` in `mode`, the target's value) is settled
        as "no violation" without solving}; None when the system is infeasible. Modes: "node", "total", "cell"
        (see `verdict`), "exact" (always solved)."""
        n = len(self.lo)
        lo = np.array(self.lo, dtype=float)
        hi = np.array([np.inf if h is None else h for h in self.hi], dtype=float)
        if np.any(lo > hi + FEAS):
            return None
        fixed = hi - lo <= 0
        value = np.where(fixed, lo, 0.0)
        parent = list(range(n))

        def find(a):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a
        rows = []  # (free coefficients, lower, upper)
        for kind, system in (("eq", self.eq), ("le", self.le)):
            for coefs, b in system:
                free = {j: x for j, x in coefs.items() if x != 0 and not fixed[j]}
                rhs = b - sum(x * value[j] for j, x in coefs.items() if fixed[j])
                scale = FEAS * max(1.0, abs(b), *(abs(x * value[j]) for j, x in coefs.items() if fixed[j]))
                if not free:
                    if rhs < -scale or (kind == "eq" and rhs > scale):
                        return None
                    continue
                rows.append((free, rhs if kind == "eq" else -np.inf, rhs))
                first = find(next(iter(free)))
                for j in free:
                    r = find(j)
                    if r != first:
                        parent[r] = first
        out: dict[int, tuple | None] = {}
        todo = defaultdict(list)
        for i in targets:
            if fixed[i]:
                out[i] = (float(value[i]), float(value[i]))
            else:
                todo[find(i)].append(i)
        if not todo:
            return out
        comp_rows = defaultdict(list)
        for row in rows:
            r = find(next(iter(row[0])))
            if r in todo:
                comp_rows[r].append(row)
        members = defaultdict(list)
        for j in range(n):
            if not fixed[j] and (r := find(j)) in todo:
                members[r].append(j)
        for r, ts in todo.items():
            solved = _Component(members[r], comp_rows[r], lo, hi).bound(ts, targets, floor)
            if solved is None:
                return None
            out.update(solved)
        return out


FEAS = 1e-6  # relative tolerance of a row made of published constants only


def _settled(mode: str, pool_lo: float, pool_hi: float, floor: int) -> bool:
    """Whether feasible points with the target at pool_lo and pool_hi already rule out a violation."""
    # The LP bounds hold both points, so when the points' own interval holds two integers (as `verdict` rounds
    # them) the count is not pinned.
    spread = math.ceil(pool_lo - ROUND) < math.floor(pool_hi + ROUND) if np.isfinite(pool_lo) else False
    if mode == "total":
        return pool_hi + ROUND >= floor
    if mode == "cell":
        return spread
    if mode == "node":
        return spread and pool_hi >= floor
    return False


class _Component:
    """One independent block of the LP (its free variables and rows), solved with HiGHS (scipy's bundled
    copy), or with `linprog` where that is not importable."""

    def __init__(self, cols: list[int], rows: list[tuple], lo, hi):
        self.cols = cols
        self.index = {j: k for k, j in enumerate(cols)}
        self.lo, self.hi = lo[cols], hi[cols]
        self.row_lo = np.array([r[1] for r in rows], dtype=float)
        self.row_hi = np.array([r[2] for r in rows], dtype=float)
        from scipy.sparse import csc_matrix

        ri, ci, vv = [], [], []
        for k, (coefs, _, _) in enumerate(rows):
            for j, x in coefs.items():
                ri.append(k), ci.append(self.index[j]), vv.append(x)
        self.A = csc_matrix((vv, (ri, ci)), shape=(len(rows), len(cols)))
        self.pool_lo = np.full(len(cols), np.inf)
        self.pool_hi = np.full(len(cols), -np.inf)
        self.cost = np.zeros(len(cols))  # the HiGHS model's objective now
        self.highs = _highs_model(self) if rows else None

    def _optimum(self, k: int, sign: float):
        """(status, x_k at the optimum) of minimising sign·x_k: status "ok", "unbounded" or "infeasible"."""
        if not len(self.row_lo):  # no rows: the variable's own bounds
            v = self.lo[k] if sign > 0 else self.hi[k]
            return ("ok", float(v)) if np.isfinite(v) else ("unbounded", None)
        c = np.zeros(len(self.cols))
        c[k] = sign
        status, x = _run(self, c)
        if status != "ok":
            return status, None
        self.pool_lo = np.minimum(self.pool_lo, x)
        self.pool_hi = np.maximum(self.pool_hi, x)
        return "ok", float(x[k])

    def bound(self, ts: list[int], modes: dict[int, str], floor: int) -> dict | None:
        out = {}
        if self.highs is not None and len(ts) > 2:
            # Spread-out points first: most targets settle on them. All targets down, all up, then random
            # mixes (seeded) of the targets still open, while each settles at least two of them: each is one
            # warm-started solve, where a target's own pair of solves costs two. (The 20,000-record economic
            # release: ~100 rounds settle 21,000 of 21,600 cell targets; 8 rounds left 8,800 open, 7× slower.)
            rng = np.random.default_rng(0)
            index = np.array([self.index[t] for t in ts])
            n_open = len(ts) + 2
            for round_ in range(2 + MAX_RANDOM_POINTS):
                open_ = [k for t, k in zip(ts, index) if not _settled(modes[t], self.pool_lo[k], self.pool_hi[k], floor)]
                if round_ >= 2 and (len(open_) < 8 or (round_ >= 3 and n_open - len(open_) < 2)):
                    break
                n_open = len(open_)
                c = np.zeros(len(self.cols))
                if round_ < 2:
                    c[index] = (-1.0, 1.0)[round_]
                else:
                    c[open_] = rng.choice((-1.0, 1.0), len(open_))
                status, x = _run(self, c)
                if status == "infeasible":
                    return None
                if status == "ok":
                    self.pool_lo, self.pool_hi = np.minimum(self.pool_lo, x), np.maximum(self.pool_hi, x)
        for t in ts:
            k = self.index[t]
            if _settled(modes[t], self.pool_lo[k], self.pool_hi[k], floor):
                out[t] = None
                continue
            status, top = self._optimum(k, -1.0)
            if status == "infeasible":
                return None
            top = None if status == "unbounded" else top
            if top is not None and modes[t] != "exact" and math.floor(top + ROUND) < 1:
                out[t] = None  # at most a fraction: no count to give away
                continue
            if modes[t] != "exact" and (top is None or _settled(modes[t], self.pool_lo[k], self.pool_hi[k], floor)):
                out[t] = None  # unbounded above, or settled by the points found: no verdict
                continue
            status, bottom = self._optimum(k, 1.0)
            if status == "infeasible":
                return None
            out[t] = (bottom, top)
        return out


def _highs_model(comp: _Component):
    """A HiGHS model of the component (scipy's bundled bindings, a private module), or None where that is not
    there or not as expected: every solve then goes through `linprog` (the same solver, rebuilt per solve)."""
    try:
        return _build_highs(comp)
    except Exception:  # noqa: BLE001 — any other scipy: the public, slower path
        return None


def _build_highs(comp: _Component):
    from scipy.optimize._highspy import _core as hc

    inf = hc.kHighsInf
    lp = hc.HighsLp()
    lp.num_col_, lp.num_row_ = len(comp.cols), len(comp.row_lo)
    lp.col_cost_ = np.zeros(len(comp.cols))
    lp.col_lower_ = comp.lo
    lp.col_upper_ = np.where(np.isfinite(comp.hi), comp.hi, inf)
    lp.row_lower_ = np.where(np.isfinite(comp.row_lo), comp.row_lo, -inf)
    lp.row_upper_ = comp.row_hi
    m = lp.a_matrix_
    m.format_ = hc.MatrixFormat.kColwise
    m.num_col_, m.num_row_ = len(comp.cols), len(comp.row_lo)
    m.start_, m.index_, m.value_ = comp.A.indptr, comp.A.indices, comp.A.data
    h = hc._Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")  # re-solves after a cost change start from the last basis
    h.setOptionValue("simplex_strategy", 4)  # primal simplex: that basis stays primal feasible
    if h.passModel(lp) != hc.HighsStatus.kOk:
        return None
    return h, hc


def _run(comp: _Component, c: np.ndarray):
    """Minimise c·x over the component: ("ok", x), ("unbounded", None) or ("infeasible", None)."""
    if comp.highs is not None:
        h, hc = comp.highs
        changed = np.flatnonzero(c != comp.cost)  # one target after another: two costs change, not all
        if len(changed):
            h.changeColsCost(len(changed), changed.astype(np.int32), c[changed])
            comp.cost = c.copy()
        h.run()
        status = h.getModelStatus()
        if status == hc.HighsModelStatus.kOptimal:
            return "ok", np.array(h.getSolution().col_value)
        if status == hc.HighsModelStatus.kInfeasible:
            return "infeasible", None
        if status in (hc.HighsModelStatus.kUnbounded, hc.HighsModelStatus.kUnboundedOrInfeasible):
            # the system was feasible on an earlier solve when the pool holds a point; else ask linprog
            if np.isfinite(comp.pool_lo).any():
                return "unbounded", None
        # anything else (a time or iteration limit, a numerical failure): the slow, reliable path
    from scipy.optimize import linprog

    res = linprog(c, method="highs", bounds=list(zip(comp.lo, np.where(np.isfinite(comp.hi), comp.hi, None))),
                  **_linprog_rows(comp))
    if res.status == 2:
        return "infeasible", None
    if res.status == 3:
        return "unbounded", None
    if res.status != 0:
        raise RuntimeError(f"differencing LP failed: {res.message}")
    return "ok", np.asarray(res.x)


def _linprog_rows(comp: _Component) -> dict:
    eq = np.isfinite(comp.row_lo)
    A = comp.A.tocsr()
    out = {}
    if eq.any():
        out.update(A_eq=A[eq], b_eq=comp.row_hi[eq])
    if (~eq).any():
        out.update(A_ub=A[~eq], b_ub=comp.row_hi[~eq])
    return out


def share_tolerance(s: float) -> float:
    """How far the true value of a published share `s` may lie from it: half a unit of its last printed digit
    (a share rounded when written), never less than TOL."""
    text = repr(float(s))
    if "e" in text:
        return TOL
    decimals = len(text.split(".")[1]) if "." in text else 0
    return max(0.5 * 10.0 ** -decimals, TOL)


def verdict(lo, hi, floor: int, mode: str = "node") -> str | None:
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
