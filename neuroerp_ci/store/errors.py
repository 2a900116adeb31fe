"""Errors of the history store, under the package's one root.

    NeuroErpCiError
    └── StoreError           the history store cannot be opened, read or written
        ├── StoreUrlError    the store URL is malformed or names a driver that is not installed
        └── UnknownRunError  no run with that id (or it cannot be used that way)

Every message is one line naming the store (password hidden) and what went wrong.
"""

from __future__ import annotations

from neuroerp_ci.errors import NeuroErpCiError


class StoreError(NeuroErpCiError):
    """The history store cannot be opened, read or written."""


class StoreUrlError(StoreError):
    """The store URL cannot be used: malformed, unknown dialect, driver not installed."""


class UnknownRunError(StoreError):
    """A run id the store does not hold, or a run that cannot be used as asked."""
