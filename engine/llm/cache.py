"""The call cache: one JSON file per finished request, named by a hash of everything that decides its answer.

The key hashes (backend, model, system, messages, max_tokens, temperature, JSON schema) plus a format
version, so nobody lists by hand what goes into it and a changed prompt or parameter can never hit a stale
entry. Files are written to a temporary name and renamed (`clio_engine.storage.writing` turns a full disk
into a one-line `OutputError`), so a run killed mid-stage leaves only whole files and resumes without
re-sending a finished request. An unreadable file counts as a miss and is rewritten.

No fsync: a cache entry lost to a power cut is only a request sent again, and fsync would cost more than
the call bookkeeping itself (benchmarks/llm_throughput.py).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import queue
import threading
from pathlib import Path
from typing import Any

from clio_engine.llm.types import Request, Result
from clio_engine.runfiles import LLM_CACHE
from clio_engine.storage import writing

CACHE_VERSION = 1
RUN_CACHE = LLM_CACHE  # where a run keeps its calls, under RUN_DIR (private: prompts hold record text)


def schema_json(schema: Any) -> dict | None:
    """A request's schema as a JSON-schema dict (a pydantic model class gives its `model_json_schema()`)."""
    if schema is None or isinstance(schema, dict):
        return schema
    if hasattr(schema, "parse") and hasattr(schema, "instruction") and hasattr(schema, "key"):
        return {"x-text-format": schema.key, "instruction": schema.instruction}  # a plain-text format: keyed by its spec
    if hasattr(schema, "model_json_schema"):
        return _model_schema(schema)
    raise TypeError(f"schema must be a JSON-schema dict or a pydantic model class, got {type(schema).__name__}")


@functools.lru_cache(maxsize=256)
def _model_schema(model: type) -> dict:
    return model.model_json_schema()  # ~0.1 ms each: computed once per class, not once per request


def call_key(backend: str, model: str, request: Request, max_tokens: int, temperature: float) -> str:
    """The hex SHA-256 naming a request's cache file (defaults already resolved into max_tokens/temperature)."""
    body = {"v": CACHE_VERSION, "backend": backend, "model": model, "system": request.system,
            "messages": list(request.messages), "max_tokens": max_tokens, "temperature": float(temperature),
            "schema": schema_json(request.schema)}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CallCache:
    """Finished results under `root/<2 hex>/<key>.json`; `root=None` caches nothing."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root is not None else None
        self._made: set[Path] = set()  # shard folders known to exist (skips a mkdir syscall per write)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Result | None:
        if self.root is None:
            return None
        try:
            data = json.loads(self._path(key).read_bytes())
            return Result.from_json(data)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent, or unreadable: sent again and rewritten

    def put(self, key: str, result: Result) -> None:
        if self.root is None:
            return
        path = self._path(key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        data = json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8")
        with writing(path, tmp):
            if path.parent not in self._made:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(path.parent)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            except FileNotFoundError:  # the folder was removed under us (a purge): make it again
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, path)


class WriteBehind:
    """`cache.put` on one background thread, so the event loop never waits on the file system (a file
    creation took 0.1-0.9 ms on the event loop of the loaded 2-core CI box; benchmarks/llm_throughput.py).
    A result counts as finished once its file exists: a process killed before the thread wrote it sends
    that request again on resume, exactly as if it had been killed while the answer was in transit.
    `close()` waits for every queued write; a write error is raised by the next `put` or by `close`."""

    def __init__(self, cache: CallCache):
        self.cache, self.error = cache, None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="llm-cache-writer", daemon=True)
        self._thread.start()

    def put(self, key: str, result: Result) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put((key, result))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self.cache.put(*item)
                except Exception as e:  # noqa: BLE001 — handed to the event loop's next put / close
                    self.error = e
