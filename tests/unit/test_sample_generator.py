"""sample_pcaps/generate.py must reproduce the committed sample captures exactly."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from conftest import sample_generator

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    # Other tests load scapy's TLS layer, which makes 443 dissect as TLS instead of Raw; load
    # it here too so the result cannot depend on which tests ran first (a CI run failed so).
    import scapy.layers.tls.all  # noqa: F401
    gen = sample_generator()
    out = tmp_path_factory.mktemp("sample_pcaps")
    written = gen.write_all(out)
    return gen, out, sorted(p.name for p in written)


def test_regenerates_the_committed_file_set(regenerated):
    _, _, names = regenerated
    committed = sorted(p.name for p in SAMPLES.iterdir()
                       if p.name.endswith((".pcap", ".pcapng", ".gz", ".truth.json")))
    assert names == committed


def test_regenerated_files_are_byte_identical(regenerated):
    gen, out, names = regenerated
    for name in names:
        new, old = (out / name).read_bytes(), (SAMPLES / name).read_bytes()
        if name.endswith(".gz") and zlib.ZLIB_RUNTIME_VERSION != gen.GZ_ZLIB_VERSION:
            # deflate output may differ between zlib builds; the content must not
            assert new[:10] == old[:10], name
            assert gzip.decompress(new) == gzip.decompress(old), name
            continue
        assert new == old, f"{name} differs from the committed copy; re-run sample_pcaps/generate.py"


def test_every_capture_has_truth_and_the_set_is_small(regenerated):
    _, out, names = regenerated
    captures = [n for n in names if not n.endswith(".truth.json")]
    assert sum((out / n).stat().st_size for n in captures) < 250_000
    for name in captures:
        truth = json.loads((out / f"{name}.truth.json").read_text())
        assert truth["capture"] == name
        assert truth["flows"]
        for fl in truth["flows"]:
            assert fl["transport"] in ("tcp", "udp")
            assert fl["pkts_c2s"] + fl["pkts_s2c"] > 0
            assert fl["state"]
