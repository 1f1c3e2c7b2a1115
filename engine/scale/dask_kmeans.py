"""Distributed Lloyd k-means on a `dask.distributed` cluster (SPEC §7): the same labels as the
single-process `clio_engine.cluster.kmeans.kmeans` from the same initial centres.

    with client_for(cfg.compute) as client:
        result = dask_kmeans(client, "embeddings.npy", 1000, random_state=0)   # LloydResult

Layout. X [N, D] is cut into partitions of a whole number of `CHUNK_ROWS` rows, so each worker streams
exactly the row chunks the single-process loop streams, through the same `Rows` and the same
`assigner`: every row's GEMM, label and distance are those of the single-process run. A `.npy` file
(a path, or a memmap opened from one) is opened by the workers themselves, each reading its row range;
an in-memory array is scattered once, one float32 block per partition; a dask array is rechunked and
persisted on the workers.

State. Each partition's labels [n] int64 and sqdist [n] float32 live on its worker as the result of
that partition's previous step task: step i takes step i-1's future as an argument (pinned, loosely,
to the partition's worker, where the data already is), so nothing per-row travels. The driver holds
the centres [K, D] and receives only the tree-reduced (pairwise futures) partial sums [K, D] float64,
weights [K], the count of changed labels and the inertia. Only when some cluster is empty does it ask
each partition for its top-m farthest rows (m = the number of empty clusters) and re-seed exactly as
`lloyd._reseed_empty` does over the full sqdist.

Exactness. Labels and per-chunk sums equal the single-process ones bit for bit; the chunk sums are
added in a different (tree) order in float64, so centres agree to ~1e-16 relative before the float32
rounding, and a label can only differ at an exact tie of two float32 distances. Backend "cuml" hands
the fit to `cuml.dask.cluster.KMeans` (its own algorithm: same parameters, not the same labels).

Frame. Euclidean fits run, as `KMeans` does, on X mapped by a `rows.Frame` (weighted column mean, power-
of-two scale) in float64 before the float32 cast: float32 ‖x‖² − 2x·c + ‖c‖² on raw rows far from the
origin, or at extreme magnitudes, loses the clusters. The frame comes from one float64 pass on the
workers (per-chunk sums, min and max, added in row order as `Frame.of` adds them); in-memory and dask
blocks are then replaced on their workers by their float32 image, file-backed partitions map each chunk
as they read it. Centres come back in X's coordinates (float64 for float64 X) with the exact float64
inertia. Cosine fits (unit rows) need no frame and run as before.

A worker lost mid-fit takes its partitions' state with it: the call fails and is rerun from the start
(a k-means fit has no partial result worth resuming). The tasks each worker runs on its partition are in
`clio_engine.scale.dask_kmeans_tasks`.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import operator
import os
from dataclasses import dataclass

import numpy as np
import torch

from clio_engine.cluster import kmeans_init
from clio_engine.cluster.kmeans import INITS, _validate_weights
from clio_engine.cluster.lloyd import LloydResult, _reseed_empty, iterate, updated_centers
from clio_engine.cluster.rows import CHUNK_ROWS, Frame
from clio_engine.errors import ConfigError, InputError, UnsupportedOnBackend
from clio_engine.scale.dask_kmeans_tasks import (_count_task, _cupy_block, _far_task, _frame_task, _framed_block,
                                                 _inertia_task, _lloyd_task, _mindist_task, _npy_meta, _sample_task,
                                                 _stats_task, _take_task, _worker_has_cuda)
from clio_engine.validation import check_random_state, int_seed

log = logging.getLogger("clio_engine.scale")
BACKENDS = ("auto", "torch", "cpu", "cuml")
# k-means|| (as kmeans_init.kmeans_parallel): sampling rounds and expected candidates per round / k.
PARALLEL_ROUNDS = 5  # k-means|| rounds (the oversampling factor is the tasks' OVERSAMPLING)


def dask_kmeans(client, X, n_clusters: int, *, init="k-means++", max_iter: int = 300, tol: float = 1e-4,
                spherical: bool = False, random_state=None, weights=None, partition_rows: int | None = None,
                backend: str = "auto") -> LloydResult:
    """k-means of X [N, D] on the workers of `client`; returns labels [N] int64, centres [K, D] in X's
    coordinates (float64 for float64 X, else float32), inertia and n_iter, as `KMeans(n_clusters, init=...,
    n_init=1, ...).fit(X)` does (euclidean: in a `rows.Frame`, exact float64 inertia).

    X: a `.npy` path, a memmap opened from a `.npy` (workers open the file), a numpy array or torch
    tensor (scattered in partitions) or a dask array. init: "k-means++" (single-process greedy k-means++
    on a sample of rows pulled from the workers), "k-means||" (distributed), "random", or an array
    [K, D] used as is.
    tol is scaled by the mean column variance as in `kmeans`. weights: optional [N] sample weights.
    partition_rows: rows per partition, rounded up to a multiple of CHUNK_ROWS (default: N over the
    cluster's threads). backend: "torch" (workers use CUDA when they see a GPU, else the CPU), "cpu",
    "cuml" (`cuml.dask.cluster.KMeans`), "auto" (cuml when importable and every worker has a GPU, with
    a logged fallback to torch when cuML cannot serve the call; else torch).
    """
    _check_params(n_clusters, init, max_iter, tol, partition_rows, backend)
    rng = check_random_state(random_state)
    parts = _Partitions.open(client, X, partition_rows, spherical, n_clusters)
    try:
        if n_clusters > parts.n:
            raise InputError(f"n_clusters={n_clusters} is larger than the number of samples ({parts.n})")
        if not isinstance(init, str):
            init = _check_init_array(init, n_clusters, parts.d)
        w = _validate_weights(weights, parts.n)
        parts.scatter_weights(w)
        chosen, gpus = _resolve_backend(client, backend)
        parts.device = "cuda" if gpus and chosen != "cpu" else "cpu"
        # k-means is translation- and scale-equivariant: fit in the frame, map the results back (as KMeans)
        frame = None if spherical else parts.enter_frame()   # also the NaN/inf check of X
        scaled_tol = parts.mean_column_variance() * tol   # in the frame; the NaN/inf/zero-row check when spherical
        if frame is not None and not isinstance(init, str):
            init = frame.apply(torch.from_numpy(init), name="init").float().numpy()
        result = None
        if chosen == "cuml":
            try:
                result = _fit_cuml(parts, n_clusters, init, max_iter, tol, spherical, w, rng)
            except UnsupportedOnBackend as e:
                if backend == "cuml":
                    raise
                log.info("dask k-means: cuml.dask cannot serve this call (%s); using torch on the workers", e.reason)
        if result is None:
            centers = _initial_centers(parts, n_clusters, w, init, rng)
            if spherical:
                centers = torch.nn.functional.normalize(centers, dim=1)
            result = _lloyd(parts, centers, max_iter=max_iter, tol=scaled_tol, spherical=spherical)
        if frame is not None:
            result.centers = torch.from_numpy(frame.restore(result.centers).astype(parts.out_dtype))
            result.inertia /= frame.scale ** 2
        return result
    finally:
        parts.release()


# ---------------------------------------------------------------------------------------- the loop
def _lloyd(parts: "_Partitions", centers: torch.Tensor, *, max_iter: int, tol: float, spherical: bool) -> LloydResult:
    """`lloyd.lloyd` step for step, with the assignment pass spread over the partitions."""
    states = [None] * len(parts.parts)
    inertia = 0.0

    def step() -> tuple[float, int]:
        nonlocal states, centers, inertia
        states, (sums, counts, changed, inertia) = parts.assign(centers, states, accumulate=True)
        sums, counts = torch.from_numpy(sums), torch.from_numpy(counts)
        if bool((counts == 0).any()):
            parts.reseed(states, sums, counts)
        centers, shift = updated_centers(sums, counts, centers, spherical)
        log.debug("dask k-means: %d labels changed, shift %.3g", changed, shift)
        return shift, changed

    converged_strictly, n_iter = iterate(step, max_iter=max_iter, tol=tol)
    if not converged_strictly:  # labels must match the final centres
        states, (_, _, _, inertia) = parts.assign(centers, states, accumulate=False)
    return LloydResult(parts.labels(states), centers, parts.inertia(states, centers, inertia), n_iter)


def _initial_centers(parts: "_Partitions", k: int, weights, init, rng) -> torch.Tensor:
    if not isinstance(init, str):
        return torch.as_tensor(init, dtype=torch.float32).clone()
    if init == "k-means++":   # kmeans_init.kmeans_plusplus, pulling only the sampled rows
        limit = max(kmeans_init.KMEANSPP_MIN_SAMPLE, kmeans_init.KMEANSPP_PER_CENTER * k)
        index = np.sort(rng.choice(parts.n, size=limit, replace=False)) if parts.n > limit else np.arange(parts.n)
        w = None if weights is None else weights[torch.as_tensor(index)]
        return kmeans_init.greedy_kmeans_plusplus(parts.take(index), k, w, rng)
    if init == "k-means||":
        return _kmeans_parallel(parts, k, weights, rng)
    index = rng.choice(parts.n, size=k, replace=False, p=kmeans_init._probabilities(weights, parts.n))
    return parts.take(index)


def _kmeans_parallel(parts: "_Partitions", k: int, weights, rng) -> torch.Tensor:
    """kmeans_init.kmeans_parallel distributed: each round every partition updates its rows' distance to
    the nearest candidate (kept on the worker) and samples rows with probability ∝ w·d² from its own
    RNG stream (seed, round, partition); the candidates are gathered, weighted by the tree-summed
    number of rows nearest each, and reduced to k by greedy k-means++ on the driver."""
    n = parts.n
    first = int(rng.choice(n, p=kmeans_init._probabilities(weights, n)))
    candidates = parts.take(np.array([first]))
    seed = int(rng.integers(2**63 - 1))
    states, new, total = [None] * len(parts.parts), candidates, 0.0
    for round_ in range(PARALLEL_ROUNDS):
        if new is not None:   # only the new candidates can lower a distance
            outs = [parts.submit(_mindist_task, p, states[i], new.numpy()) for i, p in enumerate(parts.parts)]
            states = [parts.pick(o, 0, p) for o, p in zip(outs, parts.parts)]
            total = parts.tree_sum([parts.pick(o, 1, p) for o, p in zip(outs, parts.parts)])
        if total <= 0:
            break
        picks = parts.client.gather([parts.submit(_sample_task, p, states[i], total, seed, round_, i)
                                     for i, p in enumerate(parts.parts)])
        picked = np.concatenate(picks)
        new = torch.from_numpy(picked) if len(picked) else None
        if new is not None:
            candidates = torch.cat([candidates, new])
    del states
    if candidates.shape[0] <= k:  # too few candidates: top up with random points
        extra = rng.choice(n, size=k - candidates.shape[0] + 1, replace=n < k)
        candidates = torch.cat([candidates, parts.take(extra)])
    c = candidates.numpy()
    counts = parts.tree_sum([parts.submit(_count_task, p, c) for p in parts.parts])
    return kmeans_init.greedy_kmeans_plusplus(candidates, k, torch.from_numpy(counts).clamp(min=1e-12), rng)


# ------------------------------------------------------------------------------- the partitions
@dataclass
class _Part:
    src: tuple            # (path or None, first row, end row in X, Frame the reader applies or None)
    data: object          # Future of the block [rows, D]; None when the worker reads `path`
    worker: str           # preferred worker (where the block and the state live)
    weights: object = None  # Future of the float32 weights [rows], or None


class _Partitions:
    """X's partitions on the cluster and the driver's calls on them (submit, tree-sum, take rows)."""

    def __init__(self, client, parts: list[_Part], n: int, d: int, spherical: bool, k: int, dtype):
        self.client, self.parts, self.n, self.d = client, parts, n, d
        self.spherical, self.k, self.device = spherical, k, "cpu"
        self.framed = False
        # dtype of centres in X's coordinates: float64 for float64 X, else float32 (sklearn's rule, as KMeans)
        self.out_dtype = np.float64 if np.dtype(dtype) == np.float64 else np.float32

    @classmethod
    def open(cls, client, X, partition_rows, spherical, k) -> "_Partitions":
        workers = sorted(client.nthreads().items())
        if not workers:
            raise ConfigError("compute: the Dask cluster has no workers")
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        path = _npy_path(X)
        if path is not None:
            shape, dtype = _remote_npy_shape(client, path)
        elif _is_dask_array(X) or isinstance(X, np.ndarray):
            if X.ndim != 2 or X.dtype.kind not in "fiu":
                raise InputError(f"X must be a 2-D numeric array [N, D]; got shape {X.shape}, dtype {X.dtype}")
            shape, dtype = X.shape, X.dtype
        else:
            raise InputError(f"X must be a .npy path, a numpy array or memmap, or a dask array; got {type(X).__name__}")
        if any(math.isnan(s) for s in shape):
            raise InputError(f"X: a dask array with unknown chunk sizes {shape}; call X.compute_chunk_sizes() first")
        n, d = (int(s) for s in shape)
        if n == 0 or d == 0:
            raise InputError(f"X must have at least one row and one column; got shape {shape}")
        threads = sum(t for _, t in workers)
        rows = _round_rows(partition_rows or math.ceil(n / threads))
        bounds = [(a, min(a + rows, n)) for a in range(0, n, rows)]
        names = [w for w, _ in workers]
        owner = [names[i * len(names) // len(bounds)] for i in range(len(bounds))]   # consecutive blocks
        # blocks stay float64 unless float32 loses nothing or (cosine, unframed) the loop reads float32 anyway:
        # the frame needs X's low digits far from the origin
        block = np.float32 if spherical or np.dtype(dtype) in (np.float16, np.float32) else np.float64
        if path is not None:
            parts = [_Part((path, a, b, None), None, w) for (a, b), w in zip(bounds, owner)]
        elif isinstance(X, np.ndarray):   # one block at a time: never two copies of X here
            parts = [_Part((None, a, b, None), client.scatter(np.ascontiguousarray(X[a:b], dtype=block),
                                                              workers=[w], hash=False), w)
                     for (a, b), w in zip(bounds, owner)]
        else:
            parts = _persist_dask_blocks(client, X.astype(block), rows, bounds)
        log.info("dask k-means: %d × %d in %d partitions of ≤ %d rows on %d workers", n, d, len(parts), rows,
                 len(names))
        return cls(client, parts, n, d, spherical, k, dtype)

    def submit(self, fn, part: _Part, *args):
        """fn(src, data, weights, spherical, device, k, *args) on the partition's worker."""
        return self.client.submit(fn, part.src, part.data, part.weights, self.spherical, self.device, self.k, *args,
                                  workers=[part.worker], allow_other_workers=True, pure=False)

    def pick(self, future, i: int, part: _Part):
        return self.client.submit(operator.getitem, future, i, workers=[part.worker], allow_other_workers=True,
                                  pure=False)

    def tree_sum(self, futures: list):
        """Σ of the futures' results (numbers, arrays, or tuples of them summed element-wise), added
        pairwise on the workers in a fixed order; only the total comes back."""
        while len(futures) > 1:
            pairs = [self.client.submit(_add, a, b, pure=False) for a, b in zip(futures[0::2], futures[1::2])]
            futures = pairs + futures[2 * len(pairs):]
        return futures[0].result()

    def scatter_weights(self, w: torch.Tensor | None) -> None:
        if w is not None:
            for p in self.parts:
                p.weights = self.client.scatter(w[p.src[1]:p.src[2]].numpy(), workers=[p.worker], hash=False)

    def enter_frame(self) -> Frame:
        """`Frame.of(X, weights)` (the scattered weights) from one float64 pass on the workers (InputError
        naming the first row with a NaN or inf); from then on every task reads X's rows in it, as float32."""
        stats = self.client.gather([self.submit(_frame_task, p) for p in self.parts])
        _raise_first_bad([b for *_, b in stats], "contains NaN or inf")
        total, wsum = None, 0.0
        for s, ws, _, _ in (block for blocks, _ in stats for block in blocks):   # in row order, as Frame.of adds
            total = s if total is None else total + s
            wsum += ws
        lo = np.min([block[2] for blocks, _ in stats for block in blocks], axis=0)
        hi = np.max([block[3] for blocks, _ in stats for block in blocks], axis=0)
        # Frame.of over three summary rows (min, max, weighted mean; weights 0, 0, 1) has X's mean, min and
        # max, hence X's frame, from the one implementation (0·x and 1·mean are exact)
        summary = np.stack([lo, hi, np.clip(total / wsum, lo, hi)])
        frame = Frame.of(summary, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
        for p in self.parts:
            if p.data is None:   # a file: the worker maps each chunk as it reads it
                p.src = (*p.src[:3], frame)
            else:   # a block: replaced on its worker by its float32 image (the raw block is then released)
                p.data = self.client.submit(_framed_block, p.data, frame, p.src[1], workers=[p.worker],
                                            allow_other_workers=True, pure=False)
        self.framed = True
        return frame

    def mean_column_variance(self) -> float:
        """Mean over columns of X's variance (in the frame, or of unit rows when spherical), as
        `Rows.column_stats`; InputError naming the first row with a NaN or inf (or, spherical, all zeros)."""
        stats = self.client.gather([self.submit(_stats_task, p) for p in self.parts])
        _raise_first_bad([s[2] for s in stats], "contains NaN or inf")
        _raise_first_bad([s[3] for s in stats], "is all zeros; metric='cosine' needs a direction")
        total = torch.from_numpy(sum(s[0] for s in stats))
        total_sq = torch.from_numpy(sum(s[1] for s in stats))
        mean = total / self.n
        return float((total_sq / self.n - mean * mean).clamp(min=0).mean())

    def assign(self, centers: torch.Tensor, states: list, accumulate: bool):
        """One Lloyd pass → (new per-partition state futures, (sums, counts, n_changed, inertia) totals)."""
        c = self.client.scatter(centers.numpy(), broadcast=True, hash=False)
        outs = [self.submit(_lloyd_task, p, s, c, accumulate) for p, s in zip(self.parts, states)]
        new_states = [self.pick(o, 0, p) for o, p in zip(outs, self.parts)]
        return new_states, self.tree_sum([self.pick(o, 1, p) for o, p in zip(outs, self.parts)])

    def inertia(self, states: list, centers: torch.Tensor, loop_inertia: float) -> float:
        """Framed (euclidean) fits: Σ w·‖x − c‖² in float64 from the differences (`lloyd.exact_inertia`,
        as KMeans reports), in the frame; spherical ones keep the loop's Σ of float32 distances."""
        if not self.framed:
            return float(loop_inertia)
        c = self.client.scatter(centers.numpy(), broadcast=True, hash=False)
        return float(self.tree_sum([self.submit(_inertia_task, p, s, c) for p, s in zip(self.parts, states)]))

    def reseed(self, states: list, sums: torch.Tensor, counts: torch.Tensor) -> None:
        """`lloyd._reseed_empty` over the union of every partition's top-m farthest rows (in row order),
        which holds the global top m: torch.topk picks the same rows as over the full sqdist."""
        m = int((counts == 0).sum())
        far = self.client.gather([self.submit(_far_task, p, s, m) for p, s in zip(self.parts, states)])
        dist, labels, w, rows = (np.concatenate([f[i] for f in far]) for i in range(4))
        weights = None if self.parts[0].weights is None else torch.from_numpy(w)
        _reseed_empty(_Candidates(torch.from_numpy(rows)), weights, labels, torch.from_numpy(dist), sums, counts)

    def take(self, index) -> torch.Tensor:
        """Rows of X at global `index` [m] (prepared as the loop sees them) → [m, D] float32."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), self.d), dtype=np.float32)
        masks, futures = [], []
        for p in self.parts:
            mask = (index >= p.src[1]) & (index < p.src[2])
            if mask.any():
                masks.append(mask)
                futures.append(self.submit(_take_task, p, index[mask] - p.src[1]))
        for mask, rows in zip(masks, self.client.gather(futures)):
            out[mask] = rows
        return torch.from_numpy(out)

    def labels(self, states: list) -> np.ndarray:
        return np.concatenate(self.client.gather([self.pick(s, 0, p) for s, p in zip(states, self.parts)]))

    def release(self) -> None:
        self.parts = []   # dropping the futures releases the blocks on the workers


@dataclass
class _Candidates:
    """The `Rows` that `_reseed_empty` needs: n and take() over the gathered candidate rows."""
    points: torch.Tensor

    @property
    def n(self) -> int:
        return self.points.shape[0]

    def take(self, index) -> torch.Tensor:
        return self.points[index]


def _npy_path(X) -> str | None:
    """The .npy file behind X: a path, or a memmap whose whole array is a .npy file's (a view of part
    of one, or a raw memmap, is treated as an in-memory array)."""
    if isinstance(X, (str, os.PathLike)):
        return os.fspath(X)
    if isinstance(X, np.memmap) and isinstance(getattr(X, "filename", None), str):
        try:
            whole = np.load(X.filename, mmap_mode="r")
        except (OSError, ValueError):
            return None
        if (isinstance(whole, np.ndarray) and whole.shape == X.shape and whole.dtype == X.dtype
                and whole.strides == X.strides):
            return X.filename
    return None


def _remote_npy_shape(client, path: str) -> tuple[tuple[int, int], np.dtype]:
    """Shape and dtype of the .npy at `path`, read by a worker (the file must be where the workers see it)."""
    shape, dtype, error = client.submit(_npy_meta, path, pure=False).result()
    if error:
        raise InputError(f"X: cannot read {path} as a .npy array on the Dask workers: {error}")
    if len(shape) != 2 or np.dtype(dtype).kind not in "fiu":
        raise InputError(f"X: {path} must hold a 2-D numeric array [N, D]; got shape {shape}, dtype {dtype}")
    return shape, np.dtype(dtype)


def _is_dask_array(X) -> bool:
    if importlib.util.find_spec("dask") is None:
        return False
    import dask.array as da

    return isinstance(X, da.Array)


def _persist_dask_blocks(client, X, rows: int, bounds) -> list[_Part]:
    from distributed import wait

    blocks = X.rechunk((rows, X.shape[1])).to_delayed().ravel().tolist()
    futures = client.compute(blocks)
    wait(futures)
    holders = client.who_has(futures)
    return [_Part((None, a, b, None), f, sorted(holders[f.key])[0]) for (a, b), f in zip(bounds, futures)]


def _round_rows(rows: int) -> int:
    """Rows per partition: a whole number of CHUNK_ROWS, so partitions stream the single-process chunks."""
    return max(1, math.ceil(rows / CHUNK_ROWS)) * CHUNK_ROWS


def _add(a, b):
    if isinstance(a, tuple):
        return tuple(None if x is None else x + y for x, y in zip(a, b))
    return a + b


def _raise_first_bad(rows: list[int], what: str) -> None:
    """InputError naming the first of the partitions' first bad global rows (-1: none)."""
    bad = [r for r in rows if r >= 0]
    if bad:
        raise InputError(f"X row {bad[0]} {what}")


# ------------------------------------------------------------------------- checks and backends
def _check_params(n_clusters, init, max_iter, tol, partition_rows, backend) -> None:
    if not isinstance(n_clusters, (int, np.integer)) or isinstance(n_clusters, bool) or n_clusters < 1:
        raise ConfigError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    if isinstance(init, str) and init not in INITS:
        raise ConfigError(f"init must be one of {', '.join(INITS)} or an array, got {init!r}")
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ConfigError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ConfigError(f"tol must be a non-negative number, got {tol!r}")
    if partition_rows is not None and (not isinstance(partition_rows, (int, np.integer)) or partition_rows < 1):
        raise ConfigError(f"compute.partition_rows must be a positive integer, got {partition_rows!r}")
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")


def _check_init_array(init, k: int, d: int) -> np.ndarray:
    """init [K, D] as float64 (mapped into the frame before the float32 cast, as KMeans does)."""
    arr = np.asarray(init, dtype=np.float64)
    if arr.shape != (k, d):
        raise InputError(f"init array has shape {np.shape(init)}, expected ({k}, {d})")
    if not np.isfinite(arr).all():
        raise InputError("init array contains NaN or inf")
    return arr


def _resolve_backend(client, backend: str) -> tuple[str, bool]:
    """(backend to run, whether every worker sees a CUDA GPU)."""
    if backend == "cpu":
        return "cpu", False
    gpus = all(client.run(_worker_has_cuda).values())
    has_cuml = importlib.util.find_spec("cuml") is not None
    if backend == "cuml":
        if not has_cuml:
            raise ConfigError("backend 'cuml' was requested but cuML is not installed (pip install 'clio-engine[cuml]')")
        if not gpus:
            raise ConfigError("backend 'cuml' needs a CUDA GPU on every Dask worker (use dask-cuda's LocalCUDACluster)")
    if backend == "auto":
        backend = "cuml" if has_cuml and gpus else "torch"
    return backend, gpus


def _fit_cuml(parts: _Partitions, k: int, init, max_iter: int, tol: float, spherical: bool, weights, rng) -> LloydResult:
    """`cuml.dask.cluster.KMeans` on cupy blocks built on the workers from the same partitions; labels
    and inertia then come from one assignment pass of ours with its centres (the same definition as
    the torch path). n_iter is cuML's when its combined model exposes it, else 0."""
    if spherical:
        raise UnsupportedOnBackend("cuml.dask KMeans has no spherical (cosine) mode")
    if isinstance(init, str) and init == "k-means++":
        raise UnsupportedOnBackend("cuML has no greedy k-means++ (it offers k-means||)")
    if weights is not None:
        raise UnsupportedOnBackend("sample weights are not passed to cuml.dask KMeans here")
    try:  # lazy: never imported at module load
        import cupy
        import dask
        import dask.array as da
        from cuml.dask.cluster import KMeans as CumlDaskKMeans
    except ImportError as e:
        raise UnsupportedOnBackend(f"cuml.dask cannot be imported: {e}") from None
    meta = cupy.empty((0, parts.d), dtype=np.float32)
    X = da.concatenate([da.from_delayed(dask.delayed(_cupy_block)(p.src, p.data), shape=(p.src[2] - p.src[1], parts.d),
                                        dtype=np.float32, meta=meta) for p in parts.parts])
    X = parts.client.persist(X)
    model = CumlDaskKMeans(client=parts.client, n_clusters=k, max_iter=max_iter, tol=tol, random_state=int_seed(rng),
                           init=init if isinstance(init, str) else np.asarray(init, np.float32))
    model.fit(X)
    found = model.cluster_centers_
    found = getattr(found, "values", found)   # a cuDF DataFrame when cuML's output type says so
    centers = torch.as_tensor(cupy.asnumpy(cupy.asarray(found)), dtype=torch.float32)
    states, (_, _, _, inertia) = parts.assign(centers, [None] * len(parts.parts), accumulate=False)
    try:
        n_iter = int(model.get_combined_model().n_iter_)
    except Exception:  # noqa: BLE001 — older cuML versions expose no iteration count
        n_iter = 0
    return LloydResult(parts.labels(states), centers, parts.inertia(states, centers, inertia), n_iter)
