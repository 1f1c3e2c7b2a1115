"""The shipped country table (World Bank population and GDP, ISO 3166 codes) and user population tables.

    countries()                    # iso2, iso3, name, population, ..., gdp_per_capita   [215 rows]
    resolve(["us", "DEU", "zz"])   # array([row of US, row of DE, -1])
    country_code("usa")            # "US" (one code per country; an unknown code unchanged)
    table, denominator = population_table(None)   # shipped table, "total"

A population table has columns geo_id, name, population, gdp_per_capita (NaN where unknown); its
denominator says what the population counts: "total" (shipped World Bank totals), "working_age" (a user
table that says so with a true `working_age` column) or "user" (any other user table).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from clio_engine.economic.onet import data_file
from clio_engine.errors import InputError

_COLUMNS = ["geo_id", "name", "population", "gdp_per_capita"]


@lru_cache(maxsize=1)
def _countries() -> pd.DataFrame:
    with data_file("countries.csv").open("rb") as fh:
        df = pd.read_csv(fh, keep_default_na=False, dtype=str)  # "NA" is Namibia, not a missing value
    for col in ("population", "gdp_usd"):
        df[col] = pd.to_numeric(df[col].replace("", np.nan), errors="raise").astype(float)
    for col in ("population_year", "gdp_year"):
        df[col] = pd.to_numeric(df[col].replace("", np.nan), errors="raise").astype("Int64")
    df["gdp_per_capita"] = df.gdp_usd / df.population
    return df


def countries() -> pd.DataFrame:
    """The shipped table [C=215]: iso2, iso3, name, population, population_year, gdp_usd (NaN where the
    World Bank has none), gdp_year, gdp_per_capita = gdp_usd / population. A fresh copy each call."""
    return _countries().copy()


@lru_cache(maxsize=1)
def _code_index() -> pd.Index:
    df = _countries()
    return pd.Index(pd.concat([df.iso2, df.iso3], ignore_index=True).str.upper())


def resolve(codes: Iterable[str]) -> np.ndarray:
    """Row index into countries() for each code [N] (ISO alpha-2 or alpha-3, any case; −1 when unknown)."""
    codes = pd.Series(list(codes), dtype=object)
    keys = codes.where(codes.map(lambda c: isinstance(c, str)), "").str.strip().str.upper()
    pos = _code_index().get_indexer(keys.to_numpy())
    n = len(_countries())
    return np.where(pos >= 0, pos % n, -1).astype(np.int64)  # alpha-3 entries follow the alpha-2 block


def country_code(value: str) -> str:
    """`value` as one code per country: a shipped ISO alpha-2 or alpha-3 code in any case and padding ("us",
    "USA ") → its alpha-2 code ("US"); anything else unchanged. "US", "us" and "USA" were three geographies,
    each given the whole US population, which skewed every country's AI Usage Index (review)."""
    row = resolve([value])[0]
    return value if row < 0 else str(_countries().iso2.iloc[row])


def population_table(path: str | None) -> tuple[pd.DataFrame, str]:
    """(table with columns geo_id, name, population, gdp_per_capita; denominator).

    None → the shipped table keyed by ISO alpha-2, denominator "total". A CSV or Parquet path → the user's
    table (geo_id, population; optional name, gdp_per_capita or gdp_usd, working_age). Where the user gives
    no GDP, a geo_id that is an ISO code takes the shipped GDP per capita (GDP over the total population,
    whatever the user's denominator); other names and GDP come from the shipped table the same way.
    Denominator "working_age" when the table's working_age column is true on every row, else "user".
    """
    if path is None:
        df = _countries()
        table = pd.DataFrame({"geo_id": df.iso2, "name": df.name, "population": df.population,
                              "gdp_per_capita": df.gdp_per_capita})
        return table.reset_index(drop=True), "total"
    raw = _read(path)
    for col in ("geo_id", "population"):
        if col not in raw.columns:
            have = ", ".join(map(str, raw.columns))
            raise InputError(f"population table {path}: missing column {col!r} (has {have})")
    geo = raw.geo_id.astype(str).str.strip()
    empty = ((geo == "") | raw.geo_id.isna()).to_numpy()
    if empty.any():
        raise InputError(f"population table {path}: empty geo_id on row {int(np.flatnonzero(empty)[0]) + 1}")
    dup = geo[geo.duplicated()]
    if len(dup):
        raise InputError(f"population table {path}: duplicate geo_id {dup.iloc[0]!r}")
    pop = pd.to_numeric(raw.population, errors="coerce").astype(float)
    bad = ~(pop > 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"population table {path}: population must be a positive number; "
                         f"geo_id {geo.iloc[i]!r} has {raw.population.iloc[i]!r}")
    if "gdp_per_capita" in raw.columns:
        gdp_pc = pd.to_numeric(raw.gdp_per_capita, errors="coerce").astype(float)
    elif "gdp_usd" in raw.columns:
        gdp_pc = pd.to_numeric(raw.gdp_usd, errors="coerce").astype(float) / pop
    else:
        gdp_pc = pd.Series(np.nan, index=raw.index)
    gdp_pc = gdp_pc.where(gdp_pc > 0)  # zero or negative GDP cannot enter a log fit: unknown
    shipped = _countries()
    row = resolve(geo)
    known = row >= 0
    fill = gdp_pc.isna().to_numpy() & known
    gdp_pc = gdp_pc.to_numpy().copy()
    gdp_pc[fill] = shipped.gdp_per_capita.to_numpy()[row[fill]]
    if "name" in raw.columns:
        name = raw.name.astype(str).to_numpy()
    else:
        name = np.where(known, shipped.name.to_numpy()[np.maximum(row, 0)], geo.to_numpy()).astype(object)
    table = pd.DataFrame({"geo_id": geo.to_numpy(), "name": name, "population": pop.to_numpy(),
                          "gdp_per_capita": gdp_pc})
    return table, _denominator(raw, path)


def _denominator(raw: pd.DataFrame, path: str) -> str:
    if "working_age" not in raw.columns:
        return "user"
    flags = raw.working_age.map(lambda v: str(v).strip().lower())
    truthy, falsy = flags.isin(["true", "1", "yes", "1.0"]), flags.isin(["false", "0", "no", "0.0", ""])
    if not (truthy | falsy).all():
        bad = raw.working_age[~(truthy | falsy)].iloc[0]
        raise InputError(f"population table {path}: working_age must be true/false, got {bad!r}")
    if truthy.all():
        return "working_age"
    if truthy.any():
        raise InputError(f"population table {path}: working_age is true on some rows and false on others; "
                         "one table has one denominator")
    return "user"


def _read(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"population table {path}: no such file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if p.suffix.lower() in (".csv", ".txt") or p.name.lower().endswith(".csv.gz"):
            return pd.read_csv(p, keep_default_na=False, na_values=[""], dtype={"geo_id": str})
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line naming the file
        raise InputError(f"population table {path}: cannot be read ({type(exc).__name__}: {exc})") from exc
    raise InputError(f"population table {path}: expected a .csv or .parquet file")
