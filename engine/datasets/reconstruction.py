"""Clio's synthetic check: how well clusters reconstruct the generator's known topics.

Reconstruction accuracy at a label level = the share of records whose cluster's majority label is their
own label (each cluster is read as its most common true label, many clusters may map to one label).
Clio reports 94% for its synthetic set, judging each record's base cluster against the true topic.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def reconstruction_accuracy(truth, clusters) -> float:
    """Share of records [N] whose cluster's majority true label equals their own (clusters < 0 skipped)."""
    truth = np.asarray(truth)
    clusters = np.asarray(clusters, dtype=np.int64)
    keep = clusters >= 0
    if not keep.any():
        return float("nan")
    _, t = np.unique(truth[keep], return_inverse=True)
    _, c = np.unique(clusters[keep], return_inverse=True)
    # Sparse contingency table [clusters, labels]: at Clio's scale both axes run to the thousands.
    table = sp.coo_matrix((np.ones(len(c), np.int64), (c, t)), shape=(c.max() + 1, t.max() + 1)).tocsr()
    return float(table.max(axis=1).sum() / keep.sum())
