"""The public explorer (issue 10): release/explorer.html, built from the release's own files only.

One mark per published base cluster, sized by its published count and placed by the hierarchical packed
layout; no per-record point, no example, no record text, nothing for unpublished clusters. The audit's
point-counting attack passes on it and catches leaky variants (a mark of an unpublished cluster, marks per
record, a mark whose size or radius is not the published size). Headless Chromium opens it offline.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from clio_engine import generate_conversations, load_config
from clio_engine.audit import audit
from clio_engine.cli import main
from clio_engine.explorer.page import page_data, render_page
from clio_engine.pipeline import run
from clio_engine.pipeline.release import RELEASE_FILES, build_release
from tests.offline_page import open_offline
from tests.canary import canary_token

pytestmark = pytest.mark.unit

ARTIFACTS = Path(os.environ.get("CLIO_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
FACETS = ["language", "country"]
N_RECORDS = 600


@pytest.fixture(scope="module")
def released(tmp_path_factory, tiny_bert_dir):
    """600 synthetic records, each with a unique canary word; floors that hide some base clusters."""
    frame = generate_conversations(N_RECORDS, seed=5)
    frame["text"] = [f"{t} Ref {canary_token(i)}." for i, t in enumerate(frame["text"])]
    out = tmp_path_factory.mktemp("public") / "run"
    cfg = load_config(None, {"seed": 7, "embed.model": str(tiny_bert_dir), "embed.progress": False,
                             "embed.cache_dir": str(out.parent / "cache"), "input.user_column": "user_id",
                             "input.facet_columns": FACETS, "cluster.k": 24, "hierarchy.levels": 3, "hierarchy.top": 4,
                             "privacy.min_users": 3, "privacy.min_records": 20})
    result = run(cfg, input=frame[["id", "text", "user_id", *FACETS]], out=out)
    return frame, result


def _data(result) -> dict:
    return page_data((result.dir / "release" / "explorer.html").read_text(encoding="utf-8"))


def test_release_lists_and_holds_its_public_explorer(released):
    _, result = released
    release = result.dir / "release"
    assert "explorer.html" in RELEASE_FILES and (release / "explorer.html").is_file()
    manifest = json.loads((release / "manifest.json").read_text())
    assert "explorer.html" in manifest["files"] and "no public explorer yet" not in manifest["note"]
    html = (release / "explorer.html").read_text()
    assert (release / "explorer.html").read_bytes() != (result.dir / "explorer.html").read_bytes()
    assert "<canvas" in html and "default-src 'none'" in html and "http://" not in html and "https://" not in html


def test_one_mark_per_published_base_cluster_sized_by_its_published_count(released):
    _, result = released
    data = _data(result)
    nodes, marks = data["nodes"], data["marks"]
    c = result.clusters
    base = c[(c.level == 0) & (c.kind == "cluster")]
    published = base[base.published]
    hidden = base[~base.published]
    assert len(hidden) and len(published), "the setup must hide some base clusters and publish others"
    ids = [nodes["id"][j] for j in marks["node"]]
    assert sorted(ids) == sorted(published.id) and len(ids) == len(set(ids))  # exactly one mark each
    assert not set(ids) & set(hidden.id) and not set(hidden.id) & set(nodes["id"])
    size_of = published.set_index("id")["size"].to_dict()
    assert marks["size"] == [int(size_of[i]) for i in ids]
    # Area ∝ published size: r² / size is one constant (up to the 0.1-unit rounding of r).
    r, s = np.array(marks["r"]), np.array(marks["size"], float)
    ratio = r / np.sqrt(s)
    assert np.abs(r - ratio.mean() * np.sqrt(s)).max() < 0.2
    # No per-record points, no centroid markers, no examples; counts in meta.
    assert data["points"] == {"x": [], "y": [], "node": []} and data["centroids"]["node"] == []
    assert all(ex == [] for ex in nodes["ex"]) and data["meta"]["public"] and data["meta"]["marks"] == len(ids)
    # Discs do not overlap, and every disc lies on the map.
    x, y = np.array(marks["x"], float), np.array(marks["y"], float)
    d = np.sqrt((x[:, None] - x[None]) ** 2 + (y[:, None] - y[None]) ** 2) + np.eye(len(x)) * 1e9
    assert (d >= (r[:, None] + r[None]) - 1.5).all()
    assert (x - r >= -1).all() and (x + r <= 10_001).all() and (y - r >= -1).all() and (y + r <= 10_001).all()


def test_top_level_clusters_are_regions(released):
    """Each top-level cluster's discs sit together: every disc's nearest disc is mostly of its own region."""
    _, result = released
    data = _data(result)
    nodes, marks = data["nodes"], data["marks"]
    top = []
    for j in marks["node"]:
        while nodes["parent"][j] >= 0:
            j = nodes["parent"][j]
        top.append(j)
    top = np.array(top)
    assert len(set(top)) >= 2
    xy = np.stack([marks["x"], marks["y"]], axis=1).astype(float)
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + np.eye(len(xy)) * 1e9
    assert (top[d.argmin(axis=1)] == top).mean() >= 0.8


def test_no_record_text_in_the_public_page(released):
    frame, result = released
    raw = (result.dir / "release" / "explorer.html").read_bytes()
    tokens = [canary_token(i) for i in range(len(frame))]
    assert [t for t in tokens if t.encode() in raw] == [], "record text reached release/explorer.html"
    # The scan can fail: the analyst page shows examples of published clusters, with their tokens.
    analyst = (result.dir / "explorer.html").read_bytes()
    assert any(t.encode() in analyst for t in tokens)


def test_public_page_is_built_from_the_release_alone(released, tmp_path):
    """Only the release folder: the same page, byte for byte, with private/ and the analyst page gone."""
    _, result = released
    copy = tmp_path / "run"
    shutil.copytree(result.dir, copy)
    shutil.rmtree(copy / "private")
    (copy / "explorer.html").unlink()
    shutil.rmtree(copy / "release")
    assert main(["release", str(copy)]) == 0
    assert (copy / "release" / "explorer.html").read_bytes() == (result.dir / "release" / "explorer.html").read_bytes()
    out = build_release(copy, tmp_path / "elsewhere")
    assert (out / "explorer.html").read_bytes() == (result.dir / "release" / "explorer.html").read_bytes()


def test_audit_finds_no_point_counting_violation(released):
    _, result = released
    found = audit(result.dir / "release")
    assert [v for v in found if v.attack == "point-counting"] == [], found


# ------------------------------------------------------------------- leaky variants the audit must catch
def _leaky_copy(result, tmp_path, change) -> Path:
    """A copy of the release whose explorer.html is rewritten (with the real renderer) after `change(data)`."""
    dest = tmp_path / "release"
    shutil.copytree(result.dir / "release", dest)
    data = page_data((dest / "explorer.html").read_text(encoding="utf-8"))
    change(data, result)
    (dest / "explorer.html").write_text(render_page(data), encoding="utf-8")
    return dest


def _hidden_base(result):
    c = result.clusters
    return c[(c.level == 0) & (c.kind == "cluster") & ~c.published]


def _add_hidden_mark(data, result):
    """A mark for an unpublished base cluster, listed on the page with its true size."""
    row = _hidden_base(result).iloc[0]
    true = int((result.assignments.level_0 == row["index"]).sum())
    nodes = data["nodes"]
    for key in nodes:
        nodes[key].append({"id": row.id, "level": 0, "parent": -1, "other": 0, "size": true, "name": "x"}.get(key))
    m = data["marks"]
    m["node"].append(len(nodes["id"]) - 1)
    m["x"].append(5000); m["y"].append(5000); m["r"].append(m["r"][0]); m["size"].append(true)


def _marks_per_record(data, result):
    """One small mark per record of each published base cluster (counting them gives every true count)."""
    nodes, a = data["nodes"], result.assignments
    index = {nid: j for j, nid in enumerate(nodes["id"])}
    new = {"node": [], "x": [], "y": [], "r": [], "size": []}
    for b in a.level_0.dropna().astype(int):
        j = index.get(f"0.{b}")
        if j is not None:
            new["node"].append(j); new["x"].append(1); new["y"].append(1); new["r"].append(1.0)
            new["size"].append(nodes["size"][j])
    data["marks"] = new


def _true_radius(data, result):
    """Marks whose size field is the published one but whose radius is drawn from another count."""
    m = data["marks"]
    m["r"] = [round(r * (1.3 if k % 2 else 1.0), 1) for k, r in enumerate(m["r"])]


def _wrong_size(data, result):
    data["marks"]["size"][0] += 3


def _points_in_release(data, result):
    """Per-record points (the analyst map) copied into the public page."""
    j = data["marks"]["node"][0]
    data["points"] = {"x": [1, 2, 3], "y": [1, 2, 3], "node": [j, j, j]}


@pytest.mark.parametrize("change,expect", [(_add_hidden_mark, "not published"), (_marks_per_record, "marks per record"),
                                           (_true_radius, "radius"), (_wrong_size, "published size is"),
                                           (_points_in_release, "per-record points")])
def test_point_counting_catches_a_leaky_public_page(released, tmp_path, change, expect):
    _, result = released
    found = [v for v in audit(_leaky_copy(result, tmp_path, change)) if v.attack == "point-counting"]
    assert found and any(expect in v.what for v in found), found
    assert {v.file for v in found} == {"explorer.html"}


# ---------------------------------------------------------------------------------------- browser


@pytest.mark.browser
def test_public_page_loads_offline_draws_its_marks_and_shows_a_cluster(browser, released):
    import io

    from PIL import Image

    _, result = released
    data = _data(result)
    context, pg = open_offline(browser, result.dir / "release" / "explorer.html")
    try:
        n = len(data["marks"]["node"])
        assert pg.evaluate("window.clioExplorer.marks") == n > 0 and pg.evaluate("window.clioExplorer.points") == 0
        assert pg.evaluate("window.clioExplorer.state.marksDrawn") == n
        pixels = np.asarray(Image.open(io.BytesIO(pg.locator("#map").screenshot())).convert("RGB")).astype(int)
        background = np.array([0xfc, 0xfc, 0xfd])
        assert (np.abs(pixels - background).sum(axis=2) > 60).mean() > 0.05, "the map draws (almost) nothing"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / ".gitignore").write_text("*\n")  # test output, never committed
        pg.screenshot(path=str(ARTIFACTS / "public-explorer.png"))
        # Hover the largest disc: its name, published size and keywords in the tooltip; click: the panel.
        k = int(np.argmax(data["marks"]["r"]))
        j = data["marks"]["node"][k]
        x, y, _ = pg.evaluate(f"window.clioExplorer.markScreen({k})")
        box = pg.locator("#map").bounding_box()
        pg.mouse.move(box["x"] + x, box["y"] + y)
        tip = pg.locator("#tooltip")
        tip.wait_for(state="visible")
        text = tip.inner_text()
        assert data["nodes"]["name"][j] in text and f"{data['nodes']['size'][j]:,} records" in text
        pg.mouse.click(box["x"] + x, box["y"] + y)
        assert pg.locator("#panel-name").inner_text() == data["nodes"]["name"][j]
        assert pg.locator("#panel-facets .bar-row").count() > 0
        assert "no record text" in pg.locator("#panel-examples").inner_text()
        pg.mouse.move(box["x"] + 5, box["y"] + 5)
        pg.screenshot(path=str(ARTIFACTS / "public-explorer-selected.png"))
        assert pg.errors == [] and pg.blocked == []
    finally:
        context.close()
