"""The one exception tree of neuroerp-ci.

    NeuroErpCiError
    ├── ConfigError          a pipeline file or its values are wrong (exit code 2)
    ├── UsageError           CLI arguments are wrong (exit code 2)
    ├── TargetError          the target service could not be started or did not get healthy
    │   └── SetupError       a ``target.setup`` command (or the scratch copy) failed: no check runs
    ├── ToolError            a tool could not run or its output could not be read
    │                        (caught by the check and turned into a CheckResult with status error)
    └── OrchestrationError   Prefect could not run the flow (exit code 3)

Every message is one line a person can act on; foreign exceptions are wrapped with
``raise ... from`` where they enter.
"""

from __future__ import annotations

from pathlib import Path


class NeuroErpCiError(Exception):
    """Root of every error neuroerp-ci raises on purpose."""


class ConfigError(NeuroErpCiError):
    """A pipeline file is unreadable or invalid; names the file and the key."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(f"{where}{problem}")


class UsageError(NeuroErpCiError):
    """Command-line arguments that cannot be honoured."""


class TargetError(NeuroErpCiError):
    """The target service did not start, did not get healthy or is not allowed."""


class SetupError(TargetError):
    """Preparing the stage failed (a ``target.setup`` command, the scratch copy).

    ``headline`` is the message without the command's output, for the checks that did not run.
    """

    def __init__(self, message: str, headline: str | None = None) -> None:
        self.headline = headline or message
        super().__init__(message)


class ToolError(NeuroErpCiError):
    """A tool is missing, crashed, timed out or printed output that cannot be read."""


class OrchestrationError(NeuroErpCiError):
    """Prefect itself failed: no server, a crashed flow engine."""
