"""take_flights keeps an opened flight's last write as Python values (flight_streams._written,
for collect._Stream.written): they must be what the log's columns hold for the same read
(_merged_columns of that read alone), field by field, for every kind of value."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from apnstrace.decode import tls_flight
from apnstrace.metadata import flight_streams as fs
from apnstrace.metadata.dns_feed import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="take_flights runs only compiled")

FLIGHT = st.tuples(st.booleans(), st.sampled_from([-1, 0x0303, 0x0304, 0x7F1C, 0x1234]),
                   st.sampled_from([-1, 0x0228, 0x0100, 0x02FF]),
                   st.one_of(st.none(), st.binary(max_size=6)), st.sampled_from([None, "CN=Apple", "CN=x\\x00"]),
                   st.floats(0, 2e9, allow_nan=False))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(FLIGHT, min_size=1, max_size=8))
def test_written_rows_are_the_columns_values(flights: list) -> None:
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
    read = fs._Read(scan, issuer, np.ones(n, bool), np.zeros(n, bool))
    ts = np.array([f[5] for f in flights])
    idx = np.arange(n)
    cols = fs._merged_columns(read, read, idx, np.full(n, -1, np.int64), ts, ts)
    want = list(zip(*(cols[name].to_pylist() for name in ("server_ts", "tls_version", "server_alpn",
                                                          "tls_alert", "cert_issuer"))))
    assert [fs._written(read, i, ts) for i in range(n)] == want
    # a flight read twice keeps the second read's row
    assert fs._last_writes(read, read, idx[:1], np.array([n - 1]), ts, ts) == [want[n - 1]]
