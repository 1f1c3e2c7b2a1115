"""Aggregates over published clusters (SPEC §3 aggregate): facet shares per cluster, cluster shares."""
from clio_engine.aggregate.facets import MISSING, cluster_shares, facet_shares

__all__ = ["facet_shares", "cluster_shares", "MISSING"]
