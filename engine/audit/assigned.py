"""An assign run beside its reference run: the base clusters the reference hides are empty in the assign run.

`clio-engine assign` joins records only to the clusters its reference run published (README, "Over time"), and
its release says it keeps the reference's tree (manifest `stages.hierarchy.strategy`: "reference"). So whoever
holds both releases knows that every base cluster the reference hides has size 0 in the assign run. Those
zeros, added to the assign run's own equations (`differencing`), can pin a count that its audit alone leaves
open: a parent's "Other in" row whose other hidden children are all such empty clusters is one cluster's size
(found by a review, session 56; the engine now counts no empty part as an unknown,
`privacy.complementary.protect_groups`). This is the same system the single-release audit solves, with the
zeros fixed.

A view is taken for the reference of an assign run when it is no assign run itself, lists the same level-0
cluster ids, and publishes every base cluster the assign run publishes (the assign run's records sit only in
clusters the reference published).
"""
from __future__ import annotations

from clio_engine.audit.differencing import _Tree, cell_finding, facet_system, facet_values
from clio_engine.audit.files import RunView, Violation
from clio_engine.audit.joint import base_sizes
from clio_engine.lp_bounds import LP, verdict

ATTACK = "differencing-with-reference"


def is_assign_run(view: RunView) -> bool:
    """Whether the view's manifest says it kept an earlier run's tree (`hierarchy.mode: reference`)."""
    manifest = view.manifest if isinstance(view.manifest, dict) else {}
    hierarchy = (manifest.get("stages") or {}).get("hierarchy") or {}
    return isinstance(hierarchy, dict) and hierarchy.get("strategy") == "reference"


def empty_in(assigned: RunView, reference: RunView) -> set[str] | None:
    """Level-0 ids the reference hides (so empty in the assign run), or None where `reference` cannot be the
    assign run's reference (see the module docstring)."""
    if is_assign_run(reference):
        return None
    sa, sr = base_sizes(assigned), base_sizes(reference)
    if sa is None or sr is None or sa.keys() != sr.keys():
        return None
    if any(sa[k] is not None and sr[k] is None for k in sa):
        return None  # the assign run publishes a cluster this view hides: not its reference
    return {k for k, size in sr.items() if size is None}


def attack(views: list[RunView], labels: list[str], already: set[tuple[int, str]] = frozenset()) -> list[Violation]:
    """What each assign run among `views` gives away once its reference's hidden clusters are known empty.
    `labels` [R]: how each view is named in a violation's file; `already`: (view index, where) its own audit
    reported."""
    out: list[Violation] = []
    for i, view in enumerate(views):
        if not is_assign_run(view) or not view.clusters:
            continue
        for j, reference in enumerate(views):
            if j == i or (empty := empty_in(view, reference)) is None or not empty:
                continue
            with_ref = f"with {labels[j]} (its reference: the clusters it hides are empty here)"
            out += [v for v in _sizes(view, labels[i], empty, with_ref) if (i, v.where) not in already]
            for facet in sorted({r["facet"] for r in view.facets or ()}):
                out += [v for v in _cells(view, labels[i], facet, empty, with_ref) if (i, v.where) not in already]
            break  # one reference is enough: every one fixes the same zeros
    return out


def _zeroed(view: RunView, empty: set[str]) -> tuple[LP, _Tree]:
    lp = LP()
    tree = _Tree(view, lp)
    for nid in empty:
        if nid in tree.size:
            lp.fix(tree.size[nid], 0.0, 0.0)
    return lp, tree


def _sizes(view: RunView, label: str, empty: set[str], with_ref: str) -> list[Violation]:
    lp, tree = _zeroed(view, empty)
    targets = [nid for nid in tree.targets if nid not in empty]
    modes = {tree.size[nid]: "total" if nid in tree.rests else "node" for nid in targets}
    bounds = lp.solve(modes, view.min_records)
    if bounds is None:
        return []  # the zeros contradict the release: not its reference after all
    return [Violation(ATTACK, f"{label}/{view.clusters_file}", f"node {nid}", f"size {why}, {with_ref}")
            for nid in targets
            if bounds[tree.size[nid]] is not None
            and (why := verdict(*bounds[tree.size[nid]], view.min_records, modes[tree.size[nid]]))]


def _cells(view: RunView, label: str, facet: str, empty: set[str], with_ref: str) -> list[Violation]:
    lp, tree = _zeroed(view, empty)
    _, targets = facet_system(view, facet, lp, tree, facet_values(view, facet))
    targets = [t for t in targets if not any(t[1].startswith(f"node {e} ") for e in empty)]
    bounds = lp.solve({var: mode for var, _, mode in targets}, view.min_records)
    if bounds is None:
        return []
    return [Violation(ATTACK, f"{label}/{view.facets_file}", where, f"{cell_finding(where, mode, why)}, {with_ref}")
            for var, where, mode in targets
            if bounds[var] is not None and (why := verdict(*bounds[var], view.min_records, mode))]
