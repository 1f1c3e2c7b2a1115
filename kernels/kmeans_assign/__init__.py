"""Nearest-centroid assignment: labels[i] = argmin_k ||x_i − c_k||², without an N×K matrix in memory.

    reference.py  readable numpy spec, float64, chunks of rows      assign_reference
    cpu.py        torch GEMM per chunk; fp32, or bf16 + fp32 re-check   assign_cpu
                  plain chunked torch on any device (the GPU peer)      assign_torch = assign_torch_gpu
    triton.py     fused GEMM + argmin Triton kernel                     assign_triton

Every version returns (labels int64 [N], min_sqdist float32 [N]); ties go to the lowest k.
Triton is imported only when a CUDA tensor (or backend="triton") asks for it.
"""
from __future__ import annotations

import importlib.util
import logging

from .cpu import assign_cpu, assign_torch
from .reference import assign_reference

log = logging.getLogger("clio_engine.kernels.kmeans_assign")
BACKENDS = ("auto", "cpu", "triton", "torch")

__all__ = ["assign", "assign_cpu", "assign_reference", "assign_torch", "assign_torch_gpu", "assign_triton",
           "BACKENDS"]


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def assign_triton(*args, **kwargs):
    """`triton.assign_triton`, imported on first use so that CPU-only callers never load Triton."""
    from .triton import assign_triton as fn

    return fn(*args, **kwargs)


# The GPU peer is device-agnostic and lives in cpu.py, so it works without triton installed.
assign_torch_gpu = assign_torch


def assign(x, centers, *, backend: str = "auto", **kwargs):
    """Nearest centre per row, on x's device. x: [N, D]; centers: [K, D].

    backend: "auto" (CPU data → `assign_cpu`; CUDA tensors → `assign_triton`, or chunked torch GEMM
    when triton is not installed, logged once), "cpu", "triton", "torch". Keyword arguments go to
    the chosen function. Returns (labels int64 [N], min_sqdist float32 [N]).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    on_cuda = getattr(getattr(x, "device", None), "type", "cpu") == "cuda"
    if backend == "auto":
        if not on_cuda:
            backend = "cpu"
        elif triton_available():
            backend = "triton"
        else:
            _log_once("triton is not installed; assigning with chunked torch GEMMs on the GPU")
            backend = "torch"
    fn = {"cpu": assign_cpu, "triton": assign_triton, "torch": assign_torch}[backend]
    return fn(x, centers, **kwargs)


_logged: set[str] = set()


def _log_once(reason: str) -> None:
    if reason not in _logged:
        _logged.add(reason)
        log.info(reason)
