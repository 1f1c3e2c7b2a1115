"""`clio_engine.kernels`: the GPU kernels, each beside its readable reference (`hdbscan/`, `kmeans_assign/`).

Installed, this folder is only ever `clio_engine.kernels`. In a checkout, though, Python puts the repository root on
sys.path whenever it runs from there (`python -m pytest`, `python -m clio_engine.cli`), and this folder is then also
found as a top-level `kernels`: the name of a PyPI distribution that transformers (5.25 and later) requires and
imports while it loads a model, which failed with "cannot import name 'CUDAProperties' from 'kernels'". Imported
under that name, the folder hands the import over to that distribution, or fails as if the folder were not there.
"""
if __name__ == "kernels":
    import importlib.machinery
    import importlib.util
    import os
    import sys

    def _elsewhere() -> list[str]:
        """sys.path without the folder this one sits in (the checkout's root)."""
        root = os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return [p for p in sys.path if isinstance(p, str) and os.path.realpath(p or os.curdir) != root]

    _spec = importlib.machinery.PathFinder.find_spec("kernels", _elsewhere())
    if _spec is None or _spec.loader is None:
        raise ModuleNotFoundError("No module named 'kernels'", name="kernels")
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["kernels"] = _module  # the import statement returns what sys.modules holds once this file ends
    _spec.loader.exec_module(_module)
