"""Point-counting attack: count the map's points per node in explorer.html's embedded data.

Any point drawn for a node without a published size (an unpublished cluster, or an "Other" bucket whose
count is suppressed) gives its count away (a sample of it, when the map is sampled); with noise
(`privacy.epsilon`), point counts that vary across published nodes and differ from their published noised
sizes give the true sizes away (the same number of marks for every published node is no count).
Every HTML file outside private/ with embedded data is read (the analyst and the public explorer).

The public explorer (release/explorer.html) draws "marks" instead: {"node", "x", "y", "r", "size"}, one
disc per published base cluster, its area proportional to the published size. A mark is a violation when
it belongs to a node whose count is not published (an unpublished cluster, a suppressed "Other" bucket,
a node the page does not list), when one node has more than one mark (marks per record count its
records), when its `size` is not the node's published size, or when its radius does not follow the
published size (r² ∝ size across the page: a radius drawn from the true count gives that count away).
And a page in a release directory (manifest zone "release") holds no per-record points at all.
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
        out += _marks(view.rel(path), data, status)
        if (view.manifest or {}).get("zone") == "release" and (data.get("points") or {}).get("node"):
            out.append(Violation(ATTACK, view.rel(path), "points",
                                 f"{len(data['points']['node'])} per-record points in a release page "
                                 "(the public explorer draws one mark per published cluster)"))
    return out


def _published_size(i: int, ids: list, sizes: list, status: dict):
    """The published size of page node i: from the directory's clusters table where it lists the node
    (None when it is not published there), else the page's own node table."""
    row = status.get(ids[i])
    if row is not None:
        return row.get("size") if row.get("published") else None
    return sizes[i] if i < len(sizes) else None


def _marks(name: str, data: dict, status: dict) -> list[Violation]:
    marks = data.get("marks") or {}
    node_col = marks.get("node") or []
    if not node_col:
        return []
    nodes = data["nodes"]
    ids, sizes = nodes.get("id", []), nodes.get("size", [])
    size_col, r_col = marks.get("size") or [], marks.get("r") or []
    out: list[Violation] = []
    published: dict[int, object] = {}
    for i, n in sorted(Counter(int(i) for i in node_col).items()):
        if not 0 <= i < len(ids):
            out.append(Violation(ATTACK, name, f"mark node #{i}", f"{n} marks of a node the page does not list"))
            continue
        size = published[i] = _published_size(i, ids, sizes, status)
        if size is None:
            out.append(Violation(ATTACK, name, f"node {ids[i]}", f"{n} mark(s) of a node whose count is not published"))
        elif n > 1:
            out.append(Violation(ATTACK, name, f"node {ids[i]}",
                                 f"{n} marks for one node: marks per record count its records"))
    fit = []  # (radius, published size) of marks of published nodes
    for k, i in enumerate(node_col):
        size = published.get(int(i))
        if size is None:
            continue
        if k < len(size_col) and size_col[k] is not None and size_col[k] != size:
            out.append(Violation(ATTACK, name, f"node {ids[int(i)]}",
                                 f"a mark of size {size_col[k]} where the published size is {size}"))
        if k < len(r_col) and isinstance(r_col[k], (int, float)) and size > 0:
            fit.append((float(r_col[k]), float(size), ids[int(i)]))
    if len(fit) >= 2:
        import statistics

        c = statistics.median(r / s ** 0.5 for r, s, _ in fit)
        for r, s, nid in fit:
            if abs(r - c * s ** 0.5) > 0.5 + 0.01 * r:
                out.append(Violation(ATTACK, name, f"node {nid}",
                                     f"a mark of radius {r:g} where its published size {s:g} gives {c * s ** 0.5:.1f}: "
                                     "the radius follows another count"))
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
