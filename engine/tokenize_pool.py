"""Tokenization in worker processes: texts → flat token-id arrays, for a GPU that outruns one host thread.

On a GPU the model embeds short texts faster than one Python thread can turn the Rust tokenizer's
`Encoding`s into arrays (RESULTS.md "embed — GPU": tokenizer 216k–266k texts/s, ids → arrays
156k–206k texts/s, in one thread, under the GIL). Worker processes each tokenize a slice of a chunk and
send back three numpy arrays; the parent only concatenates them.

This module imports neither torch nor the rest of `clio_engine.embed` (the package imports torch), so a
spawned worker starts in a fraction of a second. Pools are kept between calls (keyed by tokenizer and
settings): a warm `embed()` call pays no start-up.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import NamedTuple, Sequence

import numpy as np

MIN_SLICE = 2_048   # texts per worker task: smaller slices cost more in pickling than they save
MAX_AUTO_WORKERS = 8


class FlatTokens(NamedTuple):
    """Token ids of a list of texts. flat [sum(lengths)] int64; lengths [N] int64; truncated: how many
    texts were cut at the tokenizer's truncation limit."""

    flat: np.ndarray
    lengths: np.ndarray
    truncated: int


def flatten(encodings, limit: int) -> FlatTokens:
    """`tokenizers.Encoding` list → FlatTokens (one pass over the id lists)."""
    ids = [e.ids for e in encodings]
    lengths = np.fromiter((len(t) for t in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    # Only a text of exactly `limit` tokens can have been cut: look at those alone.
    truncated = sum(1 for i in np.flatnonzero(lengths == limit) if encodings[i].overflowing)
    return FlatTokens(flat, lengths, truncated)


def tokenize(tokenizer, texts: Sequence[str], *, lower: bool, limit: int) -> FlatTokens:
    """In this process: `tokenizer` is a `tokenizers.Tokenizer` with padding off and truncation at `limit`."""
    if lower:
        texts = [t.lower() for t in texts]
    return flatten(tokenizer.encode_batch(list(texts), add_special_tokens=True), limit)


def concat(parts: Sequence[FlatTokens]) -> FlatTokens:
    if len(parts) == 1:
        return parts[0]
    return FlatTokens(np.concatenate([p.flat for p in parts]), np.concatenate([p.lengths for p in parts]),
                      sum(p.truncated for p in parts))


def auto_workers(device_type: str, cpus: int | None = None) -> int:
    """Worker processes when `embed.tokenizer_workers` is unset: none on a CPU (the model needs the cores
    and is the bottleneck there); on a GPU one per spare core, leaving two for the main process and its
    feeding thread, at most MAX_AUTO_WORKERS (four already outrun the measured model rate)."""
    if device_type != "cuda":
        return 0
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:
            cpus = os.cpu_count() or 1
    return max(0, min(MAX_AUTO_WORKERS, cpus - 2))


# ---------------------------------------------------------------------------------------------- worker side
_WORKER: dict = {}


def _init_worker(tokenizer_json: str, limit: int, lower: bool) -> None:
    # One thread per worker: the processes are the parallelism (rayon threads in every worker would
    # oversubscribe the cores).
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=limit)
    _WORKER.update(tokenizer=tokenizer, limit=limit, lower=lower)


def _work(texts: list[str]) -> FlatTokens:
    return tokenize(_WORKER["tokenizer"], texts, lower=_WORKER["lower"], limit=_WORKER["limit"])


# ---------------------------------------------------------------------------------------------- parent side
@contextlib.contextmanager
def _main_hidden():
    """Start spawned workers without re-running the user's script in them.

    A spawned child imports the parent's `__main__` from its path or module name, which runs a script's
    top-level code again: a research script that calls `embed()` without an `if __name__ == "__main__"`
    guard would redo its work in every worker and then fail to start a pool inside a child. The workers
    need nothing from `__main__` (they run this module's functions), so while they start, `__main__` is
    made to look like an interactive session's (no `__spec__`, no `__file__`), which multiprocessing
    does not re-import."""
    main = sys.modules.get("__main__")
    saved = {name: main.__dict__[name] for name in ("__spec__", "__file__") if main is not None and name in main.__dict__}
    try:
        if main is not None:
            main.__dict__["__spec__"] = None
            main.__dict__.pop("__file__", None)
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


class TokenizerPool:
    """`workers` spawned processes sharing one tokenizer configuration.

    `submit(texts)` returns a Future of the FlatTokens of `texts`, in order; the texts are split into
    about `workers` slices of at least MIN_SLICE, tokenized in parallel, and joined."""

    def __init__(self, tokenizer_json: str, *, limit: int, lower: bool, workers: int):
        if workers < 1:
            raise ValueError(f"a TokenizerPool needs at least one worker, got {workers}")
        self.workers = workers
        # spawn, not fork: the parent holds torch's and the feeding thread's locks, and a forked child of a
        # threaded process can deadlock on them.
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(tokenizer_json, limit, lower))
        try:
            with _main_hidden():
                # Start every worker now, not on later submits (the executor spawns one per submit while
                # none is idle): `workers` tasks that outlast the submits, so none is idle before all started.
                for started in [self._executor.submit(time.sleep, 0.3) for _ in range(workers)]:
                    started.result()
        except BaseException:
            self._executor.shutdown(wait=False, cancel_futures=True)
            raise

    def submit(self, texts: Sequence[str]) -> Future:
        n = len(texts)
        step = max(MIN_SLICE, -(-n // self.workers))
        parts = [self._executor.submit(_work, list(texts[i:i + step])) for i in range(0, max(n, 1), step)]
        joined: Future = Future()
        remaining = [len(parts)]
        lock = threading.Lock()

        def done(_):
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            try:
                joined.set_result(concat([p.result() for p in parts]))
            except BaseException as exc:  # a worker's error reaches the caller through .result()
                joined.set_exception(exc)

        for p in parts:
            p.add_done_callback(done)
        return joined

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


_POOLS: dict[tuple, TokenizerPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(tokenizer_json: str, *, limit: int, lower: bool, workers: int) -> TokenizerPool:
    """A pool kept for the life of the process (one per tokenizer, limit, case and size), so repeated
    `embed()` calls do not pay the workers' start-up again."""
    key = (hashlib.sha256(tokenizer_json.encode()).hexdigest(), limit, lower, workers)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = TokenizerPool(tokenizer_json, limit=limit, lower=lower, workers=workers)
        return pool


@atexit.register
def close_pools() -> None:
    """Shut every kept pool down (at exit, or from tests)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()
