"""The published tables of a run: assignments, clusters, facets, the published tree and report.md.

Only published nodes carry names, keywords, examples, counts and centroids (a parent's from its published
children only: none where no child is published). Unpublished nodes appear in
clusters.parquet as bare ids (published = false) and their records are counted in their parent's
"Other in <parent>" row, whose counts show only where the bucket itself passes the thresholds.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from clio_engine.aggregate import cluster_shares
from clio_engine.runfiles import node_id, other_id  # noqa: F401  (ids are a run-directory convention)


def assignments_table(records, base_labels: np.ndarray, labels: list[np.ndarray], published: list[np.ndarray],
                      users: np.ndarray | None = None, keys: np.ndarray | None = None) -> pa.Table:
    """Every input row (by input `row`): id, status, reason, base cluster, one node per level, published, and
    with `users` [N accepted] the user code of each accepted record (null for rejected rows), so that
    `clio-engine compare` resamples users, not records; with `keys` [N accepted] each accepted record's
    `record_key` (a hash of its id, user id and text: `clio_engine.pipeline.overlap`)."""
    n_levels = len(labels)
    acc = records.table
    rej = records.rejected
    n_acc, n_rej = acc.num_rows, rej.num_rows
    noise = base_labels < 0
    status = np.where(noise, "noise", "clustered").astype(object)
    columns = {
        "row": np.concatenate([acc.column("row").to_numpy(), rej.column("row").to_numpy()]).astype(np.int64),
        "id": pa.concat_arrays([acc.column("id").combine_chunks().cast(pa.string()),
                                rej.column("id").combine_chunks().cast(pa.string())]),
        "status": pa.array(list(status) + ["rejected"] * n_rej, pa.string()),
        "reason": pa.array([("HDBSCAN noise" if x else None) for x in noise] + rej.column("reason").to_pylist(), pa.string()),
    }
    for level in range(n_levels):
        lab = labels[level]
        mask = np.concatenate([noise, np.ones(n_rej, bool)])
        columns[f"level_{level}"] = pa.array(np.concatenate([lab, np.zeros(n_rej, np.int64)]), pa.int64(), mask=mask)
    pub = np.zeros(n_acc, bool)
    pub[~noise] = published[0][base_labels[~noise]]
    columns["published"] = pa.array(np.concatenate([pub, np.zeros(n_rej, bool)]), pa.bool_())
    if users is not None:
        columns["user"] = pa.array(np.concatenate([np.asarray(users, np.int64), np.zeros(n_rej, np.int64)]),
                                   pa.int64(), mask=np.concatenate([np.zeros(n_acc, bool), np.ones(n_rej, bool)]))
    if keys is not None:
        columns["record_key"] = pa.array(np.concatenate([np.asarray(keys, np.uint64), np.zeros(n_rej, np.uint64)]),
                                         pa.uint64(), mask=np.concatenate([np.zeros(n_acc, bool), np.ones(n_rej, bool)]))
    table = pa.table(columns)
    return table.take(np.argsort(columns["row"], kind="stable"))


def clusters_table(tree, pubs, names, facet_json: dict[tuple[int, int], str], min_users: int, total: int) -> pa.Table:
    """One row per node at every level, plus one "Other in <parent>" row per parent with hidden children.

    `total`: clustered records (noise excluded), the denominator of `share`; `share_of_parent` divides
    by the parent's reported size (sizes are Laplace-noised where the run has epsilon).
    """
    rows = []
    n_levels = tree.n_levels
    total = max(int(total), 1)
    centroids = reported_centroids(tree, pubs)
    for level in range(n_levels):
        pub = pubs[level]
        parent = tree.levels[level].parent
        share = pub.reported_records / total
        if level + 1 < n_levels:
            _, share_parent = cluster_shares(pub.reported_records, parent, pubs[level + 1].reported_records)
        else:
            share_parent = share
        for i in range(len(pub.published)):
            p = int(parent[i])
            row = _empty_row(node_id(level, i), level, i, node_id(level + 1, p) if p >= 0 else None, "cluster")
            if pub.published[i]:
                nm = names[level][i]
                row.update(name=nm.name, description=nm.description, keywords=list(nm.keywords),
                           examples=list(nm.examples), size=int(pub.reported_records[i]),
                           users=int(pub.reported_users[i]), share=float(share[i]),
                           share_of_parent=float(share_parent[i]) if p >= 0 else float(share[i]), published=True,
                           facet_shares=facet_json.get((level, i), "{}"),
                           centroid=_vector(centroids[level][i]))
            rows.append(row)
        # "Other" buckets: hidden children of each published parent (the root at the top level).
        for j in np.flatnonzero(pub.other_records > 0):
            top = level == n_levels - 1
            parent_id = None if top else node_id(level + 1, int(j))
            parent_ok = True if top else bool(pubs[level + 1].published[j])
            if not parent_ok:
                continue  # an unpublished parent's Other would name it
            parent_name = None if top else names[level + 1][int(j)].name
            row = _empty_row(other_id(level, None if top else int(j)), level, None, parent_id, "other")
            row["name"] = "Other" if top else f"Other in {parent_name}"
            row["description"] = (f"Clusters below the privacy threshold ({min_users} users), rolled up.")
            if pub.other_published[j]:
                size = int(pub.reported_other_records[j])
                # No users: with the hidden children's count (their bare ids) and their records, the distinct
                # users told which floor each child failed, and so bounded every child's size below the record
                # floor (a review's attack: 2 children, 26 records, 22 users → 12–14 records each).
                row.update(size=size, share=size / total, published=True,
                           share_of_parent=(size / max(int(pubs[level + 1].reported_records[j]), 1)) if not top else size / total)
            rows.append(row)
    return pa.Table.from_pylist(rows, schema=CLUSTER_SCHEMA)


def reported_centroids(tree, pubs) -> list[np.ndarray]:
    """Per level, [n_nodes, D] float32 centroids as published: the base clusters' own, and each parent's the
    mean of its *published* children's weighted by their *reported* sizes (renormalised when the children are
    unit). A row of NaN: no centroid (an unpublished node, or a parent none of whose children has one).

    Published children only (a review's attack): a parent's centroid over every child, minus its published
    children's (size × centroid), gave the hidden children's summed embedding, i.e. what the Other row's
    clusters are about (cosine 0.99 to it; ranking texts by it put their records first). Reported sizes, not
    exact ones: with privacy.epsilon an exact-weighted parent centroid would undo the noise (least squares of
    it on its published children's centroids gives their exact size ratios). `audit.centroids` checks both."""
    out = [np.where(np.asarray(pubs[0].published, bool)[:, None], np.asarray(tree.levels[0].centroid, np.float64),
                    np.nan)]
    for level in range(1, tree.n_levels):
        children, parent = out[-1], np.asarray(tree.levels[level - 1].parent)
        n = len(tree.levels[level].centroid)
        shown = ~np.isnan(children).any(axis=1)  # published children that carry a centroid
        weights = np.where(shown, np.maximum(np.asarray(pubs[level - 1].reported_records, np.float64), 0.0), 0.0)
        vectors = np.where(shown[:, None], children, 0.0)
        summed, total, count = np.zeros((n, children.shape[1])), np.zeros(n), np.zeros(n)
        np.add.at(summed, parent, vectors * weights[:, None])
        np.add.at(total, parent, weights)
        np.add.at(count, parent, shown.astype(np.float64))
        unweighted = np.zeros_like(summed)  # a parent whose shown children were all noised to zero: their mean
        np.add.at(unweighted, parent, vectors)
        means = np.where(total[:, None] > 0, summed / np.maximum(total, 1e-300)[:, None],
                         unweighted / np.maximum(count, 1)[:, None])
        if np.allclose(np.linalg.norm(children[shown], axis=1), 1.0, atol=1e-3):
            means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        keep = (count > 0) & np.asarray(pubs[level].published, bool)
        out.append(np.where(keep[:, None], means, np.nan))
    return [c.astype(np.float32) for c in out]


def published_centroid_tree(tree, pubs):
    """The tree with every level's centroids as published (`reported_centroids`): what the namers rank phrases,
    pick neighbours and choose examples by. The exact parent centroids hold hidden children, and a name chosen
    by them told a little of what those are about (a review: 4 of 19 parents named otherwise). A node with no
    centroid takes its nearest ancestor's, else zeros (an unpublished node: it is never named)."""
    from dataclasses import replace

    centroids = [c.astype(np.float64) for c in reported_centroids(tree, pubs)]
    for level in range(len(centroids) - 1, -1, -1):
        missing = np.isnan(centroids[level]).any(axis=1)
        if level + 1 < len(centroids):
            parent = np.asarray(tree.levels[level].parent)
            inherit = missing & (parent >= 0)
            centroids[level][inherit] = centroids[level + 1][parent[inherit]]
        centroids[level][np.isnan(centroids[level]).any(axis=1)] = 0.0
    levels = [replace(lv, centroid=c.astype(np.asarray(lv.centroid).dtype)) for lv, c in zip(tree.levels, centroids)]
    return replace(tree, levels=levels)


def _vector(row: np.ndarray) -> list[float] | None:
    """A centroid row as a list, or None where it is NaN (no published child to take one from)."""
    return None if np.isnan(row).any() else row.tolist()


CLUSTER_SCHEMA = pa.schema([
    ("id", pa.string()), ("level", pa.int32()), ("index", pa.int64()), ("parent", pa.string()), ("kind", pa.string()),
    ("name", pa.string()), ("description", pa.string()), ("keywords", pa.list_(pa.string())),
    ("examples", pa.list_(pa.string())), ("size", pa.int64()), ("users", pa.int64()), ("share", pa.float64()),
    ("share_of_parent", pa.float64()), ("published", pa.bool_()), ("facet_shares", pa.string()),
    ("centroid", pa.list_(pa.float32())),
])


def _empty_row(id_, level, index, parent, kind) -> dict:
    return dict(id=id_, level=level, index=index, parent=parent, kind=kind, name=None, description=None,
                keywords=None, examples=None, size=None, users=None, share=None, share_of_parent=None,
                published=False, facet_shares=None, centroid=None)


def facet_json(facets: pa.Table) -> dict[tuple[int, int], str]:
    """{(level, node): '{"language": {"en": 0.8, "(suppressed)": 0.2}, ...}'} from the long facets table."""
    grouped: dict[tuple[int, int], dict[str, dict[str, float]]] = {}
    for r in facets.to_pylist():
        cell = grouped.setdefault((r["level"], r["node"]), {}).setdefault(r["facet"], {})
        cell["(suppressed)" if r["suppressed"] else r["value"]] = round(r["share"], 6)
    return {k: json.dumps(v, sort_keys=False, ensure_ascii=False) for k, v in grouped.items()}


def published_tree(clusters: pa.Table, tree) -> dict:
    """tree.json: the tree of published nodes and "Other" rows only, loadable with `Tree.from_dict`.

    Node order per level follows clusters.parquet; `parent` indexes the next level's list. An "Other"
    node has no centroid of its own (that would summarise hidden records): it carries its parent's, and so
    does a node none of whose children is published (the nearest ancestor's that has one; zeros if none).
    """
    rows = [r for r in clusters.to_pylist() if r["published"]]
    by_level: dict[int, list[dict]] = {}
    for r in rows:
        by_level.setdefault(r["level"], []).append(r)
    n_levels = tree.n_levels
    position = {r["id"]: i for lv in by_level.values() for i, r in enumerate(lv)}
    dim = tree.levels[0].centroid.shape[1]
    centroid_of = {r["id"]: r["centroid"] for r in rows}  # an Other row's parent is a published cluster
    parent_of = {r["id"]: r["parent"] for r in rows}

    def centroid(r):
        """Its own, else its nearest ancestor's that has one (never one made from hidden records), else zeros."""
        node = r["id"]
        while node is not None:
            if centroid_of.get(node) is not None:
                return centroid_of[node]
            node = parent_of.get(node)
        return [0.0] * dim
    levels, nodes = [], []
    for level in range(n_levels):
        lv = by_level.get(level, [])
        parents = [position.get(r["parent"], -1) if r["parent"] else -1 for r in lv]
        centroids = [centroid(r) for r in lv]
        levels.append({"parent": parents, "size": [r["size"] for r in lv], "centroid": centroids})
        nodes.append([{k: r[k] for k in ("id", "kind", "name", "description", "keywords", "size", "users", "share",
                                         "share_of_parent")} for r in lv])
    return {"strategy": tree.strategy, "levels": levels, "nodes": nodes}
