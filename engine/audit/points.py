"""Point-counting attack: count the map's points per node in explorer.html's embedded data.

Any point drawn for a node without a published size (an unpublished cluster, or an "Other" bucket whose
count is suppressed) gives its count away (a sample of it, when the map is sampled); with noise
(`privacy.epsilon`), point counts that vary across published nodes and differ from their published noised
sizes give the true sizes away (the same number of marks for every published node is no count).
Every HTML file outside private/ with embedded data is read (the analyst and the public explorer).
"""
from __future__ import annotations

from collections import Counter

from clio_engine.audit.files import RunView, Violation, explorer_data

ATTACK = "point-counting"


def attack(view: RunView) -> list[Violation]:
    out: list[Violation] = []
    status = {r["id"]: r for r in view.clusters or []}
    for path in view.files():
        if path.suffix.lower() not in (".html", ".htm"):
            continue
        data = explorer_data(path)
        if not data or "nodes" not in data:
            continue
        out += _count(view, view.rel(path), data, status)
    return out


def _count(view: RunView, name: str, data: dict, status: dict) -> list[Violation]:
    nodes = data["nodes"]
    ids, sizes = nodes.get("id", []), nodes.get("size", [])
    pts = (data.get("points") or {}).get("node") or []
    counts = Counter(int(i) for i in pts)
    sampled = (data.get("meta") or {}).get("sampled") or False
    # The same number of marks for every published node (a fixed draw per cluster) says nothing about sizes.
    shown = {n for i, n in counts.items() if 0 <= i < len(sizes) and sizes[i] is not None}
    uniform = len(shown) <= 1
    out = []
    for i, n in sorted(counts.items()):
        if not 0 <= i < len(ids):
            out.append(Violation(ATTACK, name, f"point node #{i}", f"{n} points of a node the page does not list"))
            continue
        nid, size = ids[i], sizes[i] if i < len(sizes) else None
        row = status.get(nid)
        unpublished = size is None or (row is not None and not row.get("published"))
        if unpublished:
            low = " (below the floor)" if n < view.min_records else ""
            out.append(Violation(ATTACK, name, f"node {nid}",
                                 f"{n} points of a node whose count is not published{low}"
                                 + (" (sampled map)" if sampled else "")))
        elif view.epsilon is not None and not sampled and not uniform and n != size:
            out.append(Violation(ATTACK, name, f"node {nid}",
                                 f"{n} points give the true size behind the noised published size {size}"))
    return out
