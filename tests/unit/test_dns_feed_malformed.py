"""feed_dns counts Malformed responses from the scan's per-reason totals: the counter must end
as when the reference path (parse_dns, message by message) counts them, values and key order."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import mutated
from dns_scan_check import payload_column
from test_parse_dns import DNS_CAPTIVE, DNS_NX
from apnstrace.metadata import dns_feed
from apnstrace.metadata.collect import MetadataCollector
from apnstrace.stats import RunStats

SEEDS = [DNS_CAPTIVE, DNS_NX]


def _fed(payloads: list[bytes], compiled: bool, monkeypatch) -> list:
    monkeypatch.setattr(dns_feed, "COMPILED", compiled)
    collector = MetadataCollector(RunStats())
    collector.stats.malformed["dns_bad_label"] += 0          # a reason already known: keeps its place
    buf, off, cap = payload_column(payloads)
    dns_feed.feed_dns(collector, buf, off, cap, list(range(len(payloads))), [float(i) for i in range(len(payloads))])
    return list(collector.stats.malformed.items())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(st.one_of(mutated(SEEDS), st.sampled_from(SEEDS).flatmap(
    lambda s: st.integers(0, len(s)).map(lambda cut: s[:cut]))), min_size=1, max_size=12))
def test_malformed_counts_in_the_reference_order(payloads: list[bytes], monkeypatch) -> None:
    assert _fed(payloads, True, monkeypatch) == _fed(payloads, False, monkeypatch)
