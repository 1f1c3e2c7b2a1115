"""Input checks shared by every estimator: one place, one wording."""
from __future__ import annotations

import numpy as np
import torch

from clio_engine.errors import InputError

# Rows per finiteness check: bounds the temporary boolean block, so a memmap is never loaded whole.
CHECK_ROWS = 65_536


def check_matrix(X, name: str = "X"):
    """X → [N, D] real matrix. numpy/memmap inputs stay numpy (memmaps are not copied; integers
    become float64, float16 float32); torch tensors stay on their device. Raises InputError for a
    wrong shape, N = 0, D = 0, a non-numeric dtype, or a NaN/inf (naming the first bad row)."""
    if isinstance(X, torch.Tensor):
        X = X.detach()
        if X.is_complex() or X.dtype == torch.bool:
            raise InputError(f"{name} must be a real numeric matrix; got dtype {X.dtype}")
        if not X.is_floating_point():
            X = X.double()
    else:
        X = np.asarray(X)
        if X.dtype.kind not in "fiub":
            raise InputError(f"{name} must be a numeric array; got dtype {X.dtype}")
        if X.dtype.kind != "f":
            X = X.astype(np.float64)
        elif X.dtype == np.float16:
            X = X.astype(np.float32)
    if X.ndim != 2:
        raise InputError(f"{name} must be a 2-D array [N, D]; got shape {tuple(X.shape)}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{name} must have at least one row and one column; got shape {tuple(X.shape)}")
    for start in range(0, X.shape[0], CHECK_ROWS):
        block = X[start:start + CHECK_ROWS]
        bad = ~(torch.isfinite(block).all(dim=1) if isinstance(block, torch.Tensor) else np.isfinite(block).all(axis=1))
        if bad.any():
            raise InputError(f"{name} row {start + int(bad.nonzero()[0][0])} contains NaN or inf")
    return X
