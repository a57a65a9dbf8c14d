"""`analyze -o DIR`: the report folder. Every file is written to a temporary name in the same
folder and renamed into place, so an interrupted run never leaves a half file that looks whole."""
from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from . import export

if TYPE_CHECKING:
    from ..pipeline import Result

TABLES = ("flows", "sequences", "blocked", "timing", "courier")
CSV_TABLES = ("flows", "sequences", "blocked", "timing")          # what the spec lists as CSV
CHART_DIR = "charts"


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(temp) for a temporary file beside `path`, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(temp))
        os.chmod(temp, 0o666 & ~_umask())        # mkstemp makes 0600; a report is meant to be shared
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda temp: temp.write_bytes(data))


def write_tables(result: Result, folder: Path, formats: Iterable[str] = ("parquet", "csv")) -> dict[str, Path]:
    """flows.parquet ... and flows.csv ... (CSV cells neutralized against spreadsheet formulas)."""
    written = {}
    for name in TABLES:
        frame = getattr(result, name)
        if "parquet" in formats:
            written[f"{name}.parquet"] = atomic_write(folder / f"{name}.parquet",
                                                      lambda temp, f=frame: export.write_parquet(f, temp))
        if "csv" in formats and name in CSV_TABLES:
            text = io.StringIO()
            export.write_csv(frame, text)
            written[f"{name}.csv"] = atomic_bytes(folder / f"{name}.csv", text.getvalue().encode("utf-8"))
    return written


def write_charts(result: Result, folder: Path) -> dict[str, Path]:
    from .charts import CHARTS, png_bytes
    return {name: atomic_bytes(folder / f"{name}.png", png_bytes(make(result))) for name, make in CHARTS.items()}


def write_html(result: Result, path: Path, charts: dict[str, bytes] | None = None) -> Path:
    from .html import render_html
    return atomic_bytes(path, render_html(result, charts).encode("utf-8"))


def write_summary(result: Result, path: Path) -> Path:
    text = export.json_text(result.summary, indent=2, allow_nan=False) + "\n"
    return atomic_bytes(path, text.encode("utf-8"))


def write_report(result: Result, folder: Path) -> dict[str, Path]:
    """Everything `analyze -o DIR` writes; report.html last, so its presence means the rest is there."""
    from .charts import CHARTS, png_bytes
    written = write_tables(result, folder)
    pngs = {name: png_bytes(make(result)) for name, make in CHARTS.items()}
    for name, data in pngs.items():
        written[f"{CHART_DIR}/{name}.png"] = atomic_bytes(folder / CHART_DIR / f"{name}.png", data)
    written["summary.json"] = write_summary(result, folder / "summary.json")
    written["report.html"] = write_html(result, folder / "report.html", pngs)
    return written
