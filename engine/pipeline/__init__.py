"""The end-to-end pipeline (SPEC §3): `engine.run(config) -> Run` and its stage functions."""
from clio_engine.pipeline.run import FAULT_ENV, STAGES, Run, run
from clio_engine.pipeline.stages import base_k

__all__ = ["run", "Run", "STAGES", "FAULT_ENV", "base_k"]
