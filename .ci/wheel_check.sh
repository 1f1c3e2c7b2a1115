#!/usr/bin/env bash
# Installs the project as a user would, from a built wheel (never editable), into a fresh virtualenv,
# and runs a small `clio-engine demo` from a folder outside the repository. Checks that the run
# directory is complete, that its release/ passes `clio-engine audit`, and that the wheel installs no
# top-level `engine` or `kernels` package.
# Usage: bash .ci/wheel_check.sh [N_RECORDS]   (run from anywhere; uses the python3 on PATH)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-2000}"
work="$(mktemp -d "${TMPDIR:-/tmp}/clio-wheel-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip wheel -q --no-deps -w "$work/dist" "$repo" > "$work/wheel.log" 2>&1 \
    || { cat "$work/wheel.log" >&2; echo "FAIL: building the wheel" >&2; exit 1; }
"$py" -m pip install -q torch==2.13.0
"$py" -m pip install -q "$work"/dist/clio_engine-*.whl

# No generic top-level import package may be installed (the `kernels` name is another PyPI project's).
tops=$("$py" -m pip show -f clio-engine | awk '/^Files:/{f=1;next} f{print $1}' | grep -v '^\.\./' | cut -d/ -f1 | sort -u)
echo "wheel installs: $(echo $tops)"
for bad in engine kernels configs; do
    if echo "$tops" | grep -qx "$bad"; then echo "FAIL: the wheel installs a top-level '$bad'" >&2; exit 1; fi
done

mkdir -p "$work/elsewhere"
cd "$work/elsewhere"   # outside the repo: nothing can be imported from a checkout
"$work/venv/bin/clio-engine" demo -n "$n" --out "$work/elsewhere/run" --no-progress 2>&1 | tail -n 20 \
    || { echo "FAIL: clio-engine demo from the wheel exited non-zero" >&2; exit 1; }
for f in manifest.json clusters.parquet facets.parquet tree.json report.md explorer.html \
         private/assignments.parquet private/embeddings.npy \
         release/manifest.json release/clusters.parquet release/facets.parquet release/tree.json release/report.md \
         release/aggregates.csv release/explorer.html; do
    [ -s "run/$f" ] || { echo "FAIL: the wheel's demo run directory lacks $f" >&2; exit 1; }
done
for f in assignments.parquet embeddings.npy .cache; do
    [ ! -e "run/$f" ] || { echo "FAIL: the wheel's demo run directory has $f outside private/" >&2; exit 1; }
done
# The privacy contract, attacked: the demo's release must survive `clio-engine audit` (group-by, point
# counting, linear differencing); it prints each violation and exits non-zero on any.
"$work/venv/bin/clio-engine" audit run/release || { echo "FAIL: clio-engine audit found violations in the demo's release/" >&2; exit 1; }
"$py" - "$work/elsewhere/run" <<'PY'
import sys
import clio_engine as ce
run = ce.Run.load(sys.argv[1])
assert run.manifest["input"]["accepted"] > 0, run.manifest["input"]
assert "site-packages" in ce.__file__, f"imported from {ce.__file__}, not the installed wheel"
from pathlib import Path
from clio_engine.explorer.page import page_data
public = page_data((Path(sys.argv[1]) / "release" / "explorer.html").read_text(encoding="utf-8"))
assert public["meta"].get("public") and not public["points"]["node"], "release/explorer.html is not the public page"
print(f"wheel check: demo run loads ({len(run.clusters)} cluster rows, {run.manifest['input']['accepted']} records) "
      f"from {ce.__file__}")
PY
