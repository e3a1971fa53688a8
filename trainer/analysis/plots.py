"""The PNG figures of the data report.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas directly,
not through `pyplot`: no global backend switch, no figure registry to leak from
a long-running job.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import matplotlib.colors
import matplotlib.ticker
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from trainer.analysis import time_patterns

_DPI = 110
_COLOR = "#3b6ea5"
# Readable ticks for durations on a log axis.
_DURATION_TICKS = (
    (1, "1 s"),
    (10, "10 s"),
    (60, "1 min"),
    (600, "10 min"),
    (3600, "1 h"),
    (6 * 3600, "6 h"),
    (86_400, "1 d"),
    (7 * 86_400, "1 w"),
    (30 * 86_400, "30 d"),
    (365 * 86_400, "1 y"),
    (10 * 365 * 86_400, "10 y"),
)


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str) -> None:
    figure.savefig(path, dpi=_DPI)


def bar_chart(
    path: str, counts: np.ndarray, labels: Sequence[str], *, title: str, xlabel: str, ylabel: str = "events"
) -> None:
    """Vertical bars of `counts` [K] labelled by `labels` [K]."""
    figure = _figure(8, 3.6)
    ax = figure.add_subplot()
    ax.bar(np.arange(len(counts)), counts, color=_COLOR)
    ax.set_xticks(np.arange(len(counts)), list(labels))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))
    ax.grid(axis="y", alpha=0.3)
    _save(figure, path)


def weekday_hour_heatmap(path: str, cells: np.ndarray, *, title: str) -> None:
    """Heatmap of `cells` [7, 24] events per (local weekday, local hour)."""
    figure = _figure(9, 3.6)
    ax = figure.add_subplot()
    image = ax.imshow(cells, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(np.arange(24), [str(h) for h in range(24)])
    ax.set_yticks(np.arange(7), list(time_patterns.WEEKDAY_NAMES))
    ax.set_xlabel("local hour of day")
    ax.set_ylabel("local weekday")
    ax.set_title(title)
    figure.colorbar(image, ax=ax, label="events", format=matplotlib.ticker.EngFormatter(sep=""))
    _save(figure, path)


def _log_bins(positive: np.ndarray, bins_per_decade: int) -> np.ndarray:
    low, high = float(positive.min()), float(positive.max())
    if high <= low:
        high = low * 10
    decades = np.log10(high) - np.log10(low)
    count = max(int(np.ceil(decades * bins_per_decade)), 1)
    return np.logspace(np.log10(low), np.log10(high), count + 1)


def duration_histogram(path: str, seconds: np.ndarray, *, title: str, xlabel: str) -> None:
    """Histogram of durations with log-spaced bins on a log time axis.

    Zero durations cannot sit on a log axis; their count goes into the title.
    """
    seconds = np.asarray(seconds, dtype=np.float64)
    positive = seconds[seconds > 0]
    zeros = int(seconds.size - positive.size)
    figure = _figure(8, 3.8)
    ax = figure.add_subplot()
    if positive.size:
        ax.hist(positive, bins=_log_bins(positive, 8), color=_COLOR)
        ax.set_xscale("log")
        low, high = positive.min(), positive.max()
        ticks = [(v, s) for v, s in _DURATION_TICKS if low / 3 <= v <= high * 3]
        if len(ticks) >= 2:
            ax.set_xticks([v for v, _ in ticks], [s for _, s in ticks])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    else:
        ax.text(0.5, 0.5, "no positive durations", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title + (f" ({zeros:,} of {seconds.size:,} are 0 s, not shown)" if zeros else ""))
    ax.set_xlabel(xlabel + " (log scale)")
    ax.set_ylabel("count")
    ax.grid(alpha=0.3)
    _save(figure, path)


def count_histogram(path: str, counts: np.ndarray, *, title: str, xlabel: str, ylabel: str) -> None:
    """Histogram of positive integer counts [K] with log bins; log-log axes."""
    counts = np.asarray(counts, dtype=np.float64)
    positive = counts[counts > 0]
    figure = _figure(8, 3.8)
    ax = figure.add_subplot()
    if positive.size:
        # Log-spaced edges moved to half-integers, so no bin falls between two integers.
        edges = np.unique(np.floor(_log_bins(np.append(positive, 1.0) + 0.5, 8))) - 0.5
        bins = np.append(edges, positive.max() + 0.5) if edges[-1] < positive.max() + 0.5 else edges
        ax.hist(positive, bins=bins, color=_COLOR)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_title(title)
    ax.set_xlabel(xlabel + " (log scale)")
    ax.set_ylabel(ylabel + " (log scale)")
    ax.grid(alpha=0.3)
    _save(figure, path)


def daily_timeline(path: str, days: np.ndarray, counts: np.ndarray, *, title: str) -> None:
    """Events per UTC day; `days` [D] unix day numbers, `counts` [D]."""
    figure = _figure(9, 3.4)
    ax = figure.add_subplot()
    dates = np.array([datetime.date(1970, 1, 1) + datetime.timedelta(days=int(d)) for d in days])
    ax.fill_between(dates, counts, step="mid", color=_COLOR, alpha=0.8, linewidth=0)
    ax.set_title(title)
    ax.set_xlabel("date (UTC)")
    ax.set_ylabel("events per day")
    ax.yaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    _save(figure, path)


def density_map(
    path: str,
    latitude: np.ndarray,
    longitude: np.ndarray,
    bounds: tuple[float, float, float, float],
    *,
    title: str,
) -> None:
    """2-D histogram of points with a log colour scale, east-west stretched true to scale.

    Args:
      latitude, longitude: [L] degrees.
      bounds: (lon_min, lon_max, lat_min, lat_max) shown; points outside are dropped.
    """
    lon_min, lon_max, lat_min, lat_max = bounds
    # One degree of longitude is cos(latitude) as long as one of latitude.
    aspect = 1.0 / max(np.cos(np.radians((lat_min + lat_max) / 2)), 0.05)
    width_units = (lon_max - lon_min) / aspect
    height_units = lat_max - lat_min
    bins_long = 300
    if width_units >= height_units:
        bins = (bins_long, max(int(bins_long * height_units / width_units), 20))
    else:
        bins = (max(int(bins_long * width_units / height_units), 20), bins_long)
    grid, _, _ = np.histogram2d(
        longitude, latitude, bins=bins, range=[[lon_min, lon_max], [lat_min, lat_max]]
    )  # [bins_lon, bins_lat]
    grid = np.ma.masked_equal(grid.T, 0)  # rows = latitude for imshow
    plot_height = 6.0
    plot_width = float(np.clip(plot_height * width_units / max(height_units, 1e-9) + 1.5, 4.0, 12.0))
    figure = _figure(plot_width, plot_height)
    ax = figure.add_subplot()
    ax.set_facecolor("#f2f2f2")
    image = ax.imshow(
        grid,
        origin="lower",
        extent=(lon_min, lon_max, lat_min, lat_max),
        cmap="magma_r",
        norm=matplotlib.colors.LogNorm(vmin=1, vmax=max(float(grid.max()) if grid.count() else 1.0, 1.0)),
        interpolation="nearest",
    )
    ax.set_aspect(aspect)
    ax.set_title(title)
    ax.set_xlabel("longitude (degrees)")
    ax.set_ylabel("latitude (degrees)")
    figure.colorbar(image, ax=ax, label="events per cell (log scale)", shrink=0.8)
    _save(figure, path)
