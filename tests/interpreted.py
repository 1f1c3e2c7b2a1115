"""Run Triton kernels under the interpreter in a subprocess and bring their outputs back.

TRITON_INTERPRET=1 is read when a kernel is decorated, so it cannot be switched on inside the test
process (whose kernels are already decorated for a GPU or not at all). The subprocess imports
`module`, calls its `function(out_path)`, which saves an `.npz`; the comparisons happen in the caller."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def run_interpreted(module: str, function: str, out: Path, timeout: float = 600) -> dict[str, np.ndarray]:
    code = f"from {module} import {function}; {function}({str(out)!r})"
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"interpreter subprocess failed:\n{proc.stderr[-4000:]}"
    return dict(np.load(out))
