"""Explorer page size and load time for 10k, 50k and 200k synthetic-record runs (issue: the explorer).

For each size: a real `clio_engine.run` with the `default` config (all-MiniLM-L6-v2, k = N / 100, 3 levels,
10 at the top, privacy floors 5 users / 15 records, map sample 50k) on `clio_engine.generate_conversations(N)`
(a run directory that already finished is reused: the pipeline's stage cache), then explorer.html opened
from disk in headless Debian Chromium through Playwright (offline context, `--repeats` fresh pages):

- page bytes, gzip -9 bytes (what a mail attachment costs), data-blob bytes, map points, nodes (the blob
  read with `clio_engine.explorer.page.page_data`, the reader the audit and tests use); the public
  explorer's (release/explorer.html) bytes and marks;
- time to first render: `performance.now()` when the map's first frame is drawn (the page sets
  `clioExplorer.state.firstRenderMs`; zero is navigation start), and the navigation's
  domContentLoaded (HTML parsed, inline JSON and script not yet run past their parse);
- interaction: ms from a facet-filter change, a tree click (select + zoom), and a search keystroke to
  the next painted frame; one map frame's draw time (`state.lastRenderMs`) after a zoom;
- the run's own map-stage seconds (UMAP of the sample + centroids) from manifest.json.

    PYTHONPATH=. python benchmarks/explorer_size.py --sizes 10000,50000,200000 --out-dir /tmp/explorer_bench \
        --output benchmarks/results/explorer_size_DATE.json
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

from clio_engine.device import cpu_model
from clio_engine.explorer.page import page_data

INTERACTIONS = {
    "filter_ms": """async () => { const s = document.getElementById('facet-filter'); const t0 = performance.now();
        s.value = s.options[1].value; s.dispatchEvent(new Event('change'));
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); return performance.now() - t0; }""",
    "tree_click_ms": """async () => { const row = document.querySelector('#tree .tree-row .nm'); const t0 = performance.now();
        row.click(); await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); return performance.now() - t0; }""",
    "search_ms": """async () => { const q = document.getElementById('search'); const t0 = performance.now();
        q.value = 'code'; q.dispatchEvent(new Event('input'));
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); return performance.now() - t0; }""",
}


def run_once(n: int, out_dir: Path, model: str) -> tuple[Path, float]:
    from clio_engine import load_config
    from clio_engine.pipeline import run

    run_dir = out_dir / f"n{n}"
    cfg = load_config("default", {"input.synthetic_records": n, "embed.progress": False, "embed.model": model})
    t0 = time.perf_counter()
    run(cfg, out=run_dir)
    return run_dir, time.perf_counter() - t0


def measure_page(page_path: Path, chromium: str, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    rounds = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        version = browser.version
        for _ in range(repeats):
            ctx = browser.new_context(offline=True, viewport={"width": 1400, "height": 860})
            ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(page_path.resolve().as_uri())
            page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
            r = {"first_render_ms": page.evaluate("window.clioExplorer.state.firstRenderMs"),
                 "dom_content_loaded_ms": page.evaluate(
                     "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"),
                 "js_heap_mb": page.evaluate("performance.memory ? performance.memory.usedJSHeapSize / 1e6 : null")}
            for name, script in INTERACTIONS.items():
                r[name] = page.evaluate(script)
            page.evaluate("document.getElementById('zoom-in').click()")
            page.wait_for_timeout(200)
            r["frame_ms"] = page.evaluate("window.clioExplorer.state.lastRenderMs")
            r["errors"] = errors
            rounds.append(r)
            ctx.close()
        browser.close()
    keys = [k for k in rounds[0] if k != "errors"]
    median = {k: round(statistics.median(x[k] for x in rounds), 1) for k in keys if rounds[0][k] is not None}
    return {"median": median, "rounds": rounds, "chromium": version,
            "errors": sorted({e for r in rounds for e in r["errors"]})}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,50000,200000")
    ap.add_argument("--out-dir", default="/tmp/explorer_bench", help="where the run directories go (reused when finished)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--chromium", default=os.environ.get("CLIO_CHROMIUM") or shutil.which("chromium") or "chromium")
    ap.add_argument("--output", help="JSON file for the results")
    args = ap.parse_args(argv)
    out_dir = Path(args.out_dir)
    results = []
    for n in (int(x) for x in args.sizes.split(",")):
        run_dir, seconds = run_once(n, out_dir, args.model)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        page = run_dir / "explorer.html"
        html = page.read_bytes()
        data = page_data(html.decode("utf-8"))  # the one reader of the embedded blob (what the page's script reads)
        blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()  # its size as embedded, ± escapes
        public = run_dir / "release" / "explorer.html"
        public_bytes = public.read_bytes() if public.is_file() else b""
        stages = manifest["run"]["stages"]
        row = {"records": n, "run_s": round(seconds, 1),
               "map_stage_s": round(stages["map"]["seconds"], 1), "map_stage_reused": stages["map"]["reused"],
               "outputs_stage_s": round(stages["outputs"]["seconds"], 1),
               "levels": manifest["levels"], "published": [lv["published"] for lv in manifest["privacy"]["levels"]],
               "page_bytes": len(html), "gzip_bytes": len(gzip.compress(html, 9, mtime=0)), "data_bytes": len(blob),
               "points": len(data["points"]["x"]), "nodes": len(data["nodes"]["id"]),
               "public_page_bytes": len(public_bytes),
               "public_marks": len(page_data(public_bytes.decode("utf-8")).get("marks", {}).get("node", [])) if public_bytes else 0,
               "browser": measure_page(page, args.chromium, args.repeats)}
        results.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "browser"} | {"median": row["browser"]["median"]}), flush=True)
    doc = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_model(), "cores": os.cpu_count(),
           "load_avg": os.getloadavg(), "python": platform.python_version(), "repeats": args.repeats, "results": results}
    if args.output:
        Path(args.output).write_text(json.dumps(doc, indent=1) + "\n")
    print("\n| records | base → top clusters | map points | page MB | gzip MB | first render ms | DOMContentLoaded ms "
          "| filter ms | tree click ms | search ms | frame ms | map stage s |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        m = r["browser"]["median"]
        print(f"| {r['records']:,} | {' → '.join(map(str, r['levels']))} | {r['points']:,} | {r['page_bytes'] / 1e6:.2f} "
              f"| {r['gzip_bytes'] / 1e6:.2f} | {m['first_render_ms']:.0f} | {m['dom_content_loaded_ms']:.0f} "
              f"| {m['filter_ms']:.0f} | {m['tree_click_ms']:.0f} | {m['search_ms']:.0f} | {m['frame_ms']:.1f} "
              f"| {r['map_stage_s']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
