"""Prefect entrypoint for the release chain, development → staging → production (prefect.yaml)."""

from neuroerp_ci.orchestration import release

__all__ = ["release"]
