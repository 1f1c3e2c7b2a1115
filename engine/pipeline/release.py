"""`release/`: what may leave the building (SPEC §3), rebuilt from a run directory's analyst-level files only
(manifest.json, clusters.parquet, facets.parquet, tree.json), never from `private/`.

    from clio_engine.pipeline.release import build_release
    build_release("runs/demo")                  # (re)writes runs/demo/release/

It holds published numbers only, no record text and no vector of the embedding space: clusters.parquet (no
`examples` and no `centroid` column; unpublished nodes as bare ids, as in the analyst table), facets.parquet
(facet cells of published clusters), tree.json (published nodes, without the levels' `centroid` lists; it
never had examples), report.md and plots/ drawn from those, explorer.html (the public explorer, below), a
manifest.json without paths, times or config, and aggregates.csv — every published number as one long table
in the layout of Anthropic's Economic Index data release:

    geo_id, geography, facet, level, variable, cluster_name, value

- clusters: one row per (published cluster or published "Other" bucket, variable) with geo_id "GLOBAL",
  geography "global", facet "cluster", level the hierarchy level (0 = base), cluster_name the cluster's
  name, variable one of `count` (records), `users` (distinct users), `share_pct` (percent of all clustered
  records), `share_of_parent_pct` (percent of the parent's reported size; at the top level equal to `share_pct`).
- facet cells: facet `cluster::<facet>` (the Index's "::" for an intersection), cluster_name
  `<cluster name>::<facet value>`, variables `count`, `users`, `share_pct` (percent of the cluster's records); a
  cluster's suppressed cells appear together as `<cluster name>::(suppressed)` with its `share_pct` only.
- Units: every share in the file is a percent (0–100) and its variable ends in `_pct`, as the Economic Index
  rows' do (`usage_pct`, ...); counts are counts. clusters.parquet and facets.parquet keep fractions (0–1)
  under `share` / `share_of_parent`. A release written before this had `share` / `share_of_parent` rows
  holding fractions here too; `clio-engine audit` reads both. The percent is the fraction's decimal shifted
  by two places (`percent`), so 0.011 is written 1.1 and reads back as exactly 0.011.
- `value` is always a number (a count is an integer; nothing suppressed is written). A cluster name
  that occurs twice at one level gets " (<id>)" appended so rows stay distinct, and a name that a
  spreadsheet would read as a formula (starting with = + - @) is prefixed with an apostrophe.

Why no centroid: a base cluster's centroid is the normalised sum of its members' embeddings, so whoever knows
the texts of all members but one (and embeds them with the public model) solves ‖λc − S‖ = 1 for the last
member's embedding and picks its text out of a list of guesses (review: 10 of 10 clusters, cosine 1.000000);
a parent's centroid is its children's weighted by their sizes. privacy.epsilon covers neither. The analyst
table keeps them (analyst zone); `clio-engine audit` flags a release that carries them (centroid-weights).

explorer.html is the public explorer (`clio_engine.explorer.public`): the analyst page's tree, panel,
search and facet filter, built from this folder's own clusters.parquet and facets.parquet (and the
release manifest) after they are written — never from private/ or the analyst explorer (which may show
examples and draws sampled records). Its map draws one mark per published base cluster, placed by the
same hierarchical packed layout (each top-level cluster one region), with area proportional to the
published size; no per-record point, no example, no mark for an unpublished cluster or an "Other" bucket.
The layout is computed here from the analyst-level clusters.parquet's centroids (the run directory's, never
private/), and the page ships only each mark's grid x/y, radius and size: no centroid. `clio-engine audit`
checks its marks (point-counting attack).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clio_engine.errors import ClioError, ConfigError
from clio_engine.path_trust import held_by_another_account
from clio_engine.privacy.escape import csv_cell
from clio_engine.runfiles import (AGGREGATE_COLUMNS, AGGREGATES, PRIVATE, RELEASE,  # noqa: F401  (also re-exported)
                                  enclosing_release, manifest_zone, write_json, write_parquet, write_text)

__all__ = ["build_release", "write_public_explorer", "layout_centroids", "aggregates_rows", "AGGREGATE_COLUMNS",
           "RELEASE_FILES"]
RELEASE_FILES = ("manifest.json", "clusters.parquet", "facets.parquet", "tree.json", "report.md", "plots/*.png",
                 AGGREGATES, "explorer.html")
EXPLORER = "explorer.html"  # the public explorer (one mark per published base cluster)
# record text (scrubbed or not) never enters release/, nor a centroid (the normalised sum of its members'
# embeddings: with all members but one known, it gives the last one's embedding back)
DROPPED_COLUMNS = ("examples", "centroid")
TREE_DROPPED = ("centroid",)  # tree.json levels' per-node centroid lists, for the same reason
MANIFEST_KEYS = ("engine", "seed", "input", "users", "levels", "stages", "privacy")
GEO_ID, GEOGRAPHY = "GLOBAL", "global"
log = logging.getLogger(__name__)
JOINT_CHECK_MAX_BASE = 20_000  # base clusters up to which a run checks a replaced release against the new one


def build_release(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """(Re)write the release folder (default RUN_DIR/release) from the run's analyst-level files; returns it.
    A directory that is not a finished run, or an `out` inside private/, is a one-line ConfigError."""
    run_dir = Path(run_dir)
    for name in ("manifest.json", "clusters.parquet", "tree.json"):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir} is not a finished run directory (no {name})")
    if manifest_zone(run_dir) == "release":  # it has the same three files, and would get a release/ of its own
        raise ConfigError(f"{run_dir} is a release, not a run directory: pass the run directory above it")
    dest = Path(out) if out is not None else run_dir / RELEASE
    if dest.resolve().is_relative_to((run_dir / PRIVATE).resolve()):
        raise ConfigError(f"{dest} is inside {run_dir / PRIVATE}: a release cannot live in the private zone")
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"{dest} exists and is not a directory; choose another --out")
    if out is not None:  # the run's own release/ is always rewritten (a run killed while writing it resumes)
        _check_release_destination(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if why := held_by_another_account(dest):  # e.g. --out /tmp/release made first by someone else
        raise ConfigError(f"release folder {dest}: {why}, so that account could change the published files after "
                          "they are written; choose another --out")

    from clio_engine.pipeline.plots import PLOT_DIR, write_plots
    from clio_engine.pipeline.report import render_report

    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    analyst = pq.read_table(run_dir / "clusters.parquet")
    clusters = published_clusters(analyst)
    earlier = _earlier_release(dest, clusters)
    facets = _published_facets(run_dir / "facets.parquet", clusters)
    head = release_manifest(manifest)
    write_parquet(dest / "clusters.parquet", clusters)
    write_parquet(dest / "facets.parquet", facets)
    write_text(dest / "tree.json", published_tree_json((run_dir / "tree.json").read_text(encoding="utf-8")))
    economic = _economic_rows(run_dir)
    write_text(dest / AGGREGATES, aggregates_csv(clusters, facets, economic))
    min_records = (manifest.get("privacy") or {}).get("min_records")
    plots = write_plots(dest, clusters, min_records)
    written = {Path(p).name for _, p in plots}
    for stale in sorted((dest / PLOT_DIR).glob("*.png")) if (dest / PLOT_DIR).is_dir() else []:
        if stale.name not in written:
            stale.unlink()
    from clio_engine.pipeline.steps.outputs import economic_section

    economic_frame = _economic_frame(economic)
    write_text(dest / "report.md", render_report(head, clusters, plots, None, zone="release")
               + economic_section(dest, economic_frame,
                                  ((head.get("stages") or {}).get("economic") or {}).get("population_denominator")))
    write_json(dest / "manifest.json", head)
    write_public_explorer(dest, layout=layout_centroids(analyst))
    if earlier is not None:
        _warn_if_linked(earlier, dest)
    return dest


def _earlier_release(dest: Path, clusters: pa.Table):
    """The audit's view of the release at `dest` before it is replaced, where it publishes other groups than
    `clusters` (another hierarchy or other floors over what may be the same base clusters); else None."""
    old = dest / "clusters.parquet"
    if manifest_zone(dest) != "release" or not old.is_file():
        return None
    from clio_engine.audit.files import load_view

    columns = ["id", "parent", "published", "size"]
    try:
        if pq.read_table(old, columns=columns).equals(clusters.select(columns)):
            return None  # the same release again (a resumed run, `clio-engine release`)
        return load_view(dest)
    except (OSError, ValueError, pa.ArrowException, ClioError) as e:  # an unreadable earlier release: nothing to compare with, and nothing to stop for
        log.warning("could not read the earlier release in %s to compare it with the new one: %s", dest, e)
        return None


def _warn_if_linked(earlier, dest: Path) -> None:
    """Warn when the release that replaced `earlier` (audit views) may give suppressed counts back together with it.

    Under one set of floors and user ids the engine hides the same base clusters whatever the hierarchy (the
    buckets of small clusters, engine.privacy.buckets), so sizes come back only where the floors, the user ids
    (another `input.user_column`, or none: each record its own user) or the reference tree differ: checked here
    (`audit.joint`). Facet cells are not made hierarchy-independent: a parent's cell sums its children's cells,
    hidden ones included, under each hierarchy's grouping. Their LP is the slow part (39 s against 0.3 s on the
    demo), so a run only says that they may follow."""
    from clio_engine.audit import joint
    from clio_engine.audit.files import load_view

    new = load_view(dest)
    if not joint.one_clustering(earlier, new):
        return
    advice = ("If the earlier one has been shared, do not share this one; publish one hierarchy per clustering, "
              "or use privacy.epsilon")
    n_base = len(joint.base_sizes(new))
    if n_base > JOINT_CHECK_MAX_BASE:  # an LP of that size is an audit's job, not every run's
        log.warning("%s replaced an earlier release of the same %d base clusters that publishes them otherwise; "
                    "together they may give suppressed counts back (not checked at this size: `clio-engine audit` of both)",
                    dest, n_base)
        return
    found = joint.attack([earlier, new], ["the earlier release", "this one"], cells=False)
    if found:
        log.warning("%s replaced an earlier release of the same base clusters that publishes them otherwise (other "
                    "floors, user ids or tree): the two together give back %d suppressed cluster sizes, and facet "
                    "cells may follow (`clio-engine audit` of both finds them). %s", dest, len(found), advice)
    elif _has_suppressed_cells(dest):
        log.warning("%s replaced an earlier release of the same base clusters that publishes them otherwise: no "
                    "suppressed cluster size follows from the two, but suppressed facet cells may (a parent's cells "
                    "sum its children's; not checked here: `clio-engine audit` of both does). %s", dest, advice)


def _has_suppressed_cells(release: Path) -> bool:
    path = release / "facets.parquet"
    if not path.is_file():
        return False
    if "suppressed" not in pq.read_schema(path).names:
        return False
    return bool(pc.any(pq.read_table(path, columns=["suppressed"])["suppressed"]).as_py())


def _check_release_destination(dest: Path) -> None:
    """A release is written into a new or empty folder, or over an earlier release (its stale plots removed):
    never over a run directory (its analyst manifest, tables and page would become the release's) or a folder
    of other files (their report.md and plots/*.png would be overwritten or deleted)."""
    if (outer := enclosing_release(dest.parent)) is not None:  # a folder of `outer`'s: what its audit flags
        raise ConfigError(f"--out {dest} is inside the release folder {outer}: a release goes into a folder of its own")
    if not dest.is_dir() or not any(dest.iterdir()) or manifest_zone(dest) == "release":
        return
    what = "a run directory" if (dest / "manifest.json").is_file() else "a folder that is not an earlier release"
    raise ConfigError(f"--out {dest} is {what}: a release goes into a new or empty folder, or over an earlier release")


def write_public_explorer(release_dir: str | os.PathLike, layout: dict[str, list[float]] | None = None) -> Path:
    """(Re)write release_dir/explorer.html from the release's own clusters.parquet, facets.parquet and
    manifest.json (what anyone who receives the folder has), never from private/ or the analyst page.
    `layout`: base cluster id → centroid (`layout_centroids` of the analyst table), used only to place the
    marks (the page holds their grid positions, never a centroid); None: the release's own centroids where
    it has any (an older release), else siblings start on a circle."""
    from clio_engine.explorer.public import public_explorer_html
    from clio_engine.pipeline.steps.aggregate import empty_facets

    release_dir = Path(release_dir)
    manifest = json.loads((release_dir / "manifest.json").read_text(encoding="utf-8"))
    clusters = pq.read_table(release_dir / "clusters.parquet")
    facets = pq.read_table(release_dir / "facets.parquet") if (release_dir / "facets.parquet").is_file() else empty_facets()
    path = release_dir / EXPLORER
    economic = _economic_frame(_economic_rows_of_csv(release_dir / AGGREGATES))
    write_text(path, public_explorer_html(clusters, facets, manifest, economic=economic, layout=layout))
    return path


def layout_centroids(analyst: pa.Table) -> dict[str, list[float]]:
    """Published base cluster id → its centroid, from the analyst-level clusters.parquet: what places the
    public map's marks. Kept in memory only: never written to release/."""
    if "centroid" not in analyst.column_names:
        return {}
    rows = analyst.select(["id", "level", "kind", "published", "centroid"]).to_pylist()
    return {r["id"]: r["centroid"] for r in rows
            if r["level"] == 0 and r["kind"] == "cluster" and r["published"] and r["centroid"] is not None}


def published_tree_json(text: str) -> str:
    """The run's tree.json (published nodes only) without the levels' centroid lists."""
    tree = json.loads(text)
    if isinstance(tree, dict) and isinstance(tree.get("levels"), list):
        tree["levels"] = [{k: v for k, v in lv.items() if k not in TREE_DROPPED} if isinstance(lv, dict) else lv
                          for lv in tree["levels"]]
    return json.dumps(tree, ensure_ascii=False)


def _economic_frame(rows: list[tuple]):
    """Economic rows as a DataFrame in the long layout (None when there are none)."""
    if not rows:
        return None
    import pandas as pd

    return pd.DataFrame(rows, columns=list(AGGREGATE_COLUMNS))


def _economic_rows_of_csv(path: Path) -> list[tuple]:
    """The Economic Index rows of a release's aggregates.csv (every facet but the clusters' own)."""
    if not path.is_file():
        return []
    # A cell may be as long as the file (a long cluster name): csv's default 131,072-character field limit
    # would crash the release on its own output. The limit is process-wide, so it is restored after.
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, min(path.stat().st_size + 1, 2**31 - 1)))
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    finally:
        csv.field_size_limit(limit)
    return [(r["geo_id"], r["geography"], r["facet"], int(r["level"]), r["variable"], r["cluster_name"], float(r["value"]))
            for r in rows if r["facet"] != "cluster" and not r["facet"].startswith("cluster::")]


def published_clusters(clusters: pa.Table) -> pa.Table:
    """clusters.parquet without the examples and centroid columns. Unpublished nodes stay as bare ids (published = false;
    no name, keyword, count or share: the analyst table already writes them so), which keeps the table a
    complete tree: a reader (and `clio-engine audit`) knows where hidden children exist, and that the
    published children of a parent are not all of it. An Other row's users are dropped here too (a run
    written before they were left out has them; see `pipeline.outputs.clusters_table`)."""
    out = clusters.select([c for c in clusters.column_names if c not in DROPPED_COLUMNS])
    if "users" in out.column_names and "kind" in out.column_names:
        other = pc.equal(out.column("kind"), "other")
        users = pc.if_else(other, pa.scalar(None, out.schema.field("users").type), out.column("users"))
        out = out.set_column(out.column_names.index("users"), out.schema.field("users"), users)
    return out


def _published_facets(path: Path, clusters: pa.Table) -> pa.Table:
    from clio_engine.pipeline.steps.aggregate import empty_facets

    if not path.is_file():
        return empty_facets()
    facets = pq.read_table(path)
    ids = {r["id"] for r in clusters.select(["id", "published"]).to_pylist() if r["published"]}
    return facets.filter(pa.array([c in ids for c in facets.column("cluster").to_pylist()], pa.bool_()))


def release_manifest(manifest: dict) -> dict:
    """The analyst manifest without paths, times, hardware or config (the input's source path included)."""
    out = {k: manifest[k] for k in MANIFEST_KEYS if k in manifest}
    if isinstance(out.get("input"), dict):
        out["input"] = {k: v for k, v in out["input"].items() if k != "source"}
    out = _without_hidden_record_counts(out)
    out = _without_primary_shares(out)
    out = _without_record_statistics(out)
    if (out.get("privacy") or {}).get("epsilon") is not None:
        out = _without_exact_counts(out)
    out = without_local_paths(out)
    out["zone"] = "release"
    out["files"] = list(RELEASE_FILES)
    out["note"] = ("published numbers only, every one through the privacy floors; no record text or examples, "
                   "no centroid or other embedding-space vector; "
                   "explorer.html is the public explorer: one mark per published base cluster, area proportional "
                   "to its published size, no per-record points")
    return out


_LOCAL_PATH = re.compile(r"^(?:/|~|\.{1,2}[\\/]|\\\\|[A-Za-z]:[\\/])")  # POSIX, home, ./ ../, UNC, drive paths


def without_local_paths(facts, key: str | None = None):
    """`facts` with each string that is a local path cut to its last part (a red team found `embed.model:
    /home/<account>/models/x` in release/manifest.json and report.md: it names an account and its folders). A
    `model` given as a relative folder ("models/x") is one where that folder exists here."""
    if isinstance(facts, dict):
        return {k: without_local_paths(v, k) for k, v in facts.items()}
    if isinstance(facts, list):
        return [without_local_paths(v, key) for v in facts]
    if isinstance(facts, str) and "\n" not in facts and (_LOCAL_PATH.match(facts) or key == "model" and _here(facts)):
        return re.split(r"[\\/]", facts.rstrip("/\\"))[-1] or "(local path)"
    return facts


def _here(name: str) -> bool:
    try:
        return bool(re.search(r"[\\/]", name)) and Path(name).exists()
    except (OSError, ValueError):
        return False


# The economic stage's facts that count hidden records. Published, they would split a published remainder
# ("not_classified" = small hidden cells + folded missing values) into parts below the floor. `no_task` is the
# "none" task cell's exact count, published or not (where it passes the floors aggregates.csv has it).
HIDDEN_RECORD_FACTS = ("records_hidden", "secondary_cost_records", "missing_records_folded", "no_task",
                       # how many parts a table hides, and how many of them only to protect others (so are above
                       # the floors): with its not_classified row (their sum) they pinned them (a review's attack:
                       # 16 over 2 hidden countries, 1 of them secondary → 1 and 15)
                       "cells", "suppressed", "suppressed_secondary")


def _without_hidden_record_counts(head: dict) -> dict:
    """The release manifest without counts of hidden economic records or parts (the published count and the
    hidden share stay)."""
    stages = dict(head.get("stages") or {})
    if not isinstance(stages.get("economic"), dict):
        return head

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in HIDDEN_RECORD_FACTS}
        return value

    stages["economic"] = strip(stages["economic"])
    return {**head, "stages": stages}


def _without_primary_shares(head: dict) -> dict:
    """The release manifest without secondary suppression's "before" shares (records in nodes and facet cells
    that pass the thresholds) and its count of nodes hidden above them. With the "after" share (what is
    published) they give, per level, the records of the nodes hidden only to protect others: where one parent
    holds them all, a hidden node's exact size (review: level 2 of a 2,000-record run gave back 75 and 97 where
    "Other" publishes only their sum)."""
    head = dict(head)
    privacy = dict(head.get("privacy") or {})
    if isinstance(privacy.get("secondary_suppression"), dict):
        sec = dict(privacy["secondary_suppression"])
        # nor how many hidden nodes are above the floors (a bucket's padding, secondary suppression): a bucket of
        # 2 hidden clusters and 16 records with one of them above the floors is 1 + 15 (a review's attack)
        sec["levels"] = [{k: v for k, v in lv.items() if k not in ("primary", "suppressed_nodes")}
                         for lv in sec.get("levels") or []]
        if isinstance(sec.get("facet_cells"), dict):
            sec["facet_cells"] = {k: v for k, v in sec["facet_cells"].items() if k != "primary"}
        privacy["secondary_suppression"] = sec
        head["privacy"] = privacy
    stages = dict(head.get("stages") or {})
    aggregate = stages.get("aggregate")
    if isinstance(aggregate, dict) and isinstance(aggregate.get("published_cell_record_share"), dict):
        share = {k: v for k, v in aggregate["published_cell_record_share"].items() if k != "primary"}
        stages["aggregate"] = {**aggregate, "published_cell_record_share": share}
        head["stages"] = stages
    return head


# Exact counts the analyst manifest states that a noised release must not: each is a count query no noise
# covers (the number of records, of truncated texts, of records beyond the contribution bound …).
EXACT_INPUT_KEYS = ("rows", "accepted", "rejected", "rejections", "null_users")
# An LLM stage's usage (requests, calls, tokens) counts clusters and records' text exactly: never under ε.
LLM_STAGE_KEYS = ("llm", "llm_choice", "fallbacks", "collisions", "renamed_here", "only_child_unasked",
                  "only_child_kept")  # (the last two: nodes the model was not asked about, the namer's and the
                                      # Clio hierarchy's; derivable from the tree, kept out with the rest of usage)
EXACT_STAGE_KEYS = {"records": None, "facets": None, "embed": ("n_texts", "n_unique", "n_tokens", "n_truncated"),
                    "privacy": ("records_beyond_bound",), "map": ("points",), "cluster": ("noise",),
                    # how many base clusters fell below the floors on their exact sizes, and the note that says it
                    "hierarchy": ("small_cluster_buckets", "levels_note")}


# Exact facts about individual records that no floor covers, withheld from every release: rejected rows and
# their reasons, null user ids, the texts' token and duplicate counts, and the LLM stages' usage (tokens of the
# texts shown). Two releases of inputs one record apart gave that record's token length, whether its text was
# unique and whether it was truncated, whatever cluster hid it (a review's attack: 51,755 − 51,724 = 31 tokens).
RECORD_INPUT_KEYS = ("rows", "rejected", "rejections", "null_users")
RECORD_STAGE_KEYS = {"records": ("rows", "rejected", "rejections"), "embed": ("n_unique", "n_tokens", "n_truncated"),
                     "facets": ("failed",),  # records whose extraction failed or the model refused
                     "cluster": ("reference_tree",)}  # (a hash of the reference run's analyst table: not for readers)


def _without_record_statistics(head: dict) -> dict:
    """The release manifest without `RECORD_INPUT_KEYS`, `RECORD_STAGE_KEYS` and `LLM_STAGE_KEYS` (the analyst
    manifest keeps them). The accepted count stays: the published sizes and Other rows add up to it."""
    head = dict(head)
    if isinstance(head.get("input"), dict):
        head["input"] = {k: v for k, v in head["input"].items() if k not in RECORD_INPUT_KEYS}
    head["stages"] = {name: without_llm_usage(_without_keys(facts, RECORD_STAGE_KEYS.get(name, ())))
                      for name, facts in (head.get("stages") or {}).items()}
    return head


def _without_keys(facts, keys: tuple[str, ...]):
    """A stage's facts (a dict, or anything else as it is) without the top-level `keys`."""
    return {k: v for k, v in facts.items() if k not in keys} if isinstance(facts, dict) else facts


def without_llm_usage(facts):
    """A stage's facts without `LLM_STAGE_KEYS` at any depth (the auditor's report sits inside the names
    stage's: `names.auditor.llm`)."""
    if isinstance(facts, dict):
        return {k: without_llm_usage(v) for k, v in facts.items() if k not in LLM_STAGE_KEYS}
    if isinstance(facts, list):  # e.g. the Clio hierarchy's per-level reports
        return [without_llm_usage(v) for v in facts]
    return facts


def _without_exact_counts(head: dict) -> dict:
    """With privacy.epsilon: the release manifest keeps the noised total, never the exact input counts (run after
    `_without_record_statistics`, which has taken the LLM usage out already)."""
    head = dict(head)
    inp = {k: v for k, v in (head.get("input") or {}).items() if k not in EXACT_INPUT_KEYS}
    inp["counts"] = "withheld: with privacy.epsilon only noised counts are published (noised_total is their sum)"
    head["input"] = inp
    stages = {}
    for name, facts in (head.get("stages") or {}).items():
        drop = EXACT_STAGE_KEYS.get(name, ())
        if drop is None:
            continue
        stages[name] = _without_keys(facts, drop)
    head["stages"] = stages
    return head


def _unique_names(rows: list[dict]) -> dict[str, str]:
    """id → cluster_name, with " (<id>)" appended where a name occurs twice at one level."""
    seen: dict[tuple[int, str], int] = {}
    for r in rows:
        key = (r["level"], r["name"] or "")
        seen[key] = seen.get(key, 0) + 1
    return {r["id"]: csv_cell((r["name"] or "") + (f" ({r['id']})" if seen[(r["level"], r["name"] or "")] > 1 else ""))
            for r in rows}


# aggregates.csv's variable ← the table's column, and whether the table's fraction is published as a percent.
CLUSTER_VARIABLES = (("count", "size", False), ("users", "users", False), ("share_pct", "share", True),
                     ("share_of_parent_pct", "share_of_parent", True))
CELL_VARIABLES = (("count", "records", False), ("users", "users", False), ("share_pct", "share", True))


def percent(fraction: float) -> float:
    """A share (0–1) as a percent: its shortest decimal shifted two places, so 0.011 is 1.1, not 0.011 * 100 =
    1.0999999999999999, and `clio_engine.audit.aggregates.fraction` gives the share back with its printed
    precision (the audit's share tolerance is read from it). Exact for shares of up to 15 significant digits; a
    17-digit share may come back one unit in its last place off (the audit's tolerance floor covers that)."""
    from decimal import Decimal

    return float(Decimal(repr(float(fraction))).scaleb(2))


def aggregates_rows(clusters: pa.Table, facets: pa.Table) -> list[tuple]:
    """Every published number as (geo_id, geography, facet, level, variable, cluster_name, value); shares as
    percents under `_pct` names (the tables' fractions × 100), as the Economic Index rows are."""
    rows = [r for r in clusters.to_pylist() if r["published"]]
    names = _unique_names(rows)
    out: list[tuple] = []
    for r in rows:
        for variable, column, pct in CLUSTER_VARIABLES:
            if r.get(column) is not None:
                out.append((GEO_ID, GEOGRAPHY, "cluster", int(r["level"]), variable, names[r["id"]],
                            percent(r[column]) if pct else r[column]))
    for f in facets.to_pylist():
        if f["cluster"] not in names:
            continue
        value = "(suppressed)" if f["suppressed"] else f["value"]
        cell = f"{names[f['cluster']]}::{value}"
        for variable, column, pct in CELL_VARIABLES:
            if f.get(column) is not None:
                out.append((GEO_ID, GEOGRAPHY, f"cluster::{f['facet']}", int(f["level"]), variable, cell,
                            percent(f[column]) if pct else f[column]))
    return out


def _number(x) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"aggregates.csv holds numbers only, got {x!r}")
    return str(int(x)) if isinstance(x, int) else repr(float(x))


def aggregates_csv(clusters: pa.Table, facets: pa.Table, economic: list[tuple] | None = None) -> str:
    """The long table: the clusters' and facet cells' rows, then the Economic Index rows (already thresholded
    by the economic stage: `clio_engine.economic.aggregates`)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(AGGREGATE_COLUMNS)
    for row in [*aggregates_rows(clusters, facets), *(economic or [])]:
        # every text cell: a geography's id comes from the data as the names do (a country "=HYPERLINK(...)")
        w.writerow(tuple(csv_cell(c) if isinstance(c, str) else c for c in row[:-1]) + (_number(row[-1]),))
    return buf.getvalue()


def _economic_rows(run_dir: Path) -> list[tuple]:
    """economic.parquet (the economic stage's published rows) as aggregates rows; [] without the layer."""
    path = run_dir / "economic.parquet"
    if not path.is_file():
        return []
    table = pq.read_table(path)
    out = []
    for r in table.select(list(AGGREGATE_COLUMNS)).to_pylist():
        value = r["value"]
        value = int(value) if float(value).is_integer() and r["variable"].endswith(("_count", "_users", "_n", "n")) else float(value)
        out.append((r["geo_id"], r["geography"], r["facet"], int(r["level"]), r["variable"], csv_cell(r["cluster_name"]), value))
    return out


def purge(run_dir: str | os.PathLike) -> list[str]:
    """Delete RUN_DIR/private (assignments, embeddings, stage caches, the run's embedding store); returns
    what was removed (paths relative to the run directory, files and then the folder). Refuses, with a
    one-line ConfigError, a directory that is not a run directory or whose private/ is not a folder."""
    import shutil

    from clio_engine.runfiles import CACHE

    run_dir = Path(run_dir)
    private = run_dir / PRIVATE
    if not run_dir.is_dir() or not ((run_dir / "manifest.json").is_file() or (run_dir / CACHE / "stages").is_dir()):
        raise ConfigError(f"{run_dir} is not a run directory (no manifest.json and no {CACHE}/stages); nothing purged")
    if private.is_symlink() or (private.exists() and not private.is_dir()):
        raise ConfigError(f"{private} is not a plain folder; nothing purged")
    if not private.exists():
        return []
    removed = sorted(p.relative_to(run_dir).as_posix() for p in private.rglob("*") if p.is_file() or p.is_symlink())
    shutil.rmtree(private)
    return removed + [PRIVATE + "/"]
