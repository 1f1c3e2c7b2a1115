"""A run killed with SIGKILL mid-way resumes from its last finished chunk and ends bit-identical."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from clio_engine.embed import embed

REPO = Path(__file__).resolve().parent.parent

# Real default model in fp32: slow enough (~300 texts/s here) that the kill lands mid-run.
SETTINGS = dict(model="default", device="cpu", dtype="fp32", chunk_size=50, batch_tokens=2048)


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(7)
    words = ("invoice refund card transfer python error fixture deploy poem travel visa recipe budget "
             "translate essay summary workout sleep garden").split()
    return [f"{i}: " + " ".join(rng.choice(words, size=rng.integers(4, 30))) for i in range(n)]


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    texts = _texts(800)
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import json, sys
        from clio_engine.embed import embed
        texts = json.load(open({str(tmp_path / 'texts.json')!r}))
        embed(texts, cache_dir={str(cache)!r}, progress=False, **{SETTINGS!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 300
    finished = 0
    while time.time() < deadline and proc.poll() is None:
        states = list(cache.glob("embeddings/*/state.json"))
        if states:
            finished = len(json.loads(states[0].read_text())["chunks"])
            if finished >= 2:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= finished < 16, f"the kill did not land mid-run ({finished} of 16 chunks finished)"

    resumed, report = embed(texts, cache_dir=cache, progress=False, return_report=True, **SETTINGS)
    assert 2 <= report.chunks_reused < report.chunks == 16
    uninterrupted = embed(texts, cache=False, progress=False, **SETTINGS)
    assert resumed.tobytes() == uninterrupted.tobytes()
