"""The engine's `embed()` from two or more checkouts of this repository, timed side by side on the same texts.

    git worktree add /tmp/before <rev>
    python -m benchmarks.embed_versions --checkouts /tmp/before . [--case medium short] [--rounds 2] [--dtype auto]

Answers "did a change slow the CPU path?" when the machine's own speed drifts between days: each round
runs every checkout once, alternating, each in a fresh process (model load and a one-text warm-up untimed,
then two timed calls; the second, warm, is reported), on the embed suite's texts for that case. A checkout
is imported from its own folders: `engine/` as `clio_engine` and `kernels/` as `clio_engine.kernels`
(or, for commits before the rename, `engine` itself). Prints one JSON line per call and a summary.
"""
from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import importlib.util, json, pickle, sys, time
checkout, texts_file, dtype = sys.argv[1:4]
root = __import__("pathlib").Path(checkout)
renamed = "clio_engine" in (root / "pyproject.toml").read_text()   # engine/ and kernels/ packaged as clio_engine
if renamed:
    for name, folder in (("clio_engine", root / "engine"), ("clio_engine.kernels", root / "kernels")):
        spec = importlib.util.spec_from_file_location(name, folder / "__init__.py", submodule_search_locations=[str(folder)])
        sys.modules[name] = importlib.util.module_from_spec(spec)
    for name in ("clio_engine", "clio_engine.kernels"):
        sys.modules[name].__spec__.loader.exec_module(sys.modules[name])
    from clio_engine.embed import embed
    import clio_engine as package
else:                               # commits before the rename import `engine` and `kernels` directly
    sys.path.insert(0, str(root))
    from engine.embed import embed
    import engine as package
texts = pickle.load(open(texts_file, "rb"))
embed(["warm up"], dtype=dtype, device="cpu", cache=False, progress=False)
times = []
for _ in range(2):
    t0 = time.perf_counter()
    embed(texts, dtype=dtype, device="cpu", cache=False, progress=False)
    times.append(time.perf_counter() - t0)
print(json.dumps({"module": package.__file__, "texts": len(texts), "seconds": times}))
"""


def case_texts(case: str, data_dir: str | None) -> list[str]:
    from benchmarks.common import Options
    from benchmarks.suites.embed import build

    found = next(c for c in build(Options(data_dir=data_dir)) if c.name.startswith(case))
    return list(found.load().data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkouts", nargs="+", required=True, help="repository folders (git worktrees)")
    parser.add_argument("--case", nargs="+", default=["medium", "short"], help="embed suite cases")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    checkouts = [str(Path(c).resolve()) for c in args.checkouts]
    for folder in checkouts:
        if not (Path(folder) / "engine" / "embed").is_dir():
            parser.error(f"{folder} is not a checkout of this repository (no engine/embed)")
    warm: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.case:
            texts_file = Path(tmp) / f"{case}.pkl"
            texts_file.write_bytes(pickle.dumps(case_texts(case, args.data_dir)))
            for _ in range(args.rounds):
                for folder in checkouts:
                    out = subprocess.run([sys.executable, "-c", CHILD, folder, str(texts_file), args.dtype],
                                         capture_output=True, text=True, check=True, cwd=tmp)
                    row = {"case": case, "checkout": folder, **json.loads(out.stdout.strip().splitlines()[-1])}
                    print(json.dumps(row), flush=True)
                    warm.setdefault((case, folder), []).append(row["seconds"][-1])
    for (case, folder), seconds in warm.items():
        print(f"{case:8s} {folder}: warm s {', '.join(f'{s:.2f}' for s in seconds)} (median {np.median(seconds):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
