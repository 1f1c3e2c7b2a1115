"""`clio-engine audit DIR`: re-run the privacy contract's attacks (SPEC §4) on a run or release directory.

Reads only the files of the directory (never `private/`), the way someone who received them would:
- `groupby`: per-record tables (e.g. assignments.parquet) and the counts a group-by of them yields;
- `points`: marks and points in explorer.html's embedded data, counted per node;
- `differencing`: LP bounds (HiGHS, through scipy) on every suppressed count given all published numbers
  (clusters and facet tables, tree.json, the explorer's node table, aggregates.csv), plus the fractional
  attack on full-precision shares; and for the Economic Index rows (`economic`), whole − published parts
  for tasks, collaboration modes, geographies and each task's collaboration cells;
- `centroid-weights`: a parent's published centroid must be its children's weighted by their published sizes
  (weighted by exact sizes under noise, least squares gives the exact sizes back); and a release must carry
  no base cluster's centroid (the normalised sum of its members' embeddings: given all members' texts but
  one, it gives the last one's embedding). A release without centroids leaves it nothing to check;
- `unchecked-file`: an array or per-record binary (.npy, .pt, .feather, a pickle, …) anywhere outside
  `private/`, which no other attack reads, and in a release any file of a kind the audit does not check;
- `canary`: planted tokens (`--canary-file`) in any file outside `private/`;
- `pii`: what the scrubber's rules replace (e-mail, phone, card, address, …) in published cluster names,
  descriptions, keywords, examples and facet values: the engine scrubs them all, so a hit is an edited file
  or a bypassed rule;
- `differencing-across-releases` (`audit_together`, `clio-engine audit DIR DIR ...`): the differencing LP of
  several releases of one base clustering at once (another hierarchy or other floors hide other siblings:
  a base cluster one hides only by secondary suppression, the other publishes).

`audit(path)` returns the violations found (an empty list = clean); the CLI prints one line each and
exits 4 when there are any. `audit_together(paths)`: each directory's, then those only the set gives.
"""
from __future__ import annotations

from pathlib import Path

from clio_engine.audit.files import MARKERS, RunView, Violation, load_view
from clio_engine.errors import InputError

ATTACKS = ("group-by", "point-counting", "differencing", "centroid-weights", "unchecked-file", "canary", "pii",
           "differencing-across-releases")

__all__ = ["ATTACKS", "RunView", "Violation", "audit", "audit_together", "load_view"]


def audit(path, *, min_users: int | None = None, min_records: int | None = None,
          canaries: list[str] | None = None) -> list[Violation]:
    """All violations found in the directory `path` (InputError when it is not a run or release dir)."""
    from clio_engine.audit import canary, centroids, differencing, economic, groupby, pii, points, unchecked

    view = load_view(Path(path), min_users=min_users, min_records=min_records)
    release = Path(path) / "release"
    nested = release.is_dir() and any((release / m).exists() for m in MARKERS)
    if nested:  # a run dir's release/ is audited on its own below: its tables are not attacked twice
        view.tables = {k: t for k, t in view.tables.items() if not k.startswith("release/")}
    found: list[Violation] = []
    found += groupby.attack(view)
    found += points.attack(view)
    found += differencing.attack(view)
    found += economic.attack(view)
    found += centroids.attack(view)
    found += unchecked.attack(view)
    found += pii.attack(view)
    if canaries:
        found += canary.attack(view, canaries)
    if nested:  # a run dir's release/: audited on its own too
        found = [v for v in found if not v.file.startswith("release/")]  # (its files were read as loose files above)
        found += [Violation(v.attack, f"release/{v.file}", v.where, v.what)
                  for v in audit(release, min_users=view.min_users, min_records=view.min_records, canaries=canaries)]
    return found


def audit_together(paths, *, min_users: int | None = None, min_records: int | None = None,
                   canaries: list[str] | None = None) -> list[Violation]:
    """Every directory's own violations (`audit`; each file named as "<path>/<file>"), then those that only
    the directories together give (`joint`): the sizes and cells of releases of one base clustering in one LP; and
    an assign run's own equations with the clusters its reference (given beside it) hides fixed empty
    (`assigned`). A run directory is read as its top-level files (its release/ holds the same numbers)."""
    from clio_engine.audit import assigned, joint

    paths = [Path(p) for p in paths]
    if len(set(paths)) != len(paths):
        raise InputError("audit: a directory is named twice")
    found: list[Violation] = []
    already: set[tuple[int, str]] = set()
    for i, path in enumerate(paths):
        for v in audit(path, min_users=min_users, min_records=min_records, canaries=canaries):
            found.append(Violation(v.attack, f"{path}/{v.file}", v.where, v.what))
            if v.attack == "differencing":
                already.add((i, v.where))
    views = [load_view(p, min_users=min_users, min_records=min_records) for p in paths]
    labels = [str(p) for p in paths]
    return found + joint.attack(views, labels, already) + assigned.attack(views, labels, already)
