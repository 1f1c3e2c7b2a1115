"""`dask_embed`: texts → unit vectors [N, D] on a Dask cluster, one task per partition of texts, each worker
writing its rows into one shared `.npy` file; resumable per partition.

Flow (driver): validate + dedupe exactly as `clio_engine.embed` does → unique texts cut into partitions of
`partition_rows` → each partition is a task that receives only its own texts, embeds them with
`clio_engine.embed.embed` (same settings, no cache) and writes rows [start, start + n) of `<out>.parts.npy`
→ the driver records the partition done → at the end the rows are gathered into `out` in input order.

Done-state: only the driver writes `<out>.parts.json` (write-then-rename), and only after a task has
returned, i.e. after the worker wrote and flushed its rows. One writer means no races between workers
on a shared filesystem and no lock; a driver killed between a task's return and its record merely
recomputes that partition. A rerun with the same texts and settings reopens the parts file and skips the
recorded partitions; anything else (other texts, model, settings or partition size) starts over.

Determinism: a partition's texts, hence its chunks and token-budget batches, depend only on the texts and
`partition_rows`, never on which worker runs it or how often, so a run whose worker died ends
bit-identical to one that ran straight through. Against a single-process `embed()` the batches differ,
so vectors agree to float rounding (cosine ≥ 0.99999), not bit for bit.

Fault injection (tests): `CLIO_ENGINE_KILL_AT=embed:partition:<p>` SIGKILLs the worker process after it
wrote partition p's rows but before returning, the first time only (a marker file next to the parts file
lets the retry through); the nanny restarts the worker and the scheduler reruns the task.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np

from clio_engine.embed import EmbedReport, embed
from clio_engine.embed.pipeline import _gather, _validate_and_dedupe
from clio_engine.embed.store import new_npy, open_npy_of
from clio_engine.errors import InputError, OutputError
from clio_engine.faults import FAULT_ENV
from clio_engine.path_trust import trusted_owners
from clio_engine.runfiles import refuse_if_swapped
from clio_engine.storage import writing

log = logging.getLogger("clio_engine.scale")

# `embed()` keywords a partition task passes on; `progress` is the driver's (one log line per partition).
SETTINGS = ("model", "device", "dtype", "batch_tokens", "max_batch_rows", "max_length", "chunk_size", "cache_dir",
            "tokenizer_workers")
_DRIVER_ONLY = ("dedupe", "progress")
_STATE_VERSION = 1

# Loaded models of this worker process, so each worker loads its model once and not once per partition.
# Passed only where `embed()` takes it (`encoder_cache`); see the note in the module's report.
_ENCODERS: dict = {}
_CACHE_KW = {"encoder_cache": _ENCODERS} if "encoder_cache" in inspect.signature(embed).parameters else {}


def dask_embed(client, texts: Sequence[str], out_path, *, partition_rows: int, **embed_settings) -> EmbedReport:
    """Embed `texts` on the cluster behind `client` into the `.npy` file `out_path` ([N, D] float32, rows in
    input order) and return an EmbedReport (`chunks` = partitions, `chunks_reused` = partitions a previous
    attempt had finished). `embed_settings`: the keywords of `clio_engine.embed` in `SETTINGS`, plus
    `dedupe` and `progress`. `out_path` and its `.parts.*` work files must be on a filesystem every worker sees.
    """
    t0 = time.perf_counter()
    settings, dedupe = _check_settings(partition_rows, embed_settings)
    out = Path(out_path)
    unique, inverse = _validate_and_dedupe(texts, dedupe)
    if not unique:
        raise InputError("no texts to embed")
    bounds = [(s, min(s + partition_rows, len(unique))) for s in range(0, len(unique), partition_rows)]
    probe = client.submit(_probe, unique[0], settings, pure=False).result()  # model hash and dim, from a worker
    key = _run_key(probe["content_hash"], settings, partition_rows, unique)
    parts = out.with_name(out.name + ".parts.npy")
    state = _State.open(out.with_name(out.name + ".parts.json"), parts, key, len(unique), probe["dim"])
    reused = len(state.done)
    todo = [p for p in range(len(bounds)) if p not in state.done]
    log.info("dask embed: %d texts (%d unique) in %d partitions of ≤ %d, %d already done",
             len(inverse), len(unique), len(bounds), partition_rows, reused)
    _run_partitions(client, unique, bounds, todo, parts, settings, state)
    vectors = np.load(parts, mmap_mode="r")
    if len(unique) == len(inverse):  # no duplicates: the parts file already is the output, in input order
        del vectors
        with writing(out, parts):
            refuse_if_swapped(parts)  # the workers wrote it by name: it must still be the file the driver made
            os.replace(parts, out)
    else:
        _gather(vectors, inverse, out)
        del vectors
        parts.unlink()
    state.remove()
    report = EmbedReport(
        model=probe["model"], device=probe["device"], dtype=probe["dtype"], n_texts=len(inverse), n_unique=len(unique),
        n_tokens=sum(s["tokens"] for s in state.done.values()),
        n_truncated=sum(s["truncated"] for s in state.done.values()),
        max_length=probe["max_length"], dim=probe["dim"], chunks=len(bounds), chunks_reused=reused,
        seconds=time.perf_counter() - t0, store=None)
    log.info("dask embed: %s", report.summary())
    return report


def _check_settings(partition_rows, embed_settings) -> tuple[dict, bool]:
    if not isinstance(partition_rows, int) or isinstance(partition_rows, bool) or partition_rows < 1:
        raise InputError(f"partition_rows must be a positive integer, got {partition_rows!r}")
    unknown = sorted(set(embed_settings) - set(SETTINGS) - set(_DRIVER_ONLY))
    if unknown:
        raise InputError(f"dask_embed does not take {', '.join(unknown)} "
                         f"(it takes {', '.join(SETTINGS + _DRIVER_ONLY)})")
    return {k: embed_settings[k] for k in SETTINGS if k in embed_settings}, bool(embed_settings.get("dedupe", True))


def _run_key(content_hash: str, settings: dict, partition_rows: int, unique: list[str]) -> str:
    """What the parts file's rows depend on: model, settings, partition size and the unique texts
    (not how many processes tokenize: the ids are the same)."""
    keyed = {k: v for k, v in settings.items() if k != "tokenizer_workers"}
    h = hashlib.sha256(json.dumps([_STATE_VERSION, content_hash, keyed, partition_rows], sort_keys=True,
                                  default=str).encode())
    h.update(np.asarray([len(t) for t in unique], dtype=np.int64).tobytes())
    for text in unique:
        h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def _run_partitions(client, unique, bounds, todo, parts: Path, settings: dict, state: "_State") -> None:
    """Submit the partitions in `todo`, at most a few per worker thread at a time (so the texts in flight stay
    bounded), recording each as its task returns."""
    from distributed import KilledWorker, as_completed

    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    window = max(2, 2 * threads)
    call = uuid.uuid4().hex[:12]  # fresh task keys per call: a rerun must not find the last call's erred tasks
    owners = trusted_owners()  # who may own the parts file: each worker checks the file it opens
    pending = iter(todo)
    inflight = {}  # future key → (future, partition)
    queue = as_completed()

    def submit_next() -> None:
        p = next(pending, None)
        if p is not None:
            start, stop = bounds[p]
            fut = client.submit(_embed_partition, unique[start:stop], str(parts), start, p, settings, owners,
                                key=f"clio-embed-{p}-{call}")
            inflight[fut.key] = (fut, p)
            queue.add(fut)

    for _ in range(window):
        submit_next()
    try:
        for fut in queue:
            _, p = inflight.pop(fut.key)
            try:
                stats = fut.result()  # re-raises the task's own error (InputError, OutputError) as it is
            except KilledWorker as e:
                raise OutputError(
                    f"embedding partition {p} (unique texts {bounds[p][0]}-{bounds[p][1] - 1}): the worker running "
                    f"it died {e.allowed_failures + 1} time(s) (out of memory?); {len(state.done)} finished "
                    "partitions are kept, rerun to resume") from None
            state.mark_done(p, stats)
            log.info("dask embed: partition %d/%d done (%d rows)", p + 1, len(bounds), bounds[p][1] - bounds[p][0])
            submit_next()
    finally:
        if inflight:  # an error or an interrupt: stop the other partitions' tasks
            client.cancel([f for f, _ in inflight.values()])


# ------------------------------------------------------------------------------------- worker side


def _probe(text: str, settings: dict) -> dict:
    """Embed one text on a worker: the model's content hash, dimension and the resolved device/dtype."""
    from clio_engine.embed import resolve_model

    _, report = embed([text], cache=False, progress=False, return_report=True, **settings, **_CACHE_KW)
    source = resolve_model(settings.get("model", "default"), cache_dir=settings.get("cache_dir"))
    return {"content_hash": source.content_hash, "dim": report.dim, "model": report.model, "device": report.device,
            "dtype": report.dtype, "max_length": report.max_length}


def _embed_partition(texts: list[str], parts: str, start: int, partition: int, settings: dict,
                     owners: frozenset[int] | None = None) -> dict:
    """Embed one partition and write its rows [start, start + len(texts)) of the shared parts file, which must
    still be a file of one of `owners` (the driver's account and those it vouches for): a worker reopens it by
    name (`open_npy_of`)."""
    vectors, report = embed(texts, cache=False, progress=False, dedupe=False, return_report=True, **settings,
                            **_CACHE_KW)
    try:
        target = open_npy_of(Path(parts), owners)
    except OSError as e:
        raise OutputError(f"a Dask worker cannot open {parts} ({e.strerror or e}): the run directory must be on "
                          "a filesystem every worker sees") from None
    with writing(Path(parts)):
        target[start : start + len(texts)] = vectors
        _kill_once(f"embed:partition:{partition}", Path(parts))
        target.flush()  # before returning: the driver records the partition done only after this
    del target
    return {"tokens": report.n_tokens, "truncated": report.n_truncated}


def _kill_once(point: str, parts: Path) -> None:
    """Test hook: SIGKILL this worker process at `point` (CLIO_ENGINE_KILL_AT), once per parts file."""
    if os.environ.get(FAULT_ENV) != point:
        return
    marker = parts.with_name(f"{parts.name}.killed-{point.replace(':', '-')}")
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------- driver state


class _State:
    """The parts file's done-partitions, kept in a JSON file that only the driver writes."""

    def __init__(self, path: Path, parts: Path, key: str, n_rows: int, dim: int, done: dict[int, dict]):
        self.path, self.parts, self.key, self.n_rows, self.dim, self.done = path, parts, key, n_rows, dim, done

    @classmethod
    def open(cls, path: Path, parts: Path, key: str, n_rows: int, dim: int) -> "_State":
        """Resume when the state names the same run and the parts file has the right shape; else start over."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            saved = json.loads(path.read_text())
            vectors = np.load(parts, mmap_mode="r")
            if saved["key"] == key and vectors.shape == (n_rows, dim) and vectors.dtype == np.float32:
                return cls(path, parts, key, n_rows, dim, {int(p): s for p, s in saved["done"].items()})
        path.unlink(missing_ok=True)
        _remove_markers(parts)
        try:
            parts.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create {parts.parent}: {e.strerror or e}") from None
        vectors = new_npy(parts, (n_rows, dim), "the embeddings")
        vectors.flush()
        del vectors
        state = cls(path, parts, key, n_rows, dim, {})
        state._write()
        return state

    def mark_done(self, partition: int, stats: dict) -> None:
        self.done[partition] = stats
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        state = {"key": self.key, "n_rows": self.n_rows, "dim": self.dim,
                 "done": {str(p): s for p, s in sorted(self.done.items())}}
        with writing(self.path, tmp):
            with open(tmp, "w") as handle:
                json.dump(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        _remove_markers(self.parts)


def _remove_markers(parts: Path) -> None:
    for marker in parts.parent.glob(f"{parts.name}.killed-*"):
        marker.unlink(missing_ok=True)
