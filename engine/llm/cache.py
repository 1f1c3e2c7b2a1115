"""The call cache: one log line per finished request, keyed by a hash of everything that decides its answer.

The key hashes (backend, model, system, messages, max_tokens, temperature, JSON schema) plus a format
version and the backend's `cache_identity` (what else decides its answers: the server's base URL, whether
the schema is sent natively, a local model's resolved file and, when sampling, its seed), so a changed
prompt, parameter or model behind the same name can never hit a stale entry. Entries are appended to a per-process log (`CallCache`; `clio_engine.storage.writing` turns a full
disk into a one-line `OutputError`), so a run killed mid-stage leaves only whole entries (a partial last
line is a miss) and resumes without re-sending a finished request.

No fsync: a cache entry lost to a power cut is only a request sent again, and fsync would cost more than
the call bookkeeping itself (benchmarks/llm_throughput.py).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from clio_engine.errors import OutputError
from clio_engine.llm.types import Request, Result
from clio_engine.path_trust import TRUSTED_UIDS_ENV, owned_plain_file, path_swap_risk, trusted_owners
from clio_engine.runfiles import LLM_CACHE, owner_only_dir
from clio_engine.storage import writing

CACHE_VERSION = 2  # 2: the backend identity joined the key
RUN_CACHE = LLM_CACHE  # where a run keeps its calls, under RUN_DIR (private: prompts hold record text)

log = logging.getLogger(__name__)


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


def call_key(backend: str, model: str, request: Request, max_tokens: int, temperature: float,
             identity: dict | None = None) -> str:
    """The hex SHA-256 naming a request's cache file (defaults already resolved into max_tokens/temperature;
    `identity`: the backend's `cache_identity(temperature)`). UnicodeEncodeError for text that is not valid
    Unicode (a lone surrogate), which no server could be sent either."""
    body = {"v": CACHE_VERSION, "backend": backend, "model": model, "system": request.system,
            "messages": list(request.messages), "max_tokens": max_tokens, "temperature": float(temperature),
            "schema": schema_json(request.schema), "identity": identity or {}}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CallCache:
    """Finished results in append-only logs under `root`; `root=None` caches nothing.

    Each process appends to its own `calls-<pid>-<token>.jsonl`, one line {"key", "result"} per finished
    request, written with a single unbuffered `write` (a file per call cost 0.6 ms of create + write +
    rename: the limit of the generator's calls/s; benchmarks/llm_throughput.py). A process killed
    mid-write leaves at most one partial last line, which does not parse and counts as a miss. The logs
    are read once, at the first lookup, into a dict; what this cache writes afterwards is added to it.
    """

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root is not None else None
        check_cache_root(self.root)
        self._index: dict[str, dict] | None = None
        self._log = _Appender(self.root, LOG_PREFIX, LOG_SUFFIX) if self.root is not None else None

    def logs(self) -> list[Path]:
        """The call logs under `root` (every process's of this user's: `own_logs`)."""
        return own_logs(self.root, LOG_PREFIX, LOG_SUFFIX)

    def get(self, key: str) -> Result | None:
        if self.root is None:
            return None
        if self._index is None:
            self._index = read_logs(self.logs())
        data = self._index.get(key)
        if data is None:
            return None
        try:
            return Result.from_json(data)
        except (KeyError, TypeError):
            return None  # an entry of another shape: sent again and appended anew

    def put(self, key: str, result: Result) -> None:
        if self.root is None:
            return
        data = result.to_json()
        try:
            line = (json.dumps({"key": key, "result": data}, ensure_ascii=False) + "\n").encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (in an error text, say): JSON escapes keep the line valid
            line = (json.dumps({"key": key, "result": data}, ensure_ascii=True) + "\n").encode("ascii")
        self._log.write(line)
        if self._index is not None:
            self._index[key] = data

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


LOG_PREFIX, LOG_SUFFIX = "calls-", ".jsonl"
SPEND_PREFIX, SPEND_SUFFIX = "spend-", ".log"


class SpendLog:
    """Dollars spent on calls under `root`, across invocations: `llm.max_cost_usd` bounds a run, not each
    rerun of it. Each process appends one line per priced call to its own `spend-<pid>-<token>.log`
    (O_APPEND, like the call logs); `earlier` is the sum of every log found when this one was made.
    `root=None` (no cache) keeps nothing: the ceiling is then per generator."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root is not None else None
        check_cache_root(self.root)
        self._log = _Appender(self.root, SPEND_PREFIX, SPEND_SUFFIX) if self.root is not None else None
        self.earlier = self._read()

    def _read(self) -> float:
        total = 0.0
        for path in own_logs(self.root, SPEND_PREFIX, SPEND_SUFFIX):
            try:
                lines = path.read_bytes().splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    usd = float(line)
                except ValueError:
                    continue  # a partial last line
                if usd > 0 and usd == usd and usd != float("inf"):
                    total += usd
        return total

    def add(self, usd: float) -> None:
        if self.root is None or not usd > 0:
            return
        self._log.write(f"{usd!r}\n".encode())

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


def check_cache_root(root: Path | None) -> None:
    """OutputError (one line) where another account could delete or swap the logs under `root`: `root` (or, while
    it does not exist yet, the folder it will be made in), or a folder or symlink on the way to it, belongs to an
    account other than this user, root and `trusted_owners`, or every account may write to it and it is not
    sticky (`path_trust.swap_risk`; a group's project folder passes, as for run folders). That account could erase
    the spend logs, and the cost ceiling with them, or the call logs, so every finished request is sent and paid
    again. Judged when a cache is opened, before anything is read or sent; the folder's mode is left as it is."""
    if root is None:
        return
    folder = Path(root).absolute()
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    try:
        why = path_swap_risk(folder, group_may_write=True)
    except OSError as e:
        raise OutputError(f"LLM cache {root}: cannot reach {folder} ({e.strerror or e})") from None
    if why:
        raise OutputError(f"LLM cache {root}: {why}, so that account could delete or swap the call and spend logs "
                          "(finished requests sent and paid again, the cost ceiling forgotten); choose a folder of "
                          "your own")


def own_logs(root: Path | None, prefix: str, suffix: str) -> list[Path]:
    """The logs `<prefix>*<suffix>` under `root` that are plain files of this user's (or of an account the user
    vouches for, `path_trust.trusted_owners`), sorted. Another account's are skipped, with a warning: in a folder
    others may add files to (a sticky /tmp, a group's folder) a planted call log would hand the run answers of
    that account's choosing (an auditor's "no private data" included) and a planted spend log would stop it at
    its cost ceiling."""
    if root is None or not root.is_dir():
        return []
    owners, own, foreign = trusted_owners(), [], []
    for path in sorted(root.glob(f"{prefix}*{suffix}")):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        (own if owned_plain_file(st, owners) else foreign).append(path)
    if foreign:
        log.warning("LLM cache %s: skipped %d log(s) another account put there (%s); only your own, and those of "
                    "accounts listed in $%s, are read", root, len(foreign),
                    ", ".join(p.name for p in foreign[:3]) + (", …" if len(foreign) > 3 else ""), TRUSTED_UIDS_ENV)
    return own


_NEW_LOG = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)


class _Appender:
    """One process's append-only log under `root`, `<prefix><pid>-<token><suffix>` (no other writer shares the
    file): created, with `root`, at the first line; closed by `close` or when collected."""

    def __init__(self, root: Path, prefix: str, suffix: str):
        self.root, self.prefix, self.suffix = root, prefix, suffix
        self._fd: int | None = None
        self._path: Path | None = None

    def write(self, line: bytes) -> None:
        """Append one whole line (`writing` turns a full disk into a one-line `OutputError`)."""
        while self._fd is None:
            self._path = self.root / f"{self.prefix}{os.getpid()}-{secrets.token_hex(4)}{self.suffix}"
            with writing(self._path):
                owner_only_dir(self.root, tighten=False)  # prompts hold record text; a folder the user chose keeps its mode
                try:  # a new file, never one found at the name (nor a link's target): another name if one is there
                    self._fd = os.open(self._path, _NEW_LOG, 0o600)
                except FileExistsError:
                    continue
        with writing(self._path):
            os.write(self._fd, line)  # O_APPEND: one write, so concurrent writers never interleave a line

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()


def read_logs(paths) -> dict[str, dict]:
    """{key: result JSON} from call logs; lines that do not parse (a partial last line) are skipped."""
    index: dict[str, dict] = {}
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError:
            continue
        for line in data.splitlines():
            try:
                entry = json.loads(line)
                index[entry["key"]] = entry["result"]
            except (ValueError, KeyError, TypeError):
                continue
    return index
