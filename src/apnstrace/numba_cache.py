"""Where numba keeps compiled kernels. Numba writes beside the sources, else under ~/.cache;
when neither is writable (a system-wide install run by a user without a home, as a service
account often is) it refuses to compile cached functions at all. Point it at a writable
directory first, before numba is imported."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def choose_cache_dir() -> str | None:
    """The directory to give NUMBA_CACHE_DIR, or None when numba's own choice works."""
    if os.environ.get("NUMBA_CACHE_DIR") or os.access(PACKAGE, os.W_OK | os.X_OK):
        return None
    for folder in (Path.home() / ".cache" / "apnstrace-numba",
                   Path(tempfile.gettempdir()) / f"apnstrace-numba-{os.getuid()}"):
        if _writable(folder):
            return str(folder)
    return None


def configure() -> None:
    chosen = choose_cache_dir()
    if chosen:
        os.environ["NUMBA_CACHE_DIR"] = chosen
