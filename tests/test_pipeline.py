"""`clio_engine.run` end to end with the real default model on synthetic records: every row accounted for,
the canary guarantee, scrubbed examples, facet aggregates, the published tree, presets and the CLI."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from clio_engine import generate_conversations, load_config
from clio_engine.cli import EXIT_INPUT, main
from clio_engine.errors import ConfigError
from clio_engine.hierarchy import Tree
from clio_engine.pipeline import base_k, run
from tests.canary import canary_token

pytestmark = pytest.mark.unit

EMAIL, PHONE = "jane.doe.canary@example.com", "+1 415 555 0134"
BASE = {"embed.progress": False, "cluster.k": 60, "hierarchy.levels": 3, "hierarchy.top": 6}


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory):
    """1,200 synthetic records, each with a unique canary word; every 4th also carries an email and phone."""
    frame = generate_conversations(1200, seed=3)
    frame["text"] = [f"{t} Ref {canary_token(i)}." + (f" Contact {EMAIL} or {PHONE}." if i % 4 == 0 else "")
                     for i, t in enumerate(frame["text"])]
    out = tmp_path_factory.mktemp("canary") / "run"
    cfg = load_config(None, {**BASE, "input.user_column": "user_id", "input.facet_columns": ["language", "country"]})
    result = run(cfg, input=frame[["id", "text", "user_id", "language", "country"]], out=out)
    return frame, result


def _every_string_in(run_dir: Path) -> str:
    """All text the run directory holds, parquet files decoded (their pages are compressed)."""
    parts = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False))
        else:
            parts.append(path.read_bytes().decode("utf-8", errors="ignore"))
    return "\n".join(parts)


def test_canaries_of_unpublished_clusters_never_leave_the_engine(canary_run):
    frame, result = canary_run
    a = result.assignments.set_index("id").loc[frame["id"]]
    hidden = ~a["published"].to_numpy()
    assert 0 < hidden.sum() < len(frame), "the setup must leave some base clusters under the threshold"
    everything = _every_string_in(result.dir)
    tokens = np.array([canary_token(i) for i in range(len(frame))])
    leaked = [t for t in tokens[hidden] if t in everything]
    assert leaked == [], f"{len(leaked)} canaries of unpublished clusters appear in the run directory"
    # The scan does find planted text where the contract lets it out: examples of published clusters.
    assert any(t in everything for t in tokens[~hidden])


def test_planted_email_and_phone_appear_only_scrubbed(canary_run):
    _, result = canary_run
    everything = _every_string_in(result.dir)
    assert EMAIL not in everything and "555 0134" not in everything
    examples = [e for ex in result.clusters["examples"].dropna() for e in ex]
    assert any("[EMAIL]" in e for e in examples) and any("[PHONE]" in e for e in examples)


def test_unpublished_clusters_carry_no_name_size_or_examples(canary_run):
    _, result = canary_run
    c = result.clusters
    hidden = c[~c.published & (c.kind == "cluster")]
    assert len(hidden) > 0
    for col in ("name", "description", "keywords", "examples", "size", "users", "centroid"):
        assert hidden[col].isna().all(), col
    shown = c[c.published & (c.kind == "cluster")]
    assert shown["name"].notna().all() and (shown["size"] >= 15).all() and (shown["users"] >= 5).all()
    # Every parent with hidden children has an "Other in <parent>" row.
    parents_with_hidden = set(hidden[hidden.level < c.level.max()].parent.dropna())
    others = c[c.kind == "other"]
    published_parents = {p for p in parents_with_hidden if c.set_index("id").loc[p, "published"]}
    assert published_parents <= set(others.parent.dropna())
    assert all(n.startswith("Other in ") for n in others[others.parent.notna()].name)


def test_every_input_row_has_one_ancestor_per_level(canary_run):
    frame, result = canary_run
    a = result.assignments
    assert list(a["row"]) == list(range(len(frame))) and set(a["id"]) == set(frame["id"])
    assert (a.status == "clustered").all()
    levels = [f"level_{l}" for l in range(3)]
    assert a[levels].notna().all().all()
    # Records of one base cluster share all their ancestors: the hierarchy is a tree.
    assert (a.groupby("level_0")[levels[1:]].nunique() == 1).all().all()


def test_published_tree_json_loads_as_a_tree_of_published_nodes(canary_run):
    _, result = canary_run
    tree = Tree.load(result.dir / "tree.json")
    assert isinstance(result.tree, Tree) and tree.n_levels == 3
    shown = result.clusters[result.clusters.published]
    for level in range(3):
        assert len(tree.levels[level]) == int((shown.level == level).sum())
    top = tree.levels[-1]
    assert (top.parent == -1).all() and (tree.levels[0].parent >= 0).all()
    nodes = json.loads((result.dir / "tree.json").read_text())["nodes"]
    assert {n["id"] for lv in nodes for n in lv} == set(shown["id"])


def test_facet_shares_are_published_cells_only(canary_run):
    frame, result = canary_run
    f = result.facets
    assert set(f.facet) == {"language", "country"}
    shown = f[~f.suppressed]
    assert (shown.records >= 15).all() and (shown.users >= 5).all()
    assert f[f.suppressed][["records", "users"]].isna().all().all()
    sums = f.groupby(["cluster", "facet"]).share.sum()
    assert np.allclose(sums, 1.0)
    # Each shown cell equals a direct count of the records in that cluster with that value.
    a = result.assignments.merge(frame[["id", "language"]], on="id")
    row = shown[(shown.level == 0) & (shown.facet == "language")].iloc[0]
    members = a[a.level_0 == int(row.node)]
    assert int(row.records) == int((members.language == row.value).sum())


def test_manifest_report_and_shares(canary_run):
    _, result = canary_run
    m = result.manifest
    assert m["input"]["rows"] == 1200 and m["users"]["has_user_ids"] is True
    assert m["levels"] == [60, 19, 6] and m["stages"]["cluster"]["k"] == 60
    assert set(m["run"]["stages"]) >= {"embed", "cluster", "hierarchy", "privacy", "names", "aggregate", "outputs"}
    top = result.top_clusters()
    assert top["name"].is_unique and 0 < top["share"].sum() <= 1.0 + 1e-9
    assert "## Top-level clusters" in result.report and top.iloc[0]["name"] in result.report


def test_rejected_rows_and_no_user_ids(tmp_path, tiny_bert_dir):
    frame = generate_conversations(300, seed=1)[["id", "text"]]
    frame.loc[5, "text"] = ""
    frame.loc[9, "text"] = None
    frame.loc[12, "id"] = frame.loc[11, "id"]
    result = run(None, input=frame, out=tmp_path / "r", overrides={
        **BASE, "cluster.k": 10, "hierarchy.levels": 2, "hierarchy.top": 3, "embed.model": str(tiny_bert_dir),
        "embed.cache_dir": str(tmp_path / "cache"), "privacy.min_users": 2, "privacy.min_records": 2})
    a = result.assignments
    assert len(a) == 300 and list(a.row) == list(range(300))
    rejected = a[a.status == "rejected"].set_index("row")
    assert set(rejected.index) == {5, 9, 12}
    assert rejected[["level_0", "level_1"]].isna().all().all() and rejected.reason.notna().all()
    m = result.manifest
    assert m["users"]["has_user_ids"] is False and "each record counts as its own user" in m["users"]["note"]
    assert m["input"]["rejected"] == 3


@pytest.mark.parametrize("keys", [("1" * 32, "2" * 32)])
def test_laplace_noise_changes_counts_but_is_seeded(tmp_path, tiny_bert_dir, monkeypatch, keys):
    """The same run directory (its private noise key) draws the same noise; the same seed elsewhere does not:
    the seed is published, so noise it alone decided could be drawn again and subtracted. Each new directory
    draws a random key outside the suite; here the two directories get two fixed keys, so which nodes pass the
    floors is the same every run (a random key at ε = 0.5 once published no node in common with the plain run)."""
    from clio_engine.pipeline.noise_plan import KEY_ENV

    frame = generate_conversations(400, seed=2)[["id", "text", "user_id"]]
    over = {**BASE, "cluster.k": 8, "hierarchy.levels": 2, "hierarchy.top": 3, "embed.model": str(tiny_bert_dir),
            "embed.cache_dir": str(tmp_path / "cache"), "input.user_column": "user_id"}
    plain = run(None, input=frame, out=tmp_path / "plain", overrides=over)
    noisy = []
    for out, key in (("noisy", keys[0]), ("noisy", keys[1]), ("elsewhere", keys[1])):
        monkeypatch.setenv(KEY_ENV, key)  # read only where a directory has no key yet: "noisy" keeps keys[0]
        noisy.append(run(None, input=frame, out=tmp_path / out, overrides={**over, "privacy.epsilon": 2.0}))
    size = lambda r: r.clusters[r.clusters.published & (r.clusters.kind == "cluster")].set_index("id")["size"]
    assert size(noisy[0]).equals(size(noisy[1]))
    common = size(plain).index.intersection(size(noisy[0]).index)
    assert len(common) > 0 and (size(plain)[common] != size(noisy[0])[common]).any()
    shared = size(noisy[0]).index.intersection(size(noisy[2]).index)
    assert len(shared) > 0 and (size(noisy[0])[shared] != size(noisy[2])[shared]).any()


def test_top_above_a_derived_k_is_capped_and_said(tmp_path, tiny_bert_dir, caplog):
    """k from N / target_cluster_size (300 / 100 = 3) below hierarchy.top = 10: capped, never silently."""
    frame = generate_conversations(300, seed=4)[["id", "text"]]
    with caplog.at_level(logging.WARNING):
        result = run(None, input=frame, out=tmp_path / "r", overrides={
            **BASE, "cluster.k": None, "cluster.target_cluster_size": 100, "hierarchy.levels": 2, "hierarchy.top": 10,
            "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache")})
    info = result.manifest["stages"]["hierarchy"]
    assert info["levels"] == [3, 3]
    assert info["note"] == "hierarchy.top = 10 capped at the 3 base clusters (k derived from the data)"
    assert info["note"] in caplog.text
    assert "top = 10" not in caplog.text.replace(info["note"], "")  # said once, not again by build_hierarchy


def test_base_k_rule():
    assert base_k(20_000, None, 100) == 200 and base_k(20_000, None, 25) == 800
    assert base_k(50, None, 100) == 2 and base_k(10, 7, 100) == 7
    with pytest.raises(ConfigError, match="exceeds"):
        base_k(5, 9, 100)
    # k from a noised count (privacy.epsilon): never clamped to N, which would state N exactly (review)
    assert base_k(40, None, 10, count=-30) == 2 and base_k(40, None, 10, count=395) == 40
    with pytest.raises(ConfigError, match="set cluster.k"):
        base_k(40, None, 10, count=420)


def test_presets_strict_and_public():
    assert (load_config("strict").privacy.min_users, load_config("strict").privacy.min_records) == (250, 500)
    assert load_config("public").privacy.examples == "none"


def test_cli_run_on_a_csv_file(tmp_path, capsys, tiny_bert_dir):
    src = tmp_path / "in.csv"
    frame = generate_conversations(250, seed=4)
    frame[["id", "text", "user_id", "language"]].to_csv(src, index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"embed:\n  model: {tiny_bert_dir}\n  cache_dir: {tmp_path / 'cache'}\n  progress: false\n"
                   "cluster:\n  k: 8\nhierarchy:\n  levels: 2\n  top: 3\nprivacy:\n  min_users: 2\n  min_records: 3\n")
    code = main(["run", str(cfg), "--input", str(src), "--out", str(tmp_path / "out"), "--user-column", "user_id",
                 "--facets", "language"])
    out = capsys.readouterr().out
    assert code == 0 and "run directory:" in out and "top-level clusters:" in out
    assert (tmp_path / "out" / "clusters.parquet").is_file()


def test_cli_run_without_input_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seed: 0\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "o")]) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("clio-engine: error: no input") and "\n" not in err


@pytest.mark.parametrize("key, value, says", [("naming.strategy", "llm", "needs an LLM but llm.backend is none"),
                                              ("hierarchy.mode", "clio", "needs an LLM but llm.backend is none"),
                                              ("cluster.method", "spectral", "'spectral'.*registered")])
def test_llm_modes_without_an_llm_and_unknown_methods_are_refused_not_faked(tmp_path, key, value, says):
    with pytest.raises(ConfigError, match=f"{key}.*{says}"):
        run(None, input=pd.DataFrame({"text": ["a"]}), out=tmp_path / "x", overrides={key: value})
    assert not (tmp_path / "x").exists()  # refused before the run directory is made


def test_top_level_functions_stay_callable_after_their_packages_load():
    import clio_engine as engine
    import clio_engine.embed  # noqa: F401  (binds the attribute `clio_engine.embed` to the package)
    import clio_engine.reduce  # noqa: F401

    assert callable(engine.embed) and callable(engine.reduce) and callable(engine.run)


@pytest.mark.unit
def test_a_rerun_removes_the_analyst_files_it_no_longer_writes(tmp_path, tiny_bert_dir):
    """Review: rerun into the same directory without the facets and with output.explorer false, the earlier run's
    explorer.html (its facets and per-user counts) and plots/facet_shares.png stayed beside the new files, and
    nothing said they were stale; release/ was already cleaned."""
    frame = generate_conversations(400, seed=3)
    settings = {"embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache"),
                "cluster.k": 12, "hierarchy.levels": 2, "hierarchy.top": 3, "privacy.min_users": 2,
                "privacy.min_records": 2, "input.user_column": "user_id"}
    out = tmp_path / "run"
    run(None, input=frame[["id", "text", "user_id", "language"]], out=out,
        overrides={**settings, "input.facet_columns": ["language"]})
    assert (out / "explorer.html").is_file() and (out / "plots" / "facet_shares.png").is_file()
    (out / "demo_check.md").write_text("# Demo check\n  topic (30)   80.0%\n")  # as `clio-engine demo` leaves it
    run(None, input=frame[["id", "text", "user_id"]], out=out, overrides={**settings, "output.explorer": False})
    assert not (out / "explorer.html").exists() and not (out / "demo_check.md").exists()
    assert not (out / "plots" / "facet_shares.png").exists() and (out / "plots" / "sizes.png").is_file()
    fresh = tmp_path / "fresh"
    run(None, input=frame[["id", "text", "user_id"]], out=fresh, overrides={**settings, "output.explorer": False})
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(p.name for p in (fresh / "plots").iterdir())


def test_the_report_of_a_run_without_facets_or_with_few_records_reads_right(tmp_path, tiny_bert_dir):
    """An analyst's review: without facets the report said "facet cells: 0.0% → 0.0%" (every cell hidden, it
    reads); with 5 records "k = 2 (round(N / target_cluster_size = 100))", a sum that gives 0."""
    frame = generate_conversations(5, seed=1)[["id", "text"]]
    result = run(None, input=frame, out=tmp_path / "r", overrides={
        **BASE, "cluster.k": None, "hierarchy.levels": 2, "hierarchy.top": 2, "embed.model": str(tiny_bert_dir),
        "embed.cache_dir": str(tmp_path / "cache"), "privacy.min_users": 1, "privacy.min_records": 1})
    report = (result.dir / "report.md").read_text()
    assert "Secondary suppression" in report and "facet cells" not in report
    # nor does the manifest state a cell share of 0.0 (no cell was suppressed: there are none)
    manifest = json.loads((result.dir / "manifest.json").read_text())
    assert manifest["privacy"]["secondary_suppression"]["facet_cells"] is None
    assert manifest["stages"]["aggregate"]["published_cell_record_share"] is None
    assert "k = 2 (round(N / target_cluster_size = 100), at least 2)" in report


@pytest.mark.parametrize("levels,min_records", [(1, 15), (2, 30)])
def test_the_reports_top_level_table_lists_the_other_row_once(tmp_path, tiny_bert_dir, levels, min_records):
    """An analyst's review: the top level's Other row was listed twice in report.md's table (its shares summed to
    131%, one row saying "suppressed" users, the other "–"), and a multi-level run gave it an empty bullet under
    "One level down"."""
    import re

    frame = generate_conversations(300, seed=1)[["id", "text", "user_id"]]
    result = run(None, input=frame, out=tmp_path / "r", overrides={
        **BASE, "cluster.k": 20, "hierarchy.levels": levels, "hierarchy.top": 8, "embed.model": str(tiny_bert_dir),
        "embed.cache_dir": str(tmp_path / "cache"), "input.user_column": "user_id", "privacy.min_users": 3,
        "privacy.min_records": min_records, "privacy.secondary_suppression": False, "output.explorer": False})
    clusters = pq.read_table(result.dir / "clusters.parquet").to_pandas()
    top = clusters[(clusters.level == levels - 1) & clusters.published]
    assert (top.kind == "other").sum() == 1, "the setup must publish a top-level Other row"
    report = (result.dir / "report.md").read_text()
    table = report.split("## Top-level clusters")[1].split("\n\n")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| cluster")]
    assert len(rows) == len(top), rows
    shares = [float(re.search(r"([\d.]+)% \|$", line).group(1)) for line in rows]
    assert abs(sum(shares) - 100 * top.share.sum()) < 0.1 * len(rows)
    assert "- **Other" not in report
