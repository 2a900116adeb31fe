"""``python -m neuroerp_ci``: the same command line as the ``neuroerp-ci`` script."""

from __future__ import annotations

from neuroerp_ci.cli import main

if __name__ == "__main__":
    main()
