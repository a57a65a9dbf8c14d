"""Numbers for people, shared by the charts and the HTML report."""
from __future__ import annotations


DAY, YEAR = 86400.0, 365.25 * 86400.0


def seconds_text(s: float) -> str:
    """850 ms, 1.4 s, 8.1 min, 2.3 h, 3.0 days, 7.9 years."""
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    if s < 2 * DAY:
        return f"{s / 3600:.1f} h"
    if s < 2 * YEAR:
        return f"{s / DAY:.1f} days"
    return f"{s / YEAR:.1f} years"
