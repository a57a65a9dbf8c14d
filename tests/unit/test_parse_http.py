"""HTTP/1.x request and status line parsers on real payloads from the nDPI corpus.

    tshark -r iphone.pcap -Y frame.number==87 -T fields -e tcp.payload -e http.request.method \
        -e http.host -e http.request.uri -e http.user_agent
    -> GET  captive.apple.com  /hotspot-detect.html  CaptiveNetworkSupport-390.60.1 wispr
    tshark -r iphone.pcap -Y frame.number==119 -T fields -e http.response.code     -> 200
"""
from __future__ import annotations

import pytest

from apnstrace.decode.http import HttpRequest, parse_request, parse_response
from apnstrace.decode.malformed import Malformed

HTTP_GET = bytes.fromhex(
    "474554202f686f7473706f742d6465746563742e68746d6c20485454502f312e300d0a486f73743a2063617074697665"
    "2e6170706c652e636f6d0d0a436f6e6e656374696f6e3a20636c6f73650d0a557365722d4167656e743a204361707469"
    "76654e6574776f726b537570706f72742d3339302e36302e312077697370720d0a0d0a"
)

# iphone.pcap frame 119, first 100 of 696 bytes.
HTTP_200 = bytes.fromhex(
    "485454502f312e3020323030204f4b0d0a782d616d7a2d69642d323a2056766839616c647861766f44307a4779583467"
    "32366a596a3452425159377854323954416a4f597769746662307a552b54546a6256376a526e676a4430676832657366"
    "6e673251"
)

CAPTIVE = HttpRequest(method="GET", host="captive.apple.com", path="/hotspot-detect.html",
                      user_agent="CaptiveNetworkSupport-390.60.1 wispr")


def test_get_with_host_and_user_agent() -> None:
    assert parse_request(HTTP_GET) == CAPTIVE


def test_response_status() -> None:
    assert parse_response(HTTP_200) == 200
    assert parse_response(b"HTTP/1.1 304 Not Modified\r\n") == 304
    assert parse_response(b"HTTP/1.1 204\r\n\r\n") == 204
    assert parse_response(b"HTTP/1.0 503") == 503


def test_request_cut_by_the_capture_keeps_what_it_saw() -> None:
    at_agent = HTTP_GET.index(b"User-Agent")
    assert parse_request(HTTP_GET[:at_agent]) == HttpRequest("GET", "captive.apple.com", "/hotspot-detect.html", None)
    # cut inside the User-Agent line: a partial header value is not reported
    assert parse_request(HTTP_GET[:at_agent + 20]).user_agent is None
    # cut inside the Host line
    assert parse_request(HTTP_GET[:HTTP_GET.index(b"apple")]) == HttpRequest("GET", None, "/hotspot-detect.html", None)
    # cut inside the request line: the target is whole only when the version had started
    assert parse_request(HTTP_GET[:28]) == HttpRequest("GET", None, "/hotspot-detect.html", None)
    assert parse_request(HTTP_GET[:15]) == HttpRequest("GET", None, None, None)


def test_header_names_are_case_insensitive_and_first_wins() -> None:
    payload = (b"POST /mdm/checkin HTTP/1.1\r\nhOsT:  mdm.example.com \r\nUSER-AGENT: MDM/1.0\r\n"
               b"Host: other\r\n\r\n<?xml")
    assert parse_request(payload) == HttpRequest("POST", "mdm.example.com", "/mdm/checkin", "MDM/1.0")


def test_bare_lf_and_lines_that_are_not_headers() -> None:
    payload = b"HEAD / HTTP/1.0\nnot a header\nHost: a.b\n\nUser-Agent: in the body\n"
    assert parse_request(payload) == HttpRequest("HEAD", "a.b", "/", None)


@pytest.mark.parametrize(("payload", "host"), [
    (b"CONNECT gdmf.apple.com:443 HTTP/1.1\r\n\r\n", "gdmf.apple.com:443"),
    (b"GET http://swscan.apple.com/content/catalogs?x HTTP/1.1\r\n\r\n", "swscan.apple.com"),
    (b"GET http://swscan.apple.com HTTP/1.1\r\nHost: proxy.lan\r\n\r\n", "proxy.lan"),
])
def test_host_from_the_target_when_there_is_no_host_header(payload: bytes, host: str) -> None:
    assert parse_request(payload).host == host


def test_other_methods() -> None:
    for method in ("PUT", "DELETE", "OPTIONS", "PATCH"):
        assert parse_request(method.encode() + b" /x HTTP/1.1\r\n\r\n").method == method


def test_odd_bytes_in_values_are_escaped_not_fatal() -> None:
    request = parse_request(b"GET /\xff\x00 HTTP/1.1\r\nHost: a\x01b\r\nUser-Agent: caf\xc3\xa9\r\n\r\n")
    assert (request.path, request.host, request.user_agent) == ("/\\xff\\x00", "a\\x01b", "caf\\xc3\\xa9")


@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "http_not_a_request"),
    (b"get / HTTP/1.1\r\n", "http_not_a_request"),                   # methods are case-sensitive
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http_not_a_request"),      # the HTTP/2 preface
    (b"M-SEARCH * HTTP/1.1\r\n", "http_not_a_request"),
    (b"GET /\r\n", "http_bad_request_line"),                         # HTTP/0.9
    (b"GET / SIP/2.0\r\n", "http_bad_request_line"),
    (HTTP_200, "http_not_a_request"),
])
def test_request_malformed(payload: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as bad:
        parse_request(payload)
    assert bad.value.reason == reason


@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "http_not_a_response"),
    (HTTP_GET, "http_not_a_response"),
    (b"HTTP/1.1 20", "http_bad_status_line"),
    (b"HTTP/1.1 2000 OK\r\n", "http_bad_status_line"),
    (b"HTTP/1.1 abc OK\r\n", "http_bad_status_line"),
    (b"HTTP/1.1\r\n", "http_bad_status_line"),
])
def test_response_malformed(payload: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as bad:
        parse_response(payload)
    assert bad.value.reason == reason
