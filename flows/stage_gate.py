"""Prefect entrypoint for one stage's quality gate (see prefect.yaml)."""

from neuroerp_ci.orchestration import stage_gate

__all__ = ["stage_gate"]

if __name__ == "__main__":
    stage_gate()
