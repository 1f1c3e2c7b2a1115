"""Shared fixtures: the data folder, GPU skipping, tiny random BERTs built from a config."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Noised runs draw with a random secret key per run directory (clio_engine.pipeline.noise_plan.run_key): the
# suite fixes it so that its noised runs are the same on every machine (tests of the key itself unset it).
os.environ.setdefault("CLIO_ENGINE_NOISE_KEY", "5eed" * 8)
DATA_DIR = Path(os.environ.get("CLIO_DATA_DIR", REPO.parent / "shared" / "data"))
# README's test command runs two pytest-xdist workers, one per core of the CI machine. Each computes on one
# thread: two workers of two threads each oversubscribed the cores (the heaviest tests ran 2.5x slower). Set
# before torch or numba is imported, and in the environment, so a test's subprocesses compute as it does (fp32
# results depend on the thread count). An explicit setting wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_name, "1")


# The longest test files first: README's command hands whole files to two workers in collection order
# (--dist loadfile --no-loadscope-reorder), so a long file collected last ran alone on one worker while the other
# sat idle (longest-processing-time-first ordering). Seconds per file from a CI run's --durations=0 (setup,
# call and teardown summed): refresh with `python -m tests.file_seconds LOG > tests/file_seconds.json`.
FILE_SECONDS = REPO / "tests" / "file_seconds.json"


def _longest_files_first(items) -> None:
    import json

    try:
        seconds = json.loads(FILE_SECONDS.read_text())
    except (OSError, ValueError):
        return
    order = {id(item): i for i, item in enumerate(items)}  # a stable sort: collection order within a weight
    items.sort(key=lambda item: (-seconds.get(item.nodeid.split("::", 1)[0], 0.0), order[id(item)]))


def pytest_collection_modifyitems(config, items):
    import torch

    _longest_files_first(items)

    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("OMP_NUM_THREADS") == "1":
        torch.set_num_threads(1)  # (in case a plugin imported torch before this file set the environment)

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; none is visible to torch on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data (or $CLIO_DATA_DIR); skips with the reason when it is absent."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"evaluation data folder {DATA_DIR} is absent (set CLIO_DATA_DIR to point at shared/data)")
    return DATA_DIR


def load_csv_texts(data_dir: Path, name: str, column: str = "text", limit: int | None = None) -> list[str]:
    import pandas as pd

    path = data_dir / name
    if not path.exists():
        pytest.skip(f"{path} is absent from the data folder")
    df = pd.read_csv(path, keep_default_na=False, nrows=limit)
    return df[column].astype(str).tolist()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium via Playwright (never a downloaded browser). Skips with the reason when
    either is missing, unless CLIO_BROWSER_REQUIRED is set (CI sets it once it has installed chromium)."""
    import shutil

    required = bool(os.environ.get("CLIO_BROWSER_REQUIRED"))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    path = os.environ.get("CLIO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if required:
            pytest.fail("CLIO_BROWSER_REQUIRED is set but no chromium is on PATH")
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT saved as a sentence-transformers directory (mean pooling,
    normalised), with the default model's WordPiece tokenizer so tokenization is realistic."""
    from tests.tiny_models import build_tiny_sentence_model

    return build_tiny_sentence_model(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory) -> Path:
    """A random 1-layer Llama model folder with a chat template (noise answers; loads in ~1 s), for tests of
    the local model's process wiring that SmolLM2 would slow by 20–40 s a load."""
    from tests.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_llm"))


# distributed's Nanny writes OMP/MKL/OPENBLAS_NUM_THREADS=1 into the parent's os.environ when it spawns a
# worker (the tests' own LocalCluster fixtures too) and never restores them: a later test's subprocess
# would then embed single-threaded, with other fp32 results than the test process
# (clio_engine.scale.dask_cluster.spawn_environ_kept does the same for the library's clusters).
_THREAD_ENV = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


@pytest.fixture(autouse=True)
def _thread_environ_restored():
    yield
    for name, value in _THREAD_ENV.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
