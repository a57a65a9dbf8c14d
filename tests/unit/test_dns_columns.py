"""DNS answers held as columns: address text written by the compiled pass, and DnsRecords."""
from __future__ import annotations

import pickle
import socket

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from apnstrace.decode.address_text import address_text
from apnstrace.metadata.dns_records import DnsFailure, DnsRecords


def _texts(raws: list[bytes]) -> list[str]:
    buf = np.frombuffer(b"".join(raws) + b"\0", np.uint8)
    at = np.concatenate([[0], np.cumsum([len(r) for r in raws])[:-1]]).astype(np.int64) if raws else \
        np.empty(0, np.int64)
    return address_text(buf, at, np.array([len(r) == 16 for r in raws], bool)).to_pylist()


def _inet_ntop(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


def test_ipv6_zero_runs_and_ipv4_tails_as_inet_ntop() -> None:
    """Every pattern of zero groups (where "::" goes, ties, the compatible and mapped forms)."""
    raws = []
    for mask in range(256):
        for fill in (1, 0xFFFF, 0x0ABC, 0x1000):
            for w5 in (None, 0xFFFF):
                words = [fill if mask >> j & 1 else 0 for j in range(8)]
                if w5 is not None:
                    words[5] = w5
                raws.append(b"".join(w.to_bytes(2, "big") for w in words))
    assert _texts(raws) == [_inet_ntop(r) for r in raws]
    assert _texts([bytes(16), bytes(15) + b"\1", bytes(10) + b"\xff\xff\x0a\0\0\1"]) == ["::", "::1", "::ffff:10.0.0.1"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(min_size=4, max_size=4),
                          st.lists(st.sampled_from([0, 0, 0, 1, 0xFF, 0x10]), min_size=16, max_size=16).map(bytes),
                          st.binary(min_size=16, max_size=16)), max_size=20))
def test_address_text_is_inet_ntop(raws: list[bytes]) -> None:
    assert _texts(raws) == [_inet_ntop(r) for r in raws]


def test_records_join_slice_and_order_by_time() -> None:
    dns = DnsRecords([3.0, 1.0], ["10.0.0.1", "::1"], ["a.example", "b.example"])
    dns.append(np.array([1.0]), pa.array(["10.0.0.2"], pa.large_string()), ["c.example"])
    dns.failures.append(DnsFailure(2.0, 7, "x.example", "A", "NXDOMAIN"))
    assert len(dns) == 3 and dns.ts.tolist() == [3.0, 1.0, 1.0]
    assert dns.address.to_pylist() == ["10.0.0.1", "::1", "10.0.0.2"]
    part = dns.answers(1, 3)
    assert part.name.to_pylist() == ["b.example", "c.example"] and not part.failures
    ordered = DnsRecords.by_time([dns, DnsRecords([0.5, 1.0], ["10.0.0.9", "10.0.0.8"], ["d", "e"])])
    # stable at ties: the first records' 1.0s, then the second's
    assert ordered.name.to_pylist() == ["d", "b.example", "c.example", "e", "a.example"]
    assert pickle.loads(pickle.dumps(dns)) == dns
    assert dns != DnsRecords(dns.ts, dns.address, dns.name)          # the failure differs
    assert len(DnsRecords()) == 0 and DnsRecords().name.to_pylist() == []
