"""Backend choice for the clustering estimators (SPEC §5).

`backend`: `auto | cuml | torch | cpu`; `device`: `auto | cpu | cuda | cuda:N`, honoured exactly.
`auto` tries cuML (when importable and a GPU is present), then our torch path on CUDA, then the CPU
path. A backend that cannot serve a call raises
`UnsupportedOnBackend(reason)`; under `auto` the reason is logged once and the next backend is tried.
An explicit request that cannot be honoured is an error, never a silent fallback.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
from typing import Callable, TypeVar

import torch

from clio_engine.errors import ConfigError, UnsupportedOnBackend

log = logging.getLogger("clio_engine.cluster")
BACKENDS = ("auto", "cuml", "torch", "cpu")
T = TypeVar("T")
_logged: set[str] = set()


@functools.lru_cache(maxsize=1)
def cuml_available() -> bool:
    """cuML importable and a CUDA GPU visible (import is lazy: nothing imports cuML at module load)."""
    return importlib.util.find_spec("cuml") is not None and torch.cuda.is_available()


def check_device(device) -> str:
    """`auto | cpu | cuda | cuda:N` → the same string, validated. An explicit CUDA device that torch
    cannot see (no GPU, or index N ≥ the number of GPUs) is a ConfigError, never a silent fallback."""
    text = str(device)
    if text in ("auto", "cpu"):
        return text
    if text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {text!r} was requested but torch sees no CUDA GPU")
        if text != "cuda" and int(text[5:]) >= torch.cuda.device_count():
            raise ConfigError(f"device {text!r} was requested but torch sees {torch.cuda.device_count()} "
                              "CUDA GPU(s)")
        return text
    raise ConfigError(f"device must be auto, cpu, cuda or cuda:N; got {device!r}")


def torch_device(device) -> torch.device:
    """The torch device a torch-backed fit runs on: `auto` → cuda when torch sees a GPU, else cpu;
    an explicit device exactly as given (`cuda:1` stays `cuda:1`)."""
    text = check_device(device)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(text)


def candidates(backend: str, device: str = "auto") -> list[str]:
    """Backends to try, in order, for a requested `backend` and `device` (auto | cpu | cuda[:N])."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "cpu" and str(device).startswith("cuda"):
        raise ConfigError(f"backend 'cpu' cannot run on device {device!r}; use backend 'auto' or 'torch'")
    if backend == "cuml" and device == "cpu":
        raise ConfigError("backend 'cuml' cannot run on device 'cpu'")
    device = check_device(device)
    gpu = torch.cuda.is_available()
    if backend == "cuml":
        if importlib.util.find_spec("cuml") is None:
            raise ConfigError("backend 'cuml' was requested but cuML is not installed (pip install 'clio-engine[cuml]')")
        if not gpu:
            raise ConfigError("backend 'cuml' was requested but torch sees no CUDA GPU")
        return ["cuml"]
    if backend != "auto":
        return [backend]
    if device == "cpu":
        return ["cpu"]
    order = (["cuml"] if cuml_available() else []) + (["torch"] if gpu else [])
    return order + ["cpu"] if device == "auto" else order or ["torch"]


def check_cuml_device(device) -> None:
    """cuML runs on the current CUDA device; an explicit other index cannot be honoured by it."""
    text = check_device(device)
    if text.startswith("cuda:") and int(text[5:]) != torch.cuda.current_device():
        raise UnsupportedOnBackend(f"cuML runs on the current CUDA device ({torch.cuda.current_device()}), "
                                   f"not the requested {text}")


def dispatch(backend: str, device: str, attempts: dict[str, Callable[[], T]]) -> tuple[str, T]:
    """Run the first backend in `candidates(backend, device)` that serves the call.

    attempts: backend name → zero-argument callable doing the work (absent = not implemented).
    Returns (backend used, result). Under `auto`, an UnsupportedOnBackend is logged once per reason
    and the next backend is tried; for an explicit backend it propagates.
    """
    order = [b for b in candidates(backend, device) if b in attempts]
    if not order:
        raise ConfigError(f"no implementation for backend {backend!r} on device {device!r}")
    for i, name in enumerate(order):
        try:
            return name, attempts[name]()
        except UnsupportedOnBackend as exc:
            if backend != "auto" or i == len(order) - 1:
                raise
            message = f"backend {name} cannot serve this call ({exc.reason}); falling back to {order[i + 1]}"
            if message not in _logged:
                _logged.add(message)
                log.warning(message)
    raise AssertionError("unreachable")
