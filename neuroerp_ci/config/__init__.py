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
    Pipeline,
    PipelineFile,
    Stage,
    StageSpec,
    StoreSpec,
    TargetSpec,
)

# A stage's conditions are the gates' (one module per condition form): re-exported here, as
# the pipeline file is where they are written.
from neuroerp_ci.gates.conditions import ConditionSpec, RegressionSpec
from neuroerp_ci.model import Policy

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
