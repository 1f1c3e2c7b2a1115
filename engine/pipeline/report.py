"""report.md: what a reader needs first — coverage, privacy, the top of the tree with shares."""
from __future__ import annotations

import pyarrow as pa

from clio_engine.privacy.escape import markdown_text

# Every string from the data (cluster names, "Other in <parent>") passes `markdown_text` (SPEC §4): no
# link, image, raw HTML, emphasis, heading or table-cell break can come from it, and bidi/zero-width
# characters are removed. The numbers and our own wording are written as they are.


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _num(x) -> str:
    return "suppressed" if x is None else f"{x:,}"


def render_report(manifest: dict, clusters: pa.Table, plots: list[tuple[str, str]] | None = None,
                  explorer: str | None = None, zone: str = "analyst") -> str:
    """Markdown summary of a run (deterministic: no timings, no paths). `plots`: [(title, relative path)]
    of figures to embed; `explorer`: the explorer page's file name, when the run wrote one; `zone`:
    "analyst" (the run directory's top level) or "release" (`release/`), which only changes the files line."""
    inp, priv, levels = manifest["input"], manifest["privacy"], manifest["levels"]
    rows = clusters.to_pylist()
    by_id = {r["id"]: r for r in rows}
    children: dict[str, list[dict]] = {}
    for r in rows:
        if r["published"] and r["parent"]:
            children.setdefault(r["parent"], []).append(r)
    top_level = len(levels) - 1
    # Clusters only: the top level's Other row is its own last line of the table (`_tree_sections`), and has no children.
    top = sorted((r for r in rows if r["level"] == top_level and r["published"] and r.get("kind", "cluster") == "cluster"),
                 key=lambda r: (-(r["size"] or 0), r["id"]))
    lines = [
        "# clio-engine run report", "",
        _input_line(inp, (manifest.get("stages", {}).get("cluster") or {}).get("noise")),
        f"- Users: {manifest['users']['note']}{null_users_note(inp)}",
        f"- Model: {markdown_text(manifest['stages']['embed']['model'])} ({manifest['stages']['embed']['dim']}-d"
        + (f", {manifest['stages']['embed']['n_truncated']:,} texts truncated)"
           if "n_truncated" in manifest["stages"]["embed"] else ")"),
        f"- Clustering: {manifest['stages']['cluster']['method']} with k = {manifest['stages']['cluster']['k']} "
        f"({manifest['stages']['cluster']['k_rule']}); hierarchy levels (base → top): "
        + " → ".join(str(n) for n in levels),
        f"- Privacy: published only with ≥ {priv['min_users']} users and ≥ {priv['min_records']} records; "
        f"examples: {priv['examples']}; noise: " + _noise_line(priv),
        "", "## Publication per level", "",
        "| level | clusters | published | records in published clusters |", "|---|---:|---:|---:|",
    ]
    for level, info in enumerate(priv["levels"]):
        lines.append(f"| {level} | {info['nodes']:,} | {info['published']:,} | {_pct(info['published_record_share'])} |")
    if (sec := priv.get("secondary_suppression")) and sec.get("enabled"):
        lines += ["", _secondary_line(sec, bool(inp.get("facets")))]
    if bucket_info := ((manifest.get("stages") or {}).get("hierarchy") or {}).get("small_cluster_buckets"):
        lines += ["", _buckets_line(bucket_info)]
    if not any(info["published"] for info in priv["levels"]):
        lines += ["", "## No cluster is published", "",
                  _nothing_published(inp, priv, manifest["users"], by_id.get(f"{top_level}.other"))]
    else:
        lines += _tree_sections(rows, by_id, children, top, top_level)
    if plots:
        lines += ["", "## Figures", ""]
        for k, (title, path) in enumerate(plots):
            lines += ([""] if k else []) + [f"![{title}]({path})"]
    if explorer:
        lines += ["", f"Interactive map and tree: [{explorer}]({explorer}) (one offline file; "
                  "`clio-engine explore RUN_DIR` rebuilds and opens it)."]
    lines += ["", ZONE_TEXT[zone], ""]
    return "\n".join(lines)


def _secondary_line(sec: dict, has_facets: bool = True) -> str:
    """What secondary suppression cost. The analyst report gives the record shares before and after it; the
    release has neither the "before" nor how many clusters it hid (`release.release_manifest` drops both).
    Facet cells only where the run has facets (without, "0.0% → 0.0%" read as every cell hidden); their share is of
    the records in every facet cell of every level (the aggregate stage's `published_cell_record_share`), which the
    sentence says: "facet cells: 58.6% → 46.4%" alone left an analyst guessing what was counted."""
    cells = (sec.get("facet_cells") or {}) if has_facets else {}
    if all("primary" in x for x in sec["levels"]):
        return ("Secondary suppression (no hidden count follows by subtraction) — records in published clusters "
                "per level, before → after: " + "; ".join(
                    f"level {lv}: {_pct(x['primary'])} → {_pct(x['secondary'])}" for lv, x in enumerate(sec["levels"]))
                + (f"; records in published facet cells (every facet and level together): "
                   f"{_pct(cells['primary'])} → {_pct(cells['secondary'])}" if "primary" in cells else "")
                + ".")
    if all("suppressed_nodes" in x for x in sec["levels"]):  # an older release's manifest
        return ("Secondary suppression (no hidden count follows by subtraction) — clusters hidden besides those "
                "below the thresholds, per level: " + "; ".join(
                    f"level {lv}: {x.get('suppressed_nodes', 0):,}" for lv, x in enumerate(sec["levels"])) + ".")
    # How many hidden clusters pass the floors is not published: with a bucket's total it pinned its members.
    return "Secondary suppression is on: no hidden count follows by subtraction."


def _buckets_line(info: dict) -> str:
    """How the base clusters below the floors were kept together (engine.privacy.buckets)."""
    if not info.get("clusters"):
        return "Every base cluster reaches the floors: none is withheld."
    n = info["buckets"]
    head = (f"Base clusters withheld: {info['clusters']:,}, in {n:,} bucket{'' if n == 1 else 's'} of nearby clusters "
            "below the floors")
    if not info.get("kept_together", True):
        return head + " (the earlier run's tree is kept as it is: secondary suppression covers a bucket split between parents)."
    return (head + f", each bucket under one parent at every level ({info['moved']:,} moved to their bucket's parent), "
            "so any hierarchy of these base clusters with these floors hides the same ones.")


ZONE_TEXT = {
    "analyst": "Files (analyst view, this folder): clusters.parquet (every node, published or not; examples of "
               "published clusters), facets.parquet (facet shares of published clusters), tree.json, manifest.json. "
               "private/ holds per-record and invertible data (assignments.parquet: every input row; embeddings.npy; "
               "stage caches): never publish it; `clio-engine purge RUN_DIR` deletes it. release/ holds what may "
               "be published (no record text): `clio-engine release RUN_DIR` rebuilds it.",
    "release": "Files (release: published numbers only, no record text, no examples): clusters.parquet and "
               "tree.json (published clusters), facets.parquet (published facet cells), aggregates.csv (every "
               "published number in one long table: geo_id, geography, facet, level, variable, cluster_name, "
               "value), manifest.json, explorer.html (the public explorer: one disc per published base cluster, "
               "sized by its published count; `clio-engine release RUN_DIR` rebuilds this folder).",
}


def _tree_sections(rows, by_id, children, top, top_level) -> list[str]:
    """The top-level table and the level below it (published nodes only)."""
    lines = ["", "## Top-level clusters", "", "| cluster | records | users | share |", "|---|---:|---:|---:|"]
    for r in top:
        lines.append(f"| {markdown_text(r['name'])} | {_num(r['size'])} | {_num(r['users'])} | {_pct(r['share'])} |")
    other = by_id.get(f"{top_level}.other")
    if other is not None:
        users = "–" if other["users"] is None else _num(other["users"])  # an Other row publishes no users
        lines.append(f"| {markdown_text(other['name'])} | {_num(other['size'])} | {users} | {_pct(other['share'])} |")
    if top_level > 0:
        lines += ["", "## One level down", ""]
        for r in top:
            kids = sorted(children.get(r["id"], []), key=lambda c: (-(c["size"] or 0), c["id"]))
            lines.append(f"- **{markdown_text(r['name'])}** ({_pct(r['share'])}): " + "; ".join(
                f"{markdown_text(c['name'])} {_pct(c['share_of_parent'])}" for c in kids[:8]) + ("; …" if len(kids) > 8 else ""))
    return lines


def _nothing_published(inp: dict, priv: dict, users: dict, other: dict | None) -> str:
    """Why an empty publication is empty, and what it still publishes (the top level's Other row, where it clears
    the floors); states no count the published files do not."""
    unit = "distinct users" if users["has_user_ids"] else "records (no user ids: each record is its own user)"
    floors = f"≥ {priv['min_users']:,} {unit} and ≥ {priv['min_records']:,} records"
    sec = priv.get("secondary_suppression") or {}
    hid_passing = sec.get("enabled") and any((x.get("primary") or 0) > 0 or (x.get("suppressed_nodes") or 0) > 0
                                             for x in sec.get("levels", []))
    known = any("primary" in x or "suppressed_nodes" in x for x in sec.get("levels", []))  # not in a release
    why = (f"Some clusters have {floors}, but each would give a smaller sibling's size away by subtraction, so "
           "secondary suppression hides them too" if hid_passing else f"No cluster at any level has {floors}"
           if known or not sec.get("enabled") else f"No cluster at any level is published with {floors}")
    shown = other is not None and other.get("published") and other.get("size") is not None
    what = (f"Its one published row is \"{markdown_text(other['name'])}\": {_num(other['size'])} records, all "
            "clustered records together." if shown else
            f"Its {inp.get('accepted', inp.get('noised_total', 0)):,} accepted records all stay in suppressed clusters.")
    return (f"{why}, so this run publishes no cluster name, keyword, example or facet share. {what} A floor this high "
            "needs more records (and more distinct users per topic); lower `privacy.min_users` / "
            "`privacy.min_records` only where the data's owner allows it.")


def null_users_note(inp: dict) -> str:
    """"; 75 records … one unknown user" where accepted records have a null user id (an analyst's review: a
    quarter of the records counted as one user for min_users, and only manifest.json said so). The release
    manifest has no null_users (a fact about single records), so its report says nothing."""
    n = int(inp.get("null_users") or 0)
    return f"; {n:,} records with a null user id count as one unknown user" if n else ""


def _input_line(inp: dict, noise: int | None = None) -> str:
    """The input's counts; a noised release states none of them exactly (only the noised total). `noise`: records
    HDBSCAN left in no cluster (review: a quarter of the records were noise and only manifest.json said so)."""
    return _counts_line(inp, noise) + _text_kind(inp)


_TEXT_KINDS = {"transcript": "each conversation's transcript (the assistant's turns and tool markers too)",
               "user turns": "the user's turns of each conversation alone"}


def _text_kind(inp: dict) -> str:
    """What of a conversation was clustered (input.conversation_text), for conversation input only."""
    kind = inp.get("text")
    return f"; clustered text: {_TEXT_KINDS.get(kind, kind)}" if kind else ""


def _counts_line(inp: dict, noise: int | None) -> str:
    if "accepted" not in inp:
        return (f"- Input: exact counts withheld (privacy.epsilon); noised total of clustered records "
                f"{inp.get('noised_total', 0):,}")
    split = (f"{inp['accepted']:,} accepted: {inp['accepted'] - noise:,} clustered, {noise:,} noise (HDBSCAN left them "
             f"in no cluster; every share below is of the clustered records)" if noise else
             f"{inp['accepted']:,} clustered")
    if "rows" not in inp:  # a release: rejected rows are facts about single records (analyst zone only)
        return f"- Input: {split}"
    return (f"- Input: {inp['rows']:,} rows, {split}, {inp['rejected']:,} rejected"
            + (" (" + ", ".join(f"{n:,} {k}" for k, n in inp["rejections"].items()) + ")" if inp["rejections"] else ""))


def _noise_line(priv: dict) -> str:
    """How the published counts were noised and what the whole run spent (sequential composition)."""
    noise = priv.get("noise")
    if not priv.get("epsilon"):
        return "off (exact counts behind the floors)"
    if not noise:
        return f"ε = {priv['epsilon']}"
    return (f"discrete Laplace, total ε = {noise['epsilon_total']:g} spent over {len(noise['queries'])} count "
            f"queries (sequential composition: ε = {noise['epsilon_per_query']:.4g} each), each user counted with at "
            f"most {noise['max_records_per_user']} records per table, noise scale {noise['scale']:.4g}; "
            "every published size, user count and share comes from the noised counts")

