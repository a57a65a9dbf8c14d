"""metadata.attach makes its text columns grouped by the record rows they read (GATHERED) and
places them in the order TEXT, dns_query, TLS_EVIDENCE: every one of them, each once."""
import importlib


attach = importlib.import_module("apnstrace.metadata.attach")


def test_gathered_is_every_text_column_once() -> None:
    placed = attach.TEXT + (attach.DNS_QUERY,) + attach.TLS_EVIDENCE
    assert sorted(attach.GATHERED) == sorted(placed)
    assert len(set(attach.GATHERED)) == len(attach.GATHERED)


def test_gathered_keeps_each_rows_group_together() -> None:
    """Columns reading one record's rows (a ClientHello's, a server flight's, a request's) are
    made one after the other, so that rows array is let go after the last of them."""
    groups = {"hello": {"sni", "alpn"}, "flight": {"tls_version", "tls_alert", "cert_issuer", "server_alpn"},
              "request": {"http_method", "http_host", "http_path", "http_user_agent"}}
    for names in groups.values():
        at = sorted(attach.GATHERED.index(name) for name in names)
        assert at == list(range(at[0], at[0] + len(at)))


def test_numbers_in_flow_numbers_order() -> None:
    assert attach.NUMBERS == ("http_status", "hello_ts", "server_ts")
