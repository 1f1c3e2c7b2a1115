"""Scale-out (SPEC §7): stages on a `dask.distributed` cluster and out-of-core helpers.

`dask_cluster.client_for(compute_cfg)` opens the cluster a run uses; the distributed stages take that
client. Nothing here is imported by the single-process path: dask stays an optional dependency.
"""
