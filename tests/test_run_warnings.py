"""A new user's review: runs on small inputs ended degenerate with no word said. A hierarchy whose upper levels group
nothing (10 → 10 → 10), a `strict` run whose floors no base cluster reaches (30 → 2 → 2, only "Small clusters"
published), report numbers an analyst could not read (a facet-cell share, concentration numbers from 4 tasks, the
demo's 94% beside a small run's scores). Each now gets one plain line; a healthy run gets none of them."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from clio_engine import generate_conversations
from clio_engine.pipeline import run

pytestmark = pytest.mark.unit

BASE = {"embed.progress": False, "hierarchy.levels": 3, "hierarchy.top": 10}
IDLE = "group nothing"  # in every line about a level that groups nothing (`groups nothing` for a single one)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One embedding store for the module: its runs embed the same synthetic texts."""
    return tmp_path_factory.mktemp("embed_cache")


def _run(tmp_path, tiny_bert_dir, frame, caplog, cache, **over):
    with caplog.at_level(logging.WARNING):
        return run(None, input=frame, out=tmp_path / "r", overrides={
            **BASE, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(cache), **over})


# ------------------------------------------------------------------------------------------ 1. idle levels
def test_levels_that_group_nothing_are_said_once_and_the_tree_keeps_its_shape(tmp_path, tiny_bert_dir, caplog, cache):
    """500 records / 50 per cluster = 10 base clusters, top 10: 10 → 10 → 10, as the review's messy.csv gave."""
    frame = generate_conversations(500, seed=4)[["id", "text"]]
    result = _run(tmp_path, tiny_bert_dir, frame, caplog, cache, **{"cluster.k": None,
                                                                    "cluster.target_cluster_size": 50})
    said = [r.getMessage() for r in caplog.records if IDLE in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("hierarchy: levels 1 and 2 have as many topics as the base (10)")
    info = result.manifest["stages"]["hierarchy"]
    assert info["levels"] == [10, 10, 10] and result.manifest["levels"] == [10, 10, 10]  # shape unchanged
    assert info.get("idle_levels") == [1, 2]
    assert info.get("levels_note") == ("hierarchy: levels 1 and 2 have as many topics as the base (10): they group "
                                   "nothing; with 10 base clusters set hierarchy.levels=1 or hierarchy.top=8 or less, "
                                   "or use more records")
    assert said == [info["levels_note"]]  # one line, as a warning
    assert all(r.levelno == logging.WARNING for r in caplog.records if IDLE in r.getMessage())


def test_a_healthy_run_says_nothing_about_levels_or_floors(tmp_path, tiny_bert_dir, caplog, cache):
    """20 base clusters → 14 → 10, every level groups; default floors with 25 records a cluster: no line."""
    frame = generate_conversations(500, seed=4)[["id", "text"]]
    result = _run(tmp_path, tiny_bert_dir, frame, caplog, cache, **{"cluster.k": None,
                                                                    "cluster.target_cluster_size": 25})
    info = result.manifest["stages"]["hierarchy"]
    assert info["levels"] == [20, 14, 10]
    assert "levels_note" not in info and "idle_levels" not in info
    assert "floors_note" not in result.manifest["stages"]["privacy"]
    assert IDLE not in caplog.text and "groups nothing" not in caplog.text and "privacy:" not in caplog.text


def test_the_suggested_settings_group_at_every_level():
    from clio_engine.hierarchy import grouping_settings, idle_levels, level_sizes

    assert idle_levels([10, 10, 10]) == [1, 2] and idle_levels([11, 10, 10]) == [2] and idle_levels([20, 14, 10]) == []
    assert grouping_settings(10, 3, 10) == (1, 8) and grouping_settings(11, 3, 10) == (2, 9)
    assert grouping_settings(30, 3, 10) == (3, 10)  # nothing to change
    assert grouping_settings(2, 3, 2) == (1, None)  # fewer base clusters than levels: no top works
    for n_base, levels, top in ((10, 3, 10), (11, 3, 10), (4, 3, 4), (40, 5, 40)):
        best_levels, best_top = grouping_settings(n_base, levels, top)
        assert not idle_levels(level_sizes(n_base, best_levels, top))
        assert all(not idle_levels(level_sizes(n_base, levels, t)) for t in range(1, (best_top or 0) + 1))


def test_one_level_grouping_nothing_above_another_is_named():
    """11 → 10 → 10: the schedule's rounding leaves level 2 as large as level 1."""
    from clio_engine.pipeline.steps.hierarchy import _shape_note

    cfg = SimpleNamespace(hierarchy=SimpleNamespace(levels=3, top=10), cluster=SimpleNamespace(k=11))
    info = _shape_note(cfg, [11, 10, 10], [11, 10, 10], None)
    assert info == {"idle_levels": [2], "levels_note": (
        "hierarchy: level 2 has as many topics as level 1 (10): it groups nothing; with 11 base clusters set "
        "hierarchy.levels=2 or hierarchy.top=9 or less, or use a larger cluster.k")}


# ------------------------------------------------------------------------------------------ 2. floors too high
def test_floors_no_base_cluster_reaches_are_named_with_the_numbers(tmp_path, tiny_bert_dir, caplog, cache):
    """The review's `strict` run in small: 600 records in 12 clusters of ~50, floors of 100 users / 200 records."""
    frame = generate_conversations(600, seed=1)[["id", "text", "user_id"]]
    result = _run(tmp_path, tiny_bert_dir, frame, caplog, cache, **{
        "cluster.k": 12, "input.user_column": "user_id", "privacy.min_users": 100, "privacy.min_records": 200})
    assert "privacy: 0 of 12 base clusters are published" in caplog.text
    priv, hier = result.manifest["stages"]["privacy"], result.manifest["stages"]["hierarchy"]
    assert result.manifest["privacy"]["levels"][0]["published"] == 0
    assert priv.get("floors_note") == (
        "privacy: 0 of 12 base clusters are published (0.0% of the 600 clustered records) under the floors "
        "privacy.min_users = 100 users and privacy.min_records = 200 records; the only published topics are groups "
        "of hidden small clusters; lower the floors or use more data")
    assert priv["floors_note"] in caplog.text
    # The top level holds fewer than the 10 scheduled topics: the hierarchy says why (the buckets kept together).
    levels = hier["levels"]
    assert levels[-1] < 10
    withheld = hier["small_cluster_buckets"]["clusters"]
    assert hier.get("levels_note", "").startswith(
        f"hierarchy: levels 12 → 11 → 10 became {' → '.join(map(str, levels))}: {withheld} of the 12 base clusters "
        "are withheld with the small ones (privacy.min_users = 100, privacy.min_records = 200)")
    assert hier["levels_note"] in caplog.text


def test_a_noised_release_leaves_out_the_exact_count_of_clusters_below_the_floors():
    """The hierarchy's note counts the base clusters below the floors on their exact sizes (a review): under
    privacy.epsilon no exact count is published, so the release manifest leaves it out with small_cluster_buckets;
    without noise the sizes are published anyway and the note stays."""
    from clio_engine.pipeline.release import release_manifest

    note = "hierarchy: levels 12 → 11 → 10 became 12 → 2 → 2: 9 of the 12 base clusters are withheld …"
    hierarchy = {"levels": [12, 2, 2], "small_cluster_buckets": {"clusters": 9, "buckets": 2}, "levels_note": note,
                 "idle_levels": [2]}
    head = {"input": {"accepted": 600}, "levels": [12, 2, 2], "stages": {"hierarchy": hierarchy},
            "privacy": {"min_users": 100, "min_records": 200, "levels": []}}
    noised = release_manifest({**head, "privacy": {**head["privacy"], "epsilon": 1.0}})["stages"]["hierarchy"]
    assert "levels_note" not in noised and "small_cluster_buckets" not in noised and noised["idle_levels"] == [2]
    exact = release_manifest(head)["stages"]["hierarchy"]
    assert exact["levels_note"] == note


def test_the_floors_note_states_no_exact_count_under_noise_and_nothing_when_enough_is_published():
    from clio_engine.pipeline.steps.privacy import floors_note

    def level(records, published):  # no noise: the reported counts are the true ones
        return SimpleNamespace(records=np.array(records), reported_records=np.array(records),
                               published=np.array(published, dtype=bool))

    few = [level([50, 40, 910], [True, False, False]), level([1000], [True])]
    assert floors_note(few, 5, 15) == (
        "privacy: 1 of 3 base clusters are published (5.0% of the 1,000 clustered records) under the floors "
        "privacy.min_users = 5 users and privacy.min_records = 15 records; most records are in hidden clusters; lower "
        "the floors or use more data")
    noised = floors_note(few, 5, 15, exact=False)
    assert "1,000" not in noised and "%" not in noised
    assert noised.startswith("privacy: 1 of 3 base clusters are published under the floors")
    nothing = [level([50, 40], [False, False]), level([90], [False])]
    assert "; nothing is published;" in floors_note(nothing, 5, 15)
    assert floors_note([level([100, 900], [False, True]), level([1000], [True])], 5, 15) is None  # 90% published


# ------------------------------------------------------------------------------------------ 3. report numbers
def test_the_facet_cell_share_says_what_it_is_a_share_of():
    from clio_engine.pipeline.report import _secondary_line

    sec = {"levels": [{"primary": 0.9, "secondary": 0.8}], "facet_cells": {"primary": 0.586, "secondary": 0.464}}
    line = _secondary_line(sec, has_facets=True)
    assert "records in published facet cells (every facet and level together): 58.6% → 46.4%" in line


def _concentration_rows(n_tasks: int) -> pd.DataFrame:
    """The GLOBAL concentration rows of a run whose Gini, slope and bottom 80% come from `n_tasks` tasks."""
    values = {"rank_share_slope": -0.9, "rank_share_r2": 0.95, "gini": 0.41, "bottom_80_pct": 45.0, "n": n_tasks}
    return pd.DataFrame([{"geo_id": "GLOBAL", "geography": "global", "facet": "concentration", "level": 0,
                          "variable": k, "cluster_name": "onet_task", "value": float(v)} for k, v in values.items()])


def test_key_numbers_from_few_tasks_carry_a_caution():
    from clio_engine.economic.figures import economic_report_section

    few = economic_report_section(_concentration_rows(4), [])
    assert "### Key numbers beside the published Economic Index" in few
    assert ("Caution: the Gini, slope and bottom-80% share of this run come from only 4 published tasks (under "
            "30): too few to compare with the published Index's values.") in few
    for enough in (30, 400):
        many = economic_report_section(_concentration_rows(enough), [])
        assert "### Key numbers beside the published Economic Index" in many and "Caution" not in many


def test_a_small_demo_is_told_its_scores_are_expected_lower():
    from clio_engine.datasets.demo_check import topic_check_lines

    def lines(n):
        truth = generate_conversations(n, seed=0)
        assignments = pd.DataFrame({"id": truth["id"], "status": "clustered",
                                    "level_0": pd.factorize(truth["topic"])[0]})
        return topic_check_lines(SimpleNamespace(assignments=assignments), n, 0)

    small = lines(300)
    hint = [x for x in small if "below the demo's default 20,000" in x]
    assert hint == ["  (run on 300 records, below the demo's default 20,000: fewer records per topic, so lower scores "
                    "are expected)"]
    assert small.index(hint[0]) == 1  # right under "Clio reports 94%"


def test_a_demo_at_its_default_size_or_above_gets_no_hint():
    from clio_engine.config import load_config
    from clio_engine.datasets.demo_check import small_demo_hint

    default = load_config("demo").input.synthetic_records
    assert small_demo_hint(default) == [] and small_demo_hint(2 * default) == []
    assert small_demo_hint(default - 1) != []


# ------------------------------------------------------------------------------------------ 5. English-only model
EMBED_LOGGER = "clio_engine.pipeline.steps.embed"


def test_texts_in_other_scripts_with_the_default_model_are_told_it_reads_english(tmp_path, caplog):
    """A multilingual review: Chinese, Japanese, Arabic and Hindi requests grouped by language under the default
    (English) model, and nothing said so. 120 texts, a third in other scripts: one warning. English alone: none."""
    english = generate_conversations(80, seed=4)[["id", "text"]]
    other = pd.DataFrame({"id": [f"x{i}" for i in range(40)],
                          "text": [["退款什么时候到账", "パスワードを忘れました", "أريد إلغاء الطلب", "पासवर्ड कैसे बदलें"][i % 4]
                                   + f" {i}" for i in range(40)]})
    settings = {"embed.progress": False, "cluster.k": 4, "hierarchy.levels": 2, "hierarchy.top": 2}
    with caplog.at_level(logging.WARNING, logger=EMBED_LOGGER):
        run(None, input=english, out=tmp_path / "en", overrides=settings)
    assert not [r for r in caplog.records if r.name == EMBED_LOGGER]
    with caplog.at_level(logging.WARNING, logger=EMBED_LOGGER):
        run(None, input=pd.concat([english, other], ignore_index=True), out=tmp_path / "mixed", overrides=settings)
    (line,) = [r.getMessage() for r in caplog.records if r.name == EMBED_LOGGER]
    assert line.startswith("embed: 33% of the texts are written in non-Latin scripts") and "embed.model" in line
