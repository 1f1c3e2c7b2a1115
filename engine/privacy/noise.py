"""User-level noise for published counts when `privacy.epsilon` is set (SPEC §4).

The guarantee: adding or removing one user — all of their records — changes the distribution of every
published count, share and publication decision by at most a factor e^ε, where ε = `privacy.epsilon` is
the **total** budget of the run. How:

1. **Contribution bound.** Each user counts with at most B = `privacy.max_records_per_user` records
   (a seeded uniform sample of their records where they have more; the rest are still clustered and
   named, but count in no published table). Without user ids each record is its own user, so B = 1.
2. **Queries.** Every published number is post-processing of a fixed list of count vectors (one
   "query" each), all with L1 sensitivity B once contributions are bounded:
   - `records/level{l}`: records per node of each level. Made consistent top-down (the way the US
     Census's TopDown algorithm does): the top level as drawn, then each level's nodes projected onto
     their parent's size (`consistent_parts`), so parent = Σ children holds exactly. A query per level
     rather than sums of the base level: summing 80 noised children puts √80× the noise on the
     top-level sizes and shares, the ones an analyst reads first;
   - `users/level{l}` and `other_users/level{l}`: distinct users per node and per "Other" bucket
     (a user sits in ≤ B nodes of a level, hence ≤ B buckets);
   - `facet:{f}/records/level{l}`: records per (node, value) of each level, projected per node onto
     its size, so a node's cells (shown and suppressed) sum to its published size;
   - `facet:{f}/users/level{l}`: distinct users per (node, value).
   - `records/total`: the bounded record count, only where the run derives k = round(N / target size)
     from it (k-means without `cluster.k`): k is then round(noised count / target), so the number of
     base clusters, which the release shows, is post-processing too instead of N to ± target / 2.
   Without user ids the users queries are the records queries (each record is its own user) and cost
   nothing more.
3. **Mechanism.** Discrete Laplace (the two-sided geometric mechanism, P(k) ∝ exp(−|k|/b)), of scale
   b = B / ε_q with ε_q = ε / (number of queries): integer-valued, so no rounding step, and ε_q-DP for
   an integer query of sensitivity B. Negative results are clipped to 0 (post-processing). Draws are
   seeded by the run's seed, the query's name, a secret key kept in private/ (the seed is published, and
   noise a reader can draw again is no noise) and the tree whose nodes are counted (`NoisePlan.over`):
   another clustering of the same records counts other sets of records, and the same draws on them would
   subtract away between the two releases.
4. **Composition.** Sequential: the queries' ε_q add up to ε. The plan (queries, ε_q, b) goes to the
   manifest and the report.
5. **Decisions on noised counts.** Secondary suppression, "Other" buckets and every share use the noised
   counts only, so they are post-processing too; the primary floors are checked on the exact counts as
   well (below).

Not covered by ε (and said so in the manifest): the clustering itself, names, keywords and examples
(text, guarded by the floors and the scrubber), and which nodes and facet values are shown. A node,
"Other" bucket or facet cell is shown only when both its exact counts (users and records after the
contribution bound) and its noised counts pass the floors: the floors are a promise about people, which
noise at a scale far above them would not keep (a review of the demo at ε = 1, b = 140, found 47 of 84
shown facet cells below the floors in truth, 8 of them one record of one user), so which ones are shown
depends on exact counts.
"""
from __future__ import annotations

import hashlib
import math
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from clio_engine.errors import ConfigError

MECHANISM = "discrete_laplace"
DEFAULT_MAX_RECORDS_PER_USER = 5


def _four_words(digest: bytes) -> tuple[int, ...]:
    """A digest's first 128 bits as four 32-bit words, the shape numpy's seed sequence takes."""
    return tuple(int.from_bytes(digest[i:i + 4], "big") for i in range(0, 16, 4))


@dataclass(frozen=True)
class NoisePlan:
    """The run's budget: total `epsilon`, contribution bound `bound` (B), and the queries it is split over.
    `key`: a secret mixed into every draw. The run's seed is published (release/manifest.json, and 0 by
    default), so noise drawn from the seed alone could be drawn again by a reader and subtracted; a run
    keeps its key in private/ (`clio_engine.pipeline.noise_plan.run_key`). None: the seed alone, for a
    caller of `publish` who keeps the seed secret."""

    epsilon: float
    bound: int
    queries: tuple[str, ...]
    key: int | None = field(default=None, repr=False, compare=False)
    # Four 32-bit words of the tree the counts are over (`over`); empty for a count no clustering defines.
    partition: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def over(self, node_labels) -> "NoisePlan":
        """This plan with its draws tied to the tree it counts: `node_labels`, [N] node per record at every
        level (−1 = noise). Found (review of Dec 5): the draws depended on the records, key, seed and plan
        but not on the clustering, so a second run of the same records in the same run directory with
        another fixed-k clustering (another model, max_length or hierarchy method) drew the very same noise
        for its nodes, and subtracting the two releases gave exact differences of counts. Another tree now
        draws anew (two releases spend ε twice, as composition says); the same tree (a resumed run, a
        rebuilt release) draws the same."""
        digest = hashlib.sha256(b"clio-engine tree\0")
        for labels in node_labels:
            digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
            digest.update(b"\0level\0")
        return replace(self, partition=_four_words(digest.digest()))

    @property
    def epsilon_each(self) -> float:
        return self.epsilon / len(self.queries)

    @property
    def scale(self) -> float:
        """Discrete-Laplace scale b of every query: sensitivity B over its share of ε."""
        return self.bound / self.epsilon_each

    def rng(self, query: str, seed: int) -> np.random.Generator:
        """The Generator of one query: seeded by (seed, crc32(name), the plan, the key), so queries draw
        independently and a run directory (its key) draws the same noise again for the same plan. A query
        not in the plan is a bug (it would spend budget nobody accounted).

        The plan (ε, bound, queries) is in the seed because a draw is ceil(E·b) − ceil(E'·b) for exponential
        E, E' of the stream: the same stream at another scale b (another ε, bound, or number of levels or
        facets, each printed in the manifest) gave proportional noise, and two releases of the same records
        then solved to the exact counts, (b₂y₁ − b₁y₂)/(b₂ − b₁). Another plan now draws anew: two such
        releases spend ε₁ + ε₂, as composition says, and no more."""
        if query not in self.queries:
            raise KeyError(f"query {query!r} is not in the noise plan")
        entropy = [seed, zlib.crc32(query.encode()), *self._plan_words()]
        if self.key is not None:  # 128 secret bits as four 32-bit words
            entropy += [(self.key >> (32 * i)) & 0xFFFFFFFF for i in range(4)]
        return np.random.default_rng(entropy + list(self.partition))

    def _plan_words(self) -> tuple[int, ...]:
        """Four 32-bit words of sha256(ε, bound, queries): what decides every query's scale."""
        return _four_words(hashlib.sha256(repr((float(self.epsilon), int(self.bound),
                                                tuple(self.queries))).encode()).digest())

    def noised(self, counts: np.ndarray, query: str, seed: int) -> np.ndarray:
        """[k] int64 → [k] int64: counts + discrete Laplace(scale), clipped at 0."""
        counts = np.asarray(counts, dtype=np.int64)
        return np.maximum(counts + discrete_laplace(self.rng(query, seed), self.scale, counts.shape), 0)

    def manifest(self) -> dict:
        return {"mechanism": MECHANISM, "composition": "sequential", "epsilon_total": self.epsilon,
                "max_records_per_user": self.bound, "epsilon_per_query": self.epsilon_each, "scale": self.scale,
                "queries": [{"name": q, "epsilon": self.epsilon_each, "sensitivity": self.bound, "scale": self.scale}
                            for q in self.queries],
                "not_covered": "the clustering, names, keywords, examples, and which clusters and facet values "
                               "exist (shown only when both their exact and their noised counts pass the floors)"}


K_QUERY = "records/total"


def plan_noise(epsilon: float | None, max_records_per_user: int | None, *, n_levels: int,
               facets: tuple[str, ...] | list[str] = (), has_user_ids: bool = True,
               k_from_count: bool = False, key: int | None = None) -> NoisePlan | None:
    """The queries a run publishes and the budget split over them; None without epsilon. `k_from_count`:
    the run derives its number of clusters from the record count, which then is a query too (`K_QUERY`)."""
    if epsilon is None:
        return None
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) or epsilon <= 0:
        raise ConfigError(f"privacy.epsilon must be a finite number > 0, got {epsilon!r}")
    bound = DEFAULT_MAX_RECORDS_PER_USER if max_records_per_user is None else max_records_per_user
    if isinstance(bound, bool) or not isinstance(bound, (int, np.integer)) or bound < 1:
        raise ConfigError(f"privacy.max_records_per_user must be an integer >= 1, got {bound!r}")
    if n_levels < 1:
        raise ConfigError(f"a noise plan needs at least one level, got {n_levels}")
    kinds = ("records", "users", "other_users") if has_user_ids else ("records",)
    queries = [K_QUERY] if k_from_count else []
    queries += [f"{kind}/level{level}" for level in range(n_levels) for kind in kinds]
    for facet in facets:
        kinds = ("records", "users") if has_user_ids else ("records",)
        queries += [f"facet:{facet}/{kind}/level{level}" for level in range(n_levels) for kind in kinds]
    return NoisePlan(float(epsilon), int(bound) if has_user_ids else 1, tuple(queries), key)


def noised_record_count(plan: NoisePlan, user_codes: np.ndarray, seed: int) -> int:
    """The `K_QUERY` answer: records that count under the contribution bound (≤ B per user, the mask every
    table uses), plus discrete Laplace noise; ≥ 0."""
    counted = int(bounded_records(user_codes, plan.bound, seed).sum())
    return int(plan.noised(np.array([counted]), K_QUERY, seed)[0])


def discrete_laplace(rng: np.random.Generator, scale: float, shape) -> np.ndarray:
    """int64 draws with P(k) ∝ exp(−|k| / scale): the difference of two geometric variables."""
    p = -math.expm1(-1.0 / scale)  # 1 − e^(−1/b), accurate for large b
    return (rng.geometric(p, size=shape) - rng.geometric(p, size=shape)).astype(np.int64)


def discrete_laplace_cdf(k: np.ndarray, scale: float) -> np.ndarray:
    """P(X ≤ k) for integer k of the discrete Laplace of `scale` (for tests and the audit)."""
    k = np.floor(np.asarray(k, dtype=np.float64))
    a = math.exp(-1.0 / scale)
    below = a ** (-k) / (1 + a)           # k < 0: P(X ≤ k) = a^|k| / (1 + a)
    above = 1 - a ** (k + 1) / (1 + a)    # k ≥ 0
    return np.where(k < 0, np.minimum(below, 1.0), above)


def bounded_records(user_codes: np.ndarray, bound: int, seed: int) -> np.ndarray:
    """[N] bool: the records that count, at most `bound` per user, a seeded uniform sample of each user's
    records (the same mask for every table of the run, so each table sees ≤ bound records per user)."""
    users = np.asarray(user_codes, dtype=np.int64)
    if not len(users):
        return np.ones(0, dtype=bool)
    priority = np.random.default_rng([seed, zlib.crc32(b"contribution-bound")]).random(len(users))
    order = np.lexsort((priority, users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(users)]))
    keep = np.empty(len(users), dtype=bool)
    keep[order] = (np.arange(len(users)) - run_start) < bound
    return keep


def consistent_parts(values: np.ndarray, group: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """[k] noised parts grouped by `group` [k] → [k] ints ≥ 0 whose per-group sums equal `totals` [m].

    Each group's parts are projected onto {x ≥ 0, Σx = total} (the Euclidean projection onto a scaled
    simplex: x_i = max(v_i − τ, 0)), then rounded by largest remainder (ties to the earlier part). Pure
    post-processing of noised numbers. Why the projection rather than a proportional rescale: it moves a
    part by at most its own change plus 2× the group's, so one user (≤ B records) moves a part by ≤ 3B,
    where rescaling can move a part by a whole group's size when the other parts were clipped to 0."""
    v = np.asarray(values, dtype=np.float64)
    group = np.asarray(group, dtype=np.int64)
    totals = np.asarray(totals, dtype=np.int64)
    k, m = len(v), len(totals)
    if not k:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(k), -v, group))  # per group, largest part first
    g, u = group[order], v[order]
    starts = np.searchsorted(g, np.arange(m + 1))
    position = np.arange(k) - starts[g] + 1        # j = 1.. within the group
    running = np.cumsum(u)
    before = np.r_[0.0, running][starts[g]]
    prefix = running - before                       # Σ_{i≤j} u_i within the group
    ok = u - (prefix - totals[g]) / position > 0     # true for j = 1..ρ (a prefix of the sorted group)
    rho = np.bincount(g, weights=ok, minlength=m).astype(np.int64)
    last = starts[:-1] + np.maximum(rho, 1) - 1     # index (in sorted order) of the ρ-th part
    has = rho > 0
    tau = np.full(m, np.inf)  # ρ = 0 only for a total of 0: every part 0
    tau[has] = (prefix[last[has]] - totals[has]) / rho[has]
    exact = np.empty(k)
    exact[order] = np.maximum(u - tau[g], 0.0)
    floor = np.floor(exact + 1e-9).astype(np.int64)
    short = totals - np.bincount(group, weights=floor, minlength=m).astype(np.int64)
    remainder = exact - floor
    order = np.lexsort((np.arange(k), -remainder, group))
    starts = np.searchsorted(group[order], np.arange(m))
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k) - starts[group[order]]
    return floor + (rank < short[group]).astype(np.int64)
