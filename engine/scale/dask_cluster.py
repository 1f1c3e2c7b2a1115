"""The Dask cluster a run uses: an existing scheduler (`compute.address`), else a LocalCluster (CPU workers)
or dask-cuda's LocalCUDACluster (one worker per GPU) started for the run and closed after it. A cluster
started here speaks mutual TLS with credentials of its own (`local_security`); an existing scheduler is
reached with the security settings of Dask's own configuration (`distributed.comm.tls.*`).

    with client_for(cfg.compute) as client:
        ...  # client.submit / dask collections computed on client
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

from clio_engine.errors import ConfigError

log = logging.getLogger("clio_engine.scale")


def compute_reads(cfg) -> tuple[str, ...]:
    """The `compute` settings a stage that can run on Dask declares it reads: the scheduler always (to
    choose), the partition size only under dask (where it reaches the stage's result)."""
    return ("compute.scheduler", "compute.partition_rows") if cfg.compute.scheduler == "dask" else ("compute.scheduler",)


def require_distributed():
    """Import dask.distributed or fail in one line naming the extra to install."""
    try:
        import distributed
    except ImportError:
        raise ConfigError("compute.scheduler: dask needs dask.distributed: pip install 'clio-engine[dask]'") from None
    return distributed


@contextlib.contextmanager
def client_for(compute) -> Iterator["distributed.Client"]:  # noqa: F821 (lazy import)
    """A connected `distributed.Client` for the `compute` config section; a local cluster it started is
    closed on exit, an existing one (`compute.address`) is left running."""
    distributed = require_distributed()
    if compute.address:
        try:
            client = distributed.Client(compute.address, timeout="30s")
        except OSError as e:
            raise ConfigError(f"compute.address: cannot reach the Dask scheduler at {compute.address}: {e}") from None
        log.info("dask: connected to %s (%d workers)", compute.address, len(client.scheduler_info()["workers"]))
        with client:
            yield client
        return
    with spawn_environ_kept():
        cluster = local_cluster(compute.n_workers, compute.threads_per_worker, compute.memory_limit, cuda=compute.cuda)
        with cluster, distributed.Client(cluster) as client:
            log.info("dask: started %s with %d workers", type(cluster).__name__, len(cluster.workers))
            yield client


@contextlib.contextmanager
def spawn_environ_kept() -> Iterator[None]:
    """Give back this process's thread settings after a local cluster. distributed's Nanny writes its
    pre-spawn variables (OMP_NUM_THREADS=1, MKL_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1) into this process's
    os.environ before it spawns a worker and never restores them, so every later subprocess of the run
    would run single-threaded (and compute fp32 GEMMs with another blocking than the same code before)."""
    import dask

    names = list(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# The scheduler's HTTP routes a local cluster keeps: liveness and Prometheus counters. The default set adds
# pages of worker logs, call stacks and task keys, served to anyone on this machine.
HTTP_ROUTES = ["distributed.http.scheduler.prometheus", "distributed.http.health"]


def local_security(distributed):
    """Mutual TLS with credentials made for this cluster only (kept in memory; distributed writes them for the
    moment of loading into an owner-only temporary folder, then deletes them).

    A scheduler on 127.0.0.1 without it accepts a client from any account on the machine, and a client runs
    code in the workers as this user: every private/ zone this user can read (texts, embeddings, prompts) would
    be open to the machine's other accounts while a run is going. With it, a connection without this
    cluster's certificate fails its handshake."""
    try:
        import cryptography  # noqa: F401  (distributed makes the temporary certificates with it)
    except ImportError:
        raise ConfigError("compute.scheduler: dask starts a local cluster secured with TLS, which needs the "
                          "'cryptography' package: pip install 'clio-engine[dask]'") from None
    return distributed.Security.temporary()


def private_scratch(dask) -> str:
    """A fresh owner-only folder (0700, a random name) for the cluster's scratch space, in Dask's
    `temporary-directory` or the system's.

    Dask's default is a shared `<tmp>/dask-scratch-space` taken as found: where another account made it first
    and left it writable, that account owns the folder every nanny, worker and the scheduler put at the *front*
    of `sys.path` (the run's own process's too) and under which workers spill. A `torch.py` planted there runs
    as this user the first time a worker imports torch; a worker's folder swapped for one of its own receives
    the spilled partitions (texts, vectors)."""
    import tempfile

    return tempfile.mkdtemp(prefix="clio-dask-", dir=dask.config.get("temporary-directory", None) or None)


def local_cluster(n_workers: int = 2, threads_per_worker: int = 1, memory_limit: str = "auto", *, cuda: bool = False,
                  secure: bool = True):
    """A LocalCluster of `n_workers` worker processes (or dask-cuda's LocalCUDACluster, one worker per GPU), as a
    run starts it: mutual TLS with its own credentials (`local_security`; `secure=False` only for a benchmark's
    side-by-side figure), no dashboard, the scheduler's HTTP server on a free port of 127.0.0.1 with the
    `HTTP_ROUTES` only (not 8787, which a second cluster on the machine would find taken), and scratch space in
    an owner-only folder of its own (`private_scratch`), removed once the cluster is gone. A
    `distributed.Client` made from it takes its credentials."""
    import shutil
    import weakref

    import dask

    distributed = require_distributed()
    security = local_security(distributed) if secure else None
    scratch = private_scratch(dask)
    http = {"dashboard_address": "127.0.0.1:0", "local_directory": scratch}  # the scheduler's folder goes there too
    try:
        with dask.config.set({"distributed.scheduler.http.routes": HTTP_ROUTES}):
            if cuda:
                try:
                    from dask_cuda import LocalCUDACluster
                except ImportError:
                    raise ConfigError("compute.cuda: true needs dask-cuda: pip install dask-cuda") from None
                cluster = LocalCUDACluster(threads_per_worker=threads_per_worker, memory_limit=memory_limit,
                                           dashboard_address=None, security=security, scheduler_kwargs=http,
                                           local_directory=scratch)
            else:
                cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                                   memory_limit=memory_limit, processes=True, dashboard_address=None,
                                                   security=security, scheduler_kwargs=http, local_directory=scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    weakref.finalize(cluster, shutil.rmtree, scratch, ignore_errors=True)  # also at exit, if the cluster outlives it
    return cluster
