"""The charts of ``report.html``: matplotlib figures rendered to inline SVG strings.

Pure functions, data in and SVG text out: no pyplot (no global figure registry, no backend
to select), no file, no clock. The same data and chart id give the same bytes: the SVG's
date is left out and its generated ids are hashed with the chart id as salt
(``svg.hashsalt``), then prefixed with it, so several charts inline in one page never share
an id.

What a browser test looks for, by id: each plotted data series is ``{chart_id}-data-{n}``
(n from 0), a limit line ``{chart_id}-threshold``, a baseline line ``{chart_id}-baseline``,
the current run's mark ``{chart_id}-current``; the ``<svg>`` element itself is ``chart_id``.

Example::

    svg = trend_chart("c1", "api-latency p95_ms", "ms",
                      [("11-27 10:00", 280.0, "PASS"), ("this run", 412.0, "fail")],
                      threshold=300.0, baseline=280.0, current=1)
"""

from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, PercentFormatter

from neuroerp_ci.support.formatting import plain_text

FIGSIZE = (6.4, 2.6)  # inches; 460 x 187 px in the page at 100 %
MAX_ECDF_POINTS = 600  # a load test has many thousands of samples; its ECDF needs no more
MAX_X_LABELS = 6

# Status words (outcome statuses and verdicts, any case) -> colour; grey for anything else.
STATUS_COLOURS = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "warn": "#bf8700",
    "inconclusive": "#8250df",
    "info": "#57606a",
}
_OTHER = "#8c959f"
_SERIES = ("#0969da", "#cf222e", "#8250df")  # data, failures / current, latency
_THRESHOLD = "#cf222e"
_BASELINE = "#57606a"

_STYLE: dict[str, object] = {
    "font.size": 8.5,
    "font.family": "DejaVu Sans",  # bundled with matplotlib; in the SVG it is only a name
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#8c959f",
    "axes.grid": True,
    "grid.color": "#d0d7de",
    "grid.linewidth": 0.5,
    "xtick.color": "#57606a",
    "ytick.color": "#57606a",
    "legend.fontsize": 7.0,
    "legend.frameon": False,
    "svg.fonttype": "none",  # text stays text: searchable, no glyph outlines
}
_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(url\(#|xlink:href="#|href="#)([^)"]+)')


def trend_chart(
    chart_id: str,
    title: str,
    unit: str,
    points: Sequence[tuple[str, float, str | None]],
    threshold: float | None = None,
    baseline: float | None = None,
    current: int | None = None,
) -> str:
    """A metric over runs, oldest first: a line through every run's value, each point
    coloured by its status (``pass``, ``FAIL``, ...), the ``current`` run ringed, the limit
    and the baseline as horizontal lines. Points with a value that is not finite are left
    out (the store reads an unmeasured value back as NaN)."""
    kept = [(i, label, value, status) for i, (label, value, status) in enumerate(points)]
    kept = [p for p in kept if math.isfinite(p[2])]
    with _styled(chart_id):
        figure, axes = _figure(title)
        xs = list(range(len(kept)))
        ys = [value for _, _, value, _ in kept]
        if kept:
            (line,) = axes.plot(xs, ys, color=_SERIES[0], linewidth=1.2, zorder=2)
            line.set_gid(f"{chart_id}-data-0")
            colours = [_colour(status) for *_, status in kept]
            marks = axes.scatter(xs, ys, s=18, c=colours, zorder=3, edgecolors="none")
            marks.set_gid(f"{chart_id}-data-1")
            at = next((n for n, p in enumerate(kept) if p[0] == current), None)
            if at is not None:
                ring = axes.scatter(
                    [at],
                    [ys[at]],
                    s=80,
                    facecolors="none",
                    edgecolors="#1f2328",
                    linewidths=1.2,
                    zorder=4,
                )
                ring.set_gid(f"{chart_id}-current")
        _limit_lines(axes, chart_id, threshold, baseline, horizontal=True)
        axes.margins(y=0.15)  # the current run's ring stays inside the plot
        labels = [_literal(label) for _, label, _, _ in kept]
        ticks = _spread(len(labels), MAX_X_LABELS)
        axes.xaxis.set_major_locator(FixedLocator(ticks))
        axes.xaxis.set_major_formatter(
            FuncFormatter(lambda x, _: labels[int(x)] if 0 <= int(x) < len(labels) else "")
        )
        axes.set_xlim(-0.5, max(len(kept) - 0.5, 0.5))
        _value_axis(axes, unit, "y")
        axes.grid(axis="x", visible=False)
        _legend(axes)
        return _svg(figure, chart_id)


def distribution_chart(
    chart_id: str,
    title: str,
    unit: str,
    samples: Sequence[float],
    baseline_samples: Sequence[float] = (),
    threshold: float | None = None,
    baseline: float | None = None,
) -> str:
    """The empirical distribution (ECDF) of this run's samples against the baseline's pooled
    samples when there are any, else against the baseline value as a vertical line; the
    limit as a vertical line."""
    with _styled(chart_id):
        figure, axes = _figure(title)
        series = [("this run", samples, _SERIES[0]), ("baseline runs", baseline_samples, _BASELINE)]
        n = 0
        for label, values, colour in series:
            xs, ys = _ecdf(values)
            if not xs:
                continue
            (line,) = axes.plot(
                xs, ys, drawstyle="steps-post", color=colour, linewidth=1.3, label=label
            )
            line.set_gid(f"{chart_id}-data-{n}")
            n += 1
        drawn_baseline = baseline if not baseline_samples else None
        _limit_lines(axes, chart_id, threshold, drawn_baseline, horizontal=False)
        axes.set_ylim(0, 1.04)
        axes.yaxis.set_major_locator(FixedLocator([0, 0.5, 0.9, 1.0]))
        axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.set_ylabel("share of samples ≤ x")
        _value_axis(axes, unit, "x")
        _legend(axes)
        return _svg(figure, chart_id)


def timeline_chart(
    chart_id: str,
    title: str,
    points: Sequence[tuple[float, float, float | None, float]],
) -> str:
    """A load test over time: requests/s and failures/s (left axis) and the p95 latency in
    ms (right axis); a second without a latency is a gap in its line."""
    with _styled(chart_id):
        figure, axes = _figure(title, right_axis=True)
        ts = [p[0] for p in points]
        (rps,) = axes.plot(
            ts, [p[1] for p in points], color=_SERIES[0], linewidth=1.2, label="requests/s"
        )
        rps.set_gid(f"{chart_id}-data-0")
        (failures,) = axes.plot(
            ts, [p[3] for p in points], color=_SERIES[1], linewidth=1.0, label="failures/s"
        )
        failures.set_gid(f"{chart_id}-data-1")
        axes.set_xlabel("seconds into the test")
        axes.set_ylabel("per second")
        axes.yaxis.set_major_locator(MaxNLocator(4))
        axes.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        axes.set_ylim(bottom=0)
        latency_axes = axes.twinx()
        latency_axes.grid(visible=False)
        latency_axes.spines["right"].set_visible(True)
        p95 = [math.nan if p[2] is None else p[2] for p in points]
        (latency,) = latency_axes.plot(
            ts, p95, color=_SERIES[2], linewidth=1.0, linestyle="--", label="p95 ms"
        )
        latency.set_gid(f"{chart_id}-data-2")
        latency_axes.set_ylabel("p95 latency (ms)")
        latency_axes.yaxis.set_major_locator(MaxNLocator(4))
        if any(math.isfinite(v) for v in p95):
            latency_axes.set_ylim(bottom=0)
        _legend(latency_axes, [rps, failures, latency])
        return _svg(figure, chart_id)


# rc_context changes matplotlib's global settings for its block: one chart at a time.
_RC_LOCK = threading.Lock()


@contextmanager
def _styled(chart_id: str) -> Iterator[None]:
    """The charts' style for one chart (other threads wait for theirs)."""
    with _RC_LOCK, rc_context(_rc(chart_id)):
        yield


def _rc(chart_id: str) -> dict[Any, Any]:
    """The charts' style, and the SVG's root id and the salt of its generated ids."""
    return {**_STYLE, "svg.hashsalt": chart_id, "svg.id": chart_id}


def _figure(title: str, right_axis: bool = False) -> tuple[Figure, Axes]:
    figure = Figure(figsize=FIGSIZE)
    FigureCanvasSVG(figure)
    # Fixed margins: a layout engine would cost more than the chart itself.
    figure.subplots_adjust(left=0.11, right=0.90 if right_axis else 0.98, top=0.88, bottom=0.2)
    axes = figure.add_subplot()
    # A plain text, not set_title: placing a title measures every tick label.
    axes.text(
        0,
        1.04,
        _literal(title),
        transform=axes.transAxes,
        fontsize=8.5,
        fontweight="bold",
        color="#1f2328",
        clip_on=False,
    )
    return figure, axes


def _limit_lines(
    axes: Axes,
    chart_id: str,
    threshold: float | None,
    baseline: float | None,
    horizontal: bool,
) -> None:
    line = axes.axhline if horizontal else axes.axvline
    if baseline is not None and math.isfinite(baseline):
        drawn = line(baseline, color=_BASELINE, linewidth=1.0, linestyle=":", label="baseline")
        drawn.set_gid(f"{chart_id}-baseline")
    if threshold is not None and math.isfinite(threshold):
        drawn = line(threshold, color=_THRESHOLD, linewidth=1.2, linestyle="--", label="limit")
        drawn.set_gid(f"{chart_id}-threshold")


def _value_axis(axes: Axes, unit: str, which: str) -> None:
    axis = axes.yaxis if which == "y" else axes.xaxis
    axis.set_major_locator(MaxNLocator(4))
    if unit in ("ratio", "fraction"):
        axis.set_major_formatter(PercentFormatter(1.0))
    elif unit and unit not in ("count", "1"):
        (axes.set_ylabel if which == "y" else axes.set_xlabel)(unit)


def _legend(axes: Axes, handles: Sequence[Artist] | None = None) -> None:
    """The legend on the title's line, right-aligned above the plot: never over the data."""
    if handles is None:
        handles = axes.get_legend_handles_labels()[0]
    if handles:
        axes.legend(
            handles=handles,
            labels=[str(h.get_label()) for h in handles],
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncols=len(handles),
            borderaxespad=0.2,
            handlelength=1.6,
            columnspacing=1.0,
        )


def _ecdf(values: Sequence[float]) -> tuple[list[float], list[float]]:
    """The ECDF's steps from (first, 0) to (last, 1), at most :data:`MAX_ECDF_POINTS`."""
    data = np.sort(np.asarray([v for v in values if math.isfinite(v)], dtype=float))
    n = len(data)
    if n == 0:
        return [], []
    if n > MAX_ECDF_POINTS:
        ranks = np.linspace(1, n, MAX_ECDF_POINTS)
        xs = np.quantile(data, (ranks - 1) / (n - 1))
        ys = ranks / n
    else:
        xs, ys = data, np.arange(1, n + 1) / n
    return [float(xs[0]), *map(float, xs)], [0.0, *map(float, ys)]


def _spread(count: int, most: int) -> list[int]:
    """Up to ``most`` indexes out of ``count``, evenly spread, always the first and last."""
    if count <= most:
        return list(range(count))
    step = (count - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})


def _literal(text: str) -> str:
    """Text matplotlib shows as written: printable (no control character in the SVG's XML),
    and a ``$`` escaped, which would start mathtext."""
    return plain_text(text).replace("$", r"\$")


def _colour(status: str | None) -> str:
    return STATUS_COLOURS.get((status or "").lower(), _OTHER)


def _svg(figure: Figure, chart_id: str) -> str:
    """The figure as an ``<svg>`` element to inline: no XML prolog or DOCTYPE, no metadata,
    every id matplotlib made up prefixed with ``chart_id``."""
    buffer = io.StringIO()
    figure.savefig(
        buffer,
        format="svg",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    text = _PROLOG.sub("", buffer.getvalue(), count=1)
    own = f"{chart_id}-"
    made_up = {i for i in _ID.findall(text) if i != chart_id and not i.startswith(own)}

    def prefixed(found: re.Match[str]) -> str:
        group = found.lastindex or 1
        if found.group(group) not in made_up:
            return found.group()
        whole, at = found.group(), found.start(group) - found.start()
        return whole[:at] + own + whole[at:]

    text = _ID.sub(prefixed, text)
    text = _REFERENCE.sub(prefixed, text)
    return text.strip() + "\n"
