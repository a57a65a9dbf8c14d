"""pipeline._result: the hidden columns block_reasons alone reads are let go before _tables,
and every table is the one _tables makes from the frame with all its columns."""
import pandas as pd
import pytest
from conftest import SAMPLES, plain_chain

import apnstrace
import apnstrace.pipeline as pl

SPENT = {"_syn_first", "_syn_last", "_c_data_ts", "_s_data_ts", "_s_payload", "_c_fin_ts", "_s_fin_ts",
         "_c_rst_ts", "client_alert", "server_alpn", "server_hello_ts", "server_name_source"}


@pytest.mark.parametrize("name", ["blocked_reasons.pcap", "blocked_syn.pcap", "courier_flapping.pcap",
                                  "courier_push.pcap", "mdm_checkin.pcap", "sequences_site.pcap",
                                  "hostile_strings.pcap", "site_mixed.pcapng"])
def test_spent_columns_go_and_tables_stay(monkeypatch, name):
    got_columns = {}
    tables = pl._tables

    def spy_tables(flows, *args, **kwargs):
        got_columns["names"] = set(flows.columns)
        return tables(flows, *args, **kwargs)

    monkeypatch.setattr(pl, "_tables", spy_tables)
    got = apnstrace.analyze(SAMPLES / name, workers=1)
    monkeypatch.undo()
    assert not got_columns["names"] & SPENT
    # The plain chain: _tables gets every column block_reasons' frame has.
    session, classified, icmp = plain_chain(SAMPLES / name)
    assert SPENT <= set(classified.columns)
    want = pl._tables(classified, session.collector.dns.failures, session.activity, None, icmp, session.stats)
    for frame in ("flows", "blocked", "timing", "courier", "sequences", "icmp_errors"):
        pd.testing.assert_frame_equal(getattr(got, frame), getattr(want, frame))
