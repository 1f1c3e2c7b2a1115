"""Cluster naming (SPEC §3 name): the `Namer` interface, the `keywords` strategy (contrastive c-TF-IDF, no LLM) and
the `phrases` strategy (user-backed phrases re-ranked by embedding contrast and MMR, no LLM)."""
from clio_engine.naming.keywords import (ClusterTerms, cluster_terms, contrastive_keywords, document_terms,
                                    names_from_keywords, terms_from_documents)
from clio_engine.naming.namer import KeywordNamer, Namer, NodeName
from clio_engine.naming.phrases import PhraseNamer
from clio_engine.naming.registry import NAMERS, register_namer

__all__ = ["Namer", "KeywordNamer", "PhraseNamer", "NodeName", "NAMERS", "register_namer", "cluster_terms", "contrastive_keywords", "names_from_keywords",
           "document_terms", "terms_from_documents", "ClusterTerms"]
