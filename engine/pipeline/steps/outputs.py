"""outputs: the analyst's view of a run — clusters, tree.json, plots, explorer.html, report.md — and the
per-record `private/assignments.parquet`. (`release/` is rebuilt from these by the runner at the end of
every run: `clio_engine.pipeline.release`.)

The report and the explorer show a summary of the run (`manifest.summary`): input counts, users,
stage facts, levels and the privacy settings; manifest.json itself is written by the runner every run.
"""
from __future__ import annotations

import json
from pathlib import Path

from clio_engine.pipeline.manifest import summary
from clio_engine.pipeline.noise_plan import PLAN_READS, k_from_count
from clio_engine.pipeline.outputs import assignments_table, clusters_table, facet_json, published_tree
from clio_engine.pipeline.overlap import keys_of_rows
from clio_engine.pipeline.plots import PLOT_DIR
from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.pipeline.report import render_report
from clio_engine.pipeline.rundir import write_parquet, write_text
from clio_engine.runfiles import ASSIGNMENTS

UPSTREAM = ("records", "facets", "embed", "reduce", "cluster", "hierarchy", "privacy", "names", "aggregate", "economic", "map")


def _compute(ctx):
    from clio_engine.pipeline.plots import write_plots

    cfg, rd = ctx.cfg, ctx.rd
    loaded, base, h, pubs = ctx["facets"], ctx["cluster"].base, ctx["hierarchy"], ctx["privacy"]
    info = {name: ctx.info[name] for name in UPSTREAM if name in ctx.info}
    head = summary(loaded.records, loaded.origin, h.tree, pubs, h.labels, info, cfg.privacy, k_from_count=k_from_count(cfg))
    # each record's key of its id and the text it came with (assign and compare tell shared records by it)
    keys = keys_of_rows(ctx["records"].records.table, loaded.records.table.column("row").to_numpy())
    write_parquet(rd / ASSIGNMENTS, assignments_table(loaded.records, base, h.labels, [p.published for p in pubs],
                                                        users=loaded.users, keys=keys))
    clusters = clusters_table(h.tree, pubs, ctx["names"], facet_json(ctx["aggregate"]), cfg.privacy.min_users,
                              total=int(pubs[-1].reported_records.sum()))  # = clustered records without noise
    write_parquet(rd / "clusters.parquet", clusters)
    ctx.checkpoint("partial")  # test hook: killed with some published files rewritten and others not
    write_text(rd / "tree.json", json.dumps(published_tree(clusters, h.tree), ensure_ascii=False))
    plots = write_plots(rd.path, clusters, cfg.privacy.min_records)
    explorer = None
    if cfg.output.explorer:
        import pyarrow.parquet as pq

        from clio_engine.explorer import EXPLORER_FILE, explorer_html

        assignments = pq.read_table(rd / ASSIGNMENTS)
        write_text(rd / EXPLORER_FILE, explorer_html(clusters, ctx["aggregate"], assignments, head, ctx["map"],
                                                     ctx["economic"]))
        explorer = EXPLORER_FILE
    else:
        _remove_stale(rd.path, ["explorer.html"])  # an earlier run's page: its facets, counts and names are not these
    denominator = (info.get("economic") or {}).get("population_denominator")
    written = {Path(p).name for _, p in plots}
    write_text(rd / "report.md", render_report(head, clusters, plots, explorer)
               + economic_section(rd.path, ctx["economic"], denominator, written))
    _remove_stale(rd.path / PLOT_DIR, [f.name for f in (rd.path / PLOT_DIR).glob("*.png") if f.name not in written])
    return None, {}


def _remove_stale(folder: Path, names: list[str]) -> None:
    """Remove what an earlier run into this directory wrote and this one does not (a rerun without facets or
    the explorer): left there, it would show that run's numbers beside this run's files (review)."""
    for name in names:
        (folder / name).unlink(missing_ok=True)


DENOMINATORS = {"total": "total population (World Bank SP.POP.TOTL, shipped), not the working-age population "
                         "the Economic Index divides by",
                "working_age": "the working-age population of the table given in economic.population",
                "user": "the population table given in economic.population"}


def economic_section(folder, rows, denominator: str | None = None, written: set | None = None) -> str:
    """The report's Economic Index section with its figures in folder/plots ("" without the layer), and
    which population the per-capita figures and the AI Usage Index divide by. `written`: gets the figures'
    file names."""
    if rows is None:
        return ""
    from clio_engine.economic.figures import economic_figures, economic_report_section

    plots = economic_figures(rows, folder / PLOT_DIR)
    if written is not None:
        written.update(Path(p).name for _, p in plots)
    note = f"\nPer-capita figures and the AI Usage Index divide by {DENOMINATORS[denominator]}.\n" \
        if denominator in DENOMINATORS else ""
    return "\n" + economic_report_section(rows, plots, relative_to=folder) + note


register_stage(Stage("outputs", _compute, lambda ctx: None, upstream=UPSTREAM,
                     reads=("output", "privacy.min_users", "privacy.min_records", "privacy.examples", *PLAN_READS),
                     artifacts=(ASSIGNMENTS, "clusters.parquet", "tree.json", "report.md"),
                     version=8))  # 8: assignments.parquet carries each record's record_key; 7: parent centroids from published children only; 6: Other rows without users; 5: assignments.parquet carries each record's user code
