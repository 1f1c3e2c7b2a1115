"""Cluster hierarchies (SPEC §3 hierarchy): a value-object tree, bottom-up builders and the registry of
grouping strategies (`hierarchy.mode`)."""
from clio_engine.hierarchy.build import (HIERARCHY_STRATEGIES, CentroidStrategy, ChildNodes, Grouping, Strategy,
                                         build_hierarchy, grouping_settings, idle_levels, level_sizes,
                                         register_hierarchy)
from clio_engine.hierarchy.grouping import (AgglomerativeStrategy, NameEmbeddingStrategy, agglomerate,
                                            recommended_strategy)
from clio_engine.hierarchy.clio import ClioStrategy  # registers hierarchy.mode: clio
from clio_engine.hierarchy.tree import Level, Tree

__all__ = ["build_hierarchy", "level_sizes", "idle_levels", "grouping_settings", "CentroidStrategy", "Strategy",
           "ChildNodes", "Grouping",
           "HIERARCHY_STRATEGIES", "register_hierarchy", "Tree", "Level",
           "AgglomerativeStrategy", "NameEmbeddingStrategy", "agglomerate", "recommended_strategy", "ClioStrategy"]
