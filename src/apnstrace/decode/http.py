"""HTTP/1.x request and status lines plus the two headers the flows table shows (Host, User-Agent).

A request cut by the capture (snaplen, a lost segment) still gives what it held: the request
line and every complete header line before the cut. Work is linear in the payload.
"""
from __future__ import annotations

from dataclasses import dataclass

from .malformed import Malformed
from .tls import text

__all__ = ["HttpRequest", "METHODS", "parse_request", "parse_response"]

METHODS = frozenset({b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT"})
MAX_HEAD = 65_536        # header bytes read at most; the rest of a longer head is ignored


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    host: str | None         # Host header, else the authority of an absolute-form or CONNECT target
    path: str | None         # request target as sent; None when the capture cut it
    user_agent: str | None


def parse_request(payload: bytes) -> HttpRequest:
    """Method, Host, target and User-Agent of the HTTP/1.x request at the start of payload."""
    space = payload.find(b" ", 0, 8)
    if space < 0 or payload[:space] not in METHODS:
        raise Malformed("http_not_a_request")
    method = payload[:space].decode("ascii")
    head_end = min(len(payload), MAX_HEAD)
    line_end = payload.find(b"\n", space, head_end)
    if line_end < 0:                                  # cut inside the request line
        gap = payload.find(b" ", space + 1, head_end)
        target = payload[space + 1:gap] if gap > space + 1 else None
        return HttpRequest(method, _authority(method, target), _path(target), None)
    line = payload[space + 1:line_end].rstrip(b"\r")
    gap = line.rfind(b" ")
    if gap <= 0 or not line[gap + 1:].startswith(b"HTTP/1."):
        raise Malformed("http_bad_request_line")
    target = line[:gap]
    host = agent = None
    pos = line_end + 1
    while pos < head_end:
        stop = payload.find(b"\n", pos, head_end)
        if stop < 0:
            break                                     # a header line cut by the capture
        colon = payload.find(b":", pos, stop)
        if colon < 0:
            if not payload[pos:stop].strip():
                break                                 # the empty line: end of the head
            pos = stop + 1                            # not a header (a folded line, junk): skip
            continue
        name = payload[pos:colon].strip().lower()
        if name == b"host" and host is None:
            host = text(payload[colon + 1:stop].strip())
        elif name == b"user-agent" and agent is None:
            agent = text(payload[colon + 1:stop].strip())
        pos = stop + 1
    return HttpRequest(method, host or _authority(method, target), _path(target), agent)


def _path(target: bytes | None) -> str | None:
    return None if target is None else text(target)


def _authority(method: str, target: bytes | None) -> str | None:
    """The host a proxy-style request names in its target: CONNECT host:port, http://host/path."""
    if not target:
        return None
    if method == "CONNECT":
        return text(target)
    scheme = target.find(b"://")
    if scheme < 0 or scheme > 8:
        return None
    start = scheme + 3
    stop = len(target)
    for sep in (b"/", b"?", b"#"):
        at = target.find(sep, start)
        if 0 <= at < stop:
            stop = at
    return text(target[start:stop]) or None


def parse_response(payload: bytes) -> int:
    """Status code of the HTTP/1.x response at the start of payload ("HTTP/1.1 404 ..." -> 404)."""
    if not payload.startswith(b"HTTP/"):
        raise Malformed("http_not_a_response")
    space = payload.find(b" ", 5, 16)
    code = payload[space + 1:space + 4]
    after = payload[space + 4:space + 5]
    if space < 0 or len(code) != 3 or not code.isdigit() or after not in (b"", b" ", b"\r", b"\n"):
        raise Malformed("http_bad_status_line")
    return int(code)
