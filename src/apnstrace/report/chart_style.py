"""What every report chart shares: the category colours and marker styles (colours.toml),
figure size and titles, and small helpers for axes, bars, legends and numbers in labels."""
from __future__ import annotations

import tomllib
from collections.abc import Sequence
from datetime import timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Annotation

UTC = timezone.utc
DPI = 110
WIDTH_IN = 10.0             # 1100 px at DPI
TITLE_SIZE = 13
SUBTITLE_SIZE = 10
# Categories whose traffic is what this tool is about (a device is interesting for them).
APPLE_CATEGORIES = ("apns", "mdm", "enrollment", "sus", "apple", "file_share", "http_distribution")
OUTCOME_LABELS = {
    "checked_in": "checked in",
    "unsolicited_checkin": "unsolicited check-in",
    "no_checkin": "no check-in",
    "checkin_blocked": "check-in blocked",
}


# ---------------------------------------------------------------------------------------
# Styles

@lru_cache(maxsize=1)
def styles() -> dict[str, Any]:
    """colours.toml, loaded once."""
    with open(Path(__file__).with_name("colours.toml"), "rb") as fh:
        return tomllib.load(fh)


def category_colours() -> dict[str, str]:
    """category -> colour (hex), in legend order; "unknown" is the fallback."""
    return dict(styles()["categories"])


def category_colour(category: str | None) -> str:
    colours = styles()["categories"]
    return colours.get(category or "unknown", colours["unknown"])


def warning_colour() -> str:
    return styles()["warning"]["color"]


def _category_order(present: Sequence[str]) -> list[str]:
    """Categories present, in colours.toml order, unknown ones last (alphabetically)."""
    known = [c for c in category_colours() if c != "unknown"]
    present_set = set(present)
    return [c for c in known if c in present_set] + sorted(present_set - set(known))


def _category_rank(categories: pd.Series) -> np.ndarray:
    """Each flow's category as its place in colours.toml (Apple management first); unknown last."""
    order = [c for c in category_colours() if c != "unknown"]
    codes = pd.Categorical(categories.astype(object), categories=order).codes.astype(np.int64)
    return np.where(codes < 0, len(order), codes)


def _rgba_for(categories: pd.Series) -> np.ndarray:
    """One RGBA row per value, without a Python call per row."""
    from matplotlib.colors import to_rgba_array
    order = [c for c in category_colours() if c != "unknown"]
    palette = to_rgba_array([category_colour(c) for c in order] + [category_colour("unknown")])
    return palette[_category_rank(categories)]


# ---------------------------------------------------------------------------------------
# Helpers

def _figure(height: float, width: float = WIDTH_IN) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _title(fig: Figure, title: str, subtitle: str | None = None) -> None:
    """Title (bold) at the figure's top left, and an optional smaller line under it.

    The suptitle reserves an empty second line (so constrained layout makes room) and the
    subtitle is anchored to the bottom of the suptitle's box."""
    sup = fig.suptitle(title if not subtitle else f"{title}\n", x=0.01, ha="left",
                       fontsize=TITLE_SIZE, fontweight="bold")
    if subtitle:
        fig.add_artist(Annotation(subtitle, xy=(0, 0), xycoords=sup, xytext=(0, 2),
                                  textcoords="offset points", ha="left", va="bottom",
                                  fontsize=SUBTITLE_SIZE, color="#333333", gid="subtitle"))


def subtitle_of(fig: Figure) -> str:
    """The subtitle line of a chart ("" when it has none)."""
    return next((a.get_text() for a in fig.artists if a.get_gid() == "subtitle"), "")


def _empty(title: str, message: str) -> Figure:
    fig = _figure(2.4)
    _title(fig, title)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="#555555",
            transform=ax.transAxes)
    return fig


def _floats(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=float, na_value=np.nan)


def _bools(series: pd.Series) -> np.ndarray:
    return series.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _dates(epoch: np.ndarray | float) -> np.ndarray:
    """Epoch seconds -> matplotlib date numbers (days since matplotlib's epoch)."""
    zero = mdates.date2num(np.datetime64("1970-01-01T00:00:00"))
    return np.asarray(epoch, dtype=float) / 86400.0 + zero


def _utc_axis(ax, label: str = "time (UTC)") -> None:
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10)
    formatter = mdates.ConciseDateFormatter(
        locator, tz=UTC, show_offset=True,
        # seconds-level ticks read as clock times (17:14:05), not a bare "05"
        formats=["%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S"],
        zero_formats=["", "%Y", "%b", "%b-%d", "%H:%M", "%H:%M:%S"],
        offset_formats=["", "%Y", "%Y-%b", "%Y-%b-%d", "%Y-%b-%d", "%Y-%b-%d"])
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel(label)


def _rects(x0: np.ndarray, width: np.ndarray, y: np.ndarray, height: float) -> np.ndarray:
    """(n, 4, 2) rectangle vertices for a PolyCollection."""
    x1 = x0 + width
    lo, hi = y - height / 2, y + height / 2
    return np.stack([np.column_stack([x0, lo]), np.column_stack([x0, hi]),
                     np.column_stack([x1, hi]), np.column_stack([x1, lo])], axis=1)


MERGE_ABOVE = 2000      # bars in one collection beyond which touching bars are merged


def _merge_bars(row: np.ndarray, key: np.ndarray, x0: np.ndarray, x1: np.ndarray, gap: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the bars to keep and their merged right ends, merging bars of the same row
    and key (category, height) that overlap or are less than ``gap`` apart: at chart
    resolution thousands of scan attempts are one block, and Agg draws hatching per bar.

    Returns (keep, new_x1): draw bar ``keep[i]`` from its x0 to ``new_x1[i]``."""
    if x0.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    lo = float(x0.min())
    scale = max(float(x1.max()) - lo, 1e-12)
    u0, u1 = (x0 - lo) / scale, (x1 - lo) / scale          # 0..1
    group = row.astype(np.int64) * (int(key.max()) + 1) + key.astype(np.int64)
    order = np.lexsort((u0, group))
    g, u0, u1 = group[order], u0[order], u1[order]
    # Running max of the right end inside each group (groups offset by 2 so they never mix).
    run = np.maximum.accumulate(u1 + 2.0 * g) - 2.0 * g
    starts = np.ones(g.size, bool)
    starts[1:] = (g[1:] != g[:-1]) | (u0[1:] > run[:-1] + gap / scale)
    first = np.flatnonzero(starts)
    ends = np.maximum.reduceat(u1, first)
    return order[first], ends * scale + lo


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000.0
    return f"{n} B"


def _row_major(handles: list, ncols: int) -> list:
    """Reorder so that matplotlib's column-major legend reads left to right, row by row."""
    n = len(handles)
    out = []
    for col in range(ncols):
        out.extend(handles[row * ncols + col] for row in range((n - col + ncols - 1) // ncols))
    return out


def _legend_below(fig: Figure, handles: list, ncols: int = 6) -> None:
    if handles:
        ncols = min(ncols, len(handles))
        fig.legend(handles=_row_major(handles, ncols), loc="outside lower center", ncols=ncols,
                   frameon=False, fontsize=9, handlelength=1.6, columnspacing=1.4)


def _category_patch(category: str) -> Patch:
    return Patch(facecolor=category_colour(category), edgecolor="none", label=category)


def _blocked_patch(label: str = "blocked flow") -> Patch:
    b = styles()["blocked"]
    return Patch(facecolor="white", edgecolor=b["edgecolor"], hatch=b["hatch"],
                 linewidth=b["linewidth"], label=label)
