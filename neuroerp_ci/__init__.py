"""neuroerp-ci: release quality gates for VALEO-NeuroERP, orchestrated by Prefect 3."""

__version__ = "0.1.0"
