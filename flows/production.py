"""Prefect entrypoint for a production rollout: approval, hooks, validation, rollback (see
prefect.yaml)."""

from neuroerp_ci.orchestration import rollout

__all__ = ["rollout"]
