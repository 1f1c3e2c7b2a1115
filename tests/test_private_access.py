"""Another account on the same machine may not read a run's private/ zone (SPEC §3): per-record texts,
invertible embeddings and the prompts in the LLM call cache. A shared research server is the common case; a
umask of 022 (the default on most systems) would leave every file under private/ readable by all. The same
holds for what leaves the run directory: `embed --out`'s vectors, the run's Dask cluster (its scheduler, its
scratch space and import path), and `explore --serve`'s page. And no account may reach into what the engine
uses outside a folder it made itself: a global cache, a run directory or a file name another account made first
(under /tmp, say) is refused or replaced, never trusted.

The attacks run as a real second account (uid/gid `nobody`, `tests.another_account`) in a forked child, so they
need root to switch users and skip with that reason elsewhere; the mode checks beside them run everywhere."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from clio_engine import generate_conversations
from clio_engine.llm.cache import CallCache
from clio_engine.llm.types import Result
from clio_engine.pipeline import run
from clio_engine.pipeline.rundir import RunDir
from clio_engine.runfiles import owner_only_dir
from tests.another_account import AS_ROOT, NOBODY, as_another_account, read_as_another_account

pytestmark = pytest.mark.unit

@pytest.fixture
def loose_umask():
    """The common umask (022): files and folders readable by every account unless the engine says otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def open_folder():
    """A folder every account may enter (pytest's tmp_path sits under a root-only folder, which would close
    the run directory to the attacker whatever the engine did)."""
    path = Path(tempfile.mkdtemp(prefix="clio-private-access-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _small_run(out: Path, tiny_bert_dir: Path, **overrides):
    frame = generate_conversations(200, seed=5)
    return run(None, input=frame[["id", "text", "user_id"]], out=out, overrides={
        "embed.progress": False, "cluster.k": 8, "hierarchy.levels": 2, "hierarchy.top": 3,
        "embed.model": str(tiny_bert_dir), "input.user_column": "user_id", "output.explorer": False, **overrides})


@AS_ROOT
def test_another_account_reads_the_analyst_view_but_nothing_under_private(open_folder, loose_umask, tiny_bert_dir):
    result = _small_run(open_folder / "run", tiny_bert_dir)
    d = result.dir
    private = [d / "private", d / "private" / "assignments.parquet", d / "private" / "embeddings.npy",
               *sorted((d / "private" / "cache" / "embeddings").glob("*/vectors.npy"))]
    assert len(private) == 4, "the run's own embedding store is under private/cache/embeddings"
    answers = read_as_another_account([d / "manifest.json", d / "release" / "aggregates.csv", *private])
    # The analyst's view is readable: the attacker reaches the run directory, so what follows is the engine's doing.
    assert answers[str(d / "manifest.json")] == "read" and answers[str(d / "release" / "aggregates.csv")] == "read"
    leaked = [p for p in map(str, private) if answers[p] != "PermissionError"]
    assert leaked == [], f"another account could read {leaked}"


def test_private_is_owner_only_under_a_loose_umask(open_folder, loose_umask, tiny_bert_dir):
    result = _small_run(open_folder / "run", tiny_bert_dir)
    assert _mode(result.dir / "private") == 0o700
    assert _mode(result.dir) == 0o755, "the analyst's view keeps the umask's mode"


def test_an_earlier_private_zone_left_open_is_closed_when_the_run_directory_is_opened(tmp_path, loose_umask):
    (tmp_path / "run" / "private").mkdir(parents=True)
    (tmp_path / "run" / "private").chmod(0o755)  # made by an older version, or copied with another umask
    RunDir(tmp_path / "run")
    assert _mode(tmp_path / "run" / "private") == 0o700


def test_a_shared_embedding_store_is_owner_only(tmp_path, loose_umask, tiny_bert_dir):
    """embed.cache_dir (the store shared across runs, outside any run directory) holds invertible vectors too."""
    _small_run(tmp_path / "run", tiny_bert_dir, **{"embed.cache_dir": str(tmp_path / "shared")})
    entries = list((tmp_path / "shared" / "embeddings").glob("*/vectors.npy"))
    assert len(entries) == 1
    assert _mode(entries[0].parent) == 0o700


def test_an_llm_call_cache_folder_is_created_owner_only_and_a_chosen_one_keeps_its_mode(tmp_path, loose_umask):
    new = CallCache(tmp_path / "new" / "llm")
    new.put("k", Result(ok=True, text="a prompt's answer"))
    new.close()
    assert _mode(tmp_path / "new" / "llm") == 0o700 and _mode(tmp_path / "new") == 0o755
    chosen = tmp_path / "chosen"
    chosen.mkdir(mode=0o750)  # the user shares it with a group on purpose: not ours to tighten
    shared = CallCache(chosen)
    shared.put("k", Result(ok=True, text="x"))
    shared.close()
    assert _mode(chosen) == 0o750
    assert [_mode(p) for p in shared.logs()] == [0o600]


def _embed_cli(tmp_path: Path, out: Path, tiny_bert_dir: Path) -> None:
    frame = generate_conversations(30, seed=2)
    frame[["id", "text"]].to_parquet(tmp_path / "texts.parquet")
    subprocess.run([sys.executable, "-m", "clio_engine.cli", "embed", str(tmp_path / "texts.parquet"), "--out", str(out),
                    "--model", str(tiny_bert_dir), "--device", "cpu"], check=True, capture_output=True, timeout=300)


@AS_ROOT
def test_another_account_cannot_read_vectors_written_by_embed_out(open_folder, tiny_bert_dir):
    """`embed --out` writes where the caller says, often a shared project folder: the vectors give the texts back
    (nearest neighbours under the public model), so the file is the owner's only, as private/ is."""
    old = os.umask(0o022)  # the child CLI inherits it
    try:
        _embed_cli(open_folder, open_folder / "vecs.npy", tiny_bert_dir)
    finally:
        os.umask(old)
    files = [open_folder / "vecs.npy", open_folder / "vecs.rows.parquet", open_folder / "vecs.rejected.parquet"]
    answers = read_as_another_account([open_folder / "texts.parquet", *files])
    assert answers[str(open_folder / "texts.parquet")] == "read", "the attacker reaches the folder: the rest is the engine's doing"
    leaked = [p.name for p in files if answers[str(p)] != "PermissionError"]
    assert leaked == [], f"another account could read {leaked}"


def test_embed_out_is_owner_only_under_a_loose_umask_and_an_open_file_it_replaces_is_closed(tmp_path, tiny_bert_dir):
    out = tmp_path / "vecs.npy"
    out.write_bytes(b"an older file, readable by all")
    out.chmod(0o644)
    old = os.umask(0o022)
    try:
        _embed_cli(tmp_path, out, tiny_bert_dir)
    finally:
        os.umask(old)
    assert {p.name: _mode(p) for p in tmp_path.glob("vecs*")} == {
        "vecs.npy": 0o600, "vecs.rows.parquet": 0o600, "vecs.rejected.parquet": 0o600}


@AS_ROOT
def test_files_another_account_planted_at_embed_outs_names_receive_nothing(open_folder, tiny_bert_dir):
    """`embed --out /tmp/vecs.npy`: every account may create in /tmp, and the names the engine writes are known in
    advance (`vecs.npy.partial.npy`, renamed over `vecs.npy` at the end, and the sidecars). Another account makes
    them first, open to all. The old code opened each existing file, emptied it and wrote the vectors and the
    record ids into it, so the planted file's owner read them (it may always set the mode back)."""
    import numpy as np

    open_folder.chmod(0o1777)  # stands for /tmp (this machine, like many, does not set fs.protected_regular)
    names = ["vecs.npy.partial.npy", "vecs.npy", "vecs.rows.parquet", "vecs.rejected.parquet"]

    def plant() -> str:
        for name in names:
            with open(open_folder / name, "wb") as f:
                np.save(f, np.zeros((1, 1), np.float32))  # a valid file of any shape
        return "planted"

    assert as_another_account(plant, umask=0) == "planted"
    old = os.umask(0o022)
    try:
        _embed_cli(open_folder, open_folder / "vecs.npy", tiny_bert_dir)
    finally:
        os.umask(old)
    written = np.load(open_folder / "vecs.npy")

    def read_planted() -> str:
        got = []
        for name in names:
            path = open_folder / name
            if path.exists() and path.stat().st_uid == os.getuid():  # still the planted file: read it
                path.chmod(0o644)
                try:
                    unchanged = np.array_equal(np.load(path), np.zeros((1, 1), np.float32))
                except Exception:  # noqa: BLE001 — it holds something else now: what the run wrote
                    unchanged = False
                if not unchanged:
                    got.append(f"{name} ({path.stat().st_size} bytes of the run's)")
        return ", ".join(got)

    assert written.shape[0] == 30
    assert as_another_account(read_planted) == "", "files another account owns received the run's vectors or ids"
    assert {p.name: (p.stat().st_uid, _mode(p)) for p in open_folder.glob("vecs*")} == {
        name: (0, 0o600) for name in ["vecs.npy", "vecs.rows.parquet", "vecs.rejected.parquet"]}


def test_a_symlink_at_embed_outs_temporary_name_is_replaced_not_followed(tmp_path, tiny_bert_dir):
    """Another account (or a stale link) at `vecs.npy.partial.npy` pointing at one of the user's files: the old code
    followed it, emptied the file it points at and wrote the vectors there."""
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's own file")
    (tmp_path / "vecs.npy.partial.npy").symlink_to(precious)
    _embed_cli(tmp_path, tmp_path / "vecs.npy", tiny_bert_dir)
    assert precious.read_bytes() == b"the user's own file"
    assert not (tmp_path / "vecs.npy").is_symlink() and _mode(tmp_path / "vecs.npy") == 0o600


def _atomic_writers():
    import numpy as np
    import pyarrow as pa

    from clio_engine.runfiles import write_json, write_npy, write_npz, write_parquet

    return {"a.json": (lambda p: write_json(p, {"published": 1}), "a.json.tmp"),
            "a.parquet": (lambda p: write_parquet(p, pa.table({"n": [1]})), "a.parquet.tmp"),
            "a.npy": (lambda p: write_npy(p, np.zeros(3)), "a.tmp.npy"),
            "a.npz": (lambda p: write_npz(p, n=np.zeros(3)), "a.tmp.npz")}


def test_a_symlink_at_an_atomic_writes_temporary_name_is_replaced_not_followed(tmp_path):
    """Every file the engine publishes goes through a temporary name beside it (`NAME.tmp`). A link there (planted,
    or left behind) made the old code overwrite the file the link points at, and then rename the link into place."""
    for name, (write, tmp_name) in _atomic_writers().items():
        precious = tmp_path / f"precious-{name}.txt"
        precious.write_bytes(b"the user's own file")
        (tmp_path / tmp_name).symlink_to(precious)
        write(tmp_path / name)
        assert precious.read_bytes() == b"the user's own file", name
        assert not (tmp_path / name).is_symlink() and (tmp_path / name).stat().st_size > 0, name


@AS_ROOT
def test_a_file_another_account_planted_at_a_temporary_name_does_not_become_the_published_file(open_folder):
    """`release --out /tmp/…` (any folder every account may create in): another account makes the temporary names
    first, open to all. The old code wrote into that file and renamed it into place, so the published file was the
    other account's, which could change the released numbers afterwards."""
    open_folder.chmod(0o1777)
    writers = _atomic_writers()

    def plant() -> str:
        for _, tmp_name in writers.values():
            (open_folder / tmp_name).write_bytes(b"")
        return "planted"

    assert as_another_account(plant, umask=0) == "planted"
    for name, (write, _) in writers.items():
        write(open_folder / name)
    assert {name: (open_folder / name).stat().st_uid for name in writers} == {name: 0 for name in writers}

    def change_published() -> str:
        changed = []
        for name in writers:
            try:
                with open(open_folder / name, "ab") as f:
                    f.write(b"tampered")
                changed.append(name)
            except OSError:
                pass
        return ",".join(changed)

    assert as_another_account(change_published) == ""


def _cluster_paths(client) -> list[Path]:
    """Every folder on the sys.path of the run's own process, its nanny and workers that lies in a Dask scratch
    space, and each worker's local directory (where it spills)."""
    def worker_paths(dask_worker):
        return [*sys.path, dask_worker.local_directory]

    paths = list(sys.path) + [p for ps in client.run(worker_paths).values() for p in ps]
    return sorted({Path(p) for p in paths if "dask-scratch-space" in p or "clio-dask-" in p})


def test_the_local_clusters_scratch_and_import_paths_are_in_an_owner_only_folder(tmp_path, monkeypatch):
    """Dask puts its scratch folders at the front of sys.path (ours and the workers') and spills there. Its default,
    `<tmp>/dask-scratch-space`, is taken as found: here made first, open to all, as another account could leave
    it. Every such path must lie in a folder only this user may write to, and the folder goes with the cluster."""
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    import gc

    from clio_engine.scale.dask_cluster import local_cluster

    shared = tmp_path / "dask-scratch-space"
    shared.mkdir()
    shared.chmod(0o777)  # another account's, left writable by all
    with dask.config.set({"temporary-directory": str(tmp_path)}):
        with local_cluster(n_workers=1) as cluster, distributed.Client(cluster) as client:
            paths = _cluster_paths(client)
        del cluster, client
    assert paths, "the cluster put no scratch folder on sys.path: the check would see nothing"
    open_ = [str(p) for p in paths if p.is_relative_to(shared)]
    assert open_ == [], f"the cluster imports from or spills to a folder another account can write: {open_}"
    owners = {tmp_path / p.relative_to(tmp_path).parts[0] for p in paths}
    assert len(owners) == 1 and all(p.name.startswith("clio-dask-") for p in owners), owners
    gc.collect()
    assert not any(p.exists() for p in owners), "the cluster's scratch folder outlived it"


# The other account's module: planted where the run's workers import from, it runs as the run's user, leaves a
# mark and hands over the real module, so the run goes on unaware.
_PLANTED_TORCH = r"""
import importlib, os, sys
with open({marker!r}, "a") as f:
    f.write(f"uid {{os.getuid()}} pid {{os.getpid()}}\n")
here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
del sys.modules[__name__]
sys.modules[__name__] = importlib.import_module(__name__)
"""


@AS_ROOT
def test_another_account_cannot_plant_a_module_the_clusters_workers_import(open_folder):
    """The attack on Dask's shared scratch space: another account makes `<tmp>/dask-scratch-space` first, open to
    all, and plants `torch.py` in it. On the old code every worker (and the run's own process) had that folder at
    the front of sys.path, so a `compute.scheduler: dask` run's k-means imported the planted module as the user."""
    dask = pytest.importorskip("dask")
    import numpy as np

    from clio_engine.config import load_config
    from clio_engine.scale.dask_cluster import client_for
    from clio_engine.scale.dask_kmeans import dask_kmeans

    open_folder.chmod(0o1777)  # stands for /tmp: every account may create in it
    marker = open_folder / "planted-module-ran.txt"

    def plant() -> str:
        shared = open_folder / "dask-scratch-space"
        shared.mkdir(mode=0o777)
        (shared / "torch.py").write_text(_PLANTED_TORCH.format(marker=str(marker)))
        return "planted"

    assert as_another_account(plant, umask=0) == "planted"
    compute = load_config(None, {"compute.scheduler": "dask", "compute.n_workers": 1}).compute
    X = np.random.default_rng(0).normal(size=(400, 8)).astype(np.float32)
    with dask.config.set({"temporary-directory": str(open_folder)}), client_for(compute) as client:
        result = dask_kmeans(client, X, 4, random_state=0, max_iter=5)
    assert len(result.labels) == 400, "the run itself went through"
    assert not marker.exists(), f"a module another account planted ran in the run's processes: {marker.read_text()}"


def test_owner_only_dir_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "private").write_text("not a folder")
    with pytest.raises(FileExistsError):
        owner_only_dir(tmp_path / "private")


# The other account's program: submit a task that reads the secret through the run's Dask scheduler (a client
# runs code in the workers, as the run's user), without credentials and with TLS credentials of its own.
_DASK_ATTACKER = r"""
import sys
import distributed

address, secret = sys.argv[1], sys.argv[2]


def read():
    with open(secret) as f:
        return f.read()


for name, addr, kw in (("plain", address.replace("tls://", "tcp://"), {}),
                       ("own-tls", address.replace("tcp://", "tls://"), {"security": distributed.Security.temporary()})):
    try:
        with distributed.Client(addr, timeout=10, **kw) as client:
            print(f"{name}:{client.submit(read, pure=False).result(timeout=60)}")
    except Exception as e:  # any refusal is what the test wants; the output says which
        print(f"{name}:refused {type(e).__name__}")
"""


def test_another_account_cannot_run_code_in_the_local_dask_cluster(tmp_path):
    """While a `compute.scheduler: dask` run is going, its workers can read every private/ zone of the user.
    The attacker finds the scheduler on 127.0.0.1 and submits a task that reads a file only the run's user may
    read. The scheduler tells clients apart by certificate, not by account, so the attacker here is a process
    of the same user holding none of the cluster's credentials (another account cannot start this venv's
    Python where it lives in root's home, as in CI); it stands for every account on the machine."""
    pytest.importorskip("distributed")
    from clio_engine.config import load_config
    from clio_engine.scale.dask_cluster import client_for

    secret = owner_only_dir(tmp_path / "private") / "secret.txt"
    secret.write_text("canary-7f3a9 a person's words")
    compute = load_config(None, {"compute.scheduler": "dask", "compute.n_workers": 1}).compute
    with client_for(compute) as client:
        address = client.scheduler.address
        assert client.submit(lambda p: open(p).read(), str(secret)).result() == secret.read_text()  # the run's own client works
        done = subprocess.run([sys.executable, "-c", _DASK_ATTACKER, address, str(secret)], capture_output=True,
                              text=True, timeout=180, cwd=tmp_path)
    answers = dict(line.split(":", 1) for line in done.stdout.splitlines() if ":" in line)
    assert set(answers) == {"plain", "own-tls"}, done.stdout + done.stderr
    leaked = [name for name in answers if "canary-7f3a9" in answers[name]]
    assert leaked == [], f"a client without the cluster's credentials ran code in its workers ({leaked}): {answers}"
    assert all(a.startswith("refused") for a in answers.values()) and address.startswith("tls://"), answers


def test_a_local_dask_cluster_without_cryptography_is_a_one_line_error(monkeypatch):
    pytest.importorskip("distributed")
    from clio_engine.config import load_config
    from clio_engine.errors import ConfigError
    from clio_engine.scale.dask_cluster import client_for

    monkeypatch.setitem(sys.modules, "cryptography", None)  # as if not installed: importing it raises ImportError
    compute = load_config(None, {"compute.scheduler": "dask", "compute.n_workers": 1}).compute
    with pytest.raises(ConfigError, match=r"needs the 'cryptography' package: pip install 'clio-engine\[dask\]'"):
        with client_for(compute):
            pass


def test_the_local_schedulers_http_server_is_on_localhost_with_health_and_metrics_only():
    """No dashboard and no pages of worker logs, call stacks or task keys for other accounts to read; a free port
    (a second cluster on the machine would find 8787 taken and warn)."""
    distributed = pytest.importorskip("distributed")
    from clio_engine.scale.dask_cluster import local_cluster

    def status(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    with local_cluster(n_workers=1) as cluster, distributed.Client(cluster):
        host, port = cluster.scheduler.http_server.address, cluster.scheduler.http_server.port
        base = f"http://127.0.0.1:{port}"
        answers = {path: status(base + path) for path in ("/health", "/metrics", "/info/main/workers.html",
                                                          "/info/main/logs.html", "/status", "/json/counts.json")}
    assert host == "127.0.0.1" and port != 8787
    assert answers == {"/health": 200, "/metrics": 200, "/info/main/workers.html": 404, "/info/main/logs.html": 404,
                       "/status": 404, "/json/counts.json": 404}, answers


def test_explore_serve_answers_only_the_printed_secret_url_and_keeps_it_off_command_lines(tmp_path, tiny_bert_dir):
    """`explore --serve` listens on 127.0.0.1, which every account on the machine reaches: the analyst's page
    (examples of people's texts) goes only to a request that knows the path printed in this terminal. The browser
    is started with an owner-only redirect file, not the URL: a command line is readable by every account
    (/proc/PID/cmdline)."""
    result = _small_run(tmp_path / "run", tiny_bert_dir)
    browser = tmp_path / "browser.sh"  # stands for the user's browser ($BROWSER): records its command line
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "browser-argv.txt"}\n')
    browser.chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-m", "clio_engine.cli", "explore", str(result.dir), "--serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "BROWSER": str(browser)})
    try:
        line = next((line for line in proc.stdout if "serving" in line), None)
        assert line, proc.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        base = url.split("/", 3)
        origin, token = "/".join(base[:3]), base[3].strip("/")
        assert len(token) >= 32

        def status(path: str) -> int:
            try:
                with urllib.request.urlopen(origin + path, timeout=10) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        assert {p: status(p) for p in ("/", "/explorer.html", f"/{token}/", f"/{token}/explorer.html")} == {
            "/": 404, "/explorer.html": 404, f"/{token}/": 200, f"/{token}/explorer.html": 200}
        argv_file = tmp_path / "browser-argv.txt"
        for _ in range(100):
            if argv_file.exists():
                break
            time.sleep(0.1)
        argv = argv_file.read_text()
        assert token not in argv, "the secret URL was passed on the browser's command line"
        redirect = Path(argv.strip().removeprefix("file://"))
        assert _mode(redirect) == 0o600 and url in redirect.read_text()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        assert not redirect.exists(), "the redirect file outlived the server"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)


# ------------------------------------------------------------------ folders another account reached first
# The global cache ($CLIO_ENGINE_CACHE, embed.cache_dir) and a run directory are where the user says, sometimes
# under /tmp or a scratch disk that every account may create in. An account that made the folder first owns it:
# it may rename the engine's files away and put its own in their place, or read what the engine writes there
# (a chmod by the engine does not help: an owner may always set the mode back).

def _files_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by relative path, read now (the other account's child cannot read our tmp_path)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@AS_ROOT
def test_a_model_another_account_planted_in_a_shared_cache_is_never_loaded(open_folder, tiny_bert_dir):
    """The default model's folder name is public (`models/all-MiniLM-L6-v2-<sha>`). Another account that made the
    cache folder first plants a model of its own there; the old code checked the weights' hash only when it
    extracted them, so it loaded the planted model and every embedding, cluster and name of the run was that
    account's choice."""
    from clio_engine.embed.model_source import DEFAULT_MODEL_SHA256, resolve_model
    from clio_engine.errors import ConfigError

    open_folder.chmod(0o1777)  # stands for /tmp
    cache = open_folder / "clio-cache"
    planted = cache / "models" / f"all-MiniLM-L6-v2-{DEFAULT_MODEL_SHA256[:16]}"
    model_files = _files_of(tiny_bert_dir)

    def plant() -> str:
        for name, data in model_files.items():
            (planted / name).parent.mkdir(parents=True, exist_ok=True)
            (planted / name).write_bytes(data)
        return "planted"

    assert as_another_account(plant, umask=0) == "planted"
    with pytest.raises(ConfigError, match=r"cache folder .*/models: the folder .*/clio-cache belongs to another "
                                          r"account \(uid 65534;"):
        source = resolve_model("default", cache_dir=cache)
        assert source.path != planted, "the run loaded the model another account planted"


@AS_ROOT
def test_vectors_are_never_written_where_another_account_can_read_them(open_folder, tiny_bert_dir):
    """Another account makes the shared store's `embeddings/` first. It sees each entry the user's run makes
    there (`<key>`, named by the texts' hash), renames it away and puts its own in its place, holding a
    `vectors.npy` of its own. The old code wrote the next run's vectors (which give the texts back) into that
    file: a chmod to 0600 by the engine does not stop the file's owner from setting it back and reading."""
    import numpy as np

    from clio_engine.embed import embed
    from clio_engine.errors import ClioError

    open_folder.chmod(0o1777)
    cache = open_folder / "clio-cache"
    texts = [f"my private note number {i} about my landlord" for i in range(12)]
    refusals: list[str] = []

    def users_run():
        try:
            return np.asarray(embed(texts, model=str(tiny_bert_dir), cache_dir=cache, progress=False, device="cpu"))
        except ClioError as e:
            refusals.append(str(e))
            return None

    assert as_another_account(lambda: (cache / "embeddings").mkdir(parents=True, mode=0o777) or "made", umask=0) == "made"
    users_run()

    def swap_entries() -> str:
        swapped = []
        for entry in list((cache / "embeddings").iterdir()):
            entry.rename(entry.with_name(entry.name + ".old"))
            entry.mkdir(mode=0o777)
            np.save(entry / "vectors.npy", np.zeros((1, 1), np.float32))  # any shape: the engine makes it fit
            swapped.append(entry.name)
        return ",".join(swapped)

    as_another_account(swap_entries, umask=0)
    vectors = users_run()

    def read_planted_files() -> str:
        stolen = []
        for planted in (cache / "embeddings").glob("*/vectors.npy"):
            planted.chmod(0o644)  # its owner may, whatever mode the engine set
            try:
                found = np.load(planted)
            except Exception as e:  # noqa: BLE001 — reported, so a failure here cannot pass for "nothing stolen"
                stolen.append(f"{planted.parent.name} unreadable ({type(e).__name__})")
                continue
            if vectors is not None and found.shape == vectors.shape and np.allclose(found, vectors):
                stolen.append(planted.parent.name)
        return ",".join(stolen)

    assert as_another_account(read_planted_files) == "", "another account read the run's vectors"
    assert refusals and all("embeddings: the folder" in r and "belongs to another account (uid 65534;" in r
                            for r in refusals), refusals


@AS_ROOT
def test_a_private_zone_another_account_made_first_is_refused(open_folder, tiny_bert_dir):
    """Another account makes the run directory first (it guessed `--out /tmp/myrun`), with a manifest so that it
    passes for an earlier run and a `private/` of its own. The old code set that folder to 0700 and wrote every
    per-record file into it, which its owner then read."""
    from clio_engine.errors import OutputError

    open_folder.chmod(0o1777)
    run_dir = open_folder / "myrun"

    def make_the_run_directory() -> str:
        (run_dir / "private").mkdir(parents=True, mode=0o777)
        (run_dir / "manifest.json").write_text('{"config": {}, "stages": {}}')
        return "made"

    assert as_another_account(make_the_run_directory, umask=0) == "made"
    refusal = ""
    try:
        _small_run(run_dir, tiny_bert_dir)
    except OutputError as e:
        refusal = str(e)

    def read_private() -> str:
        (run_dir / "private").chmod(0o755)  # its owner may, whatever mode the engine set
        return ",".join(sorted(p.name for p in (run_dir / "private").rglob("*") if p.is_file()))

    assert as_another_account(read_private) == "", "the run wrote per-record files where another account reads them"
    assert re.search(r"per-record data, .*myrun: the folder .*myrun belongs to another account \(uid 65534;", refusal)


def test_a_cache_folder_others_may_write_to_is_refused_and_a_sticky_one_is_not(tmp_path, tiny_bert_dir):
    from clio_engine.economic.onet import load_taxonomy
    from clio_engine.economic.task_tree import build_task_tree
    from clio_engine.embed import embed
    from clio_engine.embed.model_source import resolve_model
    from clio_engine.errors import ConfigError

    open_cache = tmp_path / "open"
    open_cache.mkdir()
    open_cache.chmod(0o777)  # anyone may rename the engine's folders away and put their own in their place
    why = r"the folder .*/open \(mode 777\)"
    with pytest.raises(ConfigError, match=rf"cache folder .*/open/models: other accounts may write to {why}"):
        resolve_model("default", cache_dir=open_cache)
    with pytest.raises(ConfigError, match=rf"cache folder .*/open/embeddings: other accounts may write to {why}"):
        embed(["a text"], model=str(tiny_bert_dir), cache_dir=open_cache, progress=False, device="cpu")
    with pytest.raises(ConfigError, match=rf"cache folder .*/open/economic: other accounts may write to {why}"):
        build_task_tree(load_taxonomy(), embed_options={"model": str(tiny_bert_dir), "cache_dir": str(open_cache)})
    assert sorted(p.name for p in open_cache.iterdir()) == ["economic", "embeddings", "models"]  # made, then refused

    (open_cache / "embeddings").chmod(0o777)
    open_cache.chmod(0o1777)  # sticky, as /tmp: the root passes, the open folder under it does not
    with pytest.raises(ConfigError, match=r"embeddings: other accounts may write to the folder .*/embeddings"):
        embed(["a text"], model=str(tiny_bert_dir), cache_dir=open_cache, progress=False, device="cpu")

    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    vectors = embed(["a text", "another"], model=str(tiny_bert_dir), cache_dir=sticky, progress=False, device="cpu")
    assert vectors.shape[0] == 2 and len(list((sticky / "embeddings").glob("*/vectors.npy"))) == 1


def test_the_engine_never_refuses_cache_folders_it_made_itself_under_an_open_umask(tmp_path, tiny_bert_dir):
    """Under a umask of 0 (or 002, common with per-user groups) Path.mkdir(parents=True) would leave the folders
    group- and other-writable, and the check would then refuse the engine's own cache."""
    from clio_engine.embed import embed

    cache = tmp_path / "deep" / "er" / "cache"
    old = os.umask(0)
    try:
        embed(["a text"], model=str(tiny_bert_dir), cache_dir=cache, progress=False, device="cpu")
        embed(["a text"], model=str(tiny_bert_dir), cache_dir=cache, progress=False, device="cpu")  # and reuses it
    finally:
        os.umask(old)
    made = [tmp_path / "deep", tmp_path / "deep" / "er", cache, cache / "embeddings"]
    assert {str(p.relative_to(tmp_path)): _mode(p) for p in made} == {str(p.relative_to(tmp_path)): 0o755 for p in made}


def test_a_cache_reached_through_a_link_is_judged_by_the_folder_the_link_leads_to(tmp_path, tiny_bert_dir):
    from clio_engine.embed import embed
    from clio_engine.errors import ConfigError

    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    embed(["a text"], model=str(tiny_bert_dir), cache_dir=tmp_path / "link", progress=False, device="cpu")
    assert len(list((target / "embeddings").glob("*/vectors.npy"))) == 1
    target.chmod(0o777)
    with pytest.raises(ConfigError, match=r"other accounts may write to the folder .*/real \(mode 777\)"):
        embed(["a text"], model=str(tiny_bert_dir), cache_dir=tmp_path / "link", progress=False, device="cpu")


def test_a_run_directory_others_may_write_to_is_refused_and_one_made_under_an_open_umask_is_not(tmp_path):
    from clio_engine.errors import OutputError

    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)  # any account could rename private/ away and put its own in its place
    with pytest.raises(OutputError, match=r"the folder holding per-record data, .*/open: other accounts may write to "
                                          r"the folder .*/open \(mode 777\)"):
        RunDir(tmp_path / "open")
    assert not (tmp_path / "open" / "private").exists()

    old = os.umask(0)  # Path.mkdir(parents=True) would make the run directory 0777, which the check refuses
    try:
        RunDir(tmp_path / "made" / "run")
    finally:
        os.umask(old)
    assert [_mode(tmp_path / "made"), _mode(tmp_path / "made" / "run"), _mode(tmp_path / "made" / "run" / "private")] \
        == [0o775, 0o775, 0o700]


@AS_ROOT
def test_a_cache_folder_writable_by_the_users_own_group_passes_and_by_a_shared_group_does_not(tmp_path, tiny_bert_dir):
    """Debian and Ubuntu give each user a group of their own and a umask of 002, so ~/.cache is often 0775: that
    group has no one else in it and must not stop a run. A group with other accounts in it (here `nogroup`, as a
    shared project group would be) may swap what is in the folder."""
    from clio_engine.embed import embed
    from clio_engine.errors import ConfigError

    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o775)  # group root: root's own group, with no other member
    embed(["a text"], model=str(tiny_bert_dir), cache_dir=cache, progress=False, device="cpu")
    os.chown(cache, 0, NOBODY)
    with pytest.raises(ConfigError, match=r"other accounts may write to the folder .*/cache \(mode 775\)"):
        embed(["a text"], model=str(tiny_bert_dir), cache_dir=cache, progress=False, device="cpu")


def test_where_the_system_has_no_posix_accounts_the_ownership_checks_stand_aside(tmp_path, monkeypatch):
    """Windows has no `os.geteuid` (nor owners or modes in the POSIX sense): the checks must not break a run there."""
    from clio_engine.path_trust import trusted_folder

    monkeypatch.delattr(os, "geteuid")
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    assert trusted_folder(open_folder / "cache", "cache folder", "") == open_folder / "cache"
    RunDir(open_folder / "run")
    assert (open_folder / "run" / "private").is_dir()


@AS_ROOT
def test_a_release_folder_another_account_made_first_is_refused(open_folder, tiny_bert_dir):
    """`release --out /tmp/release`: another account makes the folder first (empty, so it passes for a new one).
    The old code wrote the release into it, and that account then swapped `aggregates.csv` for numbers of its own
    before the analyst shipped it (it owns the folder, so it may rename the engine's files)."""
    from clio_engine.errors import ConfigError
    from clio_engine.pipeline.release import build_release

    run_dir = _small_run(open_folder / "run", tiny_bert_dir).dir
    open_folder.chmod(0o1777)
    release = open_folder / "release"
    assert as_another_account(lambda: release.mkdir(mode=0o777) or "made", umask=0) == "made"
    refusal = ""
    try:
        build_release(run_dir, out=release)
    except ConfigError as e:
        refusal = str(e)

    def forge() -> str:
        published = release / "aggregates.csv"
        if not published.exists():
            return ""
        published.rename(release / "aggregates.csv.engine")
        published.write_text("geo_id,geography,facet,level,variable,cluster_name,value\nGLOBAL,global,x,0,count,forged,1\n")
        return "forged"

    assert as_another_account(forge) == "", "another account changed the published numbers"
    assert re.search(r"release folder .*/release: the folder .*/release belongs to another account \(uid 65534;",
                     refusal), refusal


def test_a_release_or_comparison_folder_others_may_write_to_is_refused(tmp_path, tiny_bert_dir):
    from clio_engine.errors import ConfigError
    from clio_engine.pipeline.periods import compare_runs
    from clio_engine.pipeline.release import build_release
    from tests.test_compare_leaks import _fake_economic_run

    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    why = r"other accounts may write to the folder .*/open \(mode 777\)"
    run_dir = _small_run(tmp_path / "run", tiny_bert_dir).dir
    with pytest.raises(ConfigError, match=rf"release folder .*/open: {why}"):
        build_release(run_dir, out=open_folder)
    (a, _), (b, _) = _fake_economic_run(tmp_path / "a", 0), _fake_economic_run(tmp_path / "b", 1)
    with pytest.raises(ConfigError, match=rf"compare folder .*/open: {why}"):
        compare_runs(a, b, out=open_folder, n_boot=100)
    assert list(open_folder.iterdir()) == []
    open_folder.chmod(0o1777)  # sticky, as /tmp: nobody may rename another's files there
    assert (build_release(run_dir, out=open_folder) / "aggregates.csv").is_file()


HOST_USER = 1000  # the uid a container run as root finds on a bind-mounted folder of its host's first user


@AS_ROOT
def test_a_host_folder_in_a_container_is_refused_until_its_owner_is_vouched_for(tmp_path, tiny_bert_dir, monkeypatch):
    """`docker run -v $PWD:/work` as root: /work belongs to the host user (uid 1000), the same person. The ownership
    rule refused it for the cache, a run directory made on the host, and a release folder, with no way on but
    another folder. `$CLIO_ENGINE_TRUSTED_UIDS` (uids or account names) vouches for such an account; each refusal
    names it, and only the listed accounts are let through."""
    from clio_engine.embed import embed
    from clio_engine.errors import ConfigError, OutputError
    from clio_engine.path_trust import held_by_another_account

    host = tmp_path / "work"
    for folder in (host, host / "run", host / "release"):
        folder.mkdir()
        os.chown(folder, HOST_USER, HOST_USER)
    monkeypatch.delenv("CLIO_ENGINE_TRUSTED_UIDS", raising=False)
    vouch = (rf"belongs to another account \(uid {HOST_USER}; if that account is yours, .* add {HOST_USER} to "
             r"\$CLIO_ENGINE_TRUSTED_UIDS\)")
    with pytest.raises(ConfigError, match=rf"cache folder .*/work/cache/embeddings: the folder .*/work {vouch}"):
        embed(["a text"], model=str(tiny_bert_dir), cache_dir=host / "cache", progress=False, device="cpu")
    with pytest.raises(OutputError, match=rf"per-record data, .*/work/run: the folder .*/run {vouch}"):
        RunDir(host / "run")
    assert re.fullmatch(rf"the folder .*/release {vouch}", held_by_another_account(host / "release") or "")

    monkeypatch.setenv("CLIO_ENGINE_TRUSTED_UIDS", f"{NOBODY}, {HOST_USER}")
    vectors = embed(["a text", "another"], model=str(tiny_bert_dir), cache_dir=host / "cache", progress=False,
                    device="cpu")
    assert vectors.shape[0] == 2 and len(list((host / "cache" / "embeddings").glob("*/vectors.npy"))) == 1
    RunDir(host / "run")
    assert _mode(host / "run" / "private") == 0o700 and held_by_another_account(host / "release") is None

    os.chown(host / "release", HOST_USER + 1, HOST_USER + 1)  # an account nobody vouched for
    assert re.search(rf"belongs to another account \(uid {HOST_USER + 1};", held_by_another_account(host / "release"))
    monkeypatch.setenv("CLIO_ENGINE_TRUSTED_UIDS", "nobody")  # an account name works as well as its uid
    os.chown(host / "release", NOBODY, NOBODY)
    assert held_by_another_account(host / "release") is None


@AS_ROOT
def test_vouching_for_an_account_never_lets_through_a_folder_every_account_may_write_to(tmp_path, monkeypatch):
    """Vouching waives the owner rule only: a folder of the vouched-for account that is open to all (not sticky)
    still lets any account swap the engine's files."""
    from clio_engine.errors import OutputError
    from clio_engine.path_trust import held_by_another_account

    run = tmp_path / "run"
    run.mkdir()
    os.chown(run, HOST_USER, HOST_USER)
    run.chmod(0o777)
    monkeypatch.setenv("CLIO_ENGINE_TRUSTED_UIDS", str(HOST_USER))
    with pytest.raises(OutputError, match=r"per-record data, .*/run: other accounts may write to the folder .*/run "
                                          r"\(mode 777\)"):
        RunDir(run)
    assert "mode 777" in (held_by_another_account(run) or "")


def test_a_trusted_account_that_names_no_account_is_a_one_line_error(tmp_path, monkeypatch):
    """A typo in `$CLIO_ENGINE_TRUSTED_UIDS` must not pass for an empty list (nor be skipped): one line naming it."""
    from clio_engine.errors import ConfigError
    from clio_engine.path_trust import trusted_folder, trusted_owners

    monkeypatch.setenv("CLIO_ENGINE_TRUSTED_UIDS", "1000,no-such-account-here")
    with pytest.raises(ConfigError, match=r"^\$CLIO_ENGINE_TRUSTED_UIDS: 'no-such-account-here' is neither a uid nor "
                                          r"an account on this machine; [^\n]*$"):
        trusted_folder(tmp_path / "cache", "cache folder", "")
    monkeypatch.setenv("CLIO_ENGINE_TRUSTED_UIDS", " 1000, 1001 1002 ")
    assert trusted_owners() == {os.geteuid(), 0, 1000, 1001, 1002}


@AS_ROOT
@pytest.mark.parametrize("swapped", ["vecs.npy.partial.npy", "vecs.rows.parquet"])
def test_a_group_member_who_swaps_a_file_embed_out_just_made_receives_nothing(open_folder, tiny_bert_dir, swapped,
                                                                              monkeypatch, capsys):
    """`embed --out` into a project folder a group may write to (it passes: shared on purpose). A member of the group
    renames the file the engine has just made (owner-only) away and puts one of its own, open to all, at the name.
    The old code then reopened the name to write (`open_memmap`, `pq.write_table`) and so wrote the vectors, or the
    record ids, into that member's file. The window is made certain here: the member acts the moment the file is
    made. Now the engine writes through the file it made, and stops, in one line, rather than publish another
    account's file under its name."""
    from clio_engine import runfiles
    from clio_engine.cli import main

    project = open_folder / "project"
    project.mkdir()
    os.chown(project, 0, NOBODY)
    project.chmod(0o775)  # the group (nogroup, which the other account is in) may write
    frame = generate_conversations(30, seed=2)
    frame[["id", "text"]].to_parquet(open_folder / "texts.parquet")
    made = runfiles._new_file

    def new_file_then_swapped(path: Path, mode: int) -> int:
        fd = made(path, mode)
        if path.name == swapped:
            def swap() -> str:
                os.rename(path, path.with_name("moved-away"))
                with open(path, "wb"):
                    pass
                os.chmod(path, 0o666)
                os.link(path, path.with_name("planted"))  # the member keeps its file whatever is renamed later
                return "swapped"

            assert as_another_account(swap) == "swapped"
        return fd

    monkeypatch.setattr(runfiles, "_new_file", new_file_then_swapped)
    code = main(["embed", str(open_folder / "texts.parquet"), "--out", str(project / "vecs.npy"), "--model",
                 str(tiny_bert_dir), "--device", "cpu"])
    planted = project / "planted"
    assert planted.stat().st_uid == NOBODY
    assert planted.stat().st_size == 0, f"the run wrote {planted.stat().st_size} bytes into the member's file"
    assert code != 0 and re.search(rf"error: .*/project/{re.escape(swapped)} was replaced while the engine wrote it "
                                   rf"\(it now belongs to uid {NOBODY}\)", capsys.readouterr().err)
    moved = project / "moved-away"
    assert moved.stat().st_uid == 0 and _mode(moved) == 0o600 and moved.stat().st_size > 0  # what the run wrote


def test_a_symlink_at_a_model_folders_hash_memo_is_replaced_not_written_through(tmp_path, tiny_bert_dir):
    """`embed.model: /shared/models/x`, a colleague's or a group's folder: the engine memoises the weights' hash
    beside them in `.clio-hash.json`. The old code wrote it through whatever was at the name, so a symlink planted
    there made the user's own run overwrite a file of the user's (here one standing for ~/.bashrc)."""
    from clio_engine.embed.model_source import resolve_model

    model = tmp_path / "shared-model"
    shutil.copytree(tiny_bert_dir, model)
    (model / ".clio-hash.json").unlink(missing_ok=True)
    precious = tmp_path / "bashrc"
    precious.write_text("export PATH=$HOME/bin:$PATH\n")
    (model / ".clio-hash.json").symlink_to(precious)

    first = resolve_model(str(model))
    assert precious.read_text() == "export PATH=$HOME/bin:$PATH\n", "the run wrote its memo into the linked file"
    memo = model / ".clio-hash.json"
    assert not memo.is_symlink() and json.loads(memo.read_text())["hash"] == first.content_hash
    assert resolve_model(str(model)).content_hash == first.content_hash  # and the memo is used


@AS_ROOT
def test_a_group_member_who_swaps_the_dask_parts_file_between_runs_receives_no_rows(open_folder, tiny_bert_dir):
    """`dask_embed` into a project folder a group may write to: a run that stopped part-way leaves
    `vecs.npy.parts.npy` (owner-only) for the rerun to resume. A member of the group renames it away and puts a
    file of its own of the same shape, open to all, at the name. The old workers reopened the name and wrote the
    remaining partitions' vectors into that file; now each worker checks the file it opened belongs to the
    driver's account, and the run stops with one line."""
    import dask
    import distributed
    import numpy as np

    from clio_engine.errors import OutputError
    from clio_engine.faults import FAULT_ENV
    from clio_engine.scale.dask_cluster import local_cluster
    from clio_engine.scale.dask_embed import dask_embed

    project = open_folder / "project"
    project.mkdir()
    os.chown(project, 0, NOBODY)
    project.chmod(0o775)  # the group (nogroup, which the other account is in) may write
    texts = list(dict.fromkeys(generate_conversations(200, seed=5)["text"]))[:160]
    settings = {"model": str(tiny_bert_dir), "cache_dir": str(open_folder / "cache"), "device": "cpu",
                "progress": False}
    out, parts = project / "vecs.npy", project / "vecs.npy.parts.npy"
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), local_cluster(n_workers=1) as cluster, \
            distributed.Client(cluster) as client:
        client.run(lambda: os.environ.__setitem__(FAULT_ENV, "embed:partition:2"))
        with pytest.raises(OutputError, match=r"embedding partition [23] "):
            dask_embed(client, texts, out, partition_rows=40, **settings)
        shape = np.load(parts, mmap_mode="r").shape

        def swap() -> str:
            os.rename(parts, project / "moved-away")
            np.save(parts, np.zeros(shape, np.float32))
            os.chmod(parts, 0o666)
            os.link(parts, project / "planted")
            return "swapped"

        assert as_another_account(swap) == "swapped"
        client.wait_for_workers(1, timeout=60)
        with pytest.raises(OutputError) as refused:
            dask_embed(client, texts, out, partition_rows=40, **settings)
    planted = np.load(project / "planted")
    assert not planted.any(), f"the workers wrote {int(planted.any(axis=1).sum())} rows into the member's file"
    assert re.search(rf"vecs.npy.parts.npy is no longer the file the engine made \(it belongs to uid {NOBODY}\)",
                     str(refused.value)) and not out.exists()


@AS_ROOT
def test_on_a_share_that_gives_roots_files_to_nobody_a_vouched_run_ends_and_an_unvouched_one_is_refused(
        open_folder, tiny_bert_dir, monkeypatch, capsys):
    """An NFS export with root_squash: root's new files and folders there belong to `nobody`. With nobody vouched
    for, `embed --out` must not take its own files for swapped ones (the swap check compared with root's uid
    alone); without, the folder is refused up front, in one line."""
    import numpy as np

    from clio_engine import runfiles
    from clio_engine.cli import main

    share = open_folder / "share"
    share.mkdir()
    os.chown(share, NOBODY, NOBODY)
    frame = generate_conversations(30, seed=2)
    frame[["id", "text"]].to_parquet(open_folder / "texts.parquet")
    made = runfiles._new_file

    def squashed(path: Path, mode: int) -> int:
        fd = made(path, mode)
        os.fchown(fd, NOBODY, NOBODY)  # what the server does to a file root makes
        return fd

    monkeypatch.setattr(runfiles, "_new_file", squashed)
    argv = ["embed", str(open_folder / "texts.parquet"), "--out", str(share / "vecs.npy"), "--model",
            str(tiny_bert_dir), "--device", "cpu"]
    monkeypatch.delenv("CLIO_ENGINE_TRUSTED_UIDS", raising=False)
    assert main(argv) != 0 and re.search(rf"error: the folder holding per-record data, .*/share: the folder .*/share "
                                         rf"belongs to another account \(uid {NOBODY};", capsys.readouterr().err)
    monkeypatch.setenv("CLIO_ENGINE_TRUSTED_UIDS", "nobody")
    assert main(argv) == 0, capsys.readouterr().err
    assert np.load(share / "vecs.npy").shape[0] == 30 and (share / "vecs.npy").stat().st_uid == NOBODY


@AS_ROOT
def test_call_and_spend_logs_another_account_put_in_an_llm_cache_folder_are_never_read(open_folder, caplog):
    """`Generator(cache_dir="/tmp/llm-cache")` from a research job: every account may add files to a sticky folder
    (and a group's members to a group's). The old cache read every `calls-*.jsonl` there, so a planted entry for a
    prompt the other account can guess (a public dataset's) became the run's answer, an auditor's "no private data"
    included; and every `spend-*.log`, so a planted spend stopped the run at its cost ceiling. Only the user's own
    logs count now."""
    from clio_engine.llm.cache import SpendLog

    cache = open_folder / "llm-cache"
    cache.mkdir()
    cache.chmod(0o1777)  # stands for /tmp itself, or a folder made there for a team
    mine = CallCache(cache)
    mine.put("my-key", Result(ok=True, text="my answer"))
    mine.close()
    SpendLog(cache).add(0.25)

    def plant() -> str:
        entry = {"key": "guessed-key", "result": Result(ok=True, text='{"score": 5}').to_json()}
        (cache / "calls-1-00000000.jsonl").write_text(json.dumps(entry) + "\n")
        (cache / "spend-1-00000000.log").write_text("1000.0\n")
        (cache / "calls-2-00000000.jsonl").symlink_to(cache / "calls-1-00000000.jsonl")
        return "planted"

    assert as_another_account(plant, umask=0) == "planted"
    reader = CallCache(cache)
    assert reader.get("guessed-key") is None, "the run took an answer another account planted"
    assert reader.get("my-key").text == "my answer"
    assert SpendLog(cache).earlier == 0.25, "a spend another account planted counts against the run's ceiling"
    assert "skipped 2 log(s) another account put there" in caplog.text


@AS_ROOT
def test_an_llm_cache_folder_another_account_made_is_refused_before_anything_is_read_or_sent(open_folder, monkeypatch):
    """In a sticky folder such as /tmp any account may make `llm-cache` first, and `Generator(cache_dir=...)` then
    wrote its logs into that account's folder, whose owner may delete any file in it. Deleting the spend logs made
    the next run forget what was spent, so `max_cost_usd` let it spend again (and deleting the call logs, send and
    pay every finished request again). Such a folder, or one under it, is refused now; the user's own folder beside
    it works, and an account the user vouches for passes unless its folder is open to every account."""
    from clio_engine.errors import OutputError
    from clio_engine.llm import Generator
    from clio_engine.llm.backends.openai import OpenAIBackend
    from clio_engine.llm.cache import SpendLog

    shared = open_folder / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)  # stands for /tmp
    cache, closed = shared / "llm-cache", shared / "llm-cache-755"
    assert as_another_account(lambda: cache.mkdir(mode=0o777) or closed.mkdir(mode=0o755) or "made", umask=0) == "made"
    monkeypatch.delenv("CLIO_ENGINE_TRUSTED_UIDS", raising=False)

    refused = None
    try:
        SpendLog(cache).add(0.25)  # what a priced call of a Generator run records
    except OutputError as e:
        refused = str(e)
    if refused is None:  # the old code: the other account erases the run's spend
        assert as_another_account(lambda: [p.unlink() for p in cache.iterdir()] and "erased") == "erased"
        assert SpendLog(cache).earlier == 0.25, "another account erased the run's spend: its cost ceiling forgot it"
    assert refused and re.search(rf"LLM cache .*/llm-cache: the folder .*/llm-cache belongs to another account "
                                 rf"\(uid {NOBODY};.*CLIO_ENGINE_TRUSTED_UIDS.*cost ceiling", refused), refused
    for root in (cache / "sub" / "llm", closed):
        with pytest.raises(OutputError, match=rf"belongs to another account \(uid {NOBODY};"):
            Generator(OpenAIBackend("m", base_url="http://127.0.0.1:9/v1"), cache_dir=root, progress=False)
    assert list(cache.iterdir()) == [] and not (cache / "sub").exists(), "the refused cache wrote something"

    own = shared / "mine"
    SpendLog(own).add(0.25)
    assert SpendLog(own).earlier == 0.25
    monkeypatch.setenv("CLIO_ENGINE_TRUSTED_UIDS", "nobody")
    SpendLog(closed).add(0.5)
    assert SpendLog(closed).earlier == 0.5
    with pytest.raises(OutputError, match=r"other accounts may write to the folder .*/llm-cache \(mode 777\)"):
        CallCache(cache)
