"""NeuroERP demo: a small ERP-like FastAPI + SQLite service used as a neuroerp-ci target."""

__version__ = "0.1.0"
