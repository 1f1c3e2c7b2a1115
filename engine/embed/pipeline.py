"""`embed()`: texts → float32 unit vectors [N, D], streamed chunk by chunk into a resumable store.

Flow: validate + dedupe (identical texts embedded once) → chunks of unique texts → a background
thread tokenizes the next chunk and pads its token-budget batches while the model runs the current
one → rows land in a `.npy` memmap keyed by a content hash → the original order is gathered back.
"""
from __future__ import annotations

import collections
import hashlib
import logging
import multiprocessing
import numbers
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from clio_engine.device import dtype_name, resolve_device, resolve_dtype
from clio_engine.embed.batching import TokenizedChunk, plan_batches
from clio_engine.embed.encoder import SentenceEncoder, TokenBatch
from clio_engine.embed.model_source import resolve_model, trusted_cache_folder
from clio_engine.embed.progress import EmbedProgress
from clio_engine.embed.store import ChunkStats, EmbeddingStore, new_npy
from clio_engine.errors import InputError, OutputError
from clio_engine.faults import kill_at
from clio_engine.record_cells import encodable
from clio_engine.runfiles import refuse_if_swapped
from clio_engine.storage import writing
from clio_engine.tokenize_pool import FlatTokens, auto_workers, shared_pool, tokenize

log = logging.getLogger("clio_engine.embed")

# Per-device defaults for settings left as None.
# batch_tokens: on the 2-core AVX-512 CPU, 2k-4k padded token slots per batch ran fastest (64k ran
# 3-5x slower: the activations spill the caches); a GPU needs large batches to fill its SMs.
# max_batch_rows: on a GPU short texts need thousands of rows to fill a 65k-token batch.
# chunk_size: unique texts per resumable chunk; a chunk boundary flushes the store and drains the
# pipeline, so the fast device takes larger chunks.
DEVICE_DEFAULTS = {
    "cpu": {"batch_tokens": 4_096, "max_batch_rows": 512, "chunk_size": 8_192},
    "cuda": {"batch_tokens": 65_536, "max_batch_rows": 8_192, "chunk_size": 16_384},
}
# Rows gathered per step when writing the ordered output: bounds memory at ~100 MB for D=384.
_GATHER_ROWS = 65_536
_QUEUE_DEPTH = 8  # padded batches prepared ahead of the model
_LOOKAHEAD = 2    # chunks tokenized ahead by the tokenizer pool, beyond the one being padded


@dataclass(frozen=True)
class EmbedReport:
    """What one `embed` call did; `n_truncated` counts texts cut to `max_length` tokens."""

    model: str
    device: str
    dtype: str
    n_texts: int
    n_unique: int
    n_tokens: int
    n_truncated: int
    max_length: int
    dim: int
    chunks: int
    chunks_reused: int
    seconds: float
    store: str | None

    def summary(self) -> str:
        trunc = f", {self.n_truncated:,} truncated to {self.max_length} tokens" if self.n_truncated else ""
        head = f"embedded {self.n_texts:,} texts ({self.n_unique:,} unique, {self.n_tokens:,} tokens{trunc}) "
        if self.chunks and self.chunks_reused == self.chunks:  # nothing computed: no speed to tell (a review
            # read "925 unique texts/s" for a cache read as the model's throughput)
            return head + f"from the cache ({self.model}/{self.dtype}) in {self.seconds:.1f}s"
        rate = self.n_unique / self.seconds if self.seconds > 0 else float("inf")
        cached = (f"; {self.chunks_reused} of {self.chunks} chunks from the cache, counted in this rate"
                  if self.chunks_reused else "")
        return head + (f"with {self.model} on {self.device}/{self.dtype} in {self.seconds:.1f}s "
                       f"({rate:,.0f} unique texts/s{cached})")


def _is_int(value) -> bool:
    """An integer, numpy's included; not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def embed(
    texts: Sequence[str],
    *,
    model: str = "default",
    device: str = "auto",
    dtype: str = "auto",
    batch_tokens: int | None = None,
    max_batch_rows: int | None = None,
    max_length: int | None = None,
    chunk_size: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    dedupe: bool = True,
    progress: bool = True,
    cache: bool = True,
    store_dir: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    return_report: bool = False,
    encoder_cache: dict | None = None,
    tokenizer_workers: int | None = None,
):
    """Embed `texts` with a sentence-transformers model; returns float32 [N, D] (a memmap when `out`
    names a `.npy` file), plus an EmbedReport when `return_report`.

    Pooling and normalisation follow the model's sentence-transformers config. Texts must be non-empty
    strings (use `clio_engine.load_records` to set invalid rows aside with a reason). With `cache`, results
    are stored under `cache_dir` keyed by model hash + settings + text hash: a re-run reuses them and a
    killed run resumes from its last finished chunk. `store_dir` puts that store elsewhere (the pipeline
    uses its run's `private/cache/embeddings`, so no copy of the vectors outlives the run directory);
    `cache_dir` then only holds the model files. `encoder_cache`: a dict that keeps loaded models between
    calls (the Dask workers pass one, so each worker process loads its model once). `tokenizer_workers`:
    processes that tokenize ahead of the model (`clio_engine.tokenize_pool`); None = none on a CPU, one per
    spare core (≤ 8) on a GPU, whose model outruns one tokenizing thread. The ids, hence the vectors, do
    not depend on it.
    """
    t0 = time.perf_counter()
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    defaults = DEVICE_DEFAULTS[dev.type]
    batch_tokens = defaults["batch_tokens"] if batch_tokens is None else batch_tokens
    max_batch_rows = defaults["max_batch_rows"] if max_batch_rows is None else max_batch_rows
    chunk_size = defaults["chunk_size"] if chunk_size is None else chunk_size
    for name, value in (("batch_tokens", batch_tokens), ("max_batch_rows", max_batch_rows), ("chunk_size", chunk_size)):
        if not _is_int(value) or value <= 0:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    if tokenizer_workers is not None and (not _is_int(tokenizer_workers) or tokenizer_workers < 0):
        raise InputError(f"tokenizer_workers must be None or an integer ≥ 0, got {tokenizer_workers!r}")
    # Plain ints from here on: numpy integers (from a config or an array) also reach the settings key.
    batch_tokens, max_batch_rows, chunk_size = int(batch_tokens), int(max_batch_rows), int(chunk_size)
    tokenizer_workers = None if tokenizer_workers is None else int(tokenizer_workers)
    workers = auto_workers(dev.type) if tokenizer_workers is None else tokenizer_workers
    unique, inverse = _validate_and_dedupe(texts, dedupe)
    source = resolve_model(model, cache_dir=cache_dir)
    enc = _encoder(source, dev, dt, encoder_cache)  # dimension and max_length come from the model
    limit = enc.max_length if max_length is None else _check_max_length(max_length, enc.max_length)

    n_chunks = (len(unique) + chunk_size - 1) // chunk_size
    settings = f"{source.content_hash}|{dev.type}|{dtype_name(dt)}|{limit}|{batch_tokens}|{max_batch_rows}|{chunk_size}"
    key = hashlib.sha256((settings + "|" + _texts_hash(unique)).encode()).hexdigest()[:32]
    if cache:
        store_path = (Path(store_dir) if store_dir is not None else trusted_cache_folder("embeddings", cache_dir)) / key
    else:
        store_path = None
    store = EmbeddingStore.open(store_path, len(unique), enc.dim) if cache else None
    vectors = store.vectors if store else np.empty((len(unique), enc.dim), dtype=np.float32)
    done = dict(store.done) if store else {}
    todo = [c for c in range(n_chunks) if c not in done]

    show = progress and sys.stderr.isatty()
    with EmbedProgress(sum(min(chunk_size, len(unique) - c * chunk_size) for c in todo), show) as bar:
        for chunk, stats in _run_chunks(enc, unique, todo, chunk_size, limit, batch_tokens, max_batch_rows, vectors, bar,
                                        workers):
            done[chunk] = stats
            if store:
                store.mark_done(chunk, stats)
                kill_at("embed:chunk")  # resume-test hook (no-op unless CLIO_ENGINE_KILL_AT names it)

    result = _gather(vectors, inverse, out)
    if store:
        store.close()
    report = EmbedReport(
        model=source.name, device=dev.type, dtype=dtype_name(dt), n_texts=len(inverse), n_unique=len(unique),
        n_tokens=sum(s.tokens for s in done.values()), n_truncated=sum(s.truncated for s in done.values()),
        max_length=limit, dim=enc.dim, chunks=n_chunks, chunks_reused=n_chunks - len(todo),
        seconds=time.perf_counter() - t0, store=str(store_path) if store_path else None,
    )
    if report.n_truncated:
        log.warning("%d of %d unique texts were longer than %d tokens and were truncated",
                    report.n_truncated, report.n_unique, limit)
    log.info(report.summary())
    return (result, report) if return_report else result


def _encoder(source, dev: torch.device, dt: torch.dtype, cache: dict | None) -> SentenceEncoder:
    if cache is None:
        return SentenceEncoder(source, device=dev, dtype=dt)
    key = (source.content_hash, str(source.path), str(dev), str(dt))
    if key not in cache:
        cache[key] = SentenceEncoder(source, device=dev, dtype=dt)
    return cache[key]


def _check_max_length(max_length: int, model_limit: int) -> int:
    if not _is_int(max_length) or max_length < 2:
        raise InputError(f"max_length must be an integer ≥ 2, got {max_length!r}")
    if max_length > model_limit:
        raise InputError(f"max_length {max_length} exceeds the model's limit of {model_limit} tokens")
    return int(max_length)


def _validate_and_dedupe(texts: Sequence[str], dedupe: bool) -> tuple[list[str], np.ndarray]:
    """Unique texts in first-seen order and, for each input row, its index among them: [N] int64."""
    if isinstance(texts, (str, bytes)):
        raise InputError("texts must be a sequence of strings, not a single string")
    try:
        n = len(texts)
    except TypeError:
        texts = list(texts)
        n = len(texts)
    index: dict[str, int] = {}
    unique: list[str] = []
    inverse = np.empty(n, dtype=np.int64)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"text at index {i} is {type(text).__name__} ({text!r:.40}), not a string; "
                             "load inputs with engine.load_records to set such rows aside")
        if not text.strip():
            raise InputError(f"text at index {i} is empty; load inputs with engine.load_records to set such rows aside")
        if dedupe:
            slot = index.setdefault(text, len(unique))
            if slot == len(unique):
                unique.append(text)
        else:
            slot = len(unique)
            unique.append(text)
        inverse[i] = slot
    return unique, inverse


def _texts_hash(unique: list[str]) -> str:
    digest = hashlib.sha256(np.asarray([len(t) for t in unique], dtype=np.int64).tobytes())
    try:
        digest.update("\x1f".join(unique).encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): no tokenizer can read it
        bad = next(i for i, t in enumerate(unique) if not encodable(t))
        raise InputError(f"text {unique[bad]!r:.60} is not valid Unicode (a lone surrogate); "
                         "texts must be encodable as UTF-8") from None
    return digest.hexdigest()


def _run_chunks(enc, unique, todo, chunk_size, limit, batch_tokens, max_batch_rows, vectors, bar,
                workers: int = 0) -> Iterator[tuple[int, ChunkStats]]:
    """Encode the chunks in `todo`, writing rows into `vectors`; yields (chunk, stats) as each finishes.
    `workers` > 0: chunks are tokenized by that many processes, up to _LOOKAHEAD chunks ahead."""
    if not todo:
        return
    tokenizer = _bare_tokenizer(enc, limit)
    lower = enc.spec.do_lower_case
    pin = enc.device.type == "cuda"
    if workers and multiprocessing.current_process().daemon:
        # A daemonic process (a Dask worker's) may not start children: tokenize in its feeding thread.
        log.info("tokenizer_workers=%d ignored in a daemonic process; tokenizing in a thread", workers)
        workers = 0
    pool = shared_pool(tokenizer.to_str(), limit=limit, lower=lower, workers=workers) if workers else None
    items: queue.Queue = queue.Queue(maxsize=_QUEUE_DEPTH)
    stop = threading.Event()

    def texts_of(chunk: int) -> list[str]:
        return unique[chunk * chunk_size : (chunk + 1) * chunk_size]

    def token_chunks() -> Iterator[tuple[int, FlatTokens]]:
        if pool is None:
            for chunk in todo:
                yield chunk, tokenize(tokenizer, texts_of(chunk), lower=lower, limit=limit)
            return
        ahead = collections.deque()
        for chunk in todo:
            ahead.append((chunk, pool.submit(texts_of(chunk))))
            if len(ahead) > _LOOKAHEAD:
                done, future = ahead.popleft()
                yield done, future.result()
        while ahead:
            done, future = ahead.popleft()
            yield done, future.result()

    def produce() -> None:
        try:
            for chunk, flat in token_chunks():
                if stop.is_set():
                    return
                start = chunk * chunk_size
                tokens = TokenizedChunk.from_flat(flat.flat, flat.lengths)
                stats = ChunkStats(tokens=int(tokens.lengths.sum()), truncated=flat.truncated)
                for rows in plan_batches(tokens.lengths, token_budget=batch_tokens, max_rows=max_batch_rows):
                    ids, mask = (torch.from_numpy(a) for a in tokens.pad(rows, enc.pad_id))
                    if pin:
                        ids, mask = ids.pin_memory(), mask.pin_memory()
                    _put(items, ("batch", start + rows, TokenBatch(rows, ids, mask)), stop)
                _put(items, ("chunk", chunk, stats), stop)
        except BaseException as exc:  # surfaced in the consumer
            _put(items, ("error", exc, None), stop)
        finally:
            _put(items, ("end", None, None), stop)

    worker = threading.Thread(target=produce, name="clio-tokenizer", daemon=True)
    worker.start()
    pending = None  # (rows, host tensor, event): the previous batch's copy-back, overlapped with the next forward
    try:
        while True:
            kind, a, b = items.get()
            if kind == "batch":
                vec = enc.encode(b)
                if pin:
                    host = torch.empty(vec.shape, dtype=vec.dtype, pin_memory=True)
                    host.copy_(vec, non_blocking=True)
                    event = torch.cuda.Event()
                    event.record()
                    _finish(pending, vectors)
                    pending = (a, host, event)
                else:
                    vectors[a] = vec.numpy()
                bar.advance(len(a), b.n_tokens)
            elif kind == "chunk":
                _finish(pending, vectors)
                pending = None
                yield a, b
            elif kind == "error":
                raise a
            else:
                break
    finally:
        stop.set()
        worker.join(timeout=5)


def _finish(pending, vectors) -> None:
    if pending is not None:
        rows, host, event = pending
        event.synchronize()
        vectors[rows] = host.numpy()


def _put(items: queue.Queue, item, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            items.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _bare_tokenizer(enc: SentenceEncoder, limit: int):
    """The fast (Rust) tokenizer with padding off and truncation at `limit`: `encode_batch` runs in
    parallel without the GIL, and `Encoding.overflowing` tells which texts were cut."""
    backend = getattr(enc.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise InputError(f"model {enc.source.name!r} has no fast tokenizer; only fast tokenizers are supported")
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(backend.to_str())
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=limit)
    return tokenizer


def _gather(vectors: np.ndarray, inverse: np.ndarray, out) -> np.ndarray:
    """Rows in input order: [N, D]; written to the `.npy` file `out` (atomically) when given."""
    if out is None:
        return np.ascontiguousarray(vectors[inverse])
    out = Path(out)
    if out.is_dir():
        raise OutputError(f"output {out} is a directory; name a .npy file")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out.parent}: {e.strerror or e}") from None
    tmp = out.with_name(out.name + ".partial.npy")
    result = new_npy(tmp, (len(inverse), vectors.shape[1]), "the embeddings")
    with writing(out, tmp):
        for start in range(0, len(inverse), _GATHER_ROWS):
            result[start : start + _GATHER_ROWS] = vectors[inverse[start : start + _GATHER_ROWS]]
        result.flush()
        del result
        refuse_if_swapped(tmp)
        os.replace(tmp, out)
    return np.load(out, mmap_mode="r")
