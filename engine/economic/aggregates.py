"""Every published economic number as rows of the Economic Index's long layout, through the privacy floors.

    agg = economic_rows(records, load_taxonomy(), min_users=5, min_records=15,
                        population=pop, geography_columns=["country"])
    agg.rows   # DataFrame geo_id, geography, facet, level, variable, cluster_name, value
    agg.facts  # dict for the manifest: published / suppressed cells per table, fits, concentration,
               # automation share, and `denominator` (the population figure behind the AUI, as passed in)

records [N rows]: user (int ≥ 0), task (int; −1 = no occupational task), optional collaboration (one of
MODES or missing), and each geography column (codes or missing).

Privacy (SPEC §4). A cell is published only with ≥ min_users distinct users and ≥ min_records records.
Each table whose total is known (the task table, the collaboration table, each task's collaboration cells,
each geography column, occupations, SOC major groups) is a group of parts; a "missing" part (records without
a collaboration value / geography) joins the group, since total − Σ rows would give it. Secondary suppression
then hides the smallest shown part until the hidden parts sum to 0, or to ≥ both floors over ≥ 2 parts; that
sum is the not_classified row. The task × collaboration table is also checked by column (a mode's global
count is the sum of its cells over all tasks), so a hidden cell is not pinned by the other direction.
Occupation, SOC major group and penetration numbers use published tasks only; concentration uses published
tasks; the AUI, tiers and the GDP fit use published geographies only. Level-1 collaboration shares
(automation / augmentation) are computed from published cells, so they add no equation on hidden ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from clio_engine.economic.cells import Cells, _protect, _table_facts, collaboration_cells, geography_cells, one_table
from clio_engine.economic.concentration import bottom_share, gini, line_fit, rank_share_fit
from clio_engine.economic.inputs import MISSING, MODES, read_records
from clio_engine.economic.joint_check import protect_jointly
from clio_engine.economic.onet import Taxonomy, data_file
from clio_engine.errors import ConfigError, InputError

COLUMNS = ["geo_id", "geography", "facet", "level", "variable", "cluster_name", "value"]
AUTOMATION = ("directive", "feedback loop")
AUGMENTATION = ("task iteration", "learning", "validation")
PENETRATION = (10, 25, 50, 75)
NOT_CLASSIFIED = "not_classified"
MIN_TIER_GEOGRAPHIES = 4  # usage tiers are quartiles of the AUI: four geographies at least, one per tier
MIN_FIT_GEOGRAPHIES = 5   # ln AUI ~ ln GDP per capita with 3 degrees of freedom at least (a line through 3 points says little)


@dataclass
class EconomicAggregates:
    """rows: the long table (COLUMNS). facts: numbers for the manifest (cells published / suppressed per
    table, records hidden, fits, concentration, automation share, population denominator)."""

    rows: pd.DataFrame
    facts: dict = field(default_factory=dict)


# ---------------------------------------------------------------- rows


class _Rows:
    """Collects blocks of rows (vectorised: one DataFrame per block) for the long table."""

    def __init__(self):
        self.blocks: list[pd.DataFrame] = []

    def add(self, geo_id, geography: str, facet: str, level: int, variable: str, names, values):
        names = np.atleast_1d(np.asarray(names, dtype=object))
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), names.shape)
        geo = np.broadcast_to(np.asarray(geo_id, dtype=object), names.shape)
        if len(names):
            self.blocks.append(pd.DataFrame({"geo_id": geo, "geography": geography, "facet": facet, "level": level,
                                             "variable": variable, "cluster_name": names, "value": values}))

    def frame(self) -> pd.DataFrame:
        if not self.blocks:
            return pd.DataFrame({c: pd.Series(dtype=float if c == "value" else int if c == "level" else object)
                                 for c in COLUMNS})
        out = pd.concat(self.blocks, ignore_index=True)
        out["level"] = out.level.astype(np.int64)
        return out[COLUMNS]


def _pct(x, total) -> np.ndarray:
    return 100.0 * np.asarray(x, np.float64) / total if total > 0 else np.full(np.shape(x), np.nan)


# ---------------------------------------------------------------- population matching


def _iso_map() -> dict[str, str]:
    """Upper-case ISO alpha-2 and alpha-3 → alpha-3, from the shipped country table."""
    with data_file("countries.csv").open("rb") as fh:
        table = pd.read_csv(fh, dtype=str, keep_default_na=False)
    m = {c.upper(): c.upper() for c in table.iso3}
    m.update({a.upper(): b.upper() for a, b in zip(table.iso2, table.iso3)})
    return m


def _population_lookup(population: pd.DataFrame | None):
    """(canonical key → row, the iso map, name [P], population [P], gdp_per_capita [P]) checked; None when absent."""
    if population is None:
        return None
    need = {"geo_id", "name", "population", "gdp_per_capita"}
    if not isinstance(population, pd.DataFrame) or not need <= set(population.columns):
        have = list(population.columns) if isinstance(population, pd.DataFrame) else type(population).__name__
        raise InputError(f"population must be a DataFrame with columns {sorted(need)} (have {have})")
    pop = pd.to_numeric(population.population, errors="coerce").to_numpy(np.float64)
    gdp = pd.to_numeric(population.gdp_per_capita, errors="coerce").to_numpy(np.float64)
    if (pop[~np.isnan(pop)] < 0).any() or (gdp[~np.isnan(gdp)] < 0).any():
        raise InputError("population holds a negative population or gdp_per_capita")
    iso = _iso_map()
    keys = [iso.get(str(g).strip().upper(), str(g).strip().upper()) for g in population.geo_id]
    dup = pd.Index(keys)[pd.Index(keys).duplicated()]
    if len(dup):
        raise InputError(f"population lists geo_id {dup[0]!r} twice (ISO alpha-2 and alpha-3 count as one)")
    names = population.name.astype(object).where(population.name.notna(), "").astype(str).to_numpy(object)
    return {k: i for i, k in enumerate(keys)}, iso, names, pop, gdp


# ---------------------------------------------------------------- the tables


def economic_rows(records: pd.DataFrame, taxonomy: Taxonomy, *, min_users: int, min_records: int,
                  population: pd.DataFrame | None = None, geography_columns: Sequence[str] = (),
                  min_geo_records: int = 200, denominator: str | None = None) -> EconomicAggregates:
    """The long table of items 1–10 (see module doc) for records [N rows]; denominator names the population
    figure behind the AUI (recorded in facts)."""
    for name, v in (("min_users", min_users), ("min_records", min_records), ("min_geo_records", min_geo_records)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{name} must be an integer ≥ 1, got {v!r}")
    geography_columns = list(geography_columns)
    user, task, mode = read_records(records, taxonomy, geography_columns)
    lookup = _population_lookup(population)
    floors = dict(min_users=int(min_users), min_records=int(min_records))
    uid = pd.factorize(user)[0].astype(np.int64)  # dense user ids 0..U-1
    n = len(task)
    rows = _Rows()
    facts: dict = {"floors": floors, "denominator": denominator, "records": int(n)}
    users_total = int(uid.max(initial=-1)) + 1
    if n < min_records or users_total < min_users:
        facts["total"] = {"published": False, "reason": f"{n} records from {users_total} users is below the floors"}
        return EconomicAggregates(rows.frame(), facts)
    facts["total"] = {"published": True}
    G = ("GLOBAL", "global")
    rows.add(*G, "total", 0, "usage_count", ["all"], [n])
    rows.add(*G, "total", 0, "usage_users", ["all"], [users_total])

    T = taxonomy.n_tasks
    none = T  # the "no occupational task" part
    tkey = np.where(task < 0, none, task)
    tc = Cells(tkey, uid, T + 1)
    parts, primary, shown = one_table(tc, floors)
    facts["onet_task"] = _table_facts(tc, parts, primary, shown, n)
    pub_task = shown[:T].copy()  # published occupational tasks
    _task_rows(rows, taxonomy, tc, shown, n)
    pub_counts = tc.size[:T][pub_task]
    _occupation_rows(rows, taxonomy, tc, pub_task, floors, facts)
    _concentration_rows(rows, pub_counts, facts)
    if mode is not None:
        _collaboration_rows(rows, taxonomy, tkey, mode, uid, shown, floors, facts)
    for col in geography_columns:
        _geography_rows(rows, records[col], col, uid, lookup, floors, int(min_geo_records), facts)
    return EconomicAggregates(rows.frame(), facts)


def _task_rows(rows: _Rows, taxonomy: Taxonomy, tc: Cells, shown: np.ndarray, n: int) -> None:
    T = taxonomy.n_tasks
    idx = np.flatnonzero(shown[:T] & (tc.size[:T] > 0))
    names = taxonomy.task_text[idx]
    G = ("GLOBAL", "global")
    for var, vals in (("onet_task_count", tc.size[idx]), ("onet_task_users", tc.users[idx]),
                      ("onet_task_pct", _pct(tc.size[idx], n))):
        rows.add(*G, "onet_task", 0, var, names, vals)
    if shown[T] and tc.size[T] > 0:
        rows.add(*G, "onet_task", 0, "onet_task_count", ["none"], [tc.size[T]])
        rows.add(*G, "onet_task", 0, "onet_task_users", ["none"], [tc.users[T]])
        rows.add(*G, "onet_task", 0, "onet_task_pct", ["none"], _pct([tc.size[T]], n))
    hidden = float(tc.size[~shown].sum())
    if hidden > 0:
        rows.add(*G, "onet_task", 0, "onet_task_count", [NOT_CLASSIFIED], [hidden])
        rows.add(*G, "onet_task", 0, "onet_task_pct", [NOT_CLASSIFIED], _pct([hidden], n))


def _occupation_names(taxonomy: Taxonomy) -> np.ndarray:
    occ = taxonomy.occupations
    dup = occ.title.duplicated(keep=False).to_numpy()
    return np.where(dup, occ.title + " (" + occ.soc_code + ")", occ.title).astype(object)


def _occupation_rows(rows: _Rows, taxonomy: Taxonomy, tc: Cells, pub_task: np.ndarray, floors: dict,
                     facts: dict) -> None:
    """Items 3–5 from published tasks only: equal-split occupation counts, SOC major groups, penetration."""
    links = taxonomy.links
    occ = taxonomy.occupations
    n_occ, n_major = len(occ), len(taxonomy.majors)
    lt, lo, lw = links.task.to_numpy(), links.occupation.to_numpy(), links.weight.to_numpy()
    T = taxonomy.n_tasks
    task_count = np.where(pub_task, tc.size[:T], 0.0)
    occ_count = np.bincount(lo, weights=lw * task_count[lt], minlength=n_occ)
    occ_major = occ.major.to_numpy()
    major_count = np.bincount(occ_major, weights=occ_count, minlength=n_major)
    basis = float(task_count.sum())  # records in published tasks
    # distinct users per occupation / major over published tasks: expand (task, user) pairs to the task's links
    keep = (tc.pair_part < T)
    keep[keep] = pub_task[tc.pair_part[keep]]
    pt, pu = tc.pair_part[keep], tc.pair_user[keep]
    order = np.argsort(lt, kind="stable")
    per_task = np.bincount(lt, minlength=T)
    first = np.searchsorted(lt[order], np.arange(T))
    reps = per_task[pt]
    offset = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
    pair_occ = lo[order[np.repeat(first[pt], reps) + offset]]
    pair_u = np.repeat(pu, reps)
    G = ("GLOBAL", "global")
    for facet, key, size, n_parts, names in (
            ("soc_occupation", pair_occ, occ_count, n_occ, _occupation_names(taxonomy)),
            ("soc_major_group", occ_major[pair_occ], major_count, n_major,
             taxonomy.majors.title.to_numpy().astype(object))):
        cells = Cells(key, pair_u, n_parts, size=size)
        parts, primary, shown = one_table(cells, floors)
        facts[facet] = _table_facts(cells, parts, primary, shown, basis)
        idx = np.flatnonzero(shown & (size > 0))
        rows.add(*G, facet, 0, f"{facet}_count", names[idx], size[idx])
        rows.add(*G, facet, 0, f"{facet}_pct", names[idx], _pct(size[idx], basis))
        hidden = float(size[parts][~shown[parts]].sum())
        if hidden > 0:
            rows.add(*G, facet, 0, f"{facet}_count", [NOT_CLASSIFIED], [hidden])
            rows.add(*G, facet, 0, f"{facet}_pct", [NOT_CLASSIFIED], _pct([hidden], basis))
    # penetration: share of all occupations whose published tasks cover ≥ p% of the occupation's tasks
    covered = np.bincount(lo, weights=pub_task[lt].astype(np.float64), minlength=n_occ)
    coverage = covered / occ.n_tasks.to_numpy(np.float64)
    pen = np.array([100.0 * np.mean(coverage >= p / 100.0 - 1e-12) for p in PENETRATION])
    rows.add(*G, "task_penetration", 0, "occupation_pct", [str(p) for p in PENETRATION], pen)
    facts["task_penetration"] = {str(p): float(v) for p, v in zip(PENETRATION, pen)}


def _concentration_rows(rows: _Rows, pub_counts: np.ndarray, facts: dict) -> None:
    G = ("GLOBAL", "global")
    if len(pub_counts) < 2:
        facts["concentration"] = {"n": int(len(pub_counts)), "reason": "fewer than 2 published tasks"}
        return
    slope, intercept, r2, k = rank_share_fit(pub_counts)
    values = {"rank_share_slope": slope, "rank_share_intercept": intercept, "rank_share_r2": r2,
              "gini": gini(pub_counts), "bottom_80_pct": 100.0 * bottom_share(pub_counts, 0.8), "n": k}
    for var, v in values.items():
        rows.add(*G, "concentration", 0, var, ["onet_task"], [v])
    facts["concentration"] = values


def _collaboration_rows(rows: _Rows, taxonomy: Taxonomy, tkey: np.ndarray, mode: np.ndarray, uid: np.ndarray,
                        task_shown: np.ndarray, floors: dict, facts: dict) -> None:
    """Items 6–7: the global collaboration table and each published task's cells, protected by row and column."""
    G = ("GLOBAL", "global")
    V = MISSING + 1
    T = taxonomy.n_tasks
    gc = collaboration_cells(mode, uid)
    gparts, gprimary, gshown = one_table(gc, floors)
    facts["collaboration"] = _table_facts(gc, gparts, gprimary, gshown, len(mode))
    facts["collaboration"]["missing_records_folded"] = float(gc.size[MISSING] if not gshown[MISSING] else 0.0)
    auto = _mode_rows(rows, gc, gshown)
    facts["automation_share"] = None if auto is None else auto / 100.0  # over published cells of the five modes

    # task × mode cells of every task (the none row and hidden tasks included: they sit in the columns)
    key = tkey * V + mode
    cc = Cells(key, uid, (T + 1) * V)
    size = cc.size.reshape(T + 1, V)
    pub = np.zeros(T + 1, bool)
    pub[:T] = task_shown[:T] & (size[:T].sum(1) > 0)
    primary = (cc.passes(**floors).reshape(T + 1, V) & pub[:, None]).ravel()
    cell = np.arange((T + 1) * V).reshape(T + 1, V)
    groups = [cell[t][size[t] > 0] for t in np.flatnonzero(pub)]
    # the rows the tables publish only as totals: the none row (when shown) and the block of hidden tasks;
    # and published tasks with a single mode. A value holding all of such a row is known from the row's total,
    # so it cannot stand for a column's hidden rest (it is left out of the column groups).
    known = np.zeros((T + 1, V), bool)
    single = pub & ((size > 0).sum(1) == 1)
    known[single] = size[single] > 0
    hidden_rows = ~task_shown[:T + 1].copy()
    blocks = [hidden_rows & (size.sum(1) > 0)]
    if task_shown[T]:
        only_none = np.zeros(T + 1, bool)
        only_none[T] = True
        blocks.append(only_none)
    for b in blocks:
        col_sum = size[b].sum(0)
        if (col_sum > 0).sum() == 1:
            known[b, np.flatnonzero(col_sum > 0)[0]] = True
    cols = [[v] for v in np.flatnonzero(gshown)] + ([list(np.flatnonzero(~gshown & (gc.size > 0)))]
                                                    if (~gshown & (gc.size > 0)).any() else [])
    for vs in cols:
        member = cell[:, vs].ravel()
        groups.append(member[~known.ravel()[member]])
    shown = _protect(cc, primary, groups, **floors)
    # Rows and columns each pass, but the table as one system can still give a count back (a bridge cell,
    # a column of one unknown): hide more until the reader's LP bounds no count below the floor.
    shown, _ = protect_jointly(size, shown.reshape(T + 1, V), pub, task_shown[:T + 1], gshown,
                               floors["min_records"], lambda m: _protect(cc, m.ravel(), groups, **floors).reshape(T + 1, V))
    shown = shown.ravel()
    ppub = np.flatnonzero(pub)
    facts["onet_task::collaboration"] = _table_facts(cc, cell[ppub].ravel(), primary, shown, float(size[ppub].sum()))
    _task_mode_rows(rows, taxonomy, size, shown.reshape(T + 1, V), ppub)


def _mode_rows(rows: _Rows, cells: Cells, shown: np.ndarray) -> float | None:
    """The global collaboration table (item 6): shown modes, not_classified, level-1 automation/augmentation.
    Returns the automation % (None when no cell of the five modes is published)."""
    geo, facet = ("GLOBAL", "global"), "collaboration"
    size = cells.size
    hidden = float(size[~shown].sum())
    denom = float(size[:MISSING][shown[:MISSING]].sum()) + hidden  # the table's rows sum to 100%
    idx = np.flatnonzero(shown[:MISSING] & (size[:MISSING] > 0))
    names = np.array(MODES, dtype=object)[idx]
    rows.add(*geo, facet, 0, "collaboration_count", names, size[idx])
    rows.add(*geo, facet, 0, "collaboration_users", names, cells.users[idx])
    rows.add(*geo, facet, 0, "collaboration_pct", names, _pct(size[idx], denom))
    if hidden > 0:
        rows.add(*geo, facet, 0, "collaboration_count", [NOT_CLASSIFIED], [hidden])
        rows.add(*geo, facet, 0, "collaboration_pct", [NOT_CLASSIFIED], _pct([hidden], denom))
    auto, aug = _level1(size[:MISSING], shown[:MISSING], hidden)
    if auto is not None:
        rows.add(*geo, facet, 1, "collaboration_pct", ["automation", "augmentation"], [auto, aug])
    return auto


def _level1(size: np.ndarray, shown: np.ndarray, hidden: float):
    """(automation %, augmentation %) among published cells of the five modes; (None, None) when none is, or when
    those cells hold fewer records than the table's hidden remainder (`hidden`, the not_classified row): a split of the
    smaller part could be far from the records' (a task's 16 shown of 43 gave 0% automation against 34.9%). Both
    numbers are published, so the choice tells nothing more of the hidden cells."""
    s = np.where(shown, size, 0.0)
    auto = s[[MODES.index(m) for m in AUTOMATION]].sum()
    aug = s[[MODES.index(m) for m in AUGMENTATION]].sum()
    if auto + aug <= 0 or auto + aug < hidden:
        return None, None
    return 100.0 * auto / (auto + aug), 100.0 * aug / (auto + aug)


def _task_mode_rows(rows: _Rows, taxonomy: Taxonomy, size: np.ndarray, shown: np.ndarray, ppub: np.ndarray) -> None:
    G = ("GLOBAL", "global")
    facet = "onet_task::collaboration"
    sub, sh = size[ppub], shown[ppub]
    text = taxonomy.task_text[ppub]
    hidden = np.where(sh, 0.0, sub).sum(1)
    denom = np.where(sh[:, :MISSING], sub[:, :MISSING], 0.0).sum(1) + hidden
    t_i, v_i = np.nonzero(sh[:, :MISSING] & (sub[:, :MISSING] > 0))
    names = pd.Series(text[t_i]).astype(str) + "::" + np.array(MODES, dtype=object)[v_i]
    rows.add(*G, facet, 0, "onet_task_collaboration_count", names.to_numpy(object), sub[t_i, v_i])
    rows.add(*G, facet, 0, "onet_task_collaboration_pct", names.to_numpy(object),
             100.0 * sub[t_i, v_i] / denom[t_i])
    h = np.flatnonzero(hidden > 0)
    nc = (pd.Series(text[h]).astype(str) + "::" + NOT_CLASSIFIED).to_numpy(object)
    rows.add(*G, facet, 0, "onet_task_collaboration_count", nc, hidden[h])
    rows.add(*G, facet, 0, "onet_task_collaboration_pct", nc, 100.0 * hidden[h] / denom[h])
    auto_i = [MODES.index(m) for m in AUTOMATION]
    aug_i = [MODES.index(m) for m in AUGMENTATION]
    s = np.where(sh, sub, 0.0)
    auto, aug = s[:, auto_i].sum(1), s[:, aug_i].sum(1)
    ok = np.flatnonzero((auto + aug > 0) & (auto + aug >= hidden))  # as _level1: not from the smaller part
    base = pd.Series(text[ok]).astype(str)
    rows.add(*G, facet, 1, "onet_task_collaboration_pct", (base + "::automation").to_numpy(object),
             100.0 * auto[ok] / (auto[ok] + aug[ok]))
    rows.add(*G, facet, 1, "onet_task_collaboration_pct", (base + "::augmentation").to_numpy(object),
             100.0 * aug[ok] / (auto[ok] + aug[ok]))


def _geography_rows(rows: _Rows, column: pd.Series, col: str, uid: np.ndarray, lookup, floors: dict,
                    min_geo_records: int, facts: dict) -> None:
    """Items 9–10 for one geography column: usage per code, AUI and tiers, and ln AUI ~ ln GDP per capita."""
    cells, codes = geography_cells(column, uid)  # part K = records without a geography
    clash = {"GLOBAL", NOT_CLASSIFIED} & set(codes)
    if clash:
        raise InputError(f"records.{col} holds the reserved code {sorted(clash)[0]!r}")
    if lookup is not None:  # two codes of one country would each get its whole population (every AUI skewed)
        iso, seen = lookup[1], {}
        for code in codes:
            key = iso.get(str(code).upper())
            if key is not None and seen.setdefault(key, code) != code:
                raise InputError(f"records.{col} holds {seen[key]!r} and {code!r}, which name one country: map them "
                                 "to one code first (clio-engine run makes every ISO code its alpha-2 code)")
    K = len(codes)
    parts, primary, shown = one_table(cells, floors)
    f = _table_facts(cells, parts, primary, shown, len(column))
    f["missing_records_folded"] = float(cells.size[K] if not shown[K] else 0.0)
    facts[col] = f
    idx = np.flatnonzero(shown[:K] & (cells.size[:K] > 0))
    hidden = float(cells.size[~shown].sum())
    denom = float(cells.size[idx].sum()) + hidden
    count = cells.size[idx]
    geo = codes[idx].astype(object)
    names = geo.copy()
    pop = np.full(len(idx), np.nan)
    gdp = np.full(len(idx), np.nan)
    if lookup is not None:
        index, iso, pop_name, pop_value, pop_gdp = lookup
        for j, code in enumerate(geo):
            r = index.get(iso.get(code.upper(), code.upper()))
            if r is not None:
                names[j] = pop_name[r] or code
                pop[j], gdp[j] = pop_value[r], pop_gdp[r]
    for var, vals in (("usage_count", count), ("usage_users", cells.users[idx]), ("usage_pct", _pct(count, denom))):
        rows.add(geo, col, col, 0, var, names, vals)
    if hidden > 0:
        rows.add([NOT_CLASSIFIED], col, col, 0, "usage_count", [NOT_CLASSIFIED], [hidden])
        rows.add([NOT_CLASSIFIED], col, col, 0, "usage_pct", [NOT_CLASSIFIED], _pct([hidden], denom))
    has_pop = np.isfinite(pop) & (pop > 0)
    aui = np.full(len(idx), np.nan)
    tier = np.full(len(idx), np.nan)
    if has_pop.any():
        aui[has_pop] = (count[has_pop] / count[has_pop].sum()) / (pop[has_pop] / pop[has_pop].sum())
        big = has_pop & (count >= min_geo_records)
        if big.sum() >= MIN_TIER_GEOGRAPHIES:  # quartile tiers of fewer geographies would rank, not tier
            q = np.quantile(aui[big], [0.25, 0.5, 0.75])
            tier[big] = 1 + (aui[big][:, None] > q[None, :]).sum(1)
        h = np.flatnonzero(has_pop)
        rows.add(geo[h], col, col, 0, "population", names[h], pop[h])
        g = np.flatnonzero(has_pop & np.isfinite(gdp))
        rows.add(geo[g], col, col, 0, "gdp_per_capita", names[g], gdp[g])
        rows.add(geo[h], col, col, 0, "usage_per_capita", names[h], count[h] / pop[h])
        rows.add(geo[h], col, col, 0, "usage_per_capita_index", names[h], aui[h])
        b = np.flatnonzero(np.isfinite(tier))
        rows.add(geo[b], col, col, 0, "usage_tier", names[b], tier[b])
    fit_ok = has_pop & (count >= min_geo_records) & np.isfinite(gdp) & (gdp > 0)
    fit = {"n": int(fit_ok.sum())}
    if fit_ok.sum() < MIN_FIT_GEOGRAPHIES:
        fit["why"] = f"fewer than {MIN_FIT_GEOGRAPHIES} geographies with ≥ {min_geo_records} records, a population and a GDP"
    elif np.ptp(np.log(gdp[fit_ok])) > 0:
        slope, intercept, r2, k = line_fit(np.log(gdp[fit_ok]), np.log(aui[fit_ok]))
        fit = {"slope": slope, "intercept": intercept, "r2": r2, "n": k}
        for var, v in (("aui_gdp_slope", slope), ("aui_gdp_intercept", intercept), ("aui_gdp_r2", r2),
                       ("aui_gdp_n", k)):
            rows.add(["GLOBAL"], col, col, 0, var, ["ln_aui~ln_gdp_per_capita"], [v])
    f["aui_gdp_fit"] = fit
    f["aui_geographies"] = int(has_pop.sum())
    f["tiered_geographies"] = int(np.isfinite(tier).sum())
