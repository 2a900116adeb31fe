"""The pipeline's history store, opened for a command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from neuroerp_ci.config import Pipeline
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.store import HistoryStore, StoreUrlError, open_store, store_url


@contextmanager
def open_history(pipeline: Pipeline) -> Iterator[HistoryStore]:
    """The pipeline's history store; a URL it cannot use is an error in the pipeline file."""
    try:
        store = open_store(store_url(pipeline.store_url, pipeline.project_dir))
    except StoreUrlError as exc:
        raise ConfigError(pipeline.path, "store.url", str(exc)) from None
    with store:
        yield store
