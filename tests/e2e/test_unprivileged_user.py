"""A user who can write neither beside the installed sources nor to a home (a service account
running a system-wide install) still gets results: numba's kernel cache goes to a writable
place instead of numba refusing to compile (it used to end in a RuntimeError traceback)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, SAMPLES, VENV_PYTHON

from apnstrace import numba_cache


def test_cache_dir_falls_back_to_a_private_temp_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(numba_cache.os, "access", lambda path, mode: Path(path) != numba_cache.PACKAGE)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert numba_cache.choose_cache_dir() == str(tmp_path / "home" / ".cache" / "apnstrace-numba")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv("HOME", str(not_a_dir))           # ~/.cache cannot be made
    monkeypatch.setattr(numba_cache.tempfile, "gettempdir", lambda: str(tmp_path))
    assert numba_cache.choose_cache_dir() == str(tmp_path / f"apnstrace-numba-{os.getuid()}")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere")   # the user's own choice wins
    assert numba_cache.choose_cache_dir() is None


def test_flows_as_nobody_without_a_home():
    if os.geteuid() != 0:
        pytest.fail("this test switches to uid 65534 with setpriv: run it as root (CI does)")
    work = Path(tempfile.mkdtemp(prefix="apnstrace-nobody-"))
    try:
        os.chmod(work, 0o777)
        shutil.copy(SAMPLES / "blocked_syn.pcap", work / "c.pcap")
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
        env.update(HOME="/nonexistent", PYTHONPATH=str(REPO / "src"), TMPDIR=str(work))
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(VENV_PYTHON),
                               "-m", "apnstrace", "flows", "c.pcap", "--format", "csv"],
                              capture_output=True, text=True, env=env, cwd=work, timeout=600)
        cached = list((work / "apnstrace-numba-65534").rglob("*.nbi"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.splitlines()[0].startswith("flow_id,")
    assert "courier.push.apple.com" in done.stdout
    assert cached, "numba's cache went to the private temp folder"
