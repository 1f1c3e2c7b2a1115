"""HDBSCAN (euclidean) in kernels: core distances, MST over mutual reachability, labels from the MST.

    reference.py  readable numpy float64 spec of the whole algorithm, O(N²)    hdbscan_reference,
                  (the `hdbscan` library's exact path, quirks included)        core_distances_reference,
                                                                               mst_reference, labels_reference
    cpu.py        core distances + Borůvka MST on a KD-tree (numba)            hdbscan_mst, core_distances,
                                                                               mutual_reachability_mst
    triton.py     the GPU version of the core distances and MST
    tree.py       MST → labels + probabilities, numba, O(N log N)              labels_from_mst

Submodules are imported on use (numba loads slowly): `from clio_engine.kernels.hdbscan.tree import
labels_from_mst`.
"""
