"""Clustering estimators: k-means and HDBSCAN on CPU, CUDA (torch/Triton) or cuML (SPEC §3, §5)."""
from clio_engine.cluster.kmeans import KMeans

__all__ = ["KMeans", "HDBSCAN"]


def __getattr__(name: str):
    if name == "HDBSCAN":  # its module imports the hdbscan library: load on first use
        from clio_engine.cluster.hdbscan import HDBSCAN

        return HDBSCAN
    raise AttributeError(name)
