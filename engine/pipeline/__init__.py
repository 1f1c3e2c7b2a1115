"""The end-to-end pipeline (SPEC §3): `clio_engine.run(config) -> Run`, the stage registry and its stage functions."""
from clio_engine.pipeline.registry import (FAULT_ENV, UNKEYED, ConfigView, Stage, StageContext, UndeclaredSetting, plan,
                                           register_stage)
from clio_engine.pipeline.run import STAGES, Run, check_config, run
from clio_engine.pipeline.stages import base_k
from clio_engine.pipeline.steps.cluster import CLUSTER_METHODS, register_cluster_method

__all__ = ["run", "Run", "STAGES", "FAULT_ENV", "base_k", "check_config", "plan", "Stage", "StageContext", "ConfigView",
           "UndeclaredSetting", "UNKEYED", "register_stage", "CLUSTER_METHODS", "register_cluster_method"]
