"""Kernels cached with other compile options are removed once (numba_cache.forget_stale_kernels):
numba's cache key leaves the options out, so a checkout updated in place would keep loading them."""
import os
from pathlib import Path

from apnstrace import numba_cache
from apnstrace.numba_cache import KERNEL_FLAGS, STAMP, forget_stale_kernels


def _cached(folder: Path) -> list[Path]:
    made = []
    for sub in ("", "metadata"):
        cache = folder / sub / "__pycache__"
        cache.mkdir(parents=True, exist_ok=True)
        for name in ("pick._pick-105.py311.nbi", "pick._pick-105.py311.1.nbc", "pick.cpython-311.pyc"):
            (cache / name).write_bytes(b"x")
            made.append(cache / name)
    return made


def test_kernels_cached_without_a_stamp_go_and_the_stamp_is_written(tmp_path):
    made = _cached(tmp_path)
    assert forget_stale_kernels(tmp_path) == 4
    assert [p.name for p in made if p.exists()] == ["pick.cpython-311.pyc"] * 2     # bytecode stays
    assert (tmp_path / "__pycache__" / STAMP).read_text() == KERNEL_FLAGS


def test_kernels_cached_with_the_same_options_stay(tmp_path):
    forget_stale_kernels(tmp_path)
    made = _cached(tmp_path)
    assert forget_stale_kernels(tmp_path) == 0
    assert all(p.exists() for p in made)


def test_kernels_cached_with_other_options_go(tmp_path):
    forget_stale_kernels(tmp_path, flags="nogil=False")
    _cached(tmp_path)
    assert forget_stale_kernels(tmp_path) == 4
    assert (tmp_path / "__pycache__" / STAMP).read_text() == KERNEL_FLAGS


def test_a_users_own_cache_folder_is_left_alone(tmp_path, monkeypatch):
    made = _cached(tmp_path)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    numba_cache.configure()
    assert all(p.exists() for p in made)
    assert not (tmp_path / "__pycache__" / STAMP).exists()


def test_the_package_cache_carries_the_current_options():
    """Importing apnstrace stamped the folder its kernels are cached in."""
    folder = numba_cache.PACKAGE
    assert os.access(folder, os.W_OK), "the test expects a writable checkout (kernels cached beside the sources)"
    assert (folder / "__pycache__" / STAMP).read_text() == KERNEL_FLAGS


def test_njit_compiles_with_the_kernel_options():
    from apnstrace.reader.walk import njit

    @njit(cache=False)
    def one():
        return 1

    assert one() == 1
    for name, value in numba_cache.KERNEL_OPTIONS.items():
        assert one.targetoptions[name] == value
