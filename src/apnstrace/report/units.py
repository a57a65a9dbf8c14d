"""Numbers for people, shared by the charts and the HTML report."""
from __future__ import annotations


def seconds_text(s: float) -> str:
    """850 ms, 1.4 s, 8.1 min, 2.3 h."""
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"
