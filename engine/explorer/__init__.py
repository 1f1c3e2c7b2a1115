"""The explorer (SPEC §6): `explorer.html`, one self-contained page with a map, a tree, a cluster panel,
search and a facet filter, built from a run's published outputs and its cached map layout.

    from clio_engine.explorer import build_explorer
    build_explorer("runs/demo")            # (re)writes runs/demo/explorer.html
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from clio_engine.explorer.data import page_data
from clio_engine.explorer.layout import MapLayout, map_layout, sample_rows
from clio_engine.explorer.page import render_page, write_page

__all__ = ["build_explorer", "explorer_html", "page_data", "render_page", "write_page", "map_layout", "MapLayout",
           "sample_rows", "MAP_CACHE", "EXPLORER_FILE"]
MAP_CACHE = "map.npz"       # under the run directory's private/cache/
EXPLORER_FILE = "explorer.html"


def page_meta(manifest: dict) -> dict:
    """What the page says about the run, from the manifest (no paths, no times: the page is deterministic)."""
    priv, inp = manifest.get("privacy", {}), manifest.get("input", {})
    stages = manifest.get("stages", {})
    noise = stages.get("cluster", {}).get("noise", 0)
    # A noised release states no exact count: its noised total (the shares' denominator) stands in.
    records = inp.get("accepted", inp.get("noised_total"))
    return {"records": records, "clustered": (records or 0) - (noise or 0),
            "min_users": priv.get("min_users"), "min_records": priv.get("min_records"),
            "examples": priv.get("examples"), "has_user_ids": manifest.get("users", {}).get("has_user_ids")}


def explorer_html(clusters: pa.Table, facets: pa.Table, assignments: pa.Table, manifest: dict,
                  layout: MapLayout | None, economic=None, compare=None) -> str:
    """The page for a run's tables (what `clio_engine.run` writes as explorer.html). `economic`: the run's
    Economic Index rows (economic.parquet as a DataFrame) for the page's economic views, or None.
    `compare`: a `clio-engine compare` table (DataFrame) for the "changes between runs" view, or None."""
    levels = manifest.get("levels") or []
    title = f"clio-engine explorer · {page_meta(manifest)['records'] or 0:,} records · " \
            f"{' → '.join(str(n) for n in levels)} clusters"
    views = None
    if economic is not None or compare is not None:
        from clio_engine.explorer.economic import economic_data

        views = economic_data(economic, compare=compare)
    return render_page(page_data(clusters, facets, assignments, layout, page_meta(manifest)), title, views)


def build_explorer(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, compare=None) -> Path:
    """Rebuild explorer.html from a finished run directory's analyst files and `private/cache/map.npz`
    (without that cache, e.g. after `clio-engine purge`, the page has the tree, panel and search but no
    map). `compare`: a `clio-engine compare` table to show as "changes between runs". Returns the page's path."""
    from clio_engine.errors import ConfigError
    from clio_engine.runfiles import ASSIGNMENTS, CACHE, write_text

    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").is_file():
        raise ConfigError(f"{run_dir} is not a finished run directory (no manifest.json)")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    if manifest.get("zone") == "release":  # its explorer.html is the public page; the analyst page must not replace it
        raise ConfigError(f"{run_dir} is a release folder (its explorer.html is the public page, rebuilt by "
                          f"`clio-engine release`); pass the run directory {run_dir.resolve().parent} instead")
    manifest.pop("run", None)
    cache = run_dir / CACHE / MAP_CACHE
    assignments = run_dir / ASSIGNMENTS
    layout = MapLayout.load(cache) if cache.is_file() and assignments.is_file() else None
    economic = run_dir / "economic.parquet"
    html = explorer_html(pq.read_table(run_dir / "clusters.parquet"), pq.read_table(run_dir / "facets.parquet"),
                         pq.read_table(assignments) if layout is not None else None, manifest, layout,
                         pq.read_table(economic).to_pandas() if economic.is_file() else None, compare)
    path = Path(out) if out is not None else run_dir / EXPLORER_FILE
    write_text(path, html)
    return path
