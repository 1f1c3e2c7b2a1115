"""`clio-engine compare RUN_A RUN_B`: share changes between two runs that share one tree (B made by
`clio-engine assign RUN_A ...`), per cluster, task, collaboration mode and geography, with intervals from a
bootstrap that resamples users (`clio_engine.economic.compare`).

Only what both runs published is compared: a cluster published at that level in both runs' clusters.parquet,
a task / collaboration mode / geography with a published row in both runs' economic.parquet. Everything else
is left out before the comparison (missing), never shown. The per-record inputs come from each run's
private/ zone (assignments.parquet, economic.parquet), so the result is an analyst-level file written to
RUN_B/compare/ (compare.csv, compare.md, a figure) and never into a release folder (either run's release/, or
any folder inside one whose manifest says zone "release"). compare.csv names its units: share_a_pct / share_b_pct
(percent of each run's records), change_pp, ci_low_pp, ci_high_pp (percentage points); the DataFrame
`compare_runs` returns keeps the names share_a, share_b, change, ci_low, ci_high (same values).

Runs made with privacy.epsilon are refused: their release promises user-level differential privacy, and a
comparison publishes exact, unbounded counts (records, and the denominators behind the shares).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from clio_engine.errors import ConfigError
from clio_engine.path_trust import held_by_another_account
from clio_engine.pipeline.overlap import refuse_shared_records
from clio_engine.pipeline.release import enclosing_release
from clio_engine.runfiles import ASSIGNMENTS, COMPARE_CSV_NAMES, PRIVATE, RELEASE, write_text

log = logging.getLogger(__name__)

COMPARE_DIR = "compare"
ECONOMIC_PER_RECORD = f"{PRIVATE}/economic.parquet"
CLUSTER_LEVEL = "cluster level "  # + level: the dimension of a level's published clusters
CLUSTERED = "clustered"  # period_records: whether a record is in a cluster (not noise, not unclustered)
GEO_FACETS_SKIP = {"total", "onet_task", "soc_occupation", "soc_major_group", "task_penetration", "collaboration",
                   "onet_task::collaboration", "concentration"}


def _manifest(run: Path) -> dict:
    try:
        return json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigError(f"{run} is not a finished run directory (no readable manifest.json)") from None


def _published_clusters(run: Path) -> dict[int, dict[int, str]]:
    """level → {node index → published name}."""
    rows = pq.read_table(run / "clusters.parquet", columns=["level", "index", "kind", "name", "published"]).to_pylist()
    out: dict[int, dict[int, str]] = {}
    for r in rows:
        if r["published"] and r["kind"] != "other" and r["name"]:
            out.setdefault(int(r["level"]), {})[int(r["index"])] = r["name"]
    return out


def _published_economic(run: Path) -> dict[str, set[str]]:
    """facet → published values (task statements, collaboration modes, geography codes)."""
    path = run / "economic.parquet"
    if not path.is_file():
        return {}
    rows = pq.read_table(path).to_pandas()
    out: dict[str, set[str]] = {}
    tasks = rows[(rows.facet == "onet_task") & (rows.variable == "onet_task_count")]
    out["task"] = set(tasks.cluster_name) - {"not_classified"}
    modes = rows[(rows.facet == "collaboration") & (rows.level == 0) & (rows.variable == "collaboration_count")]
    out["collaboration"] = set(modes.cluster_name) - {"not_classified"}
    geo = rows[(rows.variable == "usage_count") & (rows.facet == rows.geography) & ~rows.facet.isin(GEO_FACETS_SKIP)]
    for facet, part in geo.groupby("facet"):
        out[str(facet)] = set(part.geo_id) - {"not_classified", "GLOBAL"}
    return out


def period_records(run: Path) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """One row per record of `run`: user, cluster name per level (published only, else None), and with the
    economic layer task statement, collaboration and geographies; plus the published values.

    Without the economic layer the rows are the clustered records. With it they are every record the
    Economic Index tables count (private/economic.parquet), noise and unclustered ones with a missing cluster:
    counting only clustered records made release count − records_a the (noise × value) cell, never published.
    So the economic dimensions match release/aggregates.csv, and a cluster's count is unchanged; the
    `clustered` column marks the records the cluster levels are compared over (`_compare_dimensions`)."""
    for need in (ASSIGNMENTS, "clusters.parquet"):
        if not (run / need).is_file():
            raise ConfigError(f"{run / need} is missing: compare needs a finished run with its private zone")
    _manifest(run)
    a = pq.read_table(run / ASSIGNMENTS).to_pandas()
    a = a[a.status == "clustered"]
    econ_path = run / ECONOMIC_PER_RECORD
    e = pq.read_table(econ_path).to_pandas().set_index("row") if econ_path.is_file() else None
    frame = pd.DataFrame({"row": a.row.to_numpy() if e is None else e.index.to_numpy()})
    clustered = a.set_index("row").reindex(frame.row)  # NaN levels for records outside the clusters
    frame[CLUSTERED] = clustered.status.notna().to_numpy()  # the cluster levels' records (see compare_runs)
    published = _published_clusters(run)
    for level in sorted(published):
        names = published[level]
        frame[f"{CLUSTER_LEVEL}{level}"] = [None if pd.isna(x) else names.get(int(x))
                                           for x in clustered[f"level_{level}"].to_numpy()]
    values = {f"{CLUSTER_LEVEL}{lv}": set(n.values()) for lv, n in published.items()}
    if e is not None:
        from clio_engine.economic.inputs import cleaned_values
        from clio_engine.economic.onet import load_taxonomy

        e = e.reindex(frame.row)
        text = load_taxonomy().task_text
        task = e.task.fillna(-1).astype(np.int64).to_numpy()
        frame["task"] = np.where(task >= 0, text[np.maximum(task, 0)], "none")
        for col in e.columns:
            if col not in ("task", "similarity", "margin", "confidence", "mid", "top", "user"):
                # cleaned as the Economic Index tables count them: counted raw, "FR" + U+200B was a value of its
                # own here and FR's release total minus its compare count gave the variant's hidden records
                frame[col] = cleaned_values(e[col], lower=col == "collaboration")
        frame["user"] = e.user.to_numpy()
        values.update(_published_economic(run))
    elif "user" in a.columns:  # the run's user codes (assignments.parquet), so the bootstrap resamples users
        frame["user"] = a.set_index("row").user.reindex(frame.row).to_numpy(np.int64)
    else:  # resampling records would make the intervals too narrow and the floors count records as users
        raise ConfigError(f"{run / ASSIGNMENTS} holds no user codes (a run written before they were kept): "
                          "rerun it to compare it")
    return frame.drop(columns=["row"]), values


def _refuse_noised(run: Path, manifest: dict) -> None:
    """A one-line ConfigError for a run made with privacy.epsilon: compare's counts are exact and unbounded
    (two runs one user apart would give that user's records per value), which would undo the run's noise."""
    epsilon = (manifest.get("privacy") or {}).get("epsilon")
    if epsilon is not None:
        raise ConfigError(f"{run} was made with privacy.epsilon={epsilon}: compare publishes exact counts, which "
                          "would undo its differential privacy; compare runs made without privacy.epsilon")


def _refuse_release_destination(dest: Path, runs: tuple[Path, ...]) -> None:
    """A one-line ConfigError when `dest` lies inside either run's release/ or inside any release folder
    (dest itself or a folder above it has a manifest.json with zone "release", e.g. a copied release):
    a comparison is derived from per-record data and stays analyst-level."""
    target = dest.resolve()
    for run in runs:
        if target.is_relative_to((run / RELEASE).resolve()):
            raise ConfigError(f"{dest} is inside {run / RELEASE}: a comparison uses per-record data and stays "
                              "analyst-level")
    if (folder := enclosing_release(target)) is not None:
        raise ConfigError(f"{dest} is inside the release folder {folder}: a comparison uses per-record data "
                          "and stays analyst-level")


def compare_runs(run_a, run_b, *, out=None, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
                 correction: str = "holm", max_user_share: float = 0.5,
                 max_user_variance_share: float = 0.5) -> tuple[pd.DataFrame, Path]:
    """Compare two runs; writes compare.csv and compare.md (with a movers figure) to `out` (default RUN_B/compare).
    Runs made with privacy.epsilon and an `out` inside a release folder are one-line ConfigErrors."""
    run_a, run_b = Path(run_a), Path(run_b)
    if run_a.resolve() == run_b.resolve():  # every change would be zero: almost surely a typo in one path
        raise ConfigError(f"{run_a} is compared with itself: give the earlier and the later run")
    dest = Path(out) if out is not None else run_b / COMPARE_DIR
    _refuse_release_destination(dest, (run_a, run_b))  # before any work: nothing is read or written
    ma, mb = _manifest(run_a), _manifest(run_b)
    _refuse_noised(run_a, ma)
    _refuse_noised(run_b, mb)
    refuse_shared_records(run_a, run_b)
    pa_, pb_ = (ma.get("privacy") or {}), (mb.get("privacy") or {})
    min_users = max(int(pa_.get("min_users", 5)), int(pb_.get("min_users", 5)))
    min_records = max(int(pa_.get("min_records", 15)), int(pb_.get("min_records", 15)))
    a, va = period_records(run_a)
    b, vb = period_records(run_b)
    dims = [d for d in a.columns if d in b.columns and d != "user" and d in va and d in vb]
    one_tree, stale = share_one_tree(run_a, ma, run_b, mb), ""
    if not one_tree:
        # Clusters are matched by name: two trees' clusters of one name are different clusters (review: two runs
        # of other records both had an "Email" cluster, and its "change" was written). The Economic Index's
        # dimensions (task, collaboration, geography) compare as they are.
        left = [d for d in dims if d.startswith(CLUSTER_LEVEL)]
        dims = [d for d in dims if d not in left]
        stale = _stale_assignment(run_a, ma, run_b, mb)
        if left and dims:  # refused below when nothing is left: the error alone says why (one line, not two)
            log.warning("compare: %s; its clusters are not compared, only the Economic Index's dimensions are",
                        stale or f"{run_b} was not assigned to {run_a}'s tree (clio-engine assign), nor both to one tree")
    if not dims:
        raise ConfigError(f"{run_a} and {run_b} share nothing to compare (no common published dimension"
                          + ("" if one_tree else f"; {stale}" if stale else
                             "; clusters compare only between runs of one tree: make RUN_B with clio-engine assign RUN_A")
                          + ")")
    for d in dims:  # only values published in both runs; the rest is missing (never reported)
        both = va[d] & vb[d]
        a[d] = a[d].where(a[d].isin(both), None)
        b[d] = b[d].where(b[d].isin(both), None)
    settings = dict(min_users=min_users, min_records=min_records, max_user_share=max_user_share,
                    max_user_variance_share=max_user_variance_share, n_boot=n_boot,
                    alpha=alpha, correction=correction, seed=seed)
    table = _compare_dimensions(a, b, dims, settings)
    dest.mkdir(parents=True, exist_ok=True)
    if why := held_by_another_account(dest):  # e.g. --out /tmp/compare made first by someone else
        raise ConfigError(f"compare folder {dest}: {why}, so that account could change the comparison after it is "
                          "written; choose another --out")
    write_text(dest / "compare.csv", _csv_safe(compare_csv_table(table)).to_csv(index=False))
    section = compare_markdown(table, run_a, run_b, dest, alpha)
    write_text(dest / "compare.md", section)
    if (run_b / "report.md").is_file() and dest.resolve().parent == run_b.resolve():
        add_report_section(run_b / "report.md", section, dest.name)
    if (run_b / "explorer.html").is_file():  # RUN_B's config has the explorer on: show the changes in it too
        from clio_engine.explorer import build_explorer

        table.attrs.update(run_a=run_a.name, run_b=run_b.name)
        build_explorer(run_b, compare=table)
    return table, dest


def share_one_tree(run_a: Path, ma: dict, run_b: Path, mb: dict) -> bool:
    """Whether the two runs' clusters are one tree's: one was assigned to the other (`clio-engine assign`: its
    config's cluster.reference), both to one run, or their trees have the same parents and names."""
    if _reference(run_a, ma) == _reference(run_b, mb):
        return not _stale_assignment(run_a, ma, run_b, mb)
    try:
        ta, tb = (json.loads((r / "tree.json").read_text(encoding="utf-8")) for r in (run_a, run_b))
    except (OSError, ValueError):
        return False
    shape = lambda t: ([lv.get("parent") for lv in t.get("levels", [])],  # noqa: E731
                       [[n.get("name") for n in level] for level in t.get("nodes", [])])
    return shape(ta) == shape(tb)


def _reference(run: Path, m: dict) -> Path:
    """The run whose tree `run` has: its cluster.reference for an assign run, else itself."""
    cluster = ((m.get("config") or {}).get("cluster") or {})
    ref = cluster.get("reference") if cluster.get("method") == "reference" else None
    return Path(ref).resolve() if ref else run.resolve()


def _stale_assignment(run_a: Path, ma: dict, run_b: Path, mb: dict) -> str:
    """Why two runs of one reference do not share its tree after all, else "": the tree an assign run was made
    from is the fingerprint its cluster stage recorded, and a reference run again in place since has another
    tree, whose clusters of one name are other clusters. Two assign runs compare their recorded trees with each
    other; an assign run and its reference, with the tree the reference holds now. Runs made before
    fingerprints were recorded are taken on trust, as before."""
    from clio_engine.pipeline.reference import tree_fingerprint

    ref = _reference(run_a, ma)
    if ref != _reference(run_b, mb):
        return ""
    recorded = {run: ((m.get("stages") or {}).get("cluster") or {}).get("reference_tree")
                for run, m in ((run_a, ma), (run_b, mb)) if _reference(run, m) != run.resolve()}
    if len(recorded) == 2:
        if None not in recorded.values() and len(set(recorded.values())) == 2:
            return (f"{run_a} and {run_b} were assigned to different trees of {ref} (it was run again in place "
                    "between them)")
        return ""
    (run, then), = recorded.items()
    if then is None:
        return ""
    now = tree_fingerprint(ref)
    if now is None:
        return f"{ref}/clusters.parquet cannot be read, so it cannot be told whether {run} has its tree"
    if then != now:
        return (f"{run} was assigned to an earlier tree of {ref}, which has been run again in place since "
                "(assign it again)")
    return ""


def _compare_dimensions(a: pd.DataFrame, b: pd.DataFrame, dims: list[str], settings: dict) -> pd.DataFrame:
    """compare_periods over the cluster levels on the clustered records only, and over the other dimensions
    on every record: a cluster's share is of the clustered records, as in the run's own tables. Over every
    record it would move with the noise share alone (an assign run has no HDBSCAN noise, its reference may
    have 30%), and every cluster would seem to grow."""
    from clio_engine.economic.compare import compare_periods

    levels = [d for d in dims if d.startswith(CLUSTER_LEVEL)]
    others = [d for d in dims if d not in levels]
    parts, left_out = [], {}
    for names, rows_a, rows_b in ((levels, a[a[CLUSTERED]], b[b[CLUSTERED]]), (others, a, b)):
        if names:
            part = compare_periods(rows_a, rows_b, dimensions=names, **settings)
            left_out.update(part.attrs.get("left_out") or {})
            parts.append(part)
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    table.attrs["left_out"] = left_out
    return table


REPORT_MARK = "<!-- clio-engine compare -->"


def add_report_section(report: Path, section: str, folder: str) -> None:
    """Append the comparison to RUN_B's report.md as its last section (replacing the one an earlier compare
    wrote), with the figure links pointing into the compare folder."""
    text = report.read_text(encoding="utf-8").split(REPORT_MARK)[0].rstrip("\n")
    body = section.replace("# Changes between runs", "## Changes between runs", 1).replace("\n## ", "\n### ")
    body = body.replace("](movers.png)", f"]({folder}/movers.png)")
    write_text(report, f"{text}\n\n{REPORT_MARK}\n{body}")


def compare_markdown(table: pd.DataFrame, run_a: Path, run_b: Path, dest: Path, alpha: float) -> str:
    """The report section: significant moves per dimension, the biggest movers figure."""
    from clio_engine.privacy.escape import markdown_code, markdown_text

    # Folder names as code spans: a backslash escape inside one would show ("bank\\_q2").
    lines = ["# Changes between runs\n", f"A: {markdown_code(run_a.name)} → B: {markdown_code(run_b.name)}. "
             f"Shares in percent (%) of each run's records; changes and their intervals in percentage points (pp); "
             f"intervals at {1 - alpha:.0%} from a bootstrap resampling "
             "users, each value's own (not adjusted); 'significant' after a Holm correction within each "
             "dimension, so an interval that leaves out 0 may still be not significant. Only values published in "
             "both runs are compared.\n"]
    try:
        from clio_engine.economic.figures import economic_figures

        plots = economic_figures(pd.DataFrame(columns=["geo_id", "geography", "facet", "level", "variable",
                                                       "cluster_name", "value"]), dest, compare=table)
        lines += [f"![{markdown_text(title)}]({Path(path).name})\n" for title, path in plots]
    except ImportError:  # figures module absent: the table still says everything
        pass
    for dim, part in table.groupby("dimension", sort=False):
        sig = part[part.significant]
        left = (table.attrs.get("left_out") or {}).get(dim)
        lines.append(f"## {markdown_text(str(dim))}: {len(sig)} of {len(part)} significant"
                     + (f" ({left} held back: floors, a dominant user, or so that none of those can be subtracted)"
                        if left else "") + "\n")
        lines.append("| value | share A (%) | share B (%) | change (pp) | interval (pp) | significant |\n"
                     "|---|---:|---:|---:|---|---|")
        for r in part.head(15).itertuples():
            lines.append(f"| {markdown_text(str(r.value)[:90])} | {r.share_a:.2f} | {r.share_b:.2f} | "
                         f"{r.change:+.2f} | [{r.ci_low:+.2f}, {r.ci_high:+.2f}] | {'yes' if r.significant else ''} |")
        lines.append("")
    return "\n".join(lines) + "\n"


# compare.csv's names for compare_runs' columns: the unit in the name (percent, percentage points), as
# aggregates.csv's shares end in _pct. Only the file is renamed; the DataFrame keeps its names.
CSV_NAMES = COMPARE_CSV_NAMES


def compare_csv_table(table: pd.DataFrame) -> pd.DataFrame:
    """compare_runs' table with compare.csv's column names (`CSV_NAMES`); values unchanged."""
    return table.rename(columns=CSV_NAMES)


def _csv_safe(table):
    """The table with every text cell made safe for a spreadsheet (a value or an LLM-given name starting with
    "=" would be read as a formula); numbers stay numbers."""
    from clio_engine.privacy.escape import csv_cell

    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype) in ("str", "string"):
            out[column] = [csv_cell(v) if isinstance(v, str) else v for v in out[column]]
    return out
