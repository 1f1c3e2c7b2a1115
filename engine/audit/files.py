"""What the audit reads: the published files of a run or release directory, loaded once."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from clio_engine.errors import InputError
from clio_engine.explorer.page import page_data

PRIVATE = "private"
NOT_CLASSIFIED = "not_classified"  # the Economic Index's row of a table's hidden values (economic.aggregates)
MARKERS = ("manifest.json", "clusters.parquet", "tree.json", "aggregates.csv", "explorer.html")


@dataclass(frozen=True)
class Violation:
    attack: str  # one of clio_engine.audit.ATTACKS
    file: str  # path relative to the audited directory
    where: str  # node, cell or row
    what: str  # what was derived

    def __str__(self) -> str:
        return f"{self.attack}: {self.file}: {self.where}: {self.what}"


@dataclass
class RunView:
    root: Path
    min_users: int
    min_records: int
    epsilon: float | None
    manifest: dict | None
    clusters: list[dict] | None  # clusters.parquet rows (every node, published or not, and Other rows)
    clusters_file: str | None  # the file `clusters` came from (clusters.parquet or tree.json)
    facets: list[dict] | None  # facets.parquet rows
    tables: dict[str, list[dict]] = field(default_factory=dict)  # every other table (parquet/csv), by relative path
    facets_file: str = "facets.parquet"  # the file `facets` came from
    tree_complete: bool | None = None  # `clusters` lists every node (None: when it came from clusters.parquet)
    noise_scale: float | None = None  # manifest privacy.noise.scale: the largest per-query Laplace scale b
    # Whole-run records per value of a facet that another table publishes (aggregates.csv: records per
    # country, per collaboration mode), and the whole-run record count it gives: a value's total minus the
    # top nodes' shown cells of it bounds their hidden ones.
    facet_totals: dict[str, dict[str, float]] = field(default_factory=dict)
    usage_total: float | None = None
    # The same tables' not_classified rows: the summed records of the values a table does not list.
    facet_not_classified: dict[str, float] = field(default_factory=dict)

    @property
    def noise_bound(self) -> float:
        """How far a published count may sit from the exact one: 0 without noise; else ceil(ln(1000)·b), b the
        manifest's `privacy.noise.scale` (or 1/ε where the manifest has no noise plan): the discrete Laplace
        noise of scale b stays inside it with probability ≥ 0.999."""
        if self.epsilon is None and self.noise_scale is None:
            return 0.0
        scale = self.noise_scale if self.noise_scale is not None else 1.0 / self.epsilon
        return float(math.ceil(math.log(1000) * scale))

    @property
    def is_run(self) -> bool:
        """A run directory: its manifest is a run's (a config, no release zone). Anything else is read as a
        release, which leaves the building (a release killed before its manifest was written too)."""
        m = self.manifest if isinstance(self.manifest, dict) else {}
        return "config" in m and m.get("zone") != "release"

    def files(self) -> list[Path]:
        """Every file the attacks read, sorted: in a run directory, all but its own private/ zone; in a release,
        all (a red team copied a run's private/ into release/private/, and a run written into release/extra kept
        its own there: both were skipped, and the audit said clean)."""
        def own_private(parts: tuple[str, ...]) -> bool:
            return self.is_run and len(parts) > 1 and parts[0] == PRIVATE

        return sorted(p for p in self.root.rglob("*")
                      if p.is_file() and not own_private(p.relative_to(self.root).parts))

    def read_here(self, path: Path) -> bool:
        """Whether the attacks read `path` as a table: in a release only where a release keeps its files (its
        top level); any other file there is an `unchecked-file` violation, read by nothing (a copied
        private/assignments.parquet would be millions of rows)."""
        return self.is_run or len(path.relative_to(self.root).parts) == 1

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def load_view(root: Path, *, min_users: int | None = None, min_records: int | None = None) -> RunView:
    if not root.is_dir():
        raise InputError(f"{root} is not a directory")
    if not any((root / m).exists() for m in MARKERS):
        raise InputError(f"{root} is not a run or release directory (none of {', '.join(MARKERS)})")
    manifest = _json(root / "manifest.json")
    privacy = (manifest or {}).get("privacy") or {}
    mu = min_users if min_users is not None else privacy.get("min_users")
    mr = min_records if min_records is not None else privacy.get("min_records")
    if mu is None or mr is None:
        raise InputError(f"{root}: no privacy floors (manifest.json's privacy.min_users/min_records); "
                         "pass --min-users and --min-records")
    eps = privacy.get("epsilon")
    noise = privacy.get("noise") if isinstance(privacy.get("noise"), dict) else {}
    if not eps and noise.get("epsilon_total"):
        eps = noise["epsilon_total"]
    scale = noise.get("scale")
    if scale is None and noise.get("queries"):  # the plan's largest per-query scale
        scales = [q.get("scale") for q in noise["queries"] if isinstance(q, dict) and q.get("scale") is not None]
        scale = max(scales) if scales else None
    view = RunView(root, int(mu), int(mr), float(eps) if eps else None, manifest, None, None, None,
                   noise_scale=float(scale) if scale is not None and eps else None)
    for path in view.files():
        if (path.suffix == ".parquet" or path.name.endswith(".csv")) and view.read_here(path):
            view.tables[view.rel(path)] = read_table(path)
    if "clusters.parquet" in view.tables:
        view.clusters, view.clusters_file = view.tables["clusters.parquet"], "clusters.parquet"
    elif (root / "tree.json").exists():
        view.clusters, view.clusters_file = rows_from_tree(_json(root / "tree.json")), "tree.json"
    elif (root / "explorer.html").exists():
        view.clusters, view.clusters_file = rows_from_page(explorer_data(root / "explorer.html")), "explorer.html"
    view.facets = view.tables.get("facets.parquet")
    for rows in view.tables.values():
        _read_facet_totals(rows, view)
    _name_collaboration_totals(view)
    return view


def _name_collaboration_totals(view: RunView) -> None:
    """The Economic Index keys the modes' table "collaboration"; the cluster facet is the column it read
    (`economic.collaboration_column`, in the manifest): its totals are that facet's."""
    stages = (view.manifest or {}).get("stages") if isinstance(view.manifest, dict) else None
    column = ((stages or {}).get("economic") or {}).get("collaboration_column") if isinstance(stages, dict) else None
    if not isinstance(column, str) or column == "collaboration" or "collaboration" not in view.facet_totals:
        return
    view.facet_totals.setdefault(column, view.facet_totals["collaboration"])
    if "collaboration" in view.facet_not_classified:
        view.facet_not_classified.setdefault(column, view.facet_not_classified["collaboration"])


def _total_of(r: dict) -> tuple[str, object] | None:
    """(facet, value) when an aggregates.csv row gives a facet value's whole-run records: usage per code of a
    geography column, whatever its name (`economic.geography_columns`), or `<facet>_count` of one facet."""
    geography, facet, variable = r.get("geography"), r.get("facet"), r.get("variable")
    if not facet or "::" in str(facet):
        return None
    if geography == facet and variable == "usage_count":
        return str(facet), r.get("geo_id")
    if geography == "global" and variable == f"{facet}_count":
        return str(facet), r.get("cluster_name")
    return None


def _read_facet_totals(rows: list[dict], view: RunView) -> None:
    if not rows or not {"geography", "facet", "variable", "value"} <= set(rows[0]):
        return
    for r in rows:
        try:
            value = float(r["value"])
        except (TypeError, ValueError):
            continue
        found = _total_of(r)
        if found is not None and str(found[1]) == NOT_CLASSIFIED:  # not a value: the unlisted values' sum
            view.facet_not_classified[found[0]] = value
        elif found is not None and found[1] is not None:
            view.facet_totals.setdefault(found[0], {})[str(found[1])] = value
        elif (r.get("geography"), r.get("facet"), r.get("variable")) == ("global", "total", "usage_count"):
            view.usage_total = value


def read_table(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as e:  # noqa: BLE001 — any unreadable file is bad input, named
            raise InputError(f"{path}: not a readable Parquet file ({e})") from None
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _json(path: Path):
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None


def rows_from_tree(tree: dict | None) -> list[dict] | None:
    """tree.json (published nodes only) → clusters-like rows with parent ids (no unpublished rows)."""
    if not tree or "levels" not in tree or "nodes" not in tree:
        return None
    rows = []
    for level, (lv, nodes) in enumerate(zip(tree["levels"], tree["nodes"])):
        up = tree["nodes"][level + 1] if level + 1 < len(tree["nodes"]) else []
        centroids = lv.get("centroid") or [None] * len(nodes)
        for node, parent, centroid in zip(nodes, lv["parent"], centroids):
            rows.append(dict(id=node["id"], level=level, kind=node.get("kind", "cluster"), name=node.get("name"),
                             parent=up[parent]["id"] if 0 <= parent < len(up) else None,
                             size=node.get("size"), users=node.get("users"), share=node.get("share"),
                             share_of_parent=node.get("share_of_parent"), published=True, centroid=centroid))
    return rows


def explorer_data(path: Path) -> dict | None:
    """The JSON blob embedded in explorer.html (<script type="application/json" id="clio-data">)."""
    try:
        return page_data(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError:
        return None


def rows_from_page(data: dict | None) -> list[dict] | None:
    """The explorer's node table (published nodes and Other rows) → clusters-like rows with parent ids."""
    nodes = (data or {}).get("nodes")
    if not nodes or "id" not in nodes:
        return None
    ids = nodes["id"]

    def col(name, i):
        values = nodes.get(name) or []
        return values[i] if i < len(values) else None
    rows = []
    for i, nid in enumerate(ids):
        parent = col("parent", i)
        size = col("size", i)
        rows.append(dict(id=nid, level=col("level", i), kind="other" if col("other", i) else "cluster", name=col("name", i),
                         parent=ids[parent] if isinstance(parent, int) and 0 <= parent < len(ids) else None,
                         size=size, users=col("users", i), share=col("share", i), share_of_parent=col("sop", i),
                         published=size is not None))
    return rows
