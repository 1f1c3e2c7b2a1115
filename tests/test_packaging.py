"""Packaging: every import package is listed and mapped under `clio_engine`, the wheel ships the presets
and explorer assets, and nothing installs a generic top-level `engine` or `kernels`.

The full user install (wheel into a fresh venv, `clio-engine demo` outside the repo) is `.ci/wheel_check.sh`,
which CI runs on every submission; here the wheel is built and its file list read, which is quick.
"""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"clio_engine": "engine", "clio_engine.kernels": "kernels", "clio_engine.configs": "configs"}
pytestmark = pytest.mark.unit


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _packages_on_disk() -> set[str]:
    found = set()
    for name, folder in FOLDERS.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root).parts
            if rel and ".".join([name, *rel]) in FOLDERS:
                continue  # mapped on its own (clio_engine.kernels lives in kernels/, not engine/kernels/)
            found.add(".".join([name, *rel]))
    return found


def test_package_dir_maps_the_users_folders():
    assert _setuptools()["package-dir"] == FOLDERS


# Folders of data only (no __init__.py), listed as packages so that setuptools ships their files quietly.
DATA_PACKAGES = {"clio_engine.economic.data": "engine/economic/data", "clio_engine.explorer.assets": "engine/explorer/assets"}


def test_every_package_folder_is_listed():
    listed = set(_setuptools()["packages"])
    assert listed == _packages_on_disk() | set(DATA_PACKAGES), "pyproject's packages must list every package folder"
    for name, folder in DATA_PACKAGES.items():
        files = list((REPO / folder).iterdir())
        assert files and not any(f.suffix == ".py" for f in files), folder
        assert _setuptools()["package-data"][name], name
    assert all(p == "clio_engine" or p.startswith("clio_engine.") for p in listed)


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = out.glob("clio_engine-*.whl")
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def test_wheel_has_no_generic_top_level_package(wheel_names):
    tops = {name.split("/")[0] for name in wheel_names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"clio_engine"}, tops


def test_wheel_ships_presets_and_explorer_assets(wheel_names):
    presets = {Path(n).stem for n in wheel_names if n.startswith("clio_engine/configs/") and n.endswith(".yaml")}
    assert {"default", "demo", "strict", "public"} <= presets
    assert {f"clio_engine/explorer/assets/explorer.{ext}" for ext in ("html", "css", "js")} <= set(wheel_names)
    assert "clio_engine/kernels/kmeans_assign/triton.py" in wheel_names


def test_presets_load_through_importlib_resources():
    from clio_engine.config import load_config, preset_names

    assert set(preset_names()) >= {"default", "demo", "strict", "public", "clio", "gpu"}
    assert load_config("demo").cluster.target_cluster_size == 25  # read from the package, not the cwd


def test_no_top_level_engine_or_kernels_importable_outside_repo(tmp_path):
    """Outside the checkout the install exposes neither name (a `kernels` found there is the PyPI distribution
    transformers 5.25 requires, never this repository's folder)."""
    code = ("import importlib.util as u; import clio_engine, clio_engine.kernels; k = u.find_spec('kernels');"
            "print(u.find_spec('engine') is None, k.origin if k else None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    engine_absent, kernels_origin = out.stdout.split()
    assert engine_absent == "True"
    ours = REPO / "kernels"
    assert kernels_origin == "None" or not Path(kernels_origin).resolve().is_relative_to(ours), kernels_origin


def test_the_checkouts_kernels_folder_never_shadows_the_pypi_kernels_package():
    """Run from a checkout (`python -m pytest`, `python -m clio_engine.cli`), the repository root is on sys.path
    and kernels/ was found as a top-level `kernels`. transformers 5.25 requires the PyPI distribution of that name
    and imports it while it loads a model: every model load from the checkout failed with "cannot import name
    'CUDAProperties' from 'kernels'" (seen in CI the day 5.25 came out). Imported as `kernels`, the folder must
    hand over to that distribution, or fail as if it were not there."""
    probe = ("import importlib.metadata as md, sys\n"
             "try:\n    import kernels\nexcept ModuleNotFoundError:\n    kernels = None\n"
             "try:\n    md.version('kernels')\n    installed = True\n"
             "except md.PackageNotFoundError:\n    installed = False\n"
             "print(installed, getattr(kernels, '__file__', None))\n"
             "from transformers.integrations import hub_kernels\n")  # the import that failed
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    installed, origin = proc.stdout.split()[-2:]
    assert origin == "None" or not Path(origin).resolve().is_relative_to(REPO / "kernels"), origin
    assert (origin != "None") == (installed == "True"), proc.stdout  # the distribution, where it is installed
