"""quic.initial_crypto (varints and version lookups inlined for the usual widths) against the
plain reading it replaced, kept here as the reference: same InitialCrypto, None or Malformed
reason for client Initials with every frame kind, varint width, token, packet-number length,
coalesced packets and damaged headers."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_parse_quic import HELLO, RFC_DCID, V1, V2, crypto, protect, varint
from apnstrace.decode import quic
from apnstrace.decode.malformed import Malformed

SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _reference(datagram: bytes, dcid_hint: bytes | None = None):
    """initial_crypto as it read before (quic.py at a8ca868), helpers inlined."""
    data = bytes(datagram)
    end = len(data)
    pos = 0
    version0 = used = keys = None
    pieces: list = []
    while pos < end:
        first = data[pos]
        if not first & 0x80:
            break
        if pos + 7 > end:
            raise Malformed("quic_header_truncated")
        version = int.from_bytes(data[pos + 1:pos + 5], "big")
        salts = quic._salts(version) if version else ()
        if not salts:
            if version0 is None:
                return None
            break
        if version0 is not None and version != version0:
            break
        cur = pos + 5
        dcid_len = data[cur]
        if dcid_len > 20:
            raise Malformed("quic_cid_too_long")
        cur += 1
        if cur + dcid_len + 1 > end:
            raise Malformed("quic_header_truncated")
        dcid = data[cur:cur + dcid_len]
        cur += dcid_len
        scid_len = data[cur]
        if scid_len > 20:
            raise Malformed("quic_cid_too_long")
        cur += 1 + scid_len
        kind = first >> 4 & 0x03
        if kind == (0b00 if version == V2 else 0b11):
            if version0 is None:
                return None
            break
        initial = kind == (0b01 if version == V2 else 0b00)
        if initial:
            token_len, cur = quic._varint(data, cur, end)
            if token_len > end - cur:
                raise Malformed("quic_header_truncated")
            cur += token_len
        length, cur = quic._varint(data, cur, end)
        if length > end - cur:
            raise Malformed("quic_packet_truncated")
        stop = cur + length
        if initial:
            if stop - cur < 20:
                raise Malformed("quic_packet_too_short")
            payload = None
            if keys is not None:
                payload = quic._open(keys, data, pos, cur, stop)
            else:
                cids = [dcid] if dcid_hint is None or dcid_hint == dcid else [bytes(dcid_hint), dcid]
                for key_cid in cids:
                    for salt in salts:
                        keys = quic._client_keys(salt, version == V2, key_cid)
                        payload = quic._open(keys, data, pos, cur, stop)
                        if payload is not None:
                            used = key_cid
                            break
                    if payload is not None:
                        break
            if payload is None:
                raise Malformed("quic_initial_decrypt_failed")
            if version in (0x54303530, 0x54303531):
                quic._gquic_crypto_frames(payload, pieces)
            else:
                _reference_frames(payload, pieces)
        if version0 is None:
            version0 = version
        pos = stop
    if used is None:
        return None
    return quic.InitialCrypto(version0, used, pieces)


def _reference_frames(payload: bytes, pieces: list) -> None:
    pos, end = 0, len(payload)
    while pos < end:
        kind = payload[pos]
        if kind == 0x00:
            pos = quic._after_padding(payload, pos)
            continue
        if kind >= 0x40:
            return
        pos += 1
        if kind == 0x01:
            continue
        if kind in (0x02, 0x03):
            _, pos = quic._varint(payload, pos, end)
            _, pos = quic._varint(payload, pos, end)
            ranges, pos = quic._varint(payload, pos, end)
            _, pos = quic._varint(payload, pos, end)
            if ranges > (end - pos) // 2:
                raise Malformed("quic_frame_truncated")
            for _ in range(2 * ranges + (3 if kind == 0x03 else 0)):
                _, pos = quic._varint(payload, pos, end)
        elif kind == 0x06:
            offset, pos = quic._varint(payload, pos, end)
            length, pos = quic._varint(payload, pos, end)
            if length > end - pos:
                raise Malformed("quic_frame_truncated")
            pieces.append((offset, payload[pos:pos + length]))
            pos += length
        elif kind in (0x1C, 0x1D):
            _, pos = quic._varint(payload, pos, end)
            if kind == 0x1C:
                _, pos = quic._varint(payload, pos, end)
            reason, pos = quic._varint(payload, pos, end)
            if reason > end - pos:
                raise Malformed("quic_frame_truncated")
            pos += reason
        else:
            return


def _wide(value: int, size: int) -> bytes:
    """value as a varint of exactly `size` bytes (the encoder may pick any width that fits)."""
    return (value | {1: 0, 2: 0x40, 4: 0x80, 8: 0xC0}[size] << (8 * size - 8)).to_bytes(size, "big")


@st.composite
def _frame(draw) -> bytes:
    kind = draw(st.sampled_from(["crypto", "crypto", "crypto", "padding", "ping", "ack", "close", "junk"]))
    if kind == "crypto":
        offset = draw(st.sampled_from([0, 5, 63, 64, 300]))
        data = HELLO[offset:offset + draw(st.integers(0, 80))] if offset < len(HELLO) else b"x"
        widths = [w for w in (1, 2, 4, 8) if offset < 1 << (8 * w - 2)]
        lwidths = [w for w in (1, 2, 4) if len(data) < 1 << (8 * w - 2)]
        length = len(data) + draw(st.sampled_from([0] * 8 + [1, 40]))
        return (b"\x06" + _wide(offset, draw(st.sampled_from(widths)))
                + _wide(min(length, 63) if draw(st.sampled_from(lwidths)) == 1 else length,
                        draw(st.sampled_from(lwidths))) + data)
    if kind == "padding":
        return bytes(draw(st.integers(1, 30)))
    if kind == "ping":
        return b"\x01"
    if kind == "ack":
        return b"\x02" + varint(5) + varint(0) + varint(draw(st.integers(0, 2))) + varint(0) + b"\x00\x00" * 2
    if kind == "close":
        return b"\x1c" + varint(1) + varint(0) + varint(3) + b"bye"
    return draw(st.binary(min_size=1, max_size=4))


@st.composite
def _datagram(draw) -> bytes:
    version = draw(st.sampled_from([V1, V2]))
    payload = b"".join(draw(st.lists(_frame(), min_size=1, max_size=5)))
    payload += draw(st.sampled_from([b""] * 4 + [b"\x06", b"\x06\x00", b"\x06\x00\x40", b"\x06\x40"]))  # cut short
    if draw(st.booleans()):
        payload += bytes(draw(st.integers(0, 300)))                      # padding to the end
    token = draw(st.sampled_from([b"", b"t" * 63, b"t" * 64]))
    packet = protect(payload, version=version, token=token, pn=draw(st.integers(0, 255)),
                     pn_len=draw(st.integers(1, 4)))
    if draw(st.booleans()):
        packet += draw(st.sampled_from([protect(b"\x01" * 30, version=version, kind="handshake"),
                                        protect(crypto(0, HELLO[:20]), version=version), bytes(20), b"\x40xyz"]))
    data = bytearray(packet)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):               # damage in the header
        at = draw(st.integers(0, min(len(data) - 1, 30)))
        data[at] = draw(st.sampled_from([0x00, 0x01, 0x15, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xFF, data[at] ^ 1]))
    if draw(st.integers(0, 4)) == 0:
        del data[draw(st.one_of(st.integers(0, 40), st.integers(0, len(data)))):]
    return bytes(data)


def _outcome(read, *args):
    try:
        return "ok", read(*args)
    except Malformed as bad:
        return "malformed", bad.reason


@SETTINGS
@given(_datagram(), st.sampled_from([None, RFC_DCID, b"\x01\x02\x03"]))
def test_initial_crypto_reads_as_before(data: bytes, hint: bytes | None) -> None:
    assert _outcome(quic.initial_crypto, data, hint) == _outcome(_reference, data, hint)


def test_every_cut_of_a_header_reads_as_before() -> None:
    for token in (b"", b"t" * 64):
        packet = protect(crypto(0, HELLO), token=token)
        for cut in range(len(packet) - len(HELLO)):
            for hint in (None, RFC_DCID):
                assert _outcome(quic.initial_crypto, packet[:cut], hint) == _outcome(_reference, packet[:cut], hint)
