"""HTTP/1.x request and status lines plus the two headers the flows table shows (Host, User-Agent).

A request cut by the capture (snaplen, a lost segment) still gives what it held: the request
line and every complete header line before the cut. Work is linear in the payload.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .malformed import Malformed
from .tls import text

__all__ = ["HttpRequest", "METHODS", "parse_request", "parse_response"]

METHODS = frozenset({b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT"})
MAX_HEAD = 65_536        # header bytes read at most; the rest of a longer head is ignored

_SPACE = rb"[ \t\r\x0b\x0c]*"     # what bytes.strip() removes, within a line
_BLANK_LINE = re.compile(rb"\n" + _SPACE + rb"\n")
# A header line named Host or User-Agent: the name is what precedes its first colon, stripped.
_WANTED_HEADER = re.compile(rb"\n" + _SPACE + rb"(host|user-agent)" + _SPACE + rb":([^\n]*)", re.IGNORECASE)


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
    # The header lines: up to the empty one (only whitespace), else every complete line. Host
    # and User-Agent found by one search over them, not a walk line by line (~2x faster).
    blank = _BLANK_LINE.search(payload, line_end, head_end)
    stop = blank.start() if blank is not None else payload.rfind(b"\n", line_end, head_end)
    host = agent = None
    for found in _WANTED_HEADER.finditer(payload, line_end, stop):
        if found[1].lower() == b"host":
            if host is None:
                host = text(found[2].strip())
        elif agent is None:
            agent = text(found[2].strip())
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
