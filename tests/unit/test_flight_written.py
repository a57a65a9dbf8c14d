"""take_flights keeps an opened flight's last write as Python values (flight_streams._last_writes,
for collect._Stream.written): they must be what the log's columns hold for the same read
(_merged_columns of that read alone), field by field, for every kind of value; and a flight
read twice keeps its second read's."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.decode import tls, tls_flight
from apnstrace.metadata import flight_streams as fs
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")


def _written(r, i: int, ts: np.ndarray) -> tuple:
    """Flight i's write in read r, value by value (what _last_writes replaced)."""
    s = r.scan
    version, alert, a = int(s.version[i]), int(s.alert[i]), int(s.alpn_start[i])
    return (float(ts[i]) if s.hello_seen[i] else None,
            tls.version_name(version) if version >= 0 else None,
            tls.text(s.hs[a:s.alpn_end[i]].tobytes()) if a >= 0 else None,
            fs.alert_text(alert) if alert >= 0 else None,
            r.issuer[i])

FLIGHT = st.tuples(st.booleans(), st.sampled_from([-1, 0x0303, 0x0304, 0x7F1C, 0x1234]),
                   st.sampled_from([-1, 0x0228, 0x0100, 0x02FF]),
                   st.one_of(st.none(), st.binary(max_size=6)), st.sampled_from([None, "CN=Apple", "CN=x\\x00"]),
                   st.floats(0, 2e9, allow_nan=False))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(FLIGHT, min_size=1, max_size=8))
def test_written_rows_are_the_columns_values(flights: list) -> None:
    read, ts = _read_of(flights)
    n = len(flights)
    idx = np.arange(n)
    cols = fs._merged_columns(read, read, idx, np.full(n, -1, np.int64), ts, ts)
    want = list(zip(*(cols[name].to_pylist() for name in ("server_ts", "tls_version", "server_alpn",
                                                          "tls_alert", "cert_issuer"))))
    assert [_written(read, i, ts) for i in range(n)] == want
    assert fs._last_writes(read, read, idx, np.full(n, -1, np.int64), ts, ts) == want
    # a flight read twice keeps the second read's row
    assert fs._last_writes(read, read, idx[:1], np.array([n - 1]), ts, ts) == [want[n - 1]]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(FLIGHT, min_size=1, max_size=8), st.lists(FLIGHT, min_size=1, max_size=8), st.data())
def test_last_writes_pick_each_flights_last_read(first: list, second: list, data) -> None:
    r1, ts1 = _read_of(first)
    r2, ts2 = _read_of(second)
    idx = np.array(data.draw(st.lists(st.integers(0, len(first) - 1), min_size=1, max_size=8)), np.int64)
    at2 = np.array(data.draw(st.lists(st.integers(-1, len(second) - 1), min_size=len(idx), max_size=len(idx))),
                   np.int64)
    want = [_written(r2, j, ts2) if j >= 0 else _written(r1, i, ts1) for i, j in zip(idx.tolist(), at2.tolist())]
    assert fs._last_writes(r1, r2, idx, at2, ts1, ts2) == want


def _read_of(flights: list):
    n = len(flights)
    hs = bytearray()
    alpn_start, alpn_end = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    for i, (_, _, _, alpn, _, _) in enumerate(flights):
        if alpn is not None:
            alpn_start[i], alpn_end[i] = len(hs), len(hs) + len(alpn)
            hs += alpn
    scan = tls_flight.FlightScan(
        np.full(n, tls_flight.READ, np.int8), np.array([f[0] for f in flights]), np.zeros(n, bool),
        np.array([f[1] for f in flights], np.int64), np.array([f[2] for f in flights], np.int64),
        alpn_start, alpn_end, np.full(n, -1, np.int64), np.full(n, -1, np.int64),
        np.frombuffer(bytes(hs) + b"\0", np.uint8), np.full(n, -1, np.int64))
    issuer = np.empty(n, object)
    issuer[:] = [f[4] for f in flights]
    return fs._Read(scan, issuer, np.ones(n, bool), np.zeros(n, bool)), np.array([f[5] for f in flights])
