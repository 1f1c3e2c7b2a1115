"""release/ publishes no centroid (review F4): a published base cluster's centroid is the normalised sum of its
members' embeddings, so whoever knows the other n−1 members' texts (and the public embedding model) solves
‖λc − S‖ = 1 for the last member's embedding. No file under release/ may hold a vector of the embedding
dimension (clusters.parquet, tree.json, the public explorer's data); the public map is still laid out from
the analyst-level centroids, and ships grid positions only.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from clio_engine import generate_conversations, load_config
from clio_engine.audit import audit
from clio_engine.explorer.page import page_data
from clio_engine.explorer.public import public_page_data
from clio_engine.pipeline import run
from clio_engine.pipeline.release import build_release

pytestmark = pytest.mark.unit

FACETS = ["language", "country"]
_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_SCRIPT_JSON = re.compile(r'<script type="application/json"[^>]*>(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def released(tmp_path_factory, tiny_bert_dir):
    """600 synthetic records, floors that hide some base clusters (as tests/test_public_explorer.py)."""
    frame = generate_conversations(600, seed=5)
    out = tmp_path_factory.mktemp("centroids") / "run"
    cfg = load_config(None, {"seed": 7, "embed.model": str(tiny_bert_dir), "embed.progress": False,
                             "embed.cache_dir": str(out.parent / "cache"), "input.user_column": "user_id",
                             "input.facet_columns": FACETS, "cluster.k": 24, "hierarchy.levels": 3, "hierarchy.top": 4,
                             "privacy.min_users": 3, "privacy.min_records": 20})
    return run(cfg, input=frame[["id", "text", "user_id", *FACETS]], out=out)


def _dim(result) -> int:
    """The embedding dimension (the analyst table keeps the centroids: the layout is computed from them)."""
    analyst = pq.read_table(result.dir / "clusters.parquet").to_pylist()
    dims = {len(r["centroid"]) for r in analyst if r["centroid"] is not None}
    assert len(dims) == 1, dims
    return dims.pop()


def _is_vector(value, d: int) -> bool:
    """A list of d real numbers with a negative and a non-integral one: an embedding-space vector. Published
    numbers (counts, users, shares, radii, grid positions) are never negative."""
    if not isinstance(value, (list, tuple)) or len(value) != d:
        return False
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return False
    return any(v < 0 for v in value) and any(float(v) != int(v) for v in value if np.isfinite(v))


def _vectors_in(value, d: int, where: str) -> list[str]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if _is_vector(value, d):
        return [where]
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _vectors_in(v, d, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found += _vectors_in(v, d, f"{where}[{i}]")
    return found


def _embedding_vectors(folder: Path, d: int) -> list[str]:
    """Where a file under `folder` holds a vector of dimension d: Parquet cells (any column, nested lists),
    JSON values, the JSON blobs of a page, and any bracketed list of d numbers in a text file."""
    found: list[str] = []
    text_array = re.compile(r"\[\s*" + _NUMBER + r"(?:\s*,\s*" + _NUMBER + r"){%d}\s*\]" % (d - 1))
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for name in table.column_names:
                found += _vectors_in(table.column(name).to_pylist(), d, f"{rel}:{name}")
            continue
        if path.suffix == ".png":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".json":
            found += _vectors_in(json.loads(text), d, rel)
        for k, blob in enumerate(_SCRIPT_JSON.findall(text)):
            try:
                found += _vectors_in(json.loads(blob), d, f"{rel}:script{k}")
            except ValueError:
                pass
        for m in text_array.finditer(text):
            values = [float(v) for v in re.findall(_NUMBER, m.group(0))]
            if _is_vector(values, d):
                found.append(f"{rel}@{m.start()}")
    return found


def test_release_holds_no_vector_of_the_embedding_dimension(released):
    """The residual attack needs a published cluster's centroid: none may leave in release/."""
    d = _dim(released)
    # The scan can fail: the analyst table (not publishable) holds the centroids it looks for.
    assert _embedding_vectors(released.dir, d), "the scan finds nothing even in the analyst zone"
    leaks = _embedding_vectors(released.dir / "release", d)
    assert leaks == [], f"vectors of dimension {d} in release/: {leaks[:10]}"
    assert "centroid" not in pq.read_table(released.dir / "release" / "clusters.parquet").column_names
    tree = json.loads((released.dir / "release" / "tree.json").read_text())
    assert tree["levels"] and all("centroid" not in lv for lv in tree["levels"])


def test_public_map_keeps_one_mark_per_published_base_cluster_laid_out_as_before(released):
    """The marks: one per published base cluster, at the positions the analyst-level centroids give (what the
    page showed when the release carried them), with their published sizes."""
    release = released.dir / "release"
    data = page_data((release / "explorer.html").read_text(encoding="utf-8"))
    marks, nodes = data["marks"], data["nodes"]
    c = released.clusters
    published = c[(c.level == 0) & (c.kind == "cluster") & c.published]
    assert len(published) and len(published) < len(c[(c.level == 0) & (c.kind == "cluster")])
    ids = [nodes["id"][j] for j in marks["node"]]
    assert sorted(ids) == sorted(published.id) and len(ids) == len(set(ids)) == data["meta"]["marks"]
    # The layout from the analyst table (centroids included), as the page was built before the fix.
    manifest = json.loads((release / "manifest.json").read_text())
    from clio_engine.explorer import page_meta
    from clio_engine.pipeline.steps.aggregate import empty_facets

    analyst = pq.read_table(released.dir / "clusters.parquet").drop(["examples"])
    assert "centroid" in analyst.column_names
    seed = int(manifest.get("seed") or 0)
    before = public_page_data(analyst, empty_facets(), page_meta(manifest), seed=seed)["marks"]
    assert marks == before
    assert len(set(zip(marks["x"], marks["y"]))) == len(ids)  # distinct places, not a degenerate circle of one


def test_release_rebuilt_without_private_is_the_same(released, tmp_path):
    """`build_release` reads the analyst table only (private/ gone): the same release, the same page."""
    copy = tmp_path / "run"
    shutil.copytree(released.dir, copy)
    shutil.rmtree(copy / "private")
    out = build_release(copy, tmp_path / "elsewhere")
    for name in ("explorer.html", "clusters.parquet", "tree.json"):
        assert (out / name).read_bytes() == (released.dir / "release" / name).read_bytes(), name


def test_audit_of_the_release_has_no_centroid_to_check_and_flags_one_put_back(released, tmp_path):
    """No centroid in the release: nothing for `centroid-weights`. A copy with the analyst centroids written
    back (each base cluster's the normalised sum of its members' embeddings) is flagged."""
    assert not [v for v in audit(released.dir / "release") if v.attack == "centroid-weights"]
    leaky = tmp_path / "leaky"
    shutil.copytree(released.dir / "release", leaky)
    (leaky / "tree.json").unlink()
    analyst = pq.read_table(released.dir / "clusters.parquet")
    import pyarrow as pa

    pq.write_table(analyst.drop(["examples"]), leaky / "clusters.parquet")
    assert isinstance(analyst.schema.field("centroid").type, pa.ListType)
    found = [v for v in audit(leaky) if v.attack == "centroid-weights"]
    base = {r["id"] for r in analyst.to_pylist() if r["level"] == 0 and r["kind"] == "cluster" and r["published"]}
    assert {v.where for v in found} >= base, found


def test_a_release_tree_without_centroids_still_loads(released):
    """Review: the release's tree.json lost its centroid lists, and Tree.from_dict raised a bare KeyError."""
    from clio_engine.hierarchy import Tree

    tree = Tree.from_dict(json.loads((released.dir / "release" / "tree.json").read_text()))
    full = Tree.from_dict(json.loads((released.dir / "tree.json").read_text()))
    assert [len(lv) for lv in tree.levels] == [len(lv) for lv in full.levels]
    assert all(lv.centroid.shape == (len(lv), 0) for lv in tree.levels)
