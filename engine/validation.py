"""Input and parameter checks shared by every estimator: one place, one wording.

Messages use scikit-learn's phrasing where its estimator checks look for it ("Reshape your data",
"0 feature(s) (shape=...)", "is expecting N features as input", "sparse", "Complex data not
supported"), so `parametrize_with_checks` and users see the same words.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from clio_engine.errors import ConfigError, InputError
from clio_engine.segments import release

# Rows per finiteness check: bounds the temporary boolean block, so a memmap is never loaded whole.
CHECK_ROWS = 65_536
# Default of the deprecated `seed=` alias: a string, so get_params/clone keep working (sklearn's own
# convention for a parameter on its way out).
SEED_DEPRECATED = "deprecated"


def check_matrix(X, name: str = "X"):
    """X → [N, D] real matrix. numpy/memmap inputs stay numpy (memmaps are not copied, read-only
    ones stay read-only; integers become float64, float16 float32); torch tensors stay on their
    device. Raises InputError for sparse or complex input, a wrong shape, N = 0, D = 0, a non-numeric
    dtype, or a NaN/inf (naming the first bad row); TypeError for objects that are not numbers."""
    if sp.issparse(X):
        raise InputError(f"{name} is a sparse matrix; sparse input is not supported, pass a dense array "
                         f"({name}.toarray())")
    if isinstance(X, torch.Tensor):
        X = X.detach()
        if X.is_complex():
            raise InputError(f"{name}: Complex data not supported (dtype {X.dtype})")
        if X.dtype == torch.bool:
            raise InputError(f"{name} must be a real numeric matrix; got dtype {X.dtype}")
        if not X.is_floating_point():
            X = X.double()
    else:
        # A memmap stays a memmap (np.asarray would drop the subclass): the streamed passes then read it a
        # chunk at a time and release its pages, instead of treating a 15 GB file as one resident array.
        X = X if isinstance(X, np.memmap) else np.asarray(X)
        if X.dtype.kind == "c":
            raise InputError(f"{name}: Complex data not supported (dtype {X.dtype})")
        if X.dtype.kind == "O":
            X = X.astype(np.float64)   # numbers held as objects; anything else raises numpy's TypeError
        if X.dtype.kind not in "fiub":
            raise InputError(f"{name} must be a numeric array; got dtype {X.dtype}")
        if X.dtype.kind != "f":
            X = X.astype(np.float64)
        elif X.dtype == np.float16:
            X = X.astype(np.float32)
    if X.ndim != 2:
        hint = " Reshape your data: X.reshape(-1, 1) for one feature, X.reshape(1, -1) for one sample." \
            if X.ndim == 1 else ""
        raise InputError(f"{name} must be a 2-D array [N, D]; got shape {tuple(X.shape)}.{hint}")
    shape = tuple(X.shape)
    if X.shape[0] == 0:
        raise InputError(f"{name} must have at least one row: 0 sample(s) (shape={shape}) while a "
                         "minimum of 1 is required.")
    if X.shape[1] == 0:
        raise InputError(f"{name} must have at least one column: 0 feature(s) (shape={shape}) while a "
                         "minimum of 1 is required.")
    for start in range(0, X.shape[0], CHECK_ROWS):
        block = X[start:start + CHECK_ROWS]
        bad = ~(torch.isfinite(block).all(dim=1) if isinstance(block, torch.Tensor) else np.isfinite(block).all(axis=1))
        if bad.any():
            raise InputError(f"{name} row {start + int(bad.nonzero()[0][0])} contains NaN or inf")
        release(block)  # a memmap's checked pages leave the RSS (else a 15 GB file ends 15 GB resident)
    return X


def is_int(value) -> bool:
    """A Python or numpy integer, not a bool (bool is an int subclass, but n_clusters=True is a mistake)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_no_zero_rows(X, name: str = "X") -> None:
    """InputError naming the first all-zero row of X [N, D] (streamed): under metric='cosine' such a row
    has no direction (the wording HDBSCAN uses)."""
    for start in range(0, X.shape[0], CHECK_ROWS):
        block = X[start:start + CHECK_ROWS]
        zero = ~(block != 0).any(dim=1) if isinstance(block, torch.Tensor) else ~np.asarray(block != 0).any(axis=1)
        if zero.any():
            raise InputError(f"{name} row {start + int(zero.nonzero()[0][0])} is all zeros; metric='cosine' "
                             "needs a direction")
        release(block)


def check_n_features(X, estimator, name: str = "X") -> None:
    """InputError when X [M, D] has a different D than the fitted `estimator.n_features_in_`."""
    expected = estimator.n_features_in_
    if X.shape[1] != expected:
        raise InputError(f"{name} has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
                         f"{expected} features as input")


def validate_random_state(random_state):
    """ConfigError unless random_state is None, an int ≥ 0, a Generator or a RandomState; returns it
    unchanged (nothing is drawn, so a shared Generator is not advanced)."""
    if random_state is None or isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state >= 0:
        return random_state
    raise ConfigError("random_state must be None, an integer ≥ 0, a numpy Generator or a RandomState; "
                      f"got {random_state!r}")


def check_random_state(random_state) -> np.random.Generator:
    """scikit-learn's `random_state` as a numpy Generator: None → fresh OS entropy (differs per call);
    int ≥ 0 → reproducible; a Generator is used (and advanced) as is; a RandomState seeds a new
    Generator from its stream (so it advances too, as sklearn's own estimators do)."""
    validate_random_state(random_state)
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**32, size=4, dtype=np.uint64))
    return np.random.default_rng(int(random_state))


def int_seed(random_state) -> int:
    """An integer seed for code that takes only ints (torch generators, cuML, umap-learn): an int is
    passed through unchanged, anything else draws one from `check_random_state(random_state)`."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(validate_random_state(random_state))
    return int(check_random_state(random_state).integers(2**31 - 1))


def resolve_random_state(random_state, seed, owner: str):
    """The effective random_state given the deprecated alias `seed` (SEED_DEPRECATED when absent).
    Warns (FutureWarning) when `seed` is used; ConfigError when both are given."""
    if isinstance(seed, str) and seed == SEED_DEPRECATED:
        return validate_random_state(random_state)
    if random_state is not None:
        raise ConfigError(f"{owner}: pass random_state only; seed= is its deprecated alias, not both")
    warnings.warn(f"{owner}(seed=...) is deprecated and will be removed in the next release; "
                  "use random_state=", FutureWarning, stacklevel=3)
    return validate_random_state(seed)
