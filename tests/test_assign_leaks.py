"""`clio-engine assign` must not carry the reference run's private centroids into the new run (review of
December: repro /tmp/review_cmp/r4_assign_centroid.py). The new run's tree took the earlier run's centroids at
every level, so a base cluster the earlier run suppressed, published now, showed the earlier members' exact
unit mean (cosine 1.000000) in the new run's clusters.parquet: whoever knows all of them but one gets the last
one's embedding back (the true text ranked first of 300 guesses). The new run's centroids are now its own."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from clio_engine.cli import main
from clio_engine.hierarchy import Tree
from clio_engine.pipeline.stages import centroids_of
from clio_engine.runfiles import ASSIGNMENTS, CACHE, EMBEDDINGS

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def periods(tmp_path_factory, tiny_bert_dir):
    """Run A on 400 conversations; run B assigns 400 others into A's tree (floors of 1: every node is shown)."""
    from clio_engine import generate_conversations
    from clio_engine.pipeline import run

    root = tmp_path_factory.mktemp("assign")
    a = generate_conversations(400, seed=1)[["id", "text", "user_id"]]
    b = generate_conversations(400, seed=2)[["id", "text", "user_id"]]
    b["id"] = "b" + b["id"].astype(str)
    b.to_parquet(root / "b.parquet")
    first = run(None, input=a, out=root / "a", overrides={
        "embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(root / "cache"),
        "cluster.k": 8, "hierarchy.levels": 2, "hierarchy.top": 3, "input.user_column": "user_id",
        "privacy.min_users": 1, "privacy.min_records": 1, "output.explorer": False})
    assert main(["assign", str(first.dir), "--input", str(root / "b.parquet"), "--out", str(root / "b"),
                 "--no-progress"]) == 0
    return first.dir, root / "b"


def cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[n] row-wise cosine of two [n, D] matrices."""
    return (x * y).sum(1) / np.maximum(np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1), 1e-12)


def test_the_new_runs_centroids_are_its_own_records_means(periods):
    a, b = periods
    ta, tb = Tree.load(a / CACHE / "tree.json"), Tree.load(b / CACHE / "tree.json")
    labels = pq.read_table(b / ASSIGNMENTS).to_pandas().sort_values("row").level_0.to_numpy()
    own, sizes = centroids_of(np.load(b / EMBEDDINGS), labels, len(tb.levels[0]))
    held = sizes > 0
    assert held.sum() >= 6
    assert (cosines(tb.levels[0].centroid[held], own[held]) > 0.99999).all()
    # before: B's base centroids were A's, which B's other records do not reproduce
    assert (cosines(tb.levels[0].centroid[held], ta.levels[0].centroid[held]) < 0.99999).all()
    parent = tb.levels[0].parent
    summed = np.zeros_like(tb.levels[1].centroid, dtype=np.float64)
    np.add.at(summed, parent, own * sizes[:, None])
    expected = summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)
    assert (cosines(tb.levels[1].centroid, expected) > 0.99999).all()
    assert all((la.parent == lb.parent).all() for la, lb in zip(ta.levels, tb.levels))  # the shape is A's


def test_no_centroid_the_new_run_shows_is_one_of_the_reference_runs(periods):
    """The attack's view: every centroid in B's clusters.parquet against every private centroid of A."""
    a, b = periods
    ta = Tree.load(a / CACHE / "tree.json")
    private = np.concatenate([lv.centroid for lv in ta.levels])
    rows = [r for r in pq.read_table(b / "clusters.parquet").to_pylist() if r["centroid"] is not None]
    assert len(rows) >= 6
    shown = np.asarray([r["centroid"] for r in rows], np.float64)
    shown /= np.linalg.norm(shown, axis=1, keepdims=True)
    private = private / np.linalg.norm(private, axis=1, keepdims=True)
    assert (shown @ private.T).max() < 0.99999


@pytest.fixture(scope="module")
def hidden_periods(tmp_path_factory, tiny_bert_dir):
    """Run A with floors at its median base cluster size (about half its base clusters suppressed); run B
    assigns A's own texts again, so records fall in every one of A's clusters, hidden ones included."""
    from clio_engine import generate_conversations
    from clio_engine.pipeline import run

    root = tmp_path_factory.mktemp("assign_hidden")
    a = generate_conversations(400, seed=3)[["id", "text", "user_id"]]
    b = a.assign(id="b" + a["id"].astype(str))
    b.to_parquet(root / "b.parquet")
    settings = {"embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(root / "cache"),
                "cluster.k": 8, "hierarchy.levels": 2, "hierarchy.top": 3, "input.user_column": "user_id",
                "privacy.min_users": 1, "privacy.min_records": 1, "output.explorer": False}
    first = run(None, input=a, out=root / "a", overrides=settings)
    sizes = np.bincount(pq.read_table(first.dir / ASSIGNMENTS).column("level_0").to_numpy(), minlength=8)
    first = run(None, input=a, out=root / "a", overrides={**settings, "privacy.min_records": int(np.median(sizes)) + 1})
    assert main(["assign", str(first.dir), "--input", str(root / "b.parquet"), "--out", str(root / "b"),
                 "--no-progress"]) == 0
    return first.dir, root / "b"


def test_assign_joins_only_the_clusters_the_reference_run_published(hidden_periods):
    """Found (review of Dec 2): records joined the nearest of *all* the reference run's base centroids, so
    probes with distinct record counts per topic decoded, from the new run's published totals, which topics
    lie nearest a cluster the reference run suppressed. Only its published clusters take records now."""
    from clio_engine.pipeline.reference import nearest_centroid

    a, b = hidden_periods
    rows = pq.read_table(a / "clusters.parquet").to_pylist()
    shown = sorted(r["index"] for r in rows if r["level"] == 0 and r["kind"] == "cluster" and r["published"])
    hidden = sorted(r["index"] for r in rows if r["level"] == 0 and r["kind"] == "cluster" and not r["published"])
    assert shown and hidden  # the fixture must hide some clusters and show others
    with np.load(a / CACHE / "cluster.npz") as z:
        centroids = np.asarray(z["centroids"], np.float32)
    labels = pq.read_table(b / ASSIGNMENTS).to_pandas().sort_values("row").level_0.to_numpy()
    vectors = np.load(b / EMBEDDINGS)
    assert (nearest_centroid(vectors, centroids) == np.asarray(hidden)[:, None]).any()  # the bait: some were nearest a hidden one
    assert not np.isin(labels, hidden).any()
    assert (labels == np.asarray(shown)[nearest_centroid(vectors, centroids[shown])]).all()


def test_assign_keeps_the_reference_tree_and_says_its_buckets_are_not_moved(hidden_periods):
    """hierarchy.mode: reference keeps the earlier run's tree as it is: the new run's clusters below the floors
    are withheld as buckets (engine.privacy.buckets) but none is moved, and the report says so."""
    import json

    _, b = hidden_periods
    info = json.loads((b / "manifest.json").read_text())["stages"]["hierarchy"]["small_cluster_buckets"]
    assert info["kept_together"] is False and info["moved"] == 0
    from clio_engine.pipeline.report import _buckets_line

    assert _buckets_line(info) in (b / "report.md").read_text(encoding="utf-8")
    said = _buckets_line({**info, "clusters": 3, "buckets": 1})
    assert said.startswith("Base clusters withheld: 3, in 1 bucket of nearby") and "the earlier run's tree is kept as it is" in said
