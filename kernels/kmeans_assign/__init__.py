"""Nearest-centroid assignment: labels[i] = argmin_k ||x_i − c_k||², without an N×K matrix in memory.

    reference.py  readable numpy spec, float64, chunks of rows      assign_reference
    cpu.py        torch GEMM per chunk; fp32, or bf16 + fp32 re-check   assign_cpu
                  plain chunked torch on any device (the GPU peer)      assign_torch = assign_torch_gpu
    triton.py     fused GEMM + argmin Triton kernel                     assign_triton

Every version returns (labels int64 [N], min_sqdist float32 [N]); ties go to the lowest k.

This module is the one dispatcher: `assigner(device, k, d)` picks the version for a device and
applies the precision policy (`cpu_precision`: bf16 GEMM + exact fp32 re-check on CPUs that multiply
bf16 natively, when K·D is large enough to pay for the re-check); `assign(x, centers)` is the
one-call form. The estimators (engine/cluster) reach the kernels only through here. Triton is
imported only when CUDA data (or backend="triton") asks for it.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
from typing import Callable

import torch

from .cpu import assign_cpu, assign_torch, bf16_margin, sqnorm
from .reference import assign_reference

log = logging.getLogger("clio_engine.kernels.kmeans_assign")
BACKENDS = ("auto", "cpu", "triton", "torch")
PRECISIONS = ("auto", "fp32", "bf16")
# Below this K·D the GEMM is too small for bf16 to pay for its fp32 re-check (measured on the 2-core
# AVX-512-BF16 CPU with kernels/kmeans_assign benchmarks).
BF16_MIN_WORK = 64 * 384

Assign = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

__all__ = ["assign", "assigner", "cpu_precision", "assign_cpu", "assign_reference", "assign_torch", "bf16_margin", "sqnorm",
           "assign_torch_gpu", "assign_triton", "BACKENDS", "PRECISIONS", "BF16_MIN_WORK"]


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def assign_triton(*args, **kwargs):
    """`triton.assign_triton`, imported on first use so that CPU-only callers never load Triton."""
    from .triton import assign_triton as fn

    return fn(*args, **kwargs)


# The GPU peer is device-agnostic and lives in cpu.py, so it works without triton installed.
assign_torch_gpu = assign_torch


def cpu_precision(k: int, d: int, precision: str = "auto") -> str:
    """The bf16 policy, in one place: "auto" → "bf16" where the CPU multiplies bf16 natively
    (AVX-512-BF16 / AMX) and K·D ≥ BF16_MIN_WORK, else "fp32". An explicit value is returned as is."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if precision != "auto":
        return precision
    from clio_engine.device import cpu_has_fast_bf16   # lazy: engine imports kernels, not the reverse

    return "bf16" if cpu_has_fast_bf16() and k * d >= BF16_MIN_WORK else "fp32"


def assigner(device: torch.device | str, k: int, d: int, *, backend: str = "auto",
             precision: str = "auto") -> Assign:
    """The assignment function `(x [N, D], centers [K, D]) -> (labels [N], sqdist [N])` for data on
    `device` with K centers of dimension D.

    backend "auto": CPU → `assign_cpu` at `cpu_precision(k, d, precision)`; CUDA → `assign_triton`
    (chunked torch GEMMs when Triton is not installed, logged once). "cpu", "triton", "torch" force
    a version. precision applies to the CPU kernel; on CUDA the GEMM runs in x's dtype.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    on_cuda = torch.device(device).type == "cuda"
    if backend == "auto":
        if not on_cuda:
            backend = "cpu"
        elif triton_available():
            backend = "triton"
        else:
            _log_once("triton is not installed; assigning with chunked torch GEMMs on the GPU")
            backend = "torch"
    if backend == "cpu":
        return functools.partial(assign_cpu, precision=cpu_precision(k, d, precision))
    if precision == "bf16":
        raise ValueError(f"precision='bf16' selects the CPU kernel's bf16 GEMM; backend {backend!r} "
                         "multiplies in x's dtype (pass bf16 tensors instead)")
    return assign_triton if backend == "triton" else assign_torch


def assign(x, centers, *, backend: str = "auto", precision: str = "auto", **kwargs):
    """Nearest centre per row, on x's device. x: [N, D]; centers: [K, D].

    Dispatches through `assigner` (backend and precision as there); other keyword arguments go to
    the chosen function. Returns (labels int64 [N], min_sqdist float32 [N]).
    """
    device = getattr(x, "device", torch.device("cpu"))
    k, d = (int(s) for s in centers.shape) if len(centers.shape) == 2 else (0, 0)
    return assigner(device, k, d, backend=backend, precision=precision)(x, centers, **kwargs)


_logged: set[str] = set()


def _log_once(reason: str) -> None:
    if reason not in _logged:
        _logged.add(reason)
        log.info(reason)
