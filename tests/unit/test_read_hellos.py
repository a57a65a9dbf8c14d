"""fast_streams.read_hellos (the stream path's reassembled ClientHellos, scanned at once) against
the reading it replaced, written out here as the reference: parse_client_hello per hello, a
"hello" row at the reserved sequence number or the Malformed reason counted."""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import mutated
from test_parse_quic import client_hello
from test_tls_client_hello_fast import _hello_message
from apnstrace.decode import tls
from apnstrace.decode.malformed import Malformed
from apnstrace.metadata.fast_streams import read_hellos
from apnstrace.metadata.meta_log import MetaLog

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _collector():
    return SimpleNamespace(log=MetaLog(), stats=SimpleNamespace(malformed=Counter()), hellos=[])


def _reference(hellos):
    got = _collector()
    for seq, uid, direction, ts, data in hellos:
        try:
            hello = tls.parse_client_hello(data)
        except Malformed as bad:
            got.stats.malformed[bad.reason] += 1
            continue
        got.log.row("hello", uid, hello.sni, ",".join(hello.alpn) or None, direction, ts, seq=seq)
        got.hellos.append(uid)
    return got


def _record(msg: bytes, split: int, tail: bytes, cut: int) -> bytes:
    """msg in one handshake record, or two (split), with bytes after it, or cut short."""
    if 0 < split < len(msg):
        parts = [msg[:split], msg[split:]]
    else:
        parts = [msg]
    data = b"".join(b"\x16\x03\x01" + len(p).to_bytes(2, "big") + p for p in parts) + tail
    return data[:len(data) - cut] if cut else data


_stream = st.tuples(st.one_of(_hello_message(), mutated([client_hello("example.org", ("h3", "h2")),
                                                           client_hello("a\x00b.example", (), pad=30)])),
                    st.sampled_from([0] * 6 + [1, 40, 100]), st.sampled_from([b""] * 4 + [b"\x17\x03\x03\x00\x01x"]),
                    st.sampled_from([0] * 6 + [1, 10]))


@SETTINGS
@given(st.lists(_stream, min_size=1, max_size=12))
def test_read_hellos_as_the_parser_does(streams) -> None:
    hellos = [(2 * i + 5, 100 + i, i & 1, 1.5 + i, _record(*s)) for i, s in enumerate(streams)]
    hellos = [h for h in hellos if h[4][:1] == b"\x16" and h[4][5:6] == b"\x01"]    # what _tls hands over
    if not hellos:
        return
    got, want = _collector(), _reference(hellos)
    read_hellos(got, hellos)
    assert got.log.rows["hello"] == want.log.rows["hello"]
    assert got.stats.malformed == want.stats.malformed
    assert got.hellos == want.hellos
