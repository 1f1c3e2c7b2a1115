"""Cluster hierarchies (SPEC §3 hierarchy): a value-object tree and bottom-up builders."""
from clio_engine.hierarchy.build import CentroidStrategy, Strategy, build_hierarchy, level_sizes
from clio_engine.hierarchy.tree import Level, Tree

__all__ = ["build_hierarchy", "level_sizes", "CentroidStrategy", "Strategy", "Tree", "Level"]
