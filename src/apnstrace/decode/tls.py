"""TLS (SSL 3.0 - TLS 1.3) metadata from the clear-text start of each direction of a connection.

The caller hands over the first bytes of one direction's TCP stream, reassembled in order. These
parsers read the record layer, reassemble the handshake layer (a message may span records and a
record may hold several messages) and return what the flows table shows: SNI and ALPN from the
ClientHello; version, selected ALPN, first alert and the leaf certificate from the server flight.
Work is linear in the input; any bytes give a result or Malformed(reason), never another exception.
"""
from __future__ import annotations

import functools
import warnings

from dataclasses import dataclass, fields
from typing import Iterator

from .malformed import Malformed

__all__ = ["ALERT", "APPLICATION_DATA", "CHANGE_CIPHER_SPEC", "HANDSHAKE", "PRINTABLE", "ClientHello",
           "ServerFlight", "alert_name", "first_alert", "needed_length", "parse_client_hello",
           "parse_client_hello_message", "parse_server_flight", "records", "text", "version_name"]

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA, HEARTBEAT = 20, 21, 22, 23, 24
CLIENT_HELLO, SERVER_HELLO, CERTIFICATE, SERVER_HELLO_DONE = 1, 2, 11, 14
EXT_SERVER_NAME, EXT_ALPN, EXT_SUPPORTED_VERSIONS = 0, 16, 43

# RFC 5246 6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes. Anything longer is not TLS.
MAX_RECORD = (1 << 14) + 2048
# A ClientHello this long is hostile or not TLS (the largest real ones, with post-quantum key
# shares and many PSKs, stay far below). Bounds how much the caller may be asked to buffer.
MAX_CLIENT_HELLO = 1 << 17

_VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
_LEVELS = {1: "warning", 2: "fatal"}
_ALERTS = {   # RFC 8446 6 and RFC 5246 7.2 (and the SSL 3.0 / TLS 1.0 ones they retired)
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
    22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure", 41: "no_certificate",
    42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
    46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied",
    50: "decode_error", 51: "decrypt_error", 60: "export_restriction", 70: "protocol_version",
    71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
    100: "no_renegotiation", 109: "missing_extension", 110: "unsupported_extension",
    111: "certificate_unobtainable", 112: "unrecognized_name", 113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value", 115: "unknown_psk_identity", 116: "certificate_required",
    120: "no_application_protocol",
}

# Bytes shown as themselves in names; every other byte becomes a \xNN escape (backslash too,
# so the text stays unambiguous). HTML/CSV escaping is the report's job, not this one.
PRINTABLE = bytes(range(0x20, 0x7F)).replace(b"\\", b"")


def text(raw: bytes) -> str:
    """Bytes from the wire as text: printable ASCII as is, any other byte as a \\xNN escape."""
    if not raw.translate(None, PRINTABLE):
        return raw.decode("ascii")
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


def version_name(version: int) -> str:
    """0x0303 -> "TLS 1.2"; drafts -> "TLS 1.3 (draft 28)"; anything else as hex."""
    name = _VERSIONS.get(version)
    if name is not None:
        return name
    if version >> 8 == 0x7F:
        return f"TLS 1.3 (draft {version & 0xFF})"
    return f"0x{version:04x}"


def alert_name(level: int, description: int) -> str:
    """(2, 40) -> "fatal/handshake_failure"."""
    return (f"{_LEVELS.get(level, f'level_{level}')}/"
            f"{_ALERTS.get(description, f'unknown_{description}')}")


def _is_grease(value: int) -> bool:
    """RFC 8701 reserved values 0x0a0a, 0x1a1a, ... 0xfafa."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


@dataclass(frozen=True, slots=True)
class ClientHello:
    sni: str | None                   # server_name extension, first host_name entry
    alpn: tuple[str, ...]             # protocols offered, in the client's order
    legacy_version: str               # ClientHello.client_version ("TLS 1.2" for every TLS 1.3 client)
    supported_versions: tuple[str, ...]   # extension 43, GREASE removed; () when absent

    @property
    def max_version(self) -> str:
        """Highest version offered: the first supported_versions entry, else legacy_version."""
        return self.supported_versions[0] if self.supported_versions else self.legacy_version


@dataclass(frozen=True, slots=True)
class ServerFlight:
    version: str | None         # from ServerHello; supported_versions (ext 43) overrides legacy_version
    alpn: str | None            # selected protocol (TLS <= 1.2: in TLS 1.3 it is encrypted)
    alert: str | None           # first clear-text alert, "fatal/handshake_failure"
    cert_subject: str | None    # leaf certificate, RFC 4514 (TLS <= 1.2 only)
    cert_issuer: str | None
    hello_seen: bool            # a complete ServerHello was read
    hello_done: bool            # ServerHelloDone read: a TLS <= 1.2 server flight is complete
    problem: str | None = None  # reason for a part that could not be read while the rest could


# --- record layer ------------------------------------------------------------------------------

def _header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(content_type, version, length) of the record header at pos; the caller checked 5 bytes."""
    ctype = data[pos]
    major = data[pos + 1]
    length = data[pos + 3] << 8 | data[pos + 4]
    if ctype < CHANGE_CIPHER_SPEC or ctype > HEARTBEAT or major != 3 or length > MAX_RECORD:
        if ctype & 0x80 and pos == 0 and len(data) > 2 and data[2] == CLIENT_HELLO:
            raise Malformed("tls_sslv2_client_hello")
        raise Malformed("tls_record_bad_header")
    return ctype, major << 8 | data[pos + 2], length


def _walk(data: bytes, cut: bool = False) -> Iterator[tuple[int, int, int, int]]:
    """(content_type, version, body_start, body_end) of each complete record, lazily.

    cut: also yield the part of a last record that the data ends inside (its body_end is len(data)).
    """
    pos, end = 0, len(data)
    while pos + 5 <= end:
        ctype, version, length = _header(data, pos)
        stop = pos + 5 + length
        if stop > end:
            if cut and ctype == HANDSHAKE:
                yield ctype, version, pos + 5, end
            return
        yield ctype, version, pos + 5, stop
        pos = stop


def records(data: bytes) -> list[tuple[int, int, bytes]]:
    """Complete TLS records at the start of a byte stream: (content_type, version, body).

    Stops cleanly at an incomplete record; raises Malformed when a record header is not TLS.
    """
    return [(ctype, version, data[start:stop]) for ctype, version, start, stop in _walk(data)]


def needed_length(data: bytes) -> int | None:
    """Stream bytes needed before the first record can be used: None while fewer than 5 bytes.

    For a handshake record, the first handshake message must be complete too (a ClientHello may
    span records): then the answer is a lower bound while the next record's header is missing,
    so call again with more bytes until the answer is <= len(data). Raises Malformed when the
    data does not start with a TLS record.
    """
    if len(data) < 5:
        return None
    ctype, _, length = _header(data, 0)
    if ctype != HANDSHAKE:
        return 5 + length
    message = None      # handshake bytes the first message needs, once its header is known
    have = 0            # handshake bytes in the records walked so far
    first = b""         # the first 4 handshake bytes (the header may itself span records)
    pos = 0
    while True:
        if pos + 5 > len(data):
            return pos + 5
        ctype, _, length = _header(data, pos)
        if ctype != HANDSHAKE:
            raise Malformed("tls_handshake_interleaved")
        if length == 0:
            raise Malformed("tls_handshake_record_empty")
        stop = pos + 5 + length
        if message is None:
            first += data[pos + 5:min(stop, pos + 5 + 4 - len(first))]
            if len(first) == 4:
                message = 4 + (first[1] << 16 | first[2] << 8 | first[3])
                if message > MAX_CLIENT_HELLO:
                    raise Malformed("tls_handshake_too_long")
        have += length
        if message is not None and have >= message or stop > len(data):
            return stop
        pos = stop


def _first_message(data: bytes) -> bytes:
    """The first handshake message (header included), reassembled from the records carrying it."""
    parts: list[bytes] = []
    have = 0
    message = None
    for ctype, _, start, stop in _walk(data):
        if ctype != HANDSHAKE:
            raise Malformed("tls_handshake_interleaved" if parts else "tls_not_handshake")
        if start == stop:
            raise Malformed("tls_handshake_record_empty")
        parts.append(data[start:stop])
        have += stop - start
        if message is None and have >= 4:
            head = parts[0] if len(parts[0]) >= 4 else b"".join(parts)
            message = 4 + (head[1] << 16 | head[2] << 8 | head[3])
            if message > MAX_CLIENT_HELLO:
                raise Malformed("tls_handshake_too_long")
        if message is not None and have >= message:
            joined = parts[0] if len(parts) == 1 else b"".join(parts)
            return joined[:message]
    if not parts and len(data) >= 5 and data[0] != HANDSHAKE:
        raise Malformed("tls_not_handshake")         # an incomplete first record of another type
    raise Malformed("tls_handshake_truncated")


# --- ClientHello -------------------------------------------------------------------------------

def parse_client_hello(stream: bytes) -> ClientHello:
    """SNI, ALPN and versions from the start of the client's byte stream."""
    return _client_hello(_first_message(stream))


def parse_client_hello_message(msg: bytes) -> ClientHello:
    """The same from one bare handshake message (type, 3-byte length, body), no record layer,
    as QUIC carries it in CRYPTO frames. The length field must match len(msg)."""
    if len(msg) < 4 or 4 + (msg[1] << 16 | msg[2] << 8 | msg[3]) != len(msg):
        raise Malformed("tls_handshake_truncated" if len(msg) < 4 else "tls_client_hello_bad_length")
    return _client_hello(msg)


def _client_hello(msg: bytes) -> ClientHello:
    """A ClientHello from its whole handshake message (header included). ALPN and
    supported_versions lists come from _listed and the frozen dataclass is filled through its
    slots: the hello is read ~1,200 times a run on engine_2m (stream path and QUIC). (Walking the
    extensions inline instead of through _extensions would save ~0.25 us a hello: not worth a
    second copy of the walk.)"""
    if msg[0] != CLIENT_HELLO:
        raise Malformed("tls_not_client_hello")
    end = len(msg)
    bad = "tls_client_hello_bad_length"
    if end < 4 + 2 + 32 + 1:
        raise Malformed(bad)
    pos = 39 + msg[38]                                    # session_id
    if pos + 2 > end:
        raise Malformed(bad)
    pos += 2 + (msg[pos] << 8 | msg[pos + 1])             # cipher_suites
    if pos + 1 > end:
        raise Malformed(bad)
    pos += 1 + msg[pos]                                   # compression_methods
    if pos > end:
        raise Malformed(bad)
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    for etype, start, stop in _extensions(msg, pos, end, bad):
        if etype == EXT_SERVER_NAME:
            sni = _server_name(msg, start, stop)
        elif etype == EXT_ALPN:
            alpn = _listed(_ALPN_LISTS, _alpn_list, msg[start:stop])
        elif etype == EXT_SUPPORTED_VERSIONS:
            versions = _listed(_VERSION_LISTS, _offered_versions, msg[start:stop])
    hello = object.__new__(ClientHello)
    set_sni, set_alpn, set_legacy, set_versions = _HELLO_SETTERS
    set_sni(hello, sni)
    set_alpn(hello, alpn)
    set_legacy(hello, version_name(msg[4] << 8 | msg[5]))
    set_versions(hello, versions)
    return hello


# ALPN and supported_versions lists per extension body: a client stack sends the same few, so
# each is read once (bounded: a capture of odd clients must not grow them forever).
_ALPN_LISTS: dict[bytes, tuple[str, ...]] = {}
_VERSION_LISTS: dict[bytes, tuple[str, ...]] = {}
_LISTS_MAX = 256
# ClientHello is frozen: its __init__ sets each field through object.__setattr__ (slow)
_HELLO_SETTERS = tuple(getattr(ClientHello, f.name).__set__ for f in fields(ClientHello))
assert [f.name for f in fields(ClientHello)] == ["sni", "alpn", "legacy_version", "supported_versions"]


def _listed(cache: dict, read, body: bytes) -> tuple[str, ...]:
    got = cache.get(body)
    if got is None:
        got = read(body, 0, len(body))                    # Malformed propagates, nothing kept
        if len(cache) < _LISTS_MAX:
            cache[body] = got
    return got


def _extensions(msg, pos: int, end: int, bad: str) -> Iterator[tuple[int, int, int]]:
    """(type, start, stop) of each hello extension; none when the block is absent (pre-TLS 1.2)."""
    if pos == end:
        return
    if pos + 2 > end:
        raise Malformed(bad)
    ext_end = pos + 2 + (msg[pos] << 8 | msg[pos + 1])
    if ext_end > end:
        raise Malformed(bad)
    pos += 2
    while pos < ext_end:
        if pos + 4 > ext_end:
            raise Malformed(bad)
        stop = pos + 4 + (msg[pos + 2] << 8 | msg[pos + 3])
        if stop > ext_end:
            raise Malformed(bad)
        yield msg[pos] << 8 | msg[pos + 1], pos + 4, stop
        pos = stop


def _server_name(msg: bytes, pos: int, end: int) -> str | None:
    """RFC 6066 3: ServerNameList; the first host_name (type 0). An empty extension means none."""
    if pos == end:
        return None                       # a server echoes it empty; tolerated in hellos too
    if pos + 2 > end or pos + 2 + (msg[pos] << 8 | msg[pos + 1]) != end:
        raise Malformed("tls_sni_bad_length")
    pos += 2
    while pos < end:
        if pos + 3 > end:
            raise Malformed("tls_sni_bad_length")
        stop = pos + 3 + (msg[pos + 1] << 8 | msg[pos + 2])
        if stop > end:
            raise Malformed("tls_sni_bad_length")
        if msg[pos] == 0:
            return text(msg[pos + 3:stop])
        pos = stop
    return None


def _alpn_list(msg: bytes, pos: int, end: int) -> tuple[str, ...]:
    """RFC 7301 3.1: ProtocolNameList of 1-byte-length strings."""
    if pos + 2 > end or pos + 2 + (msg[pos] << 8 | msg[pos + 1]) != end:
        raise Malformed("tls_alpn_bad_length")
    pos += 2
    names = []
    while pos < end:
        stop = pos + 1 + msg[pos]
        if stop > end:
            raise Malformed("tls_alpn_bad_length")
        names.append(text(msg[pos + 1:stop]))
        pos = stop
    return tuple(names)


def _offered_versions(msg: bytes, pos: int, end: int) -> tuple[str, ...]:
    """RFC 8446 4.2.1 (ClientHello form): 1-byte length, then 2-byte versions."""
    if pos >= end or pos + 1 + msg[pos] != end or msg[pos] & 1:
        raise Malformed("tls_supported_versions_bad_length")
    return tuple(version_name(v) for v in (msg[i] << 8 | msg[i + 1] for i in range(pos + 1, end, 2))
                 if not _is_grease(v))


# --- server flight -----------------------------------------------------------------------------

def parse_server_flight(stream: bytes) -> ServerFlight:
    """Version, selected ALPN, first clear-text alert and leaf certificate from the server's stream.

    Reads clear-text records up to ChangeCipherSpec or application data. A flight cut short
    (capture ended, snaplen) gives what it held; a leaf certificate is read as soon as its own
    bytes are complete, even when the rest of the chain is missing.
    """
    hs = bytearray()          # clear-text handshake layer so far
    used = 0                  # handshake bytes already consumed as whole messages
    version = alpn = alert = subject = issuer = problem = None
    hello_seen = hello_done = cert_done = False
    try:
        for ctype, _, start, stop in _walk(stream, cut=True):   # a leaf may end before its record
            if ctype == HANDSHAKE:
                hs += stream[start:stop]
                while used + 4 <= len(hs):
                    mtype = hs[used]
                    mend = used + 4 + (hs[used + 1] << 16 | hs[used + 2] << 8 | hs[used + 3])
                    if mtype == CERTIFICATE and not cert_done and hello_seen and version != "TLS 1.3":
                        leaf = _leaf_certificate(hs, used + 4, min(mend, len(hs)))
                        if leaf is not None:
                            cert_done = True
                            subject, issuer, problem = leaf
                    if mend > len(hs):
                        break
                    if mtype == SERVER_HELLO and not hello_seen:
                        version, alpn = _server_hello(hs, used + 4, mend)
                        hello_seen = True
                    elif mtype == SERVER_HELLO_DONE and hello_seen:
                        hello_done = True
                    used = mend
                if used == len(hs):           # whole messages only: drop them, keep memory flat
                    hs.clear()
                    used = 0
            elif ctype == ALERT:
                if alert is None and stop - start == 2 and stream[start] in _LEVELS:
                    alert = alert_name(stream[start], stream[start + 1])
                    if stream[start] == 2:    # fatal: the connection ends here
                        break
            elif ctype in (CHANGE_CIPHER_SPEC, APPLICATION_DATA):
                break
    except Malformed as bad:
        if not hello_seen and alert is None:
            raise
        problem = problem or bad.reason
    return ServerFlight(version, alpn, alert, subject, issuer, hello_seen, hello_done, problem)


def _server_hello(msg: bytearray, pos: int, end: int) -> tuple[str, str | None]:
    """(negotiated version, selected ALPN) from a ServerHello body at msg[pos:end]."""
    bad = "tls_server_hello_bad_length"
    if pos + 2 + 32 + 1 > end:
        raise Malformed(bad)
    version = msg[pos] << 8 | msg[pos + 1]
    pos += 34
    pos += 1 + msg[pos] + 2 + 1                          # session_id, cipher_suite, compression
    if pos > end:
        raise Malformed(bad)
    alpn = None
    for etype, start, stop in _extensions(msg, pos, end, bad):
        if etype == EXT_SUPPORTED_VERSIONS:
            if stop - start != 2:
                raise Malformed("tls_supported_versions_bad_length")
            version = msg[start] << 8 | msg[start + 1]
        elif etype == EXT_ALPN:
            names = _alpn_list(bytes(msg[start:stop]), 0, stop - start)
            alpn = names[0] if names else None
    return version_name(version), alpn


def _leaf_certificate(hs: bytearray, pos: int, end: int) -> tuple[str | None, str | None, str | None] | None:
    """(subject, issuer, problem) of the first certificate once its bytes are in, else None."""
    if pos + 6 > end:
        return None
    size = hs[pos + 3] << 16 | hs[pos + 4] << 8 | hs[pos + 5]
    if size == 0:
        return None, None, "tls_certificate_empty"
    if pos + 6 + size > end:
        return None
    return _x509_names(bytes(hs[pos + 6:pos + 6 + size]))


@functools.lru_cache(maxsize=4096)
def _x509_names(der: bytes) -> tuple[str | None, str | None, str | None]:
    # Cached by the certificate's bytes: a server presents the same certificate to every
    # client, and X.509 parsing costs ~100 times the rest of a server flight.
    from cryptography import x509   # imported on first use: most runs never see a certificate

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # e.g. a negative serial number: still readable
            cert = x509.load_der_x509_certificate(der)
        return cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), None
    except Exception:   # noqa: BLE001 - hostile DER inside a foreign parser: any failure is a bad packet
        return None, None, "tls_certificate_unparseable"


# --- alerts ------------------------------------------------------------------------------------

def first_alert(stream: bytes) -> str | None:
    """First clear-text alert in either direction's stream ("fatal/handshake_failure").

    After a ChangeCipherSpec (or application data) alerts are encrypted: they are not decoded.
    """
    for ctype, _, start, stop in _walk(stream):
        if ctype == ALERT:
            if stop - start == 2 and stream[start] in _LEVELS:
                return alert_name(stream[start], stream[start + 1])
            return None                        # longer: encrypted or several alerts in a record
        if ctype in (CHANGE_CIPHER_SPEC, APPLICATION_DATA):
            return None
    return None
