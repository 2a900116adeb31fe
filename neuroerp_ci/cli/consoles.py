"""The command line's consoles: what every command prints goes through these two."""

from __future__ import annotations

from rich.console import Console

# soft_wrap: piped into a CI log, a line stays one line (rich would cut it at 80 columns).
# markup=False: reasons, paths and table cells are printed as they are ("[advisories]"
# stays); styles come from rich Text only.
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def wide() -> Console:
    """``out``, or without a terminal a 160-column console: piped into a CI log there is no
    terminal width, and rich's 80 columns would cut run ids in tables."""
    return out if out.is_terminal else Console(highlight=False, width=160, markup=False)
