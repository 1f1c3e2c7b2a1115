"""The run directory's three zones (SPEC §3) after a real small run (tiny random BERT): per-record and
invertible data only under private/, no record text in release/, aggregates.csv in the Economic Index's
long layout, `clio-engine purge` / `release`, and no vectors in the global embedding cache unless asked."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from clio_engine import generate_conversations
from clio_engine.audit import audit
from clio_engine.cli import EXIT_INPUT, EXIT_OK, main
from clio_engine.errors import ConfigError, OutputError
from clio_engine.pipeline import Run, run
from tests.canary import canary_token

pytestmark = pytest.mark.unit

N = 600
RECORD_COLUMNS = {"row", "text", "user_id"}  # (record ids are checked by value: clusters.parquet has node ids)
LAYOUT = ["geo_id", "geography", "facet", "level", "variable", "cluster_name", "value"]


@pytest.fixture(scope="module")
def zoned(tmp_path_factory, tiny_bert_dir):
    """One run with a canary token in every record's text, $CLIO_ENGINE_CACHE pointed at a folder of its own
    and embed.cache_dir unset (the default)."""
    root = tmp_path_factory.mktemp("zones")
    frame = generate_conversations(N, seed=11)
    frame["text"] = [f"{t} {canary_token(i)}" for i, t in enumerate(frame["text"])]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIO_ENGINE_CACHE", str(root / "global-cache"))
        result = run(None, input=frame[["id", "text", "user_id", "language"]], out=root / "run", overrides={
            "embed.progress": False, "cluster.k": 30, "hierarchy.levels": 3, "hierarchy.top": 4,
            "embed.model": str(tiny_bert_dir), "input.user_column": "user_id", "input.facet_columns": ["language"],
            "privacy.min_users": 5, "privacy.min_records": 15, "naming.n_examples": 5})
    return result, frame, root


def _outside_private(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.rglob("*") if p.is_file() and "private" not in p.relative_to(run_dir).parts)


def _table(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _content(path: Path) -> str:
    """A file's text as a reader sees it (Parquet decoded, since its pages are compressed)."""
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
    return path.read_bytes().decode("utf-8", errors="replace")


def test_layout_of_the_three_zones(zoned):
    result, _, _ = zoned
    d = result.dir
    for name in ("assignments.parquet", "embeddings.npy", "cache/stages/outputs.json", "cache/map.npz"):
        assert (d / "private" / name).is_file(), name
    assert list((d / "private" / "cache" / "embeddings").glob("*/state.json")), "the run's own embedding store"
    for name in ("manifest.json", "clusters.parquet", "facets.parquet", "tree.json", "report.md", "explorer.html"):
        assert (d / name).is_file(), name
    for name in ("manifest.json", "clusters.parquet", "facets.parquet", "tree.json", "report.md", "aggregates.csv"):
        assert (d / "release" / name).is_file(), name
    assert list((d / "release" / "plots").glob("*.png"))
    # release/explorer.html is the public page (one mark per published base cluster), never the analyst's
    from clio_engine.explorer.page import page_data
    public = page_data((d / "release" / "explorer.html").read_text(encoding="utf-8"))
    assert public["meta"]["public"] and public["points"]["node"] == []
    assert all(ex == [] for ex in public["nodes"]["ex"]), "no examples in the public page"
    assert not (d / "assignments.parquet").exists() and not (d / "embeddings.npy").exists() and not (d / ".cache").exists()
    files = result.manifest["files"]
    assert "private/assignments.parquet" in files["private"] and "release/aggregates.csv" in files["release"]
    assert "private/" in result.report and "release/" in result.report and "purge" in result.report


def test_no_per_record_table_outside_private(zoned):
    """Group-by attack over every Parquet/CSV outside private/: no table names records or maps them to nodes."""
    result, frame, _ = zoned
    ids = set(frame["id"].astype(str))
    tables = [p for p in _outside_private(result.dir) if p.suffix in (".parquet", ".csv")]
    assert {p.name for p in tables} >= {"clusters.parquet", "facets.parquet", "aggregates.csv"}
    for path in tables:
        rows = _table(path)
        cols = set(rows[0]) if rows else set()
        assert not cols & RECORD_COLUMNS, f"{path}: per-record columns {cols & RECORD_COLUMNS}"
        assert not [c for c in cols if c.startswith("level_")], f"{path}: maps records to nodes"
        values = {str(v) for r in rows for v in r.values()}
        assert not values & ids, f"{path}: holds record ids"
    assert not [p for p in _outside_private(result.dir) if p.suffix in (".npy", ".npz")], "vectors outside private/"
    # The attack can fail: the per-record table it looks for is in private/.
    private = _table(result.dir / "private" / "assignments.parquet")
    assert len(private) == N and {"row", "id"} <= set(private[0])


def test_release_holds_no_record_text(zoned):
    result, frame, _ = zoned
    tokens = [canary_token(i) for i in range(len(frame))]
    # The analyst view shows scrubbed examples of published clusters, canaries included: the check can fail.
    examples = " ".join(e for es in result.clusters["examples"].dropna() for e in es)
    assert sum(t in examples for t in tokens) > 0
    for path in sorted(p for p in (result.dir / "release").rglob("*") if p.is_file()):
        text = _content(path)
        assert "qz" not in text or not [t for t in tokens if t in text], f"{path} holds record text"
    assert "examples" not in pq.read_table(result.dir / "release" / "clusters.parquet").column_names
    released = pq.read_table(result.dir / "release" / "clusters.parquet").to_pandas()
    hidden = released[~released.published.astype(bool)]
    assert "centroid" not in released.columns  # nor a centroid (members' embedding sums): review of 2026-12-02
    assert len(hidden) > 0 and hidden[["name", "keywords", "size", "users", "share"]].isna().all().all()


def test_aggregates_csv_layout(zoned):
    result, _, _ = zoned
    path = result.dir / "release" / "aggregates.csv"
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [dict(zip(header, r)) for r in reader]
    assert header == LAYOUT
    assert rows and all(r["geo_id"] == "GLOBAL" and r["geography"] == "global" for r in rows)
    for r in rows:
        float(r["value"])  # numeric only
        assert r["level"].isdigit()
    facets = {r["facet"] for r in rows}
    assert facets == {"cluster", "cluster::language"}, facets
    assert {r["variable"] for r in rows if r["facet"] == "cluster"} == {"count", "users", "share_pct",
                                                                       "share_of_parent_pct"}
    assert {r["variable"] for r in rows if r["facet"] == "cluster::language"} == {"count", "users", "share_pct"}
    assert all(0 <= float(r["value"]) <= 100 for r in rows if r["variable"].endswith("_pct"))  # percents
    # One count per published cluster or Other bucket, equal to its published size.
    pub = result.clusters[result.clusters.published.astype(bool)]
    counts = [r for r in rows if r["facet"] == "cluster" and r["variable"] == "count"]
    assert len(counts) == len(pub)
    assert sorted(int(r["value"]) for r in counts) == sorted(int(s) for s in pub["size"])
    assert len({(r["facet"], r["level"], r["variable"], r["cluster_name"]) for r in rows}) == len(rows), "rows are distinct"
    cells = [r for r in rows if r["facet"] == "cluster::language" and r["variable"] == "count"]
    assert cells and all(int(r["value"]) >= 15 and "::" in r["cluster_name"] for r in cells)


def test_other_rows_publish_no_users(zoned):
    """A review's attack on one release: a parent's hidden children are counted by their bare ids, their
    Other row gave their records S and distinct users U. Every hidden child failed a floor (< min_records
    records or < min_users users) and has no more users than records, so U told which floor each failed:
    2 children, S = 26, U = 22 → 12–14 records each (demo; 18 of 18 parents bounded below the floor). An
    Other row now publishes its records only, in every file."""
    result, _, _ = zoned
    for path in (result.dir / "clusters.parquet", result.dir / "release" / "clusters.parquet"):
        other = [r for r in pq.read_table(path).to_pylist() if r["kind"] == "other"]
        assert any(r["published"] for r in other), "the fixture must publish an Other row"
        assert all(r["users"] is None for r in other), path
    rows = _table(result.dir / "release" / "aggregates.csv")
    assert not [r for r in rows if r["facet"] == "cluster" and r["variable"] == "users"
                and r["cluster_name"].startswith("Other")]
    assert [r for r in rows if r["facet"] == "cluster" and r["variable"] == "users"]  # clusters keep theirs


def test_a_release_of_an_older_run_drops_its_other_rows_users(zoned, tmp_path):
    """A run written before Other rows lost their users has them in its analyst table; `clio-engine release`
    rebuilds release/ from that table, so it drops them there."""
    import shutil

    import pyarrow as pa

    result, _, _ = zoned
    old = tmp_path / "old"
    shutil.copytree(result.dir, old, ignore=shutil.ignore_patterns("release"))
    table = pq.read_table(old / "clusters.parquet")
    rows = table.to_pylist()
    for r in rows:
        if r["kind"] == "other" and r["published"]:
            r["users"] = r["size"]  # what the old writer put there (any number)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), old / "clusters.parquet")
    assert main(["release", str(old), "--out", str(tmp_path / "rel")]) == EXIT_OK
    released = pq.read_table(tmp_path / "rel" / "clusters.parquet").to_pylist()
    assert [r for r in released if r["kind"] == "other" and r["published"]]
    assert all(r["users"] is None for r in released if r["kind"] == "other")
    assert any(r["users"] is not None for r in released if r["kind"] == "cluster")
    csv_rows = _table(tmp_path / "rel" / "aggregates.csv")
    assert not [r for r in csv_rows if r["variable"] == "users" and r["cluster_name"].startswith("Other")]


def test_release_rebuilds_from_the_analyst_files_alone(zoned, tmp_path, capsys):
    result, _, _ = zoned
    out = tmp_path / "rel"
    assert main(["release", str(result.dir), "--out", str(out)]) == EXIT_OK
    release = result.dir / "release"
    a = {p.relative_to(release).as_posix(): p.read_bytes() for p in release.rglob("*") if p.is_file()}
    b = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert sorted(a) == sorted(b) and [k for k in a if a[k] != b[k]] == []
    assert main(["release", str(result.dir), "--out", str(result.dir / "private" / "rel")]) == EXIT_INPUT
    assert "private" in capsys.readouterr().err
    assert main(["release", str(tmp_path / "nowhere")]) == EXIT_INPUT
    assert main(["release", str(result.dir), "--out", str(out)]) == EXIT_OK  # over an earlier release: fine


def test_a_release_never_overwrites_a_run_or_a_folder_of_other_files(zoned, tmp_path, capsys):
    """Review: `release RUN --out RUN` replaced the analyst manifest, tables and page with the release's, and
    --out an existing folder deleted its plots/*.png and overwrote its report.md, both with exit 0."""
    import shutil

    result, _, _ = zoned
    copy = tmp_path / "run"
    shutil.copytree(result.dir, copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert main(["release", str(copy), "--out", str(copy)]) == EXIT_INPUT
    assert "is a run directory" in capsys.readouterr().err
    site = tmp_path / "site"
    (site / "plots").mkdir(parents=True)
    (site / "plots" / "logo.png").write_bytes(b"mine")
    (site / "report.md").write_text("my notes")
    assert main(["release", str(copy), "--out", str(site)]) == EXIT_INPUT
    assert "not an earlier release" in capsys.readouterr().err
    assert (site / "plots" / "logo.png").read_bytes() == b"mine" and (site / "report.md").read_text() == "my notes"
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before
    # a release is not a run: `release RUN/release` made RUN/release/release/
    assert main(["release", str(copy / "release")]) == EXIT_INPUT
    assert "is a release, not a run directory" in capsys.readouterr().err and not (copy / "release" / "release").exists()
    # nor a release inside another release (its files would sit where that release's audit does not read)
    assert main(["release", str(copy), "--out", str(copy / "release" / "again")]) == EXIT_INPUT
    assert "inside the release folder" in capsys.readouterr().err and not (copy / "release" / "again").exists()


def test_purge_removes_private_and_the_analyst_view_still_loads(zoned, tmp_path, capsys):
    import shutil

    result, _, _ = zoned
    copy = tmp_path / "run"
    shutil.copytree(result.dir, copy)
    before = {p.relative_to(copy / "release").as_posix(): p.read_bytes() for p in (copy / "release").rglob("*") if p.is_file()}
    assert main(["purge", str(copy)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "removed private/assignments.parquet" in out and "removed private/embeddings.npy" in out
    assert not (copy / "private").exists()
    loaded = Run.load(copy)
    assert loaded.assignments is None and len(loaded.clusters) == len(result.clusters)
    # review: a release folder loaded as if it were a purged run ("no private/assignments.parquet (purged?)")
    with pytest.raises(ConfigError, match="is a release folder, not a run directory"):
        Run.load(copy / "release")
    assert main(["explore", str(copy), "--no-open"]) == EXIT_OK  # tree, panel and search; no map without private/
    assert main(["release", str(copy)]) == EXIT_OK
    after = {p.relative_to(copy / "release").as_posix(): p.read_bytes() for p in (copy / "release").rglob("*") if p.is_file()}
    assert after == before
    assert main(["purge", str(copy)]) == EXIT_OK and "no private/" in capsys.readouterr().out
    # Not a run directory: refused, nothing deleted.
    other = tmp_path / "other"
    (other / "private").mkdir(parents=True)
    (other / "private" / "keep.txt").write_text("x")
    assert main(["purge", str(other)]) == EXIT_INPUT
    assert "not a run directory" in capsys.readouterr().err and (other / "private" / "keep.txt").exists()


def test_global_embedding_cache_only_when_asked(zoned, tiny_bert_dir, tmp_path):
    _, frame, root = zoned
    assert not (root / "global-cache" / "embeddings").exists(), "a pipeline run left vectors in the global cache"
    shared = tmp_path / "shared-cache"
    run(None, input=frame[["id", "text"]].head(80), out=tmp_path / "asked", overrides={
        "embed.progress": False, "cluster.k": 4, "hierarchy.levels": 2, "hierarchy.top": 2,
        "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(shared), "output.explorer": False})
    assert list(shared.glob("embeddings/*/state.json")), "embed.cache_dir asks for the shared store"
    assert not (tmp_path / "asked" / "private" / "cache" / "embeddings").exists()


def test_audit_of_the_release(zoned):
    """The release passes every attack of the audit: group-by, point-counting, canaries and differencing (the
    last held off by complementary suppression and the small-cluster buckets; a review turned both off and this
    test, which then skipped differencing findings, still passed with 12 of them)."""
    result, frame, _ = zoned
    found = audit(result.dir / "release", canaries=[canary_token(i) for i in range(len(frame))])
    assert [str(v) for v in found] == []


def test_facet_values_pass_the_pii_scrubber_before_they_are_counted(tmp_path, tiny_bert_dir):
    """Review: a facet value holding an e-mail address or a URL was published verbatim (facet cells, the
    aggregates, both explorers) where the same words in a text are scrubbed. Scrubbed before counting, the
    values that scrub alike become one cell."""
    frame = generate_conversations(400, seed=4)[["id", "text", "user_id", "language"]]
    pii = ["alice.smith@example.com", "bob.jones@example.org", "see http://evil.example/x"]
    frame.loc[frame.index % 4 == 0, "language"] = [pii[i % 3] for i in range((len(frame) + 3) // 4)]
    result = run(None, input=frame, out=tmp_path / "run", overrides={
        "embed.progress": False, "cluster.k": 4, "hierarchy.levels": 2, "hierarchy.top": 2,
        "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache"),
        "input.user_column": "user_id", "input.facet_columns": ["language"],
        "privacy.min_users": 2, "privacy.min_records": 2})
    published = [p for p in result.dir.rglob("*") if p.is_file() and "private" not in p.relative_to(result.dir).parts]
    leaked = [(p.name, s) for p in published for s in ("example.com", "example.org", "evil.example")
              if s.encode() in p.read_bytes()]
    assert leaked == []
    values = set(pq.read_table(result.dir / "release" / "facets.parquet").column("value").to_pylist())
    assert "[EMAIL]" in values and "see [URL]" in values  # the cells are there, their values scrubbed


def test_a_release_above_another_accounts_manifest_is_not_trusted(tmp_path, monkeypatch):
    """Review: any manifest.json above --out that said zone "release" refused the run, so another account's
    /tmp/manifest.json would refuse every run under /tmp; a FIFO there would hang it."""
    from clio_engine import path_trust
    from clio_engine.pipeline.rundir import check_run_destination

    (tmp_path / "manifest.json").write_text(json.dumps({"zone": "release"}))
    with pytest.raises(OutputError, match="inside the release folder"):
        check_run_destination(tmp_path / "a" / "run")  # the user's own release: refused
    monkeypatch.setattr(path_trust, "trusted_owners", lambda: frozenset({os.geteuid() + 1}))
    check_run_destination(tmp_path / "a" / "run")  # another account's file: no release of the user's
    monkeypatch.undo()
    (tmp_path / "manifest.json").unlink()
    os.mkfifo(tmp_path / "manifest.json")
    check_run_destination(tmp_path / "a" / "run")  # returns (a FIFO is no manifest) instead of blocking


def test_no_run_is_written_inside_a_release(zoned, tmp_path, capsys):
    """Red team: `run`/`demo`/`assign --out RUN/release/extra` was accepted, so the release folder (what leaves
    the building) held a whole run: its private/ embeddings and assignments and the analyst's examples."""
    import shutil

    result, frame, _ = zoned
    copy = tmp_path / "run"
    shutil.copytree(result.dir, copy)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    for out in (copy / "release" / "extra", copy / "release", copy / "release" / "plots" / "x"):
        with pytest.raises(OutputError, match="inside the release folder"):
            run(None, input=frame[["id", "text", "user_id"]], out=out, overrides={"embed.progress": False})
    assert main(["demo", "-n", "200", "--out", str(copy / "release" / "demo")]) == EXIT_INPUT
    assert "inside the release folder" in capsys.readouterr().err
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before  # nothing written, nothing removed


def test_the_audit_reads_every_folder_of_a_release(zoned, tmp_path):
    """Red team: the audit skipped any folder named private/ at any depth and read tables at the top only, so a
    release holding a run's private/ (or a whole run in a subfolder) passed as clean."""
    import shutil

    result, _, _ = zoned
    release = tmp_path / "release"
    shutil.copytree(result.dir / "release", release)
    assert audit(release) == []
    shutil.copytree(result.dir / "private", release / "private", ignore=shutil.ignore_patterns("cache"))
    found = {(v.attack, v.file) for v in audit(release)}
    assert ("unchecked-file", "private/embeddings.npy") in found
    assert ("unchecked-file", "private/assignments.parquet") in found
    shutil.rmtree(release / "private")
    (release / "extra").mkdir()
    shutil.copy(result.dir / "clusters.parquet", release / "extra" / "clusters.parquet")  # the analyst's, examples
    assert [(v.attack, v.file) for v in audit(release)] == [("unchecked-file", "extra/clusters.parquet")]
    # a run directory's own private/ stays out of its audit (it is the per-record zone), and its release/ is read
    assert not [v for v in audit(result.dir) if v.file.startswith("private/")]
    shutil.rmtree(release / "extra")
    # Review: a symbolic link is not followed by the audit, but is by zip or copytree; and a release without its
    # manifest (killed before build_release wrote it) was read as a run, its private/ skipped
    (release / "extra").symlink_to(result.dir / "private", target_is_directory=True)
    assert [(v.attack, v.file) for v in audit(release)] == [("unchecked-file", "extra")]
    (release / "extra").unlink()
    floors = {"min_users": 5, "min_records": 15}
    (release / "manifest.json").unlink()
    shutil.copytree(result.dir / "private", release / "private", ignore=shutil.ignore_patterns("cache"))
    assert ("unchecked-file", "private/embeddings.npy") in {(v.attack, v.file) for v in audit(release, **floors)}


def test_the_release_names_no_local_path(zoned):
    """Red team: release/manifest.json and report.md gave the embedding model's folder (`/home/<account>/...`):
    an account name and a folder layout. The release keeps the folder's own name; the analyst's manifest the path."""
    result, _, _ = zoned
    model = Path(result.manifest["stages"]["embed"]["model"])
    assert model.is_absolute() and model.is_dir()  # the tiny BERT's folder: the check can fail
    release = result.dir / "release"
    for name in ("manifest.json", "report.md", "explorer.html"):
        text = (release / name).read_text(encoding="utf-8")
        assert str(model.parent) not in text and str(model.parent).replace("/", "\\/") not in text, name
    assert json.loads((release / "manifest.json").read_text())["stages"]["embed"]["model"] == model.name

    # the same from a relative folder, as `embed.model: models/x` gives it (review); a hub id stays as it is
    from clio_engine.pipeline.release import release_manifest

    def released_model(name: str) -> str:
        return release_manifest({"stages": {"embed": {"model": name}}})["stages"]["embed"]["model"]

    assert released_model(f"../{model.parent.name}/{model.name}") == model.name
    assert released_model("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
