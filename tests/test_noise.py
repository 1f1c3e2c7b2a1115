"""User-level noise (engine.privacy.noise, SPEC §4): the declared scale is the scale drawn (KS over 200+
seeds), one user's 1,000 records move published counts by no more than the bound, published numbers are
consistent, the budget is accounted, and a run says what it spent."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clio_engine.aggregate.facets import facet_cells_tree, facet_table
from clio_engine.errors import ConfigError
from clio_engine.privacy import publish
from clio_engine.privacy.noise import (bounded_records, consistent_parts, discrete_laplace, discrete_laplace_cdf,
                                       plan_noise)

pytestmark = pytest.mark.unit


def jittered_ks(draws: np.ndarray, scale: float) -> float:
    """p-value of a two-sided KS test of integer draws against the discrete Laplace of `scale`.

    Integer data make the plain KS test meaningless (ties); adding U(−½, ½) to each draw gives a continuous
    variable whose CDF is the discrete CDF linearly interpolated, which we can state exactly."""
    rng = np.random.default_rng(12345)
    x = draws + rng.uniform(-0.5, 0.5, size=len(draws))

    def cdf(t):
        t = np.asarray(t, dtype=np.float64)
        k = np.floor(t + 0.5)  # the integer whose unit interval holds t
        below = discrete_laplace_cdf(k - 1, scale)
        return below + (t + 0.5 - k) * (discrete_laplace_cdf(k, scale) - below)

    return stats.kstest(x, cdf).pvalue


def star_tree(n_base=40, per_node=400, n_parents=5, n_users=4000, seed=0):
    """Two levels; base node sizes far above the noise so nothing is clipped at 0."""
    rng = np.random.default_rng(seed)
    base = np.repeat(np.arange(n_base), per_node)
    parent = np.arange(n_base) % n_parents
    users = rng.integers(0, n_users, len(base))
    return [base, parent[base]], [parent, np.full(n_parents, -1)], users


# ---- the mechanism -------------------------------------------------------------------------------------

def test_discrete_laplace_sampler_matches_its_distribution_and_a_wrong_scale_is_rejected():
    draws = discrete_laplace(np.random.default_rng(0), 7.5, 20_000)
    assert draws.dtype == np.int64
    assert jittered_ks(draws, 7.5) > 1e-3
    assert jittered_ks(draws, 15.0) < 1e-6 and jittered_ks(draws, 3.75) < 1e-6  # the test can fail


def test_plan_splits_the_total_over_every_query_and_states_it():
    plan = plan_noise(2.0, 4, n_levels=3, facets=("language", "country"), has_user_ids=True)
    # records, users and other_users per level (9); per facet records and users per level (2 × 6)
    assert len(plan.queries) == 9 + 12
    assert math.isclose(plan.epsilon_each * len(plan.queries), 2.0)
    assert math.isclose(plan.scale, 4 / plan.epsilon_each)
    m = plan.manifest()
    assert m["composition"] == "sequential" and m["epsilon_total"] == 2.0
    assert math.isclose(sum(q["epsilon"] for q in m["queries"]), 2.0)
    assert {q["sensitivity"] for q in m["queries"]} == {4}
    # Without user ids each record is its own user: B = 1, and user counts cost nothing more.
    solo = plan_noise(2.0, 4, n_levels=3, facets=("language",), has_user_ids=False)
    assert solo.bound == 1 and solo.queries == ("records/level0", "records/level1", "records/level2",
                                                "facet:language/records/level0", "facet:language/records/level1",
                                                "facet:language/records/level2")
    assert plan_noise(None, 4, n_levels=3) is None
    with pytest.raises(ConfigError, match="max_records_per_user"):
        plan_noise(1.0, 0, n_levels=2)
    with pytest.raises(KeyError, match="not in the noise plan"):
        plan.rng("facet:unplanned/records/level0", 0)


def test_contribution_bound_keeps_at_most_b_records_per_user_and_all_of_light_users():
    users = np.r_[np.zeros(1000, int), np.arange(1, 501), np.full(3, 900)]
    keep = bounded_records(users, 5, seed=1)
    kept = np.bincount(users[keep], minlength=901)
    assert kept[0] == 5 and kept[900] == 3 and (kept[1:501] == 1).all()
    assert not np.array_equal(keep, bounded_records(users, 5, seed=2))  # a seeded sample, not the first B
    np.testing.assert_array_equal(keep, bounded_records(users, 5, seed=1))


# ---- KS over ≥ 200 seeds: the published counts' noise has the declared scale ------------------------------

def test_published_top_sizes_and_user_counts_carry_noise_of_the_declared_scale():
    labels, parents, _ = star_tree()
    # Each user writes 3 records (the bound) into one node: 400 records, ~133 users per node, so neither the
    # bound nor the users ≤ records clamp changes anything and the draws are the mechanism's alone.
    users = np.arange(len(labels[0])) // 3
    plan = plan_noise(1.0, 3, n_levels=2, has_user_ids=True)
    size_noise, user_noise = [], []
    for seed in range(250):
        base, top = publish(labels, parents, users, min_users=5, min_records=15, noise=plan, seed=seed)
        size_noise.append(top.reported_records - top.records)  # the top level is published as drawn
        user_noise.append(base.reported_users - base.users)
    size_noise, user_noise = np.concatenate(size_noise), np.concatenate(user_noise)
    assert len(size_noise) == 250 * 5
    assert jittered_ks(size_noise, plan.scale) > 1e-3
    # A mechanism at half or double the declared scale is caught.
    assert jittered_ks(size_noise, plan.scale / 2) < 1e-6 and jittered_ks(size_noise, plan.scale * 2) < 1e-6
    assert jittered_ks(user_noise, plan.scale) > 1e-3


# ---- one heavy user ------------------------------------------------------------------------------------

def _with_heavy_user(labels, parents, users, values, n_heavy=1000, seed=0):
    """The same records plus one new user with n_heavy records spread over existing nodes and values."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(users), n_heavy)  # copy the cells of existing records: no new cell appears
    heavy = int(users.max()) + 1
    return ([np.r_[lab, lab[rows]] for lab in labels], parents, np.r_[users, np.full(n_heavy, heavy)],
            np.r_[values, values[rows]])


@pytest.mark.parametrize("bound", [5, 1000])
def test_a_user_with_1000_records_moves_a_published_count_by_at_most_the_bound(bound, monkeypatch):
    from clio_engine.privacy.noise import NoisePlan

    # The counts' sensitivity, with the draws held fixed: the tree is part of every draw (`NoisePlan.over`), so
    # the data set with the heavy user would otherwise draw anew, which only adds the noise's own spread.
    monkeypatch.setattr(NoisePlan, "over", lambda plan, node_labels: plan)
    labels, parents, users = star_tree(n_base=30, per_node=60, n_users=600, seed=3)
    values = np.random.default_rng(4).choice(np.array(["en", "fr", "de", "ja"]), len(users), p=[.55, .25, .15, .05])
    heavy = _with_heavy_user(labels, parents, users, values)
    plan = plan_noise(4.0, bound, n_levels=2, facets=("language",), has_user_ids=True)
    floors = dict(min_users=5, min_records=15)

    def run(lab, par, usr, val):
        pubs = publish(lab, par, usr, **floors, noise=plan, seed=11)
        cells = facet_cells_tree(lab, [np.ones(len(p.published), bool) for p in pubs], par, val, usr,
                                 facet="language", **floors, noise=plan, seed=11,
                                 node_sizes=[p.reported_records for p in pubs])
        return pubs, cells

    (a, ca), (b, cb) = run(labels, parents, users, values), run(*heavy)
    moves = [int(np.abs(x.reported_records - y.reported_records).max()) for x, y in zip(a, b)]
    user_move = max(int(np.abs(x.reported_users - y.reported_users).max()) for x, y in zip(a, b))
    cell_moves = [int(np.abs(x.reported_records - y.reported_records).max()) for x, y in zip(ca, cb)]
    if bound == 5:
        # The same seed draws the same noise, so what moves is the user's own (bounded) contribution: ≤ B
        # at the top, drawn as is. Projection onto a parent's size (x = max(v − τ, 0)) moves a part by its
        # own change (≤ B) plus τ's (≤ B + the parent's move), plus one unit of rounding each way.
        assert moves[-1] <= bound and user_move <= bound
        assert moves[0] <= 2 * bound + moves[1] + 2
        assert all(c <= 2 * bound + m + 2 for c, m in zip(cell_moves, moves))
        assert max(moves + cell_moves) <= 4 * bound + 2  # far below the user's 1,000 records
    else:  # without a meaningful bound the same user shifts counts by far more: the checks above can fail
        assert max(moves) > 50 and max(cell_moves) > 50


# ---- consistency: every published number agrees with every other ---------------------------------------

def test_noised_levels_and_facet_cells_are_consistent():
    labels, parents, users = star_tree(n_base=24, per_node=50, n_users=300, seed=5)
    values = np.random.default_rng(6).choice(np.array(["a", "b", "c"]), len(users), p=[.7, .25, .05])
    plan = plan_noise(1.0, 2, n_levels=2, facets=("v",), has_user_ids=True)
    pubs = publish(labels, parents, users, min_users=5, min_records=15, noise=plan, seed=2)
    base, top = pubs
    np.testing.assert_array_equal(top.reported_records, np.bincount(parents[0], weights=base.reported_records,
                                                                    minlength=len(top.published)))
    # The Other bucket is the parent minus its published children, in published numbers.
    hidden = ~base.published
    np.testing.assert_array_equal(base.reported_other_records,
                                  np.bincount(parents[0][hidden], weights=base.reported_records[hidden],
                                              minlength=len(top.published)))
    assert (base.reported_users <= base.reported_records).all()
    cells = facet_cells_tree(labels, [p.published for p in pubs], parents, values, users, facet="v", min_users=5,
                             min_records=15, noise=plan, seed=2, node_sizes=[p.reported_records for p in pubs])
    for level, c in enumerate(cells):
        sizes = pubs[level].reported_records
        sums = np.bincount(c.node, weights=c.reported_records, minlength=len(sizes))
        on = np.unique(c.node)
        np.testing.assert_array_equal(sums[on], sizes[on])  # a node's cells add up to its published size
        t = facet_table(c).to_pandas()
        counts = t.dropna(subset=["records"])
        np.testing.assert_allclose(counts.share, counts.records / sizes[counts.node.to_numpy()])
        np.testing.assert_allclose(t.groupby("node").share.sum(), 1.0)


def _projection_reference(v, total):
    """Euclidean projection of v onto {x ≥ 0, Σx = total} by bisection on τ (x = max(v − τ, 0))."""
    if total == 0:
        return np.zeros_like(v)
    lo, hi = v.min() - total - 1.0, v.max()
    for _ in range(200):
        tau = (lo + hi) / 2
        lo, hi = (tau, hi) if np.maximum(v - tau, 0).sum() > total else (lo, tau)
    return np.maximum(v - (lo + hi) / 2, 0)


def test_consistent_parts_is_the_rounded_projection_onto_the_total():
    rng = np.random.default_rng(0)
    for _ in range(300):
        m = int(rng.integers(1, 5))
        group = np.sort(np.r_[np.arange(m), rng.integers(0, m, int(rng.integers(0, 12)))])
        values = rng.integers(0, 60, len(group)).astype(float)
        totals = rng.integers(0, 150, m)
        got = consistent_parts(values, group, totals)
        assert (got >= 0).all() and (np.bincount(group, weights=got, minlength=m) == totals).all()
        for g in range(m):
            ref = _projection_reference(values[group == g], totals[g])
            assert np.abs(got[group == g] - ref).max() < 1.0 + 1e-6  # rounding moves a part by less than one


# ---- a run with ε says what it spent, and its published numbers add up -----------------------------------

def test_a_noised_run_accounts_its_budget_and_publishes_consistent_numbers(tmp_path, tiny_bert_dir):
    from clio_engine import generate_conversations
    from clio_engine.pipeline import run

    frame = generate_conversations(900, seed=5)[["id", "text", "user_id", "language", "country"]]
    result = run(None, input=frame, out=tmp_path / "run", overrides={
        "embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache"),
        "cluster.k": 12, "hierarchy.levels": 2, "hierarchy.top": 4, "input.user_column": "user_id",
        "input.facet_columns": ["language", "country"], "privacy.epsilon": 8.0, "privacy.max_records_per_user": 3})
    noise = result.manifest["privacy"]["noise"]
    assert noise["epsilon_total"] == 8.0 and noise["max_records_per_user"] == 3
    assert math.isclose(sum(q["epsilon"] for q in noise["queries"]), 8.0)
    assert len(noise["queries"]) == 2 * 3 + 2 * 2 * 2  # 2 levels × (records, users, other_users) + facets
    assert "total ε = 8" in result.report and "at most 3 records" in result.report
    assert result.manifest["stages"]["privacy"]["records_beyond_bound"] > 0
    release = json.loads((result.dir / "release" / "manifest.json").read_text())
    assert release["privacy"]["noise"]["epsilon_total"] == 8.0  # the release says what it spent too

    clusters = result.clusters
    shown = clusters[clusters.published]
    top = shown[(shown.level == 1) & (shown.kind == "cluster")]
    total = top["size"].sum() + shown[(shown.level == 1) & (shown.kind == "other")]["size"].sum()
    for row in top.itertuples():
        kids = shown[(shown.parent == row.id) & (shown.level == 0)]
        assert kids["size"].sum() <= row.size  # published parts never exceed their published whole
        if (kids.kind == "other").any() or not (clusters[clusters.parent == row.id].published == False).any():
            assert kids["size"].sum() == row.size  # ... and add up exactly where nothing is left out
    np.testing.assert_allclose(top["share"], top["size"] / max(total, 1), rtol=1e-9)
    facets = result.facets
    for (cluster, facet), cells in facets.groupby(["cluster", "facet"]):
        size = clusters.set_index("id").loc[cluster, "size"]
        assert math.isclose(cells.share.sum(), 1.0, rel_tol=1e-9)
        counted = cells.dropna(subset=["records"])
        np.testing.assert_allclose(counted.records / size, counted.share, rtol=1e-9)


def test_a_noised_release_states_no_exact_count(tmp_path, tiny_bert_dir):
    """Attack: with ε, an exact count anywhere in release/ (the input's size, records beyond the bound,
    truncated texts) is a query no noise covers. Every number of the release manifest and report that
    equals an exact count of the run (and none of its noised numbers) is a leak."""
    from clio_engine import generate_conversations
    from clio_engine.pipeline import run

    frame = generate_conversations(700, seed=9)[["id", "text", "user_id", "language"]]
    result = run(None, input=frame, out=tmp_path / "run", overrides={
        "embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache"),
        "cluster.k": 10, "hierarchy.levels": 2, "hierarchy.top": 3, "input.user_column": "user_id",
        "input.facet_columns": ["language"], "privacy.epsilon": 4.0})
    analyst = result.manifest
    exact = {analyst["input"]["accepted"], analyst["input"]["rows"], analyst["stages"]["privacy"]["records_beyond_bound"],
             analyst["stages"]["embed"]["n_unique"], analyst["stages"]["embed"]["n_tokens"]}
    release = result.dir / "release"
    text = (release / "manifest.json").read_text() + (release / "report.md").read_text()
    from clio_engine.explorer.page import page_data
    meta = page_data((release / "explorer.html").read_text(encoding="utf-8"))["meta"]
    text += json.dumps(meta)
    numbers = {int(x.replace(",", "")) for x in __import__("re").findall(r"(?<![\d.])\d[\d,]*(?![\d.])", text)}
    noised_total = analyst["input"]["noised_total"]
    assert not (exact - {noised_total}) & numbers, f"exact counts in release/: {sorted((exact - {noised_total}) & numbers)}"
    assert json.loads((release / "manifest.json").read_text())["input"]["noised_total"] == noised_total
    # The analyst's own manifest keeps them (it is not published).
    assert analyst["input"]["accepted"] == 700


def test_a_noised_release_manifest_drops_llm_usage_of_every_stage():
    """With ε the LLM stages' usage (requests = clusters named, tokens ∝ their texts) is an exact count no
    noise covers: the release manifest keeps none of it, whatever stage reported it."""
    from clio_engine.pipeline.release import release_manifest

    usage = {"requests": 37, "calls": 37, "prompt_tokens": 51234, "completion_tokens": 3303}
    manifest = {"privacy": {"epsilon": 2.0}, "input": {"rows": 900, "accepted": 880, "noised_total": 874},
                "stages": {"names": {"namer": "llm", "llm": usage, "fallbacks": {"count": 3},
                                     "collisions": {"reasked": 4, "suffixed": 1}, "renamed_here": 5,
                                     "only_child_unasked": 6,  # counts of nodes the model was or wasn't asked of
                                     "auditor": {"audited": 12, "llm": usage}},  # the auditor's, one level down
                           "facets": {"extracted": 900, "failed": {"request": 1}, "llm": usage},
                           "hierarchy": {"levels": [40, 12, 4], "llm": usage,  # per-level reports in a list
                                         "clio": {"levels": [{"level": 0, "proposals": 9, "only_child_kept": 2}]}},
                           "economic": {"llm": usage, "llm_choice": {"not_work": 12}, "rows": 40}}}
    head = release_manifest(manifest)
    text = json.dumps(head)
    assert "prompt_tokens" not in text and "51234" not in text and "not_work" not in text
    assert head["stages"]["hierarchy"]["levels"] == [40, 12, 4] and head["stages"]["names"]["namer"] == "llm"
    # nor without ε (tokens of the texts shown, exact: tests/test_release_record_facts.py); the analyst keeps it
    plain = release_manifest({**manifest, "privacy": {"epsilon": None}})
    assert "prompt_tokens" not in json.dumps(plain) and manifest["stages"]["names"]["llm"] == usage
    assert plain["stages"]["names"] == {"namer": "llm", "auditor": {"audited": 12}}
    assert plain["stages"]["hierarchy"]["clio"] == {"levels": [{"level": 0, "proposals": 9}]}
    # a record whose extraction failed (or the model refused) is a fact about one record, as its tokens are
    assert "failed" not in plain["stages"]["facets"] and plain["stages"]["facets"]["extracted"] == 900


def test_noised_release_centroids_say_no_more_than_the_noised_sizes(tmp_path, tiny_bert_dir):
    """Attack (found in review): a parent's centroid is its children's mean weighted by their sizes. Weighted
    by the exact sizes, least squares of a published parent's centroid on its children's centroids gives the
    exact size ratios, and the smallest whole parent size fitting them the exact counts: the noise undone.
    The analyst tree's centroids must be weighted by the published (noised) sizes only, and release/ carries
    no centroid at all (a base cluster's is the normalised sum of its members' embeddings)."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from clio_engine import generate_conversations
    from clio_engine.audit import audit
    from clio_engine.pipeline import run

    frame = generate_conversations(1500, seed=3)[["id", "text", "user_id"]]
    result = run(None, input=frame, out=tmp_path / "run", overrides={
        "embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache"),
        "cluster.k": 12, "hierarchy.levels": 2, "hierarchy.top": 3, "input.user_column": "user_id",
        "privacy.min_users": 2, "privacy.min_records": 2, "privacy.epsilon": 1.0})
    assert all("centroid" not in lv for lv in json.loads((result.dir / "release" / "tree.json").read_text())["levels"])
    assert "centroid" not in pq.read_table(result.dir / "release" / "clusters.parquet").column_names
    released = json.loads((result.dir / "tree.json").read_text())  # the analyst tree: published nodes, centroids
    exact = json.loads((result.dir / "private" / "cache" / "tree.json").read_text())
    kids_level, parents_level = released["levels"][0], released["levels"][1]
    kids, parents = released["nodes"][0], released["nodes"][1]
    checked = differing = 0
    for j in range(len(parents)):
        mine = [i for i, p in enumerate(kids_level["parent"]) if p == j]
        if len(mine) < 2 or any(kids[i]["kind"] != "cluster" for i in mine):
            continue
        c = np.asarray([kids_level["centroid"][i] for i in mine], np.float64)
        ratio, *_ = np.linalg.lstsq(c.T, np.asarray(parents_level["centroid"][j], np.float64), rcond=None)
        ratio /= ratio.sum()
        published = np.array([kids[i]["size"] for i in mine], np.float64)
        true = np.array([exact["levels"][0]["size"][int(kids[i]["id"].split(".")[-1])] for i in mine], np.float64)
        np.testing.assert_allclose(ratio, published / published.sum(), atol=1e-4)  # only what is published
        checked += 1
        differing += not np.allclose(published / published.sum(), true / true.sum(), atol=1e-3)
    assert checked and differing, (checked, differing)  # the attack had something to find

    # `clio-engine audit` runs the same attack: nothing to check in the release (no centroid), and violations
    # on a leaky release built from it with the analyst table's centroids put back, the parents' weighted by
    # the exact sizes (as before the fix): the exact weights, and the base clusters' member sums.
    assert not [v for v in audit(result.dir / "release") if v.attack == "centroid-weights"]
    leaky = tmp_path / "leaky"
    shutil.copytree(result.dir / "release", leaky)
    (leaky / "tree.json").unlink()
    analyst = pq.read_table(result.dir / "clusters.parquet").drop(["examples"])
    exact_centroid = {f"1.{j}": c for j, c in enumerate(exact["levels"][1]["centroid"])}
    rows = analyst.to_pylist()
    for r in rows:
        if r["level"] == 1 and r["kind"] == "cluster" and r["published"]:
            r["centroid"] = exact_centroid[r["id"]]
    pq.write_table(pa.Table.from_pylist(rows, schema=analyst.schema), leaky / "clusters.parquet")
    found = {v.where for v in audit(leaky) if v.attack == "centroid-weights"}
    assert found & {r["id"] for r in rows if r["level"] == 1}, found  # parents weighted by the exact sizes
    assert found & {r["id"] for r in rows if r["level"] == 0}, found  # base centroids: members' embedding sums


def _k_draws(n_records: int, users: np.ndarray, seeds: range, target: int = 100) -> np.ndarray:
    """k for each seed as the cluster stage picks it under ε (noised bounded count / target)."""
    from clio_engine.pipeline.stages import base_k
    from clio_engine.privacy.noise import noised_record_count

    plan = plan_noise(1.0, 5, n_levels=3, facets=("language",), k_from_count=True)
    return np.array([base_k(n_records, None, target, noised_record_count(plan, users, seed)) for seed in seeds])


def test_with_epsilon_the_number_of_base_clusters_does_not_tell_one_users_records():
    """Attack (review): the release has one row per base cluster, and k = round(N / 100) told N to ±50 beside
    counts noised at a far larger scale; two inputs that differ by one user with 5 records on either side of
    a rounding edge (1,048 and 1,053 records) gave k = 10 and 11, every time. Under ε, k comes from a noised
    bounded count, a query of the budget: the two inputs' k distributions must nearly coincide."""
    users = np.repeat(np.arange(262), 4)            # 1,048 records, 4 per user
    neighbour = np.r_[users, np.full(5, 262)]       # + one user with 5 records: 1,053
    seeds = range(600)
    k, k_neighbour = _k_draws(len(users), users, seeds), _k_draws(len(neighbour), neighbour, seeds)
    values = np.union1d(k, k_neighbour)
    hist = np.array([(k == v).mean() for v in values])
    hist_neighbour = np.array([(k_neighbour == v).mean() for v in values])
    total_variation = 0.5 * np.abs(hist - hist_neighbour).sum()
    assert len(values) >= 3  # k is spread by the noise, not a function of N
    assert total_variation < 0.15, (total_variation, dict(zip(values.tolist(), hist.tolist())))


def test_k_from_the_count_is_a_query_of_the_budget_and_only_when_derived():
    plain = plan_noise(2.0, 5, n_levels=2, facets=("language",))
    derived = plan_noise(2.0, 5, n_levels=2, facets=("language",), k_from_count=True)
    assert "records/total" not in plain.queries and derived.queries[0] == "records/total"
    assert len(derived.queries) == len(plain.queries) + 1
    assert math.isclose(derived.epsilon_each * len(derived.queries), 2.0)  # the total stays ε


def test_a_noised_run_draws_k_from_the_counted_query(tmp_path, tiny_bert_dir):
    """The run's k: round(noised count / target), the count drawn from the plan's own `records/total` query
    (so the manifest's spend covers it); with an explicit cluster.k no such query is planned."""
    from clio_engine import generate_conversations
    from clio_engine.pipeline import run
    from clio_engine.pipeline.noise_plan import run_key
    from clio_engine.pipeline.stages import base_k
    from clio_engine.privacy.noise import noised_record_count

    frame = generate_conversations(600, seed=3)[["id", "text", "user_id", "language"]]
    settings = {"embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache"),
                "hierarchy.levels": 2, "hierarchy.top": 3, "input.user_column": "user_id",
                "input.facet_columns": ["language"], "privacy.epsilon": 4.0, "cluster.target_cluster_size": 40,
                "output.explorer": False}
    result = run(None, input=frame, out=tmp_path / "derived", overrides=settings)
    noise = result.manifest["privacy"]["noise"]
    assert noise["queries"][0]["name"] == "records/total"
    assert math.isclose(sum(q["epsilon"] for q in noise["queries"]), 4.0)
    cluster = result.manifest["stages"]["cluster"]
    assert "noised record count" in cluster["k_rule"]
    # the draws' key: the run's key mixed with the records the run read (scrubbed facets and all)
    from clio_engine.config import load_config
    from clio_engine.pipeline.noise_plan import data_key
    from clio_engine.pipeline.steps.records import load
    from clio_engine.privacy import make_scrubber

    cfg = load_config(None, settings)
    records = load(cfg, frame)[0].with_scrubbed_facets(make_scrubber(cfg.privacy.scrubber).scrub)
    key = data_key(run_key(result.dir / "private"), records)
    plan = plan_noise(4.0, 5, n_levels=2, facets=("language",), k_from_count=True, key=key)
    users = frame["user_id"].factorize()[0]  # the count Σ min(records, B) needs only who is who
    assert cluster["k"] == base_k(600, None, 40, noised_record_count(plan, users, 0))
    explicit = run(None, input=frame, out=tmp_path / "explicit", overrides={**settings, "cluster.k": 15})
    assert all(q["name"] != "records/total" for q in explicit.manifest["privacy"]["noise"]["queries"])


def test_the_published_seed_does_not_draw_the_runs_noise_again(tmp_path, tiny_bert_dir, monkeypatch):
    """Attack (review): release/manifest.json states the seed (0 by default), the scale and the query names, and
    the noise was drawn from default_rng([seed, crc32(query)]): a reader drew it again and subtracted it,
    getting every exact top-level size. The draws now also take a secret key kept in private/ (a resumed
    run reuses it, so its numbers stay the same; another run directory draws anew)."""
    from clio_engine import generate_conversations
    from clio_engine.pipeline import run
    from clio_engine.pipeline.noise_plan import KEY_FILE

    frame = generate_conversations(900, seed=5)[["id", "text", "user_id"]]
    settings = {"embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache"),
                "cluster.k": 12, "hierarchy.levels": 2, "hierarchy.top": 4, "input.user_column": "user_id",
                "privacy.epsilon": 1.0, "privacy.min_users": 1, "privacy.min_records": 1, "output.explorer": False}
    monkeypatch.delenv("CLIO_ENGINE_NOISE_KEY")  # a random key, as a run outside the suite draws
    result = run(None, input=frame, out=tmp_path / "run", overrides=settings)
    release = json.loads((result.dir / "release" / "manifest.json").read_text())
    seed, top = int(release["seed"]), len(release["levels"]) - 1
    public = plan_noise(release["privacy"]["epsilon"], release["privacy"]["noise"]["max_records_per_user"],
                        n_levels=len(release["levels"]), has_user_ids=True)  # all a reader has: no key
    # The reader is even given the tree (the draws also hash its partition): only the key can stop the redraw
    # (a review: without this the partition alone failed it, and a run ignoring its key still passed).
    a = pd.read_parquet(result.dir / "private" / "assignments.parquet").sort_values("row")
    a = a[a.status == "clustered"]
    public = public.over([a[f"level_{l}"].fillna(-1).astype(np.int64).to_numpy() for l in range(top + 1)])
    with np.load(result.dir / "private" / "cache" / "privacy.npz") as z:
        true, published = z[f"records_{top}"], z[f"reported_records_{top}"]
    redrawn = public.noised(true, f"records/level{top}", seed)  # the reader's guess of what was published
    unclipped = published > 0
    assert unclipped.sum() >= 3
    assert (redrawn[unclipped] == published[unclipped]).mean() < 0.5, (redrawn, published)
    key_file = result.dir / "private" / KEY_FILE
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert not any(key_file.read_text().strip() in f.read_text(errors="replace")
                   for f in (result.dir / "release").rglob("*") if f.is_file())
    again = run(None, input=frame, out=tmp_path / "run", overrides=settings)  # resumed: the same key, same numbers
    assert again.clusters["size"].equals(result.clusters["size"])  # NaN where hidden, in both


def test_a_preset_noise_key_is_used_and_a_bad_one_is_named(tmp_path, monkeypatch):
    from clio_engine.errors import OutputError
    from clio_engine.pipeline.noise_plan import KEY_ENV, run_key

    monkeypatch.setenv(KEY_ENV, "ab" * 16)
    assert run_key(tmp_path / "a") == int("ab" * 16, 16) == run_key(tmp_path / "a")
    monkeypatch.setenv(KEY_ENV, "not hex")
    with pytest.raises(OutputError, match=KEY_ENV):
        run_key(tmp_path / "b")
    (tmp_path / "a" / "noise.key").write_text("zz\n")
    with pytest.raises(OutputError, match="noise.key"):
        run_key(tmp_path / "a")
    monkeypatch.delenv(KEY_ENV)
    assert run_key(tmp_path / "c") != run_key(tmp_path / "d")  # random without a preset


def test_the_noise_key_is_never_readable_by_others(tmp_path, monkeypatch):
    """Review: the key was written with the umask's mode (0644) and chmodded after the rename, so a kill in
    between left it readable for good. Now the file is 0600 from its first byte, and a key found readable
    (copied with another umask) is made private again."""
    import os

    from clio_engine.pipeline import noise_plan

    modes = []
    real_replace = os.replace

    def replace(src, dst):  # what the key file is like at the instant it appears under its name
        modes.append(os.stat(src).st_mode & 0o777)
        return real_replace(src, dst)
    monkeypatch.setattr(noise_plan.os, "replace", replace)
    old = os.umask(0o022)
    try:
        noise_plan.run_key(tmp_path / "private")
    finally:
        os.umask(old)
    assert modes == [0o600]
    key = tmp_path / "private" / noise_plan.KEY_FILE
    key.chmod(0o644)
    noise_plan.run_key(tmp_path / "private")
    assert key.stat().st_mode & 0o777 == 0o600
    assert not [p for p in (tmp_path / "private").iterdir() if p.name != noise_plan.KEY_FILE]  # no temporary left


def test_other_records_in_the_same_run_directory_draw_other_noise(tmp_path, tiny_bert_dir):
    """Attack (this session): a run directory keeps its noise key, so March's records and April's (March's plus
    one user's 7 records), run into the same directory with a fixed k, drew the very same noise for every
    query: the two releases' top-level sizes subtracted to that user's bounded count (5) exactly. The draws now
    take the records' fingerprint too (`data_key`): the noise on each published count differs between the two."""
    import pandas as pd

    from clio_engine import generate_conversations
    from clio_engine.pipeline import run

    march = generate_conversations(600, seed=4)[["id", "text", "user_id"]]
    extra = march.iloc[:7].copy()
    extra["id"], extra["user_id"] = [f"x{i}" for i in range(7)], "victim"
    april = pd.concat([march, extra], ignore_index=True)
    settings = {"embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache"),
                "cluster.k": 6, "hierarchy.levels": 2, "hierarchy.top": 2, "input.user_column": "user_id",
                "privacy.epsilon": 1.0, "privacy.min_users": 1, "privacy.min_records": 1, "output.explorer": False}
    def top_noise(result) -> np.ndarray:
        """[2] published − exact (bounded) size of the top-level nodes: the raw draws (lower levels are
        projected onto their parents, so theirs move with the data anyway)."""
        with np.load(result.dir / "private" / "cache" / "privacy.npz") as z:
            return z["reported_records_1"] - z["records_1"]

    noise = [top_noise(run(None, input=frame, out=tmp_path / "run", overrides=settings)) for frame in (march, april)]
    assert len(noise[0]) == len(noise[1]) == 2
    assert not np.array_equal(noise[0], noise[1]), noise  # before: equal, so April − March = the victim's 5
    again = run(None, input=march, out=tmp_path / "run", overrides=settings)  # March again: March's noise again
    assert np.array_equal(top_noise(again), noise[0])


def test_another_clustering_of_the_same_records_in_the_same_run_directory_draws_other_noise(tmp_path, tiny_bert_dir):
    """Attack (review of Dec 5): the draws depended on the records, the key, the seed and the plan, not on the
    clustering. The same records run twice into one run directory with a fixed k, once with another
    `embed.max_length` (or model, or hierarchy method), drew the very same noise for nodes that now hold other
    records: the two releases' top-level sizes subtracted to the exact difference of the true ones, so the
    noise bought nothing. The draws now take the tree too (`NoisePlan.over`); the same tree draws the same."""
    from clio_engine import generate_conversations
    from clio_engine.pipeline import run

    frame = generate_conversations(600, seed=4)[["id", "text", "user_id"]]
    settings = {"embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache"),
                "cluster.k": 6, "hierarchy.levels": 2, "hierarchy.top": 2, "input.user_column": "user_id",
                "privacy.epsilon": 1.0, "privacy.min_users": 1, "privacy.min_records": 1, "output.explorer": False}

    def top_counts(result) -> tuple[np.ndarray, np.ndarray]:
        """[2] exact (bounded) and published sizes of the top-level nodes (their raw draws: lower levels are
        projected onto their parents)."""
        with np.load(result.dir / "private" / "cache" / "privacy.npz") as z:
            return z["records_1"], z["reported_records_1"]

    first = top_counts(run(None, input=frame, out=tmp_path / "run", overrides=settings))
    second = top_counts(run(None, input=frame, out=tmp_path / "run", overrides={**settings, "embed.max_length": 6}))
    assert not np.array_equal(first[0], second[0]), "the two clusterings should count other sets of records"
    # Before: equal, so second published − first published = the exact difference of the true sizes.
    assert not np.array_equal(second[1] - first[1], second[0] - first[0]), (first, second)
    again = top_counts(run(None, input=frame, out=tmp_path / "run", overrides=settings))  # the first tree again
    assert np.array_equal(again[1], first[1]) and np.array_equal(again[0], first[0])


@pytest.mark.unit
def test_the_tree_a_plan_counts_is_part_of_every_draw():
    from clio_engine.privacy.noise import plan_noise

    plan = plan_noise(1.0, 5, n_levels=1, key=0x0123456789ABCDEF0123456789ABCDEF)
    counts = np.full(200, 1000)
    labels = np.arange(2000) % 200
    tree, moved = plan.over([labels]), plan.over([np.roll(labels, 1)])
    query = "records/level0"
    assert (tree.noised(counts, query, 0) == plan.over([labels.copy()]).noised(counts, query, 0)).all()
    assert (tree.noised(counts, query, 0) != moved.noised(counts, query, 0)).mean() > 0.5
    assert (tree.noised(counts, query, 0) != plan.noised(counts, query, 0)).mean() > 0.5


def test_the_data_key_depends_on_the_key_and_on_every_record(tmp_path):
    """Unit view of the same: one key and one table give one draw key; another record, or another key, another."""
    import pyarrow as pa

    from clio_engine.pipeline.noise_plan import data_key
    from clio_engine.records import load_records

    frame = {"id": ["a", "b", "c"], "text": ["one", "two", "three"], "user_id": ["u", "v", "w"]}
    one = load_records(pa.table(frame), user_column="user_id")
    same = load_records(pa.table(frame), user_column="user_id")
    other = load_records(pa.table({**frame, "user_id": ["u", "v", "u"]}), user_column="user_id")
    assert data_key(7, one) == data_key(7, same) == data_key(7, one)
    assert len({data_key(7, one), data_key(7, other), data_key(8, one)}) == 3
    assert 0 <= data_key(2**128 - 1, one) < 2**128


def test_the_records_table_is_hashed_once_for_the_stage_key_and_the_noise_key(monkeypatch):
    """The records stage keys the cache by the table's fingerprint and the noise draws key on it too; the
    second use reads the first's (hashing a million texts twice cost about a second)."""
    import numpy as np
    import pyarrow as pa

    from clio_engine.pipeline import stages
    from clio_engine.pipeline.noise_plan import data_key
    from clio_engine.pipeline.steps.records import Loaded, _fingerprint
    from clio_engine.records import load_records

    hashed = []
    real = stages.fingerprint_table
    monkeypatch.setattr(stages, "fingerprint_table", lambda table: hashed.append(table.num_rows) or real(table))
    records = load_records(pa.table({"id": ["a", "b", "c"], "text": ["one", "two", "three"]}))
    stage_key = _fingerprint(Loaded(records, "test", np.zeros(3, dtype=np.int64)))
    assert data_key(7, records) == data_key(7, records)
    assert hashed.count(3) == 1  # the accepted table once (the rejected one, 0 rows, is the stage key's too)
    assert _fingerprint(Loaded(records, "test", np.zeros(3, dtype=np.int64))) == stage_key


@pytest.mark.parametrize("other", [dict(epsilon=0.5, max_records_per_user=5), dict(epsilon=1.0, max_records_per_user=10),
                                   dict(epsilon=1.0, max_records_per_user=5, n_levels=2)])
def test_two_releases_at_other_scales_do_not_solve_to_the_exact_counts(other):
    """Found (review of Dec 2): under one key, a draw was ceil(E·b) − ceil(E'·b) of the same stream at every
    scale b, so releases of the same records at ε 1 and 0.5 (or bound 5 and 10), both scales printed in
    their manifests, solved to the exact counts: c = (b₂y₁ − b₁y₂)/(b₂ − b₁), within ±2 for 11 of 11 nodes."""
    from clio_engine.privacy.noise import plan_noise

    counts = np.random.default_rng(0).integers(200, 2000, 400)
    key = 0x0123456789ABCDEF0123456789ABCDEF
    first = plan_noise(1.0, 5, n_levels=1, key=key)
    second = plan_noise(**{"n_levels": 1, **other}, key=key)
    query = "records/level0"
    y1, y2 = first.noised(counts, query, 0), second.noised(counts, query, 0)
    b1, b2 = first.scale, second.scale
    assert b1 != b2
    solved = (b2 * y1 - b1 * y2) / (b2 - b1)
    assert np.median(np.abs(solved - counts)) > min(b1, b2)  # before: ≤ 1 (independent draws: ~2.7 b)
    again = plan_noise(1.0, 5, n_levels=1, key=key)
    assert (again.noised(counts, query, 0) == y1).all()  # the same plan and key still draw the same noise
