"""The built-in stages, one module each, registered in dependency order on import (SPEC §3):

records → facets → embed → reduce? → cluster → hierarchy → privacy → names → aggregate → economic? → map? → outputs

A new stage is a module (here or anywhere) that calls `register_stage(Stage(...))` after its upstream stages.
"""
import importlib

BUILTIN = ("records", "facets", "embed", "reduce", "cluster", "hierarchy", "privacy", "names", "aggregate", "economic", "map", "outputs")
for _name in BUILTIN:  # in this order: a stage registers after its upstream
    importlib.import_module(f"{__name__}.{_name}")
importlib.import_module("clio_engine.pipeline.reference")  # the `reference` strategies of clio-engine assign
