"""The synthetic economy: paraphrases never verbatim, the country table, and the planted truths
(AUI slope, Zipf exponent, automation share, no-task share) recovered by plain numpy/pandas fits."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from clio_engine.economic import geography
from clio_engine.economic.onet import data_file, load_taxonomy
from clio_engine.economic.paraphrase import _TEMPLATES, _VERB_SYN, _WORD_SYN, paraphrase
from clio_engine.economic.synthetic import DEFAULT_COUNTRIES, generate_economy, task_ranking
from clio_engine.errors import InputError

AUTOMATION = {"directive", "feedback loop"}
MODES = {"directive", "feedback loop", "task iteration", "learning", "validation"}


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


@pytest.fixture(scope="module")
def economy():
    return generate_economy(200_000, seed=0)


@pytest.fixture(scope="module")
def shipped():
    """The country table read independently of geography.py."""
    with data_file("countries.csv").open("rb") as fh:
        df = pd.read_csv(fh, keep_default_na=False)
    df["gdp"] = pd.to_numeric(df.gdp_usd.replace("", np.nan))
    return df


def _contains_statement(statements, texts) -> list[int]:
    return [i for i, (s, t) in enumerate(zip(statements, texts)) if s.strip().rstrip(".").lower() in t.lower()]


# --- paraphrase ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "heldout"])
def test_paraphrase_never_contains_the_statement(tax, split):
    out = paraphrase(tax.task_text, split=split, seed=0)
    assert len(out) == tax.n_tasks
    bad = _contains_statement(tax.task_text, out)
    assert not bad, f"{len(bad)} verbatim, e.g. {tax.task_text[bad[0]]!r} -> {out[bad[0]]!r}"


def test_paraphrase_keeps_content_words(tax):
    # A paraphrase must still be about its task: most keep a content word of the statement's head.
    stop = {"other", "their", "such", "using", "about", "based", "within", "which", "these", "those"}
    for split in ("train", "heldout"):
        out = paraphrase(tax.task_text, split=split, seed=1)
        kept = [bool(set(w for w in re.findall(r"[a-z]{5,}", s.lower())[1:6] if w not in stop)
                     & set(re.findall(r"[a-z]{5,}", t.lower()))) for s, t in zip(tax.task_text, out)]
        assert np.mean(kept) > 0.95, (split, np.mean(kept))


def test_paraphrase_splits_differ(tax):
    train = paraphrase(tax.task_text, split="train", seed=0)
    held = paraphrase(tax.task_text, split="heldout", seed=0)
    assert all(a != b for a, b in zip(train, held))
    # The families are disjoint: no heldout text opens or closes like a train template.
    opens = tuple(o.strip() for o in _TEMPLATES["train"]["open"] if o.strip())
    closes = tuple(c.strip() for c in _TEMPLATES["train"]["close"] if c.strip())
    assert not [t for t in held if t.startswith(opens) or t.endswith(closes)]
    held_opens = tuple(o.strip() for o in _TEMPLATES["heldout"]["open"] if o.strip())
    assert not set(opens) & set(held_opens)
    # Each dictionary word has different synonyms in the two splits.
    assert not [w for w, (a, b) in {**_VERB_SYN, **_WORD_SYN}.items() if set(a) & set(b)]


def test_paraphrase_deterministic(tax):
    texts = list(tax.task_text[:2000]) * 2  # repeated statements get independent draws
    a = paraphrase(texts, split="heldout", seed=7)
    assert a == paraphrase(texts, split="heldout", seed=7)
    assert a == paraphrase(texts, split="heldout", seed=np.random.default_rng(7))
    assert a != paraphrase(texts, split="heldout", seed=8)
    assert sum(x != y for x, y in zip(a[:2000], a[2000:])) > 1000


def test_paraphrase_bad_input():
    with pytest.raises(InputError, match="split"):
        paraphrase(["Prepare budgets."], split="test", seed=0)
    with pytest.raises(InputError, match="empty"):
        paraphrase(["  "], split="train", seed=0)
    assert paraphrase([], split="train", seed=0) == []


def test_paraphrase_short_statement_inflects_verb():
    out = paraphrase(["Sell stamps and money orders."] * 200, split="heldout", seed=0)
    assert not _contains_statement(["Sell stamps and money orders."] * 200, out)
    assert any("sells stamps" in t for t in out)  # "Sell" inflected where the template needs a third person


# --- geography ----------------------------------------------------------------------------------------

def test_countries_table(shipped):
    c = geography.countries()
    assert len(c) == len(shipped)
    assert c.loc[c.iso2 == "NA", "name"].item() == "Namibia"
    ref = shipped.gdp / shipped.population
    np.testing.assert_allclose(c.gdp_per_capita.to_numpy(), ref.to_numpy(), rtol=1e-12)
    assert c.gdp_per_capita.isna().sum() == shipped.gdp.isna().sum() > 0


def test_resolve(shipped):
    codes = ["us", "DEU", " in ", "na", "NAM", "zz", "", "USAA"]
    ref = [int(np.flatnonzero((shipped.iso2 == c.strip().upper()) | (shipped.iso3 == c.strip().upper()))[0])
           if c.strip().upper() in set(shipped.iso2) | set(shipped.iso3) else -1 for c in codes]
    assert geography.resolve(codes).tolist() == ref
    assert ref[:5].count(-1) == 0 and ref[5:] == [-1, -1, -1]


def test_population_table_shipped(shipped):
    table, denom = geography.population_table(None)
    assert denom == "total"
    assert list(table.columns) == ["geo_id", "name", "population", "gdp_per_capita"]
    assert table.geo_id.tolist() == shipped.iso2.tolist()


def test_population_table_user(tmp_path, shipped):
    path = tmp_path / "pop.csv"
    pd.DataFrame({"geo_id": ["US", "XK1", "NA"], "population": [200e6, 1000, 1.5e6],
                  "gdp_usd": [2e13, np.nan, 1e10], "working_age": [True, True, True]}).to_csv(path, index=False)
    table, denom = geography.population_table(str(path))
    assert denom == "working_age"
    assert table.geo_id.tolist() == ["US", "XK1", "NA"]
    np.testing.assert_allclose(table.gdp_per_capita.iloc[[0, 2]], [1e5, 1e10 / 1.5e6])
    assert np.isnan(table.gdp_per_capita.iloc[1])
    assert table.name.tolist() == ["United States", "XK1", "Namibia"]

    pq = tmp_path / "pop.parquet"
    pd.DataFrame({"geo_id": ["DE", "FR"], "population": [80e6, 60e6]}).to_parquet(pq)
    table, denom = geography.population_table(str(pq))
    assert denom == "user"
    ref = shipped.set_index("iso2").loc[["DE", "FR"]]
    np.testing.assert_allclose(table.gdp_per_capita, (ref.gdp / ref.population).to_numpy())


@pytest.mark.parametrize("frame, message", [
    ({"geo_id": ["US"], "people": [1]}, "missing column 'population'"),
    ({"geo_id": ["US", "DE"], "population": [1, 0]}, "positive"),
    ({"geo_id": ["US", "DE"], "population": [1, -5]}, "positive"),
    ({"geo_id": ["US", "US"], "population": [1, 2]}, "duplicate geo_id 'US'"),
    ({"geo_id": ["US", ""], "population": [1, 2]}, "empty geo_id on row 2"),
    ({"geo_id": ["US", "DE"], "population": [1, 2], "working_age": [True, False]}, "working_age"),
])
def test_population_table_errors(tmp_path, frame, message):
    path = tmp_path / "bad.csv"
    pd.DataFrame(frame).to_csv(path, index=False)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        geography.population_table(str(path))
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="no such file"):
        geography.population_table(str(tmp_path / "absent.csv"))


# --- the synthetic economy ----------------------------------------------------------------------------

def _aui_slope(df: pd.DataFrame, shipped: pd.DataFrame) -> float:
    """ln(usage share / population share) on ln GDP per capita, by least squares (plain pandas)."""
    usage = df.country.value_counts()
    c = shipped.set_index("iso2").loc[usage.index]
    y = np.log((usage / usage.sum()) / (c.population / c.population.sum()))
    x = np.log(c.gdp / c.population)
    return float(np.polyfit(x.to_numpy(), y.to_numpy(), 1)[0])


def _zipf_exponent(df: pd.DataFrame, top: int = 50) -> float:
    counts = df.task[df.task >= 0].value_counts().to_numpy()[:top]
    return float(-np.polyfit(np.log(np.arange(1, top + 1)), np.log(counts), 1)[0])


def test_columns_and_codes(economy, tax):
    assert list(economy.columns) == ["id", "user_id", "text", "task", "soc_code", "soc_major", "collaboration", "country"]
    assert len(economy) == 200_000 and economy.id.is_unique
    assert set(economy.collaboration) == MODES
    assert set(economy.country) == set(DEFAULT_COUNTRIES)
    # soc_code: the first (lowest SOC code) occupation listing the task; soc_major: that occupation's group.
    sample = economy[economy.task >= 0].drop_duplicates("task").head(300)
    for t, soc, major in zip(sample.task, sample.soc_code, sample.soc_major):
        codes = sorted(tax.occupations_of(int(t)))
        assert soc == codes[0]
        assert major == tax.occupations.set_index("soc_code").soc_major[soc]
    none = economy[economy.task == -1]
    assert (none.soc_code == "").all() and (none.soc_major == "").all()


def test_aui_slope_recovered(economy, shipped):
    slope = _aui_slope(economy, shipped)
    assert abs(slope - 0.7) < 0.05, slope


def test_other_parameters_recovered(shipped):
    df = generate_economy(200_000, seed=3, aui_slope=0.3, zipf=1.5, automation=0.2, no_task=0.15,
                          countries=["US", "IN", "DEU", "bra", "NG", "JP", "ID", "FR", "EG", "MX"])
    assert abs(_aui_slope(df, shipped) - 0.3) < 0.05
    assert abs(_zipf_exponent(df) - 1.5) < 0.08
    assert abs(df.collaboration.isin(AUTOMATION).mean() - 0.2) < 0.01
    assert abs((df.task == -1).mean() - 0.15) < 0.01
    assert set(df.country) == {"US", "IN", "DE", "BR", "NG", "JP", "ID", "FR", "EG", "MX"}


def test_zipf_recovered(economy):
    assert abs(_zipf_exponent(economy) - 1.1) < 0.05


def test_shares_recovered(economy):
    assert abs(economy.collaboration.isin(AUTOMATION).mean() - 0.45) < 0.01
    assert abs((economy.task == -1).mean() - 0.05) < 0.005
    # Mode independent of task: the automation share of the top task matches the overall share.
    top = economy.task[economy.task >= 0].value_counts().index[0]
    assert abs(economy.collaboration[economy.task == top].isin(AUTOMATION).mean() - 0.45) < 0.03


def test_users(economy):
    per_user = economy.groupby("user_id").agg(n=("id", "size"), countries=("country", "nunique"))
    assert (per_user.countries == 1).all()
    assert per_user.n.max() <= 50
    assert (per_user.n <= 3).mean() > 0.75
    assert per_user.n.max() >= 20  # a real tail, not all singletons


def test_never_verbatim(economy, tax):
    work = economy[economy.task >= 0]
    assert not _contains_statement(tax.task_text[work.task.to_numpy()], work.text)


def test_deterministic_and_heldout():
    a = generate_economy(3000, seed=5)
    pd.testing.assert_frame_equal(a, generate_economy(3000, seed=5))
    assert not a.equals(generate_economy(3000, seed=6))
    held = generate_economy(3000, seed=5, split="heldout")
    pd.testing.assert_frame_equal(a.drop(columns="text"), held.drop(columns="text"))
    assert (a.text != held.text).all()


def test_shift(economy, tax):
    base = economy.task[economy.task >= 0].value_counts()
    shifted_task = int(base.index[4])
    # A second period: another seed (an independent sample, the same planted ranks) with a known shift.
    df = generate_economy(200_000, seed=1, shift={shifted_task: 3.0})
    new = df.task[df.task >= 0].value_counts()
    p = base[shifted_task] / base.sum()
    expected = 3 * p / (1 + 2 * p)  # the shifted share after renormalising
    assert abs(new[shifted_task] / new.sum() / expected - 1) < 0.08
    # Every other task keeps its place: the top tasks and their shares match the base period.
    others = list(base.drop(shifted_task).index[:3])
    assert list(new.drop(shifted_task).index[:3]) == others
    ratio = (new[others] / new.drop(shifted_task).sum()) / (base[others] / base.drop(shifted_task).sum())
    assert np.allclose(ratio, 1, atol=0.05)
    assert list(task_ranking(tax.n_tasks)[:3]) == list(base.index[:3])


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "n must be positive"),
    ({"n": -3}, "n must be positive"),
    ({"n": 10, "countries": ["US", "ZZ"]}, "unknown country code 'ZZ'"),
    ({"n": 10, "countries": ["GI"]}, "no GDP"),
    ({"n": 10, "zipf": 0}, "zipf must be > 0"),
    ({"n": 10, "zipf": -1.0}, "zipf must be > 0"),
    ({"n": 10, "automation": 1.5}, "automation"),
    ({"n": 10, "no_task": 1.0}, "no_task"),
    ({"n": 10, "split": "test"}, "split"),
    ({"n": 10, "shift": {10**6: 2.0}}, "shift key"),
    ({"n": 10, "shift": {3: -1.0}}, "shift[3]"),
])
def test_bad_args(kwargs, message):
    n = kwargs.pop("n")
    with pytest.raises(InputError, match=re.escape(message)) as err:
        generate_economy(n, **kwargs)
    assert "\n" not in str(err.value)
