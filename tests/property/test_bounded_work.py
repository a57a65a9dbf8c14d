"""Bounded work per stream: however a TCP stream's segments come (out of order, overlapping,
repeated, thousands of them), reassembly reads a bounded number of payloads, holds at most
max_reassembly_bytes, and the work done does not grow with the square of the segments."""
from __future__ import annotations

import struct
from unittest import mock

from conftest import C4, S4, T0_NS, TCP, ether, ip4, pcap, python_lines, tcp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import apnstrace
from apnstrace.metadata import collect
from apnstrace.options import FlowOptions

LIMIT = 8192
STREAM = b"\x16\x03\x01" + struct.pack("!H", 16_384) + b"\x01" + (60_000).to_bytes(3, "big") + bytes(70_000)


def _capture(path, segments: list[tuple[int, int]]) -> None:
    frames = [ether(ip4(C4, S4, TCP, tcp(50000, 443, "S", seq=0))),
              ether(ip4(S4, C4, TCP, tcp(443, 50000, "SA", seq=0, ack=1))),
              ether(ip4(C4, S4, TCP, tcp(50000, 443, "A", seq=1, ack=1)))]
    for start, size in segments:
        frames.append(ether(ip4(C4, S4, TCP, tcp(50000, 443, "PA", seq=1 + start, ack=1,
                                                 payload=STREAM[start: start + size]))))
    path.write_bytes(pcap([(T0_NS + i * 1000, f) for i, f in enumerate(frames)]))


def _measured(path) -> tuple[apnstrace.Result, int, int]:
    """analyze() with the reassembly counted: calls to _contiguous and bytes it returned."""
    calls, produced, real = [0], [0], collect._contiguous

    def counting(segments, start):
        out = real(segments, start)
        calls[0] += 1
        produced[0] += len(out)
        return out

    with mock.patch.object(collect, "_contiguous", counting):
        result = apnstrace.analyze(path, options=FlowOptions(max_reassembly_bytes=LIMIT), sequences=False)
    return result, calls[0], produced[0]


@st.composite
def segment_orders(draw) -> list[tuple[int, int]]:
    """The stream cut into pieces, shuffled, some repeated, some shifted to overlap their neighbours."""
    sizes = draw(st.lists(st.integers(1, 4000), min_size=1, max_size=60))
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    pieces = [(start, size) for start, size in zip(starts, sizes) if start + size <= len(STREAM)]
    pieces = draw(st.permutations(pieces)) if draw(st.booleans()) else pieces
    extra = draw(st.lists(st.tuples(st.sampled_from(pieces), st.integers(-500, 500)), max_size=20))
    pieces += [(max(0, start + shift), size) for (start, size), shift in extra]
    return pieces or [(0, 100)]


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(segment_orders())
def test_any_segment_order_is_bounded(tmp_path, segments):
    path = tmp_path / "stream.pcap"
    _capture(path, segments)
    result, calls, produced = _measured(path)
    assert len(result.flows) == 1
    assert calls <= collect.MAX_SEGMENTS + 1               # payloads read per stream, plus the final parse
    assert produced <= calls * LIMIT                        # never more than the limit held


def test_many_segments_cost_the_same_as_a_few(tmp_path):
    """40,000 in-order segments do no more reassembly work than 40 (only the first are read)."""
    few, many = tmp_path / "few.pcap", tmp_path / "many.pcap"
    _capture(few, [(i * 1000 % 65_000, 1000) for i in range(40)])
    _capture(many, [(i * 1000 % 65_000, 1000) for i in range(40_000)])
    _, few_calls, few_bytes = _measured(few)
    result, many_calls, many_bytes = _measured(many)
    assert int(result.flows["pkts_c2s"].iloc[0]) == 40_002
    assert (many_calls, many_bytes) == (few_calls, few_bytes)
    # 40,000 packets go through the vectorized path: Python work per chunk, not per packet.
    few_lines, many_lines = python_lines(apnstrace.analyze, few), python_lines(apnstrace.analyze, many)
    assert many_lines < 1.5 * few_lines, (few_lines, many_lines)
