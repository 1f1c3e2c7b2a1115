"""A synthetic economy with planted truths: records written from O*NET task statements (never verbatim),
with known task, occupation, collaboration mode, user and country.

    df = generate_economy(200_000, seed=0)   # id, user_id, text, task, soc_code, soc_major, collaboration, country

Planted truths, each recoverable from the frame:
- task usage is Zipf: a permutation of all T tasks, seeded with the fixed RANK_SEED, gives ranks and
  P(task of rank r) ∝ r^(−zipf). The ranks are the same for every `seed`, so a second period drawn with
  another seed and `shift` (factors on chosen tasks' probabilities, then renormalised) is an independent
  sample whose only planted change is the shift.
- countries: P(country c) ∝ population_c × gdp_per_capita_c^aui_slope, so the AI Usage Index
  (usage share ÷ population share) has ln AUI = aui_slope × ln gdp_per_capita + const in expectation.
- users: each user lives in one country; records per user follow a power law (most 1–3, at most 50).
- collaboration: P(directive or feedback loop) = `automation`, split 60/40 between the two; the other
  three modes share the rest 50/30/20 (task iteration/learning/validation). The mode is independent of
  task and country, and personal (no-task) records draw it the same way.
- no_task: that share of records (in expectation) are personal, non-work requests with task −1.
"""
from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from clio_engine.economic.geography import countries as country_table
from clio_engine.economic.geography import resolve
from clio_engine.economic.onet import NO_TASK, load_taxonomy
from clio_engine.economic.paraphrase import paraphrase
from clio_engine.errors import InputError

MODES = ("directive", "feedback loop", "task iteration", "learning", "validation")
AUTOMATION_MODES = MODES[:2]
_AUTOMATION_SPLIT = np.array([0.6, 0.4])  # directive, feedback loop within automation
_AUGMENTATION_SPLIT = np.array([0.5, 0.3, 0.2])  # task iteration, learning, validation within augmentation

# ~40 countries spread over the GDP-per-capita range (about $1k to $100k), all with population and GDP.
DEFAULT_COUNTRIES = tuple("""UG TZ ET PK NG KE IN BD EG PH VN UA ID ZA CO TH BR CN TR MX AR CL PL ES KR JP IT FR
GB IL CA DE SE NL AU US SG NO CH IE""".split())

RANK_SEED = 20_260_101  # the task ranking is fixed across seeds (see the module docstring)
_MAX_RECORDS_PER_USER = 50
_USER_POWER = 2.0  # P(k records) ∝ k^-2 on 1..50: P(1) ≈ 0.62, P(1..3) ≈ 0.85

# Personal, non-work requests (task −1); written for this module.
_PERSONAL = (
    "plan a birthday dinner for my partner", "pick a name for our new puppy", "write a toast for my sister's wedding",
    "choose a tent for a weekend camping trip", "make a weekly meal plan on a small budget",
    "find a gentle stretching routine for my back", "sort out a fight with my roommate about chores",
    "decide between two used cars", "plan a road trip along the coast with kids", "learn a few card games for a party",
    "pick houseplants that survive low light", "write a poem for my grandmother's 90th birthday",
    "recommend a fantasy novel like the last one I loved", "organize my closet before winter",
    "figure out what to pack for a week in Lisbon", "train for my first 5k", "come up with a costume for Halloween",
    "bake sourdough without a proper oven", "keep my tomatoes from splitting", "get my toddler to sleep through the night",
    "write a birthday message for an old friend", "plan a cheap date night at home", "choose a board game for four players",
    "fix my sleep schedule after a holiday", "decorate a tiny balcony", "start journaling and actually stick with it",
    "understand the rules of cricket", "cook a vegetarian lasagna for guests", "plan a surprise party for my dad",
    "teach my dog to stop pulling on the leash", "pick a playlist for a long drive", "apologise to a friend I let down",
    "choose a hiking trail that's not too steep", "write a funny caption for my holiday photos",
    "come up with a bedtime story about a dragon", "save for a holiday next summer", "learn to knit a simple scarf",
    "make my small apartment feel cosier", "get back into running after an injury", "plan a picnic if it might rain",
)
_PERSONAL_FRAMES = {
    "train": ("Can you help me {x}?", "I want to {x}. Ideas?", "Help me {x}, please.", "Not work related: how do I {x}?"),
    "heldout": ("Any thoughts on how to {x}?", "This weekend I'd like to {x}.", "Personal question - best way to {x}?",
                "My family asked me to {x}. Where to begin?"),
}


def generate_economy(n: int, *, seed: int = 0, aui_slope: float = 0.7, zipf: float = 1.1, automation: float = 0.45,
                     no_task: float = 0.05, split: str = "train", countries: list[str] | None = None,
                     shift: dict[int, float] | None = None) -> pd.DataFrame:
    """`n` synthetic records [n rows] with columns id, user_id, text, task (index into
    load_taxonomy().task_text; −1 = no occupational task), soc_code (first occupation listing the task,
    "" for none), soc_major (its SOC major group title, "" for none), collaboration (one of MODES),
    country (ISO alpha-2). The same arguments always give the same frame. Bad args raise InputError.
    """
    n = _check_n(n)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"generate_economy: seed must be a non-negative integer, got {seed!r}")
    zipf = _check_float("zipf", zipf, low=0.0, low_open=True)
    aui_slope = _check_float("aui_slope", aui_slope)
    automation = _check_float("automation", automation, low=0.0, high=1.0)
    no_task = _check_float("no_task", no_task, low=0.0, high=1.0, high_open=True)
    if split not in _PERSONAL_FRAMES:
        raise InputError(f"generate_economy: split must be 'train' or 'heldout', got {split!r}")
    tax = load_taxonomy()
    task_p = task_probabilities(tax.n_tasks, zipf, shift)
    ctab, country_p = country_plan(countries, aui_slope)
    rng = np.random.default_rng([seed, 0xEC0])

    # Countries and users: per-country record counts drawn once from the plan, then filled with users.
    n_c = rng.multinomial(n, country_p)
    sizes = _user_sizes(rng, n)
    pos = np.arange(n)
    country_of = np.searchsorted(np.cumsum(n_c), pos, side="right")
    size_user = np.searchsorted(np.cumsum(sizes), pos, side="right")
    # A drawn user that straddles a country boundary becomes two users, one per country.
    user = pd.factorize(size_user * len(n_c) + country_of)[0]
    n_users = int(user.max()) + 1
    width = max(6, len(str(n_users - 1)))
    user_names = np.array([f"u{i:0{width}d}" for i in rng.permutation(n_users)], dtype=object)

    # Tasks, no-task records and collaboration modes: independent of user and country.
    is_none = rng.random(n) < no_task
    task = np.full(n, NO_TASK, dtype=np.int64)
    task[~is_none] = rng.choice(tax.n_tasks, size=int((~is_none).sum()), p=task_p)
    automated = rng.random(n) < automation
    mode = np.where(automated, rng.choice(2, size=n, p=_AUTOMATION_SPLIT),
                    2 + rng.choice(3, size=n, p=_AUGMENTATION_SPLIT))

    text = np.empty(n, dtype=object)
    work = np.flatnonzero(~is_none)
    text[work] = paraphrase(tax.task_text[task[work]], split=split, seed=int(rng.integers(2**63)))
    none = np.flatnonzero(is_none)
    frames = _PERSONAL_FRAMES[split]
    picks = rng.integers(len(_PERSONAL), size=len(none))
    frame = rng.integers(len(frames), size=len(none))
    text[none] = [frames[f].format(x=_PERSONAL[p]) for f, p in zip(frame, picks)]

    first_occ = tax.links.drop_duplicates("task").set_index("task").occupation.sort_index().to_numpy()
    soc = np.append(tax.occupations.soc_code.to_numpy()[first_occ], "").astype(object)
    major = np.append(tax.majors.title.to_numpy()[tax.task_major], "").astype(object)

    order = rng.permutation(n)  # interleave users, as a real log would
    width = max(7, len(str(n)))
    return pd.DataFrame({
        "id": [f"e{i:0{width}d}" for i in range(1, n + 1)],
        "user_id": user_names[user[order]],
        "text": text[order],
        "task": task[order],
        "soc_code": soc[task[order]],  # index −1 picks the appended ""
        "soc_major": major[task[order]],
        "collaboration": np.asarray(MODES, dtype=object)[mode[order]],
        "country": ctab.iso2.to_numpy()[country_of[order]],
    })


def task_probabilities(n_tasks: int, zipf: float, shift: dict[int, float] | None = None) -> np.ndarray:
    """P(task) [T]: rank r from the RANK_SEED permutation, ∝ r^(−zipf), times `shift` factors, renormalised."""
    perm = task_ranking(n_tasks)
    p = np.empty(n_tasks)
    p[perm] = np.arange(1, n_tasks + 1, dtype=float) ** -zipf
    for task, factor in (shift or {}).items():
        if isinstance(task, bool) or not isinstance(task, numbers.Integral) or not 0 <= task < n_tasks:
            raise InputError(f"generate_economy: shift key {task!r} is not a task index in 0..{n_tasks - 1}")
        factor = _check_float(f"shift[{task}]", factor, low=0.0)
        p[task] *= factor
    if p.sum() <= 0:
        raise InputError("generate_economy: shift removes every task")
    return p / p.sum()


def task_ranking(n_tasks: int) -> np.ndarray:
    """Task indexes [T] from rank 1 down: the planted popularity order, the same for every seed."""
    return np.random.default_rng(RANK_SEED).permutation(n_tasks)


def country_plan(codes: list[str] | None, aui_slope: float) -> tuple[pd.DataFrame, np.ndarray]:
    """(rows of geography.countries() [C], P(country) [C] ∝ population × gdp_per_capita^aui_slope)."""
    codes = list(DEFAULT_COUNTRIES if codes is None else codes)
    if not codes:
        raise InputError("generate_economy: countries is empty")
    rows = resolve(codes)
    if (rows < 0).any():
        raise InputError(f"generate_economy: unknown country code {codes[int(np.argmax(rows < 0))]!r}")
    if len(set(rows.tolist())) < len(rows):
        raise InputError("generate_economy: countries lists a country twice")
    table = country_table().iloc[rows].reset_index(drop=True)
    missing = table.gdp_per_capita.isna()
    if missing.any():
        raise InputError(f"generate_economy: country {table.iso2[missing].iloc[0]!r} has no GDP in the shipped table")
    w = table.population.to_numpy() * table.gdp_per_capita.to_numpy() ** aui_slope
    return table, w / w.sum()


def _user_sizes(rng: np.random.Generator, total: int) -> np.ndarray:
    """Records per user, power-law on 1..50, drawn until they cover `total` records."""
    k = np.arange(1, _MAX_RECORDS_PER_USER + 1)
    p = k ** -_USER_POWER
    p /= p.sum()
    mean = float((k * p).sum())
    sizes = rng.choice(k, size=int(total / mean * 1.1) + 100, p=p)
    while sizes.sum() < total:  # rare: top up rather than fail
        sizes = np.concatenate([sizes, rng.choice(k, size=len(sizes) // 10 + 100, p=p)])
    return sizes


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise InputError(f"generate_economy: n must be an integer, got {n!r}")
    if n <= 0:
        raise InputError(f"generate_economy: n must be positive, got {n}")
    return int(n)


def _check_float(name: str, value, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise InputError(f"generate_economy: {name} must be a finite number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise InputError(f"generate_economy: {name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise InputError(f"generate_economy: {name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value
