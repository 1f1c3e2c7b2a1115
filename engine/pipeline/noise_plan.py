"""The run's noise plan (privacy.epsilon): which count queries share the budget. Config and records only, no
stage, so the cluster stage (which draws the record count k comes from) and the privacy stage agree."""
from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from clio_engine.errors import OutputError
from clio_engine.runfiles import owner_only_dir, write_bytes

# The settings `run_noise_plan` reads: a stage that calls it declares them (the stage registry checks reads).
PLAN_READS = ("privacy.epsilon", "privacy.max_records_per_user", "cluster.method", "cluster.k", "hierarchy.levels")


def k_from_count(cfg) -> bool:
    """Whether the run's number of base clusters is drawn from a noised record count (`K_QUERY`): with
    privacy.epsilon, k-means and no explicit cluster.k. Otherwise k = round(N / target) would state N."""
    return cfg.cluster.method == "kmeans" and cfg.cluster.k is None and cfg.privacy.epsilon is not None


KEY_FILE = "noise.key"  # in private/: 128 secret bits as hex
# A new run's key: random, unless this variable holds one (hex). For reproducible tests, or to draw the same
# records' noise again elsewhere (other records draw other noise: `data_key`); whoever knows the key and the
# records can subtract the noise, so it is never a config setting (the config goes into manifests).
KEY_ENV = "CLIO_ENGINE_NOISE_KEY"


def _parse_key(text: str, where: str) -> int:
    try:
        key = int(text.strip(), 16)
    except ValueError:
        key = -1
    if not 0 <= key < 1 << 128:
        raise OutputError(f"{where} is not a noise key (up to 32 hex digits)")
    return key


def run_key(private: Path) -> int:
    """The run's secret noise key, created at its first noised stage and kept in `private` (never published):
    a resumed run draws the same noise, a new run directory new noise, and the published seed alone draws
    none of it again."""
    path = private / KEY_FILE
    try:
        key = _parse_key(path.read_text(), f"{path} (delete it and {private / 'cache'} to draw new noise)")
        if path.stat().st_mode & 0o077:  # e.g. copied with another umask: only the owner may read it
            os.chmod(path, 0o600)
        return key
    except FileNotFoundError:
        pass
    preset = os.environ.get(KEY_ENV)
    key = _parse_key(preset, f"${KEY_ENV}") if preset else secrets.randbits(128)
    owner_only_dir(private)
    write_bytes(path, f"{key:032x}\n".encode(), mode=0o600)
    return key


def data_key(key: int, records) -> int:
    """The key the draws use: 128 bits of sha256(the run's key, the records' content fingerprint).

    Why the data: a run directory keeps its key, and `CLIO_ENGINE_NOISE_KEY` presets one everywhere, so new
    data run into the same directory (or under the same preset key) would draw the very same noise for
    every query; two releases one user apart then subtract to that user's exact counts. Keyed by the data,
    the same records draw the same noise again (a rerun spends no more ε) and any other records draw anew."""
    from clio_engine.pipeline.stages import records_fingerprint

    fingerprint = records_fingerprint(records)  # the records stage computed it already for its cache key
    digest = hashlib.sha256(b"clio-engine noise\0" + key.to_bytes(16, "big") + fingerprint.encode()).digest()
    return int.from_bytes(digest[:16], "big")


def run_noise_plan(cfg, records, n_levels: int, private: Path | None = None):
    """The run's NoisePlan (None without privacy.epsilon): one budget over every level and facet, and over
    the record count where k comes from it. The cluster stage draws that count before the tree exists, so
    every caller passes the same `n_levels` (the tree has hierarchy.levels levels). `private`: the run's
    private folder, whose key (`run_key`) the draws use, mixed with the records' content (`data_key`); None
    for a plan that only describes the budget."""
    from clio_engine.privacy.noise import plan_noise

    p = cfg.privacy
    key = data_key(run_key(private), records) if private is not None and p.epsilon is not None else None
    return plan_noise(p.epsilon, p.max_records_per_user, n_levels=n_levels, facets=tuple(records.facet_columns),
                      has_user_ids=bool(records.has_user_ids), k_from_count=k_from_count(cfg), key=key)
