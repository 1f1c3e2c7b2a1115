"""Saying so when a run replaces a finished run of other records in its directory.

Writing a run into a directory resumes it while the records are the same; with other records every stage
recomputes and the earlier run — its report, analyst view and release/ — is overwritten. That is allowed
(an analyst re-running on corrected data does it every day), but it must not be silent: a new user's review
ran a second data set into an existing `--out` and lost the first run, its release included, without a word.

The records' content fingerprint of each finished run is kept in `private/cache/records.json` (private:
it is a hash of every text). Runs written before it existed are compared by the manifest's source instead.
"""
from __future__ import annotations

import json
import logging

from clio_engine.pipeline.rundir import RunDir, write_json
from clio_engine.privacy.escape import terminal_text
from clio_engine.runfiles import CACHE

log = logging.getLogger(__name__)
RECORDS_MARK = f"{CACHE}/records.json"


def warn_if_replacing(rd: RunDir, fingerprint: str, origin: str, accepted: int) -> str | None:
    """Log (and return) one warning line where `rd` holds a finished run whose records differ from these
    (`fingerprint` of the records stage, `origin` as the manifest writes it, `accepted` records); else None."""
    earlier = _finished_run(rd)
    if earlier is None:
        return None
    mark = _records_mark(rd)
    if mark is not None:
        if mark.get("fingerprint") == fingerprint:
            return None
    elif earlier.get("source") == origin and earlier.get("accepted") == accepted:
        return None  # a run from before the mark: the same source and count is taken as the same records
    when = f", finished {earlier['finished_at']}" if earlier.get("finished_at") else ""
    held = f"{rd.path} held a run of {_count(earlier.get('accepted'))} records from {earlier.get('source')}{when}"
    if earlier.get("source") == origin:
        now = "its records have changed since, and this run replaces it"
    else:
        now = f"this run of {accepted:,} records from {origin} replaces it"
    line = f"{held}; {now}, release/ included (to keep both, choose another --out / output.dir)"
    line = terminal_text(line)  # (paths come from the user and a manifest: no control characters on a terminal)
    log.warning("%s", line)
    return line


def remember_records(rd: RunDir, fingerprint: str) -> None:
    """Record the finished run's records fingerprint (written with the manifest, at the end of a run)."""
    write_json(rd / RECORDS_MARK, {"fingerprint": fingerprint})


def _finished_run(rd: RunDir) -> dict | None:
    """{source, accepted, finished_at} of the run manifest in `rd`, or None where there is no finished run."""
    try:
        manifest = json.loads((rd / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("input"), dict):
        return None
    inp = manifest["input"]
    return {"source": inp.get("source"), "accepted": inp.get("accepted"),
            "finished_at": (manifest.get("run") or {}).get("finished_at")}


def _records_mark(rd: RunDir) -> dict | None:
    try:
        mark = json.loads((rd / RECORDS_MARK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return mark if isinstance(mark, dict) else None


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"
