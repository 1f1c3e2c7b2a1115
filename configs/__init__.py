"""Shipped config presets (YAML), read with importlib.resources; this folder is `clio_engine.configs`."""
