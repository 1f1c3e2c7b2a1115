"""Seeded synthetic Clio-style conversation summaries with a known 3-level topic hierarchy.

Each record is one conversation: an LLM-style summary ("The user's overall request is to ..."), the
account that had it, facets (language, country, platform) and its ground-truth domain / topic /
subtopic. The generator doubles as Clio's synthetic reconstruction check: cluster the texts, then
compare the clusters with the labels.

How a record is drawn (all vectorised with numpy, so 1M rows take seconds):
- accounts get a power-law number of records (P(count >= k) = k^-1.5, so most have 1-3);
- each account has a country, a language (from its country), a home domain (tilted by country and
  language) and a preferred platform; its records stay in its home domain 60% of the time;
- within a domain, subtopic popularity is Zipf-like in topic rank x subtopic rank (listing order);
- the text combines an opening, one of the subtopic's request phrases, an optional topic context and
  an optional closing clause; only the request phrase carries subtopic-specific words.
"""
from __future__ import annotations

from functools import lru_cache
from numbers import Integral

import numpy as np
import pandas as pd

from ..errors import InputError
from . import _facets as F
from .taxonomy import DOMAINS, gerund

COLUMNS = ("id", "user_id", "text", "language", "country", "platform", "domain", "topic", "subtopic")

_ZIPF_TOPIC = 1.0  # exponent of topic popularity within a domain
_ZIPF_SUBTOPIC = 1.0  # exponent of subtopic popularity within a topic
_ACTIVITY_ALPHA = 1.5  # tail exponent of records per account
_P_HOME = 0.6  # share of an account's records in its home domain
_P_PREFERRED_PLATFORM = 0.75  # share of an account's records on its usual platform
_P_CONTEXT = 0.55  # a record mentions its topic context ("in a Django project")
_P_TAIL = 0.55  # a record ends with a closing clause ("and asked for examples")
_P_DOMAIN_TAIL = 0.5  # of those, the share taken from the domain's own clauses


class _Tables:
    """Flat numpy arrays of everything the generator indexes into, built once per process."""

    def __init__(self) -> None:
        doms = DOMAINS
        self.domain_names = np.array([d.name for d in doms], dtype=object)
        topics = [t for d in doms for t in d.topics]
        self.topic_names = np.array([t.name for t in topics], dtype=object)
        subs = [s for t in topics for s in t.subtopics]
        self.sub_names = np.array([s.name for s in subs], dtype=object)
        self.sub_topic = np.repeat(np.arange(len(topics)), [len(t.subtopics) for t in topics])
        topic_domain = np.repeat(np.arange(len(doms)), [len(d.topics) for d in doms])
        self.sub_domain = topic_domain[self.sub_topic]

        # Request phrases, flattened; subtopic s owns phrases [off[s], off[s] + cnt[s]).
        phrases = [p for s in subs for p in s.phrases]
        self.phrase_inf = np.array(phrases, dtype=object)
        self.phrase_ger = np.array([gerund(p) for p in phrases], dtype=object)
        self.phrase_cnt = np.array([len(s.phrases) for s in subs])
        self.phrase_off = np.concatenate([[0], np.cumsum(self.phrase_cnt)[:-1]])

        self.ctx = np.array([" " + c for t in topics for c in t.contexts], dtype=object)
        self.ctx_cnt = np.array([len(t.contexts) for t in topics])
        self.ctx_off = np.concatenate([[0], np.cumsum(self.ctx_cnt)[:-1]])

        # Closing clauses: one group per domain, then the global group at index len(doms).
        groups = [d.tails for d in doms] + [F.GLOBAL_TAILS]
        self.tail = np.array([", " + c for g in groups for c in g], dtype=object)
        self.tail_cnt = np.array([len(g) for g in groups])
        self.tail_off = np.concatenate([[0], np.cumsum(self.tail_cnt)[:-1]])

        self.open_text = np.array([o[0] + " " for o in F.OPENINGS], dtype=object)
        self.open_w = np.array([o[1] for o in F.OPENINGS], dtype=float)
        self.open_ger = np.array([o[2] for o in F.OPENINGS])

        self._popularity(doms)
        self._facets(doms)

    def _popularity(self, doms) -> None:
        """p(subtopic | domain) as a padded [D, S] table: Zipf over the listing order, since the topic
        data lists topics and subtopics from most to least popular."""
        n_dom = len(doms)
        width = max(sum(len(t.subtopics) for t in d.topics) for d in doms)
        self.sub_given_dom = np.zeros((n_dom, width))
        self.sub_index = np.zeros((n_dom, width), dtype=np.int64)  # table column -> global subtopic
        first = 0
        for i, d in enumerate(doms):
            t_rank = np.arange(1, len(d.topics) + 1.0)
            t_w = t_rank ** -_ZIPF_TOPIC
            t_w /= t_w.sum()
            col = 0
            for t, tw in zip(d.topics, t_w):
                s_rank = np.arange(1, len(t.subtopics) + 1.0)
                s_w = s_rank ** -_ZIPF_SUBTOPIC
                k = len(t.subtopics)
                self.sub_given_dom[i, col:col + k] = tw * s_w / s_w.sum()
                self.sub_index[i, col:col + k] = np.arange(first, first + k)
                col += k
                first += k

    def _facets(self, doms) -> None:
        names = [d.name for d in doms]
        if set(F.DOMAIN_WEIGHTS) != set(names) or set(F.DOMAIN_PLATFORM) != set(names):
            raise ValueError("facet tables in _facets.py do not name exactly the taxonomy's domains")
        self.countries = np.array(list(F.COUNTRIES), dtype=object)
        self.country_w = np.array([c[0] for c in F.COUNTRIES.values()])
        langs = sorted({lang for c in F.COUNTRIES.values() for lang in c[1]}, key=lambda x: (x != "English", x))
        self.languages = np.array(langs, dtype=object)
        self.lang_given_country = np.array([[c[1].get(lang, 0.0) for lang in langs] for c in F.COUNTRIES.values()])
        self.android_share = np.array([c[2] for c in F.COUNTRIES.values()])

        # Home-domain weights per (country, is-non-English) group: row = 2 * country + non_english.
        base = np.array([F.DOMAIN_WEIGHTS[n] for n in names])
        rows = []
        for code in F.COUNTRIES:
            tilt = np.array([F.COUNTRY_DOMAIN_TILT.get(code, {}).get(n, 1.0) for n in names])
            non_en = np.array([F.NON_ENGLISH_TILT.get(n, 1.0) for n in names])
            rows += [base * tilt, base * tilt * non_en]
        self.dom_given_group = np.array(rows)
        self.platform_given_dom = np.array([F.DOMAIN_PLATFORM[n] for n in names])  # web, mobile, api
        self.platforms = np.array(F.PLATFORMS, dtype=object)


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    return _Tables()


def _draw_rows(rng: np.random.Generator, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each i, a column drawn from the distribution in row `rows[i]` of `table` (rows need
    not be normalised). One searchsorted over per-row CDFs shifted by the row number."""
    n_rows, width = table.shape
    cdf = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    flat = (np.arange(n_rows)[:, None] + cdf).ravel()
    idx = np.searchsorted(flat, rows + rng.random(len(rows)), side="right")
    return np.minimum(idx - rows * width, width - 1)


def _draw(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    return _draw_rows(rng, np.asarray(weights, dtype=float)[None, :], np.zeros(size, dtype=np.int64))


def _records_per_user(rng: np.random.Generator, n: int) -> np.ndarray:
    """Power-law activity: P(count >= k) = k^-alpha, capped so no account dominates a small set."""
    cap = max(20, n // 50)
    chunks, total = [], 0
    while total < n:
        c = np.minimum(1 + np.floor(rng.pareto(_ACTIVITY_ALPHA, n // 2 + 16)), cap).astype(np.int64)
        chunks.append(c)
        total += int(c.sum())
    counts = np.concatenate(chunks)
    ends = np.cumsum(counts)
    last = int(np.searchsorted(ends, n))  # first user whose records reach n
    counts = counts[: last + 1].copy()
    counts[-1] -= int(ends[last] - n)
    return counts


def _check_int(name: str, value, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise InputError(f"{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def generate_conversations(n: int = 20_000, *, seed: int = 0) -> pd.DataFrame:
    """`n` synthetic conversation summaries with users, facets and ground-truth topic labels.

    Columns, in order: id, user_id, text, language, country, platform, domain, topic, subtopic.
    The same (n, seed) always gives the same frame. Raises InputError (a ValueError) for bad args.
    """
    n = _check_int("n", n)
    seed = _check_int("seed", seed)
    T = _tables()
    rng = np.random.default_rng(seed)

    # Accounts and their fixed traits.
    counts = _records_per_user(rng, n) if n else np.zeros(0, dtype=np.int64)
    n_users = len(counts)
    u_country = _draw(rng, T.country_w, n_users)
    u_lang = _draw_rows(rng, T.lang_given_country, u_country)
    u_group = 2 * u_country + (u_lang != 0)  # languages[0] is English
    u_home = _draw_rows(rng, T.dom_given_group, u_group)
    u_platform = _platform(rng, T, u_home, u_country)
    width = max(6, len(str(max(n_users - 1, 0))))
    u_ids = np.array([f"u{i:0{width}d}" for i in rng.permutation(n_users)], dtype=object)

    # Records: owner, domain, subtopic, platform.
    user = rng.permutation(np.repeat(np.arange(n_users), counts))
    away = rng.random(n) >= _P_HOME
    domain = u_home[user]
    domain[away] = _draw_rows(rng, T.dom_given_group, u_group[user[away]])
    sub = T.sub_index[domain, _draw_rows(rng, T.sub_given_dom, domain)]
    platform = u_platform[user]
    other = rng.random(n) >= _P_PREFERRED_PLATFORM
    platform[other] = _platform(rng, T, domain[other], u_country[user[other]])

    id_width = max(7, len(str(n)))
    return pd.DataFrame({
        "id": _as_str([f"c{i:0{id_width}d}" for i in range(1, n + 1)]),
        "user_id": _take(u_ids, user),
        "text": _as_str(_texts(rng, T, sub)),
        "language": _take(T.languages, u_lang[user]),
        "country": _take(T.countries, u_country[user]),
        "platform": _take(T.platforms, platform),
        "domain": _take(T.domain_names, T.sub_domain[sub]),
        "topic": _take(T.topic_names, T.sub_topic[sub]),
        "subtopic": _take(T.sub_names, sub),
    }, columns=list(COLUMNS))


def _as_str(values):
    """`values` as pandas' default string array (object in pandas 2, Arrow-backed str in 3)."""
    return pd.Series(values, dtype=str).array


def _take(names: np.ndarray, codes: np.ndarray):
    """names[codes] as pandas' default string array; taking from a small converted array is far
    faster than converting millions of Python strings (pandas >= 3 stores str in Arrow)."""
    return _as_str(names).take(codes)


def _platform(rng: np.random.Generator, T: _Tables, domain: np.ndarray, country: np.ndarray) -> np.ndarray:
    """Platform index (web, ios, android, api): channel by domain, mobile OS by country."""
    channel = _draw_rows(rng, T.platform_given_dom, domain)  # 0 web, 1 mobile, 2 api
    android = rng.random(len(domain)) < T.android_share[country]
    return np.where(channel == 0, 0, np.where(channel == 2, 3, np.where(android, 2, 1)))


def _pick(rng: np.random.Generator, off: np.ndarray, cnt: np.ndarray, group: np.ndarray) -> np.ndarray:
    """A uniform index into each row's slice [off[g], off[g] + cnt[g]) of a flat array."""
    return off[group] + (rng.random(len(group)) * cnt[group]).astype(np.int64)


def _texts(rng: np.random.Generator, T: _Tables, sub: np.ndarray) -> np.ndarray:
    n = len(sub)
    opening = _draw(rng, T.open_w, n)
    phrase = _pick(rng, T.phrase_off, T.phrase_cnt, sub)
    request = np.where(T.open_ger[opening], T.phrase_ger[phrase], T.phrase_inf[phrase])
    ctx = np.where(rng.random(n) < _P_CONTEXT, T.ctx[_pick(rng, T.ctx_off, T.ctx_cnt, T.sub_topic[sub])], "")
    tail_group = np.where(rng.random(n) < _P_DOMAIN_TAIL, T.sub_domain[sub], len(T.domain_names))
    tail = np.where(rng.random(n) < _P_TAIL, T.tail[_pick(rng, T.tail_off, T.tail_cnt, tail_group)], "")
    return T.open_text[opening] + request + ctx + tail + "."
