"""The pipeline file: its models (:mod:`.pipeline`, with a rollout's :mod:`.stage_rules`),
its loader (:mod:`.load`: TOML in, a validated :class:`Pipeline` out, bad input one
:class:`~neuroerp_ci.errors.ConfigError` line naming the file and key) and its secret
references (:mod:`.secret_refs`)."""

from neuroerp_ci.config.load import load_pipeline, parse_pipeline, resolve_config_path
from neuroerp_ci.config.pipeline import (
    DEFAULT_FILE,
    AdvisorySpec,
    BaselineSpec,
    CheckEntry,
    ConditionSpec,
    Pipeline,
    PipelineFile,
    Policy,
    RegressionSpec,
    Stage,
    StageSpec,
    StoreSpec,
    TargetSpec,
)

__all__ = [
    "DEFAULT_FILE",
    "AdvisorySpec",
    "BaselineSpec",
    "CheckEntry",
    "ConditionSpec",
    "Pipeline",
    "PipelineFile",
    "Policy",
    "RegressionSpec",
    "Stage",
    "StageSpec",
    "StoreSpec",
    "TargetSpec",
    "load_pipeline",
    "parse_pipeline",
    "resolve_config_path",
]
