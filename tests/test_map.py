"""The explorer map (issue 10, item 4): the point-counting attack on explorer.html, and a layout in which
every top-level cluster is one region.

The attack parses the page's embedded data and counts points per node: a point of an unpublished cluster
(labelled with its "Other" bucket, as the map once did) gives away suppressed sizes, and points per
published cluster equal to its true size give away the exact count behind a Laplace-noised one. Both
tests fail on a map that draws one point per sampled record.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from clio_engine import generate_conversations, load_config
from clio_engine.explorer.page import page_data
from clio_engine.pipeline import run

pytestmark = pytest.mark.unit

FACETS = ["language", "country", "platform"]
MIN_RECORDS = 20


def _run(tmp_path_factory, tiny_bert_dir, name, **extra):
    frame = generate_conversations(800, seed=11)
    out = tmp_path_factory.mktemp(name) / "run"
    cfg = load_config(None, {"seed": 3, "embed.model": str(tiny_bert_dir), "embed.progress": False,
                             "embed.cache_dir": str(out.parent / "cache"), "input.user_column": "user_id",
                             "input.facet_columns": FACETS, "cluster.k": 30, "hierarchy.levels": 3,
                             "hierarchy.top": 4, "hierarchy.mode": "kmeans",  # a tree whose noised run still publishes
                             "privacy.min_users": 3, "privacy.min_records": MIN_RECORDS,
                             "output.map_sample": 50_000, **extra})
    return run(cfg, input=frame[["id", "text", "user_id", *FACETS]], out=out)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory, tiny_bert_dir):
    """Thresholds that hide a good share of the base clusters; a map sample larger than the run (so the old
    map drew every record)."""
    return _run(tmp_path_factory, tiny_bert_dir, "map_plain")


@pytest.fixture(scope="module")
def noised_run(tmp_path_factory, tiny_bert_dir):
    # ε large enough that some base clusters pass the floors on both their exact and their noised counts
    return _run(tmp_path_factory, tiny_bert_dir, "map_noised", **{"privacy.epsilon": 16.0})


def _page_data(result) -> dict:
    return page_data((result.dir / "explorer.html").read_text())


def _true_base_sizes(result) -> Counter:
    """Exact records per base cluster, from the analyst's per-record assignments (never published)."""
    a = result.assignments
    return Counter(int(b) for b in a.level_0.dropna() if b >= 0)


def _point_counts(data) -> Counter:
    return Counter(data["nodes"]["id"][j] for j in data["points"]["node"])


@pytest.mark.parametrize("which", ["plain_run", "noised_run"])
def test_counting_points_recovers_no_suppressed_size(which, request):
    result = request.getfixturevalue(which)
    data = _page_data(result)
    nodes, c = data["nodes"], result.clusters
    hidden_base = set(c[(c.level == 0) & (c.kind == "cluster") & ~c.published]["index"].astype(int))
    assert hidden_base, "the setup must hide some base clusters"
    counts = _point_counts(data)
    assert counts, "the page must have points, or the attack proves nothing"
    # Per hidden node / Other bucket: no count in 1..min_records−1; in fact, no point at all.
    other_ids = {nid for nid, o in zip(nodes["id"], nodes["other"]) if o}
    small = {nid: n for nid, n in counts.items() if nid in other_ids and 0 < n < MIN_RECORDS}
    assert not small, f"points per Other bucket give suppressed sizes away: {small}"
    assert not other_ids & set(counts), "points of unpublished clusters are drawn (labelled with their Other bucket)"
    # Every point names a published base cluster; none of a hidden cluster is on the page under any label.
    published_base = {f"0.{int(i)}" for i in c[(c.level == 0) & (c.kind == "cluster") & c.published]["index"]}
    assert set(counts) <= published_base
    if (result.dir / "private" / "cache" / "map.npz").is_file():
        from clio_engine.explorer import MapLayout

        layout = MapLayout.load(result.dir / "private" / "cache" / "map.npz")
        a = result.assignments.set_index("row")
        real = layout.rows[layout.rows >= 0]
        assert not set(a.loc[real].level_0.astype(int)) & hidden_base


@pytest.mark.parametrize("which", ["plain_run", "noised_run"])
def test_points_per_published_cluster_say_nothing_about_its_size(which, request):
    """One number of points for every published base cluster; with ε, that number is not the true size."""
    result = request.getfixturevalue(which)
    data = _page_data(result)
    counts = _point_counts(data)
    sizes = _true_base_sizes(result)
    per_cluster = {nid: n for nid, n in counts.items()}
    assert len(set(per_cluster.values())) == 1, f"points per cluster vary with its size: {sorted(per_cluster.values())}"
    m = next(iter(per_cluster.values()))
    assert m == result.manifest["stages"]["map"]["per_cluster"] <= MIN_RECORDS
    true = [sizes[int(nid.split(".")[1])] for nid in per_cluster]
    assert len(set(true)) > 1, "the published clusters' true sizes must differ, or constancy proves nothing"
    if which == "noised_run":
        assert sum(m == t for t in true) < len(true), "points per cluster equal the true sizes behind noised ones"
        from clio_engine.explorer import MapLayout

        layout = MapLayout.load(result.dir / "private" / "cache" / "map.npz")
        assert (layout.rows == -1).all(), "with ε, marks are drawn from each cluster's shape, not records"


def test_top_level_clusters_form_regions(plain_run):
    """2-D kNN label agreement by top-level cluster on the published points (k = 15)."""
    from clio_engine.explorer.layout import knn_agreement

    data = _page_data(plain_run)
    nodes = data["nodes"]
    top = []
    for j in data["points"]["node"]:
        while nodes["parent"][j] >= 0:
            j = nodes["parent"][j]
        top.append(j)
    assert len(set(top)) >= 2
    xy = np.stack([data["points"]["x"], data["points"]["y"]], axis=1)
    assert knn_agreement(xy, np.array(top), k=15) >= 0.9


def test_layout_packs_siblings_without_overlap_and_regions_by_top_level():
    from clio_engine.explorer.layout import hierarchical_centres, knn_agreement, map_layout

    rng = np.random.default_rng(1)
    top, mid, per = 5, 4, 12
    k = top * mid * per
    centroids = rng.standard_normal((k, 16))
    anc = np.stack([np.arange(k), np.arange(k) // per, np.arange(k) // (per * mid)], axis=1)
    centres = hierarchical_centres(centroids, anc)
    d = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1)) + np.eye(k) * 10
    assert d.min() >= 2.0, "base discs (radius 1) overlap"
    labels = rng.integers(0, k, 6000)
    X = centroids[labels] + rng.standard_normal((6000, 16)) * 0.1
    published = rng.random(k) > 0.3
    layout = map_layout(X, labels, centroids, per_cluster=10, ancestors=anc, published=published, seed=0)
    assert set(layout.base) == set(np.flatnonzero(published)) and len(layout.base) == 10 * published.sum()
    assert np.isnan(layout.centroid_xy[~published]).all() and np.isfinite(layout.centroid_xy[published]).all()
    assert knn_agreement(layout.xy, anc[layout.base, 2]) >= 0.95
    # The same inputs give the same map; nothing published gives an empty one.
    again = map_layout(X, labels, centroids, per_cluster=10, ancestors=anc, published=published, seed=0)
    assert np.array_equal(again.xy, layout.xy) and np.array_equal(again.rows, layout.rows)
    empty = map_layout(X, labels, centroids, per_cluster=10, ancestors=anc, published=np.zeros(k, bool))
    assert len(empty.rows) == 0 and np.isnan(empty.centroid_xy).all()


@pytest.mark.parametrize("which", ["plain_run", "noised_run"])
def test_public_map_draws_one_mark_per_published_cluster_at_its_published_size(which, request):
    """release/explorer.html: one disc per published base cluster, its size the published (noised) one, no
    points; the point-counting attack finds nothing to count."""
    from clio_engine.audit import audit

    result = request.getfixturevalue(which)
    data = page_data((result.dir / "release" / "explorer.html").read_text())
    c = result.clusters
    published = c[(c.level == 0) & (c.kind == "cluster") & c.published].set_index("id")["size"]
    marks = data["marks"]
    assert sorted(data["nodes"]["id"][j] for j in marks["node"]) == sorted(published.index)
    assert marks["size"] == [int(published[data["nodes"]["id"][j]]) for j in marks["node"]]
    assert data["points"]["node"] == [] and data["centroids"]["node"] == []
    assert [v for v in audit(result.dir / "release") if v.attack == "point-counting"] == []
