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


# What every kernel is compiled with unless it says otherwise (reader/walk.njit): the GIL
# released, so the metadata collector's thread and the engine's run at once (beside.py).
KERNEL_OPTIONS = {"nogil": True}
# Numba keys a cached kernel by its source file's stamp, bytecode and signature, not by the
# options it was compiled with: when KERNEL_OPTIONS change, kernels cached before would load
# unchanged wherever their source did not (a checkout updated in place). The cache folder keeps
# the options it was written with; on a difference its cached kernels are removed, once.
KERNEL_FLAGS = ",".join(f"{name}={value}" for name, value in sorted(KERNEL_OPTIONS.items()))
STAMP = "apnstrace-kernel-flags"


def forget_stale_kernels(folder: Path, flags: str = KERNEL_FLAGS) -> int:
    """Remove the kernels cached under `folder` unless its stamp names `flags`; write the stamp.
    Returns how many files went. Best effort: a folder it cannot read or write is left as it is."""
    stamp = folder / "__pycache__" / STAMP
    try:
        if stamp.read_text() == flags:
            return 0
    except OSError:
        pass
    removed = 0
    try:
        for cached in [*folder.rglob("*.nbi"), *folder.rglob("*.nbc")]:
            cached.unlink(missing_ok=True)
            removed += 1
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(flags)
    except OSError:
        pass
    return removed


def configure() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return                          # the user's folder (maybe shared): left alone
    chosen = choose_cache_dir()
    if chosen:
        os.environ["NUMBA_CACHE_DIR"] = chosen
    forget_stale_kernels(Path(chosen) if chosen else PACKAGE)
