"""Cluster naming (SPEC §3 name). This far: the `keywords` strategy (contrastive c-TF-IDF, no LLM)."""
from engine.naming.keywords import ClusterTerms, cluster_terms, contrastive_keywords, names_from_keywords

__all__ = ["cluster_terms", "contrastive_keywords", "names_from_keywords", "ClusterTerms"]
