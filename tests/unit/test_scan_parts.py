"""_tls_parts / _http_parts (one compiled pass over a scan's rows) against the numpy steps they replaced."""
import numpy as np
from hypothesis import given, settings, strategies as st

from apnstrace.decode import http_fast, tls_fast
from apnstrace.metadata import fast_streams as F


def _rng(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))


def _same(got, want):
    assert got.dtype == want.dtype and np.array_equal(got, want), (got, want)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 80), st.data())
def test_tls_parts_match_numpy(n, data):
    rng = _rng(data)
    kind = rng.integers(0, 3, n).astype(np.int8)
    fields = rng.integers(-1, 1 << 26, (6, n)).astype(np.int64)
    fields[4] = rng.choice([-1, 0x0303, 0x0304], n)            # versions, some unseen
    keys = rng.integers(0, 1 << 40, n).astype(np.int64)
    ts = rng.random(n) * 1e9
    h, f, read_keys = F._tls_parts(kind, *fields, keys, ts)
    hello, flight = np.flatnonzero(kind == tls_fast.HELLO), np.flatnonzero(kind == tls_fast.FLIGHT)
    sni_start, sni_end, alpn_start, alpn_end, version, alert = fields
    _same(h.uid, keys[hello] >> 1)
    _same(h.direction, (keys[hello] & 1).astype(np.int8))
    _same(h.ts, ts[hello])
    _same(h.alpn[0], alpn_start[hello])
    _same(h.alpn[1], alpn_end[hello])
    _same(h.text[0], np.concatenate([sni_start[hello], alpn_start[flight]]))
    _same(h.text[1], np.concatenate([sni_end[hello], alpn_end[flight]]))
    _same(f.uid, keys[flight] >> 1)
    _same(f.ts, ts[flight])
    _same(f.seen, version[flight] >= 0)
    assert f.unseen == int((version[flight] < 0).sum())
    _same(f.version, version[flight])
    _same(f.alert, alert[flight])
    _same(read_keys, keys[kind != tls_fast.FALLBACK])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 80), st.data())
def test_http_parts_match_numpy(n, data):
    rng = _rng(data)
    kind = rng.integers(0, 3, n).astype(np.int8)
    off = rng.integers(0, 1 << 26, n).astype(np.int64)
    fields = rng.integers(-1, 1 << 26, (8, n)).astype(np.int64)
    fields[7] = rng.integers(-1, 1000, n)
    keys = rng.integers(0, 1 << 40, n).astype(np.int64)
    method_end, target_start, target_end, host_start, host_end, agent_start, agent_end, status = fields
    r_uid, r_status, q_uid, q_dir, text, read_keys = F._http_parts(kind, off, *fields, keys)
    response, request = np.flatnonzero(kind == http_fast.RESPONSE), np.flatnonzero(kind == http_fast.REQUEST)
    _same(r_uid, keys[response] >> 1)
    _same(r_status, status[response].astype(np.int32))
    _same(q_uid, keys[request] >> 1)
    _same(q_dir, (keys[request] & 1).astype(np.int8))
    _same(text[0], np.concatenate([off[request], host_start[request], target_start[request], agent_start[request]]))
    _same(text[1], np.concatenate([method_end[request], host_end[request], target_end[request], agent_end[request]]))
    _same(read_keys, keys[kind != http_fast.FALLBACK])
