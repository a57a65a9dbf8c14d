"""QUIC client Initials: decryption (RFC 9001 5, RFC 9369, drafts, mvfst, Google T05x) and the
ClientHello rebuilt from CRYPTO frames, checked against tshark on the nDPI corpus.

Real datagrams below were extracted with
    tshark -r <capture> -c 1 -T fields -e udp.payload
and the expected values are what tshark shows for the same frame:
    -e tls.handshake.extensions_server_name -e tls.handshake.extensions_alpn_str
Synthetic packets are protected here with the RFC test-vector keys (Appendix A.1 of RFC 9001
and RFC 9369), independently of the module's key derivation, which is checked against the
same vectors.
"""
from __future__ import annotations

import contextlib
import csv
from collections import defaultdict
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import mutated, python_lines
from apnstrace.decode.malformed import Malformed
from apnstrace.decode.quic import (InitialCrypto, _client_keys, client_hello_from_crypto, initial_crypto,
                                   is_supported_version)
from apnstrace.decode.tls import parse_client_hello_message

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "ndpi"

V1, V2 = 0x00000001, 0x6B3343CF

# quic-v2.pcapng frame 1: a v2 Initial (532 bytes) coalesced with a 0-RTT packet (700 bytes).
# tshark: quic.version 0x6b3343cf,0x6b3343cf; server_name test; alpn h3; supported_version 0x0304
QUIC_V2 = bytes.fromhex(
    "d66b3343cf080726272642fc2eb20811fffdea452422b832a196c2fa15ec4a99b399b9116eb2c5ef233065423a33ac16"
    "db1be7c47541e1dbc9337bc0326b173b40bfcb11d25b647d0e8141c89fd5d4fe0ae06a3a4962392c9e91c2e1b3920ae3"
    "f12a7128aed5573623691908c9962a936cabe187e5acf4e4047e6fe88834c87e48cab6336dcf659934dffc133e0b4672"
    "e74e81a0d801d41fd6abdb6e04c27d9c831771e2c8fe0e025fe22818a653f609bbf7f500392b83579bdb2ef50507795f"
    "7bf7a63c939e9c6b8292d9fafbfd0daff19350ccb31c473981ddcff35e2d44465427a3ce8f5f91da78c35e9479bf6d37"
    "2b5ac20129844c77052541040d4f2f1567dddd86ebe0b18efcde66d1098ee7a330ec771df5edc99baaa853ef72b0a49b"
    "685d976f83600e5bbed12fb1c123e189b90a7585bf3e3bc42ef017d060cb4638a4e693cc9e04916be5ea6bf5f0b46aaa"
    "166619dc465a0ddb25b89226216b70dc49014284ee512ca3ba354cdd26fdc3a36e5e41693069e7fa89fb45d8c687802c"
    "8362440d78ab2c727e7827af5663be939dd4888ace2214195d0e8861f7dfbcc0c3c886c03ee2424d960192010158c016"
    "737b5a6edaf09f13f65d830e476c41a07c7e6badfc1ff2e2a70b0f1ad551ef429e0ef6b0d85b0834c08ffdef70af1745"
    "ad61b83381339680ae39b9c92e5cdb8475f5efd7b76b3f7877126431960b60a5a61b3a12ee1e5f1eea7958b16d0c4859"
    "9bf4f6bee36b3343cf080726272642fc2eb20811fffdea452422b842a36e46d441f8c3f756c608d417943fb77a8fdc13"
    "b99403e5bb94d6a809d67cdfbffe00d687862536d8dcbb9a0d94a3aa080c8fe40379d52d3f982a521af9900d8034fb0a"
    "e504b28073dc59a189c126ab9fe636588d1034f9dc00ebb01e8729d663404e00f0e38e902af72e2b92387dcab96bea2b"
    "445b8f3f6c2bafb3fc01aa152bf874c8d4b3b46bfbf5b6167a139ca4cda71a917762b3013a7b6e7bcb9fe6fc13b32136"
    "36dd97389174e56d63302a1fde2f20938e20c7bc6bdfe8890528b53c72f1f346d5a8d964a46f2f49ea554eb3754a8788"
    "caeed7fc6e49acd25302f3f8e53b1173264a443e665bc09d3a73f183ed3deb90974a6c993cd0aa6fae24e23fef2e4934"
    "16d858f981dda4632e306b7544ec9fb65c144baeb456c895baf6e310f611537be8e07e4ebddec383c455fe882539b08f"
    "a0073a7e66cc5ee81f836dfec3ef43d77dc30b260ebe17f1c13eb609897cba3648ebe0a7dae509fddfddf290e69d7a25"
    "ac5db1920dd5806c6165fe4905fccdd96355636883c977d68d987672c1d96c6efae19bfa7494f89b66d61e0980847448"
    "463834485b07515833ed34ae181adfb4ec769836a626d4efa240c6f1f010a1f142c9f948edde0a0840b66c9e248698f4"
    "56397ed4dc6c3e3ec5bac71812ad41e36531e8ba62faf269cbbce55ae5e3201d443f3504ea9727787ad20ff0b8e73eda"
    "0d7c522fd467beec602f7a536da1c248262305d26efe21f17ddb9b5409fe19145aa3df1629d5a381c83035284fc94941"
    "0a7c1d66e727cd2e96b0c2664754dfa7c7c465be6555e462bf83b9404a4f266b0df00373f8de23b90c28c92a9c33e7a6"
    "5aa6258cb1d5b26ec1f74c05430d67c0122e19c0f5b066e16727145c0047e77b8113d41e73456795f5c6db66d4caaab7"
    "d25c18a72a163d75b9ec4569146cb20de5ac44b365b03452be4c05734b28603c"
)
QUIC_V2_DCID = bytes.fromhex("0726272642fc2eb2")

# quic_t51.pcap frame 1: Google T051 (0x54303531): IETF packet protection, gQUIC frames inside
# (CRYPTO is frame type 0x08). tshark: server_name www.google.com; alpn h3-T051
QUIC_T51 = bytes.fromhex(
    "c15430353108ff9415b5b005860d0000453495cd6c78ab2880cd312769b2e008aaa61f91ff63764e5a29bfa2f509327b"
    "e26808a2975e4ccb1b7589a66473fcd0e5e2cf3a2d6ba6051d567d55e01c119a3ca6012089865483bd1b35e774db6b81"
    "6369f80080496a84da65ce1d94afc1e13894142f9689831dc5cbc7dd2d9596684af91736814407a8060b933aafcf933a"
    "3582e576294ac5c0b0fd3a09fb3bb97c74c06d08a9145a9b0fde462daee804253b8cf13fc23d9013533d5a4e76f92ae0"
    "6cd88a0879b43a2f3ffda0bef1047ca0f4155ac4338e47326a03160dac9c1e8f99da087662a1822687a914db2a82d3bc"
    "b9658d0e26a2b0734740308fac2b7910356f2cc2e4659413704f5bc48849b9c07808dafddba911023681e18e42a83004"
    "79aaf94ed089dc8bb40b66f3063a22e49f4b3e2c150506217f1b6a19d5fd3b79c034a8dd6cc56abd897be36306a36605"
    "9b6279d3ba0f3015cba8f256d9ada3fd796b74872a2c92d7cb5aee89eb7661fa1fe5c4da317429eb0c8eabcb3690b11e"
    "6f446a1b7f34cc702152fc137c288462fc1237cf8b3dbeddd472aedc946f6df338036bba0f7fdc71ce3407c8e9b7ab7c"
    "9954c26bdd8ceecf218157c31c2be889a4f1445d3b50b6564dbb911632d70371bf40bce5d1bd90400dcf46a30ed6be18"
    "2ccf4884bfbd4e3226f64b2493cd6716c6dca9e50f3c2225e52bda928a19d4d7b8be51c933bbdc3f01e44491daf8f323"
    "b649dfd43f4599c691a0ada0cb0153464da3d9129778d3463f77ce181311995b2d9ed30ef47942411d29a9690827e8f0"
    "faf0ea147315641c1ca37a71e6d24ab188a4d56e08eef0d5a249fcb589025ee5a40ea9b0f4abe792d39e354f9ea0b6e7"
    "6d08bf0099da097db6fe93a7bcc04352a700132c6184f503c5a7134eec82cb4d60f43eea349980873de4e4c0b6cd39ba"
    "ec820b63585e67602e62f4306103acb376c9b633cd6beb95d6955b422570e92da7bf12a0b6ae59f434ae5e1bec6d33a9"
    "e464aad5857479ec0c513ea707a7a349c1561aff97339d117f5d22b9280eea95f39f2636f6a30c39c75fc4531693c661"
    "1002e428b5deaa333e1631e03ea55886d8ddd0cc5adf10a2e291277dfd581789e3efc2981d9ad5db3c65ea285c955561"
    "e221d7345188faceb7bec15710e4c17a37cfb2bebe5664c3275fa8d64364f775d413f6d0f366b5f0d24f75743a91fdba"
    "42371ce11aa74ef026ad687fe9f986e3322b898ec0f73f2de1e3bd41fafd4cb3b793407924e5675954ea95b3afac9804"
    "cd5f791efd22a0ed31223e419f1adb2e79706cd7cf8d519371134087bd60537d89f2bafaac2c7109a4efe1153b29d890"
    "fb38a00b42ca2bbc7838fb3d9f629ad8a50fcb6e66acb43f864e488edcecaeaa90d8cccd7198716f4924342c442f3390"
    "50c6e99059f0dd71af10308956997247552a8e20c538bf3f25fb9ea61135a321d678e615c157760b0bf63c61b1d394f9"
    "2495a2c05c5650d3d1741a53bc34b4c3fa7835dfdcd863daa2b602bf5ac41406d826917817a237d07f167925cacf3842"
    "0c928ad3e703c2c523aac4912715387ed4beb980745de2662a1285b927cc115234ab5629310644fc6d8c0b8cc08a084d"
    "b04a14c0dc16612db9e3922edfe11e8287b8ec1fe4f2d09285e6af6681c243a18b9f360a11d72d306bd9a8c54e5ec3d0"
    "9d89686e655f842a07600a932fefab23e5765e02a6ce97440f2730c2c48b9155a8614e25180a0f30fde4c5ab1f0a7507"
    "53f57a82473b0b76ec9246bd729959777a42d03b48f009acf16d552249d8a4724385b8ab19245373aa096c940af0d6c5"
    "d26060fbb400cc5ec2836d1548f1f5a02ab5104a1dc211e54014c71240c850e3969bc03691e3efd9bc76053c55b820f3"
    "d83efcce1e75"
)

# --- RFC test vectors and a packet protector independent of the module ----------------------

RFC_DCID = bytes.fromhex("8394c8f03e515708")
# RFC 9001 A.1 and RFC 9369 A.1: client Initial key, iv and hp key for RFC_DCID.
RFC_KEYS = {
    V1: (bytes.fromhex("1f369613dd76d5467730efcbe3b1a22d"), bytes.fromhex("fa044b2f42a3fd3b46fb255c"),
         bytes.fromhex("9f50449e04a0e810283a1e9933adedd2")),
    V2: (bytes.fromhex("8b1a0bc121284290a29e0971b5cd045d"), bytes.fromhex("91f73e2351d8fa91660e909f"),
         bytes.fromhex("45b95e15235d6f45a6b19cbcb0294ba9")),
}
INITIAL_TYPE = {V1: 0b00, V2: 0b01}
HANDSHAKE_TYPE = {V1: 0b10, V2: 0b11}


def varint(value: int) -> bytes:
    for size, prefix in ((1, 0x00), (2, 0x40), (4, 0x80), (8, 0xC0)):
        if value < 1 << (8 * size - 2):
            return (value | prefix << (8 * size - 8)).to_bytes(size, "big")
    raise ValueError(value)


def protect(payload: bytes, *, version: int = V1, dcid: bytes = RFC_DCID, scid: bytes = b"\x01\x02",
            pn: int = 0, pn_len: int = 2, token: bytes = b"", key_version: int | None = None,
            kind: str = "initial") -> bytes:
    """A protected long-header packet; keys are the RFC vectors (the RFC_DCID keys) whatever dcid is."""
    key, iv, hp = RFC_KEYS[key_version or version]
    payload += b"\x00" * max(0, 4 - pn_len - len(payload))          # room for the 16-byte sample
    types = INITIAL_TYPE if kind == "initial" else HANDSHAKE_TYPE
    first = 0xC0 | types[version] << 4 | (pn_len - 1)
    head = (bytes([first]) + version.to_bytes(4, "big") + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
            + (varint(len(token)) + token if kind == "initial" else b""))
    pn_bytes = pn.to_bytes(pn_len, "big")
    head += (0x4000 | (pn_len + len(payload) + 16)).to_bytes(2, "big") + pn_bytes
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, payload, head)
    sample = sealed[4 - pn_len:20 - pn_len]
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sample)
    pn_at = len(head) - pn_len
    out = bytearray(head + sealed)
    out[0] ^= mask[0] & 0x0F
    for i in range(pn_len):
        out[pn_at + i] ^= mask[1 + i]
    return bytes(out)


def crypto(offset: int, data: bytes) -> bytes:
    return b"\x06" + varint(offset) + varint(len(data)) + data


def client_hello(sni: str = "example.org", alpn: tuple[str, ...] = ("h3",), pad: int = 0) -> bytes:
    """A TLS 1.3 ClientHello handshake message (header included); pad: extra extension bytes."""
    def ext(kind: int, body: bytes) -> bytes:
        return kind.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body
    name = sni.encode()
    sni_ext = ext(0, (len(name) + 3).to_bytes(2, "big") + b"\x00" + len(name).to_bytes(2, "big") + name)
    protos = b"".join(bytes([len(p)]) + p.encode() for p in alpn)
    exts = sni_ext + ext(16, len(protos).to_bytes(2, "big") + protos) + ext(43, b"\x02\x03\x04")
    exts += ext(21, bytes(pad)) if pad else b""
    body = b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += len(exts).to_bytes(2, "big") + exts
    return b"\x01" + len(body).to_bytes(3, "big") + body


HELLO = client_hello("example.org", ("h3", "h3-29"))


# --- keys --------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [V1, V2], ids=["rfc9001", "rfc9369"])
def test_initial_keys_match_the_rfc_vectors(version: int) -> None:
    key, iv, hp = RFC_KEYS[version]
    from apnstrace.decode.quic import _SALT_V1, _SALT_V2
    keys = _client_keys(_SALT_V1 if version == V1 else _SALT_V2, version == V2, RFC_DCID)
    assert keys.iv == int.from_bytes(iv, "big")
    nonce = bytes(12)
    assert keys.aead.encrypt(nonce, b"x", b"") == AESGCM(key).encrypt(nonce, b"x", b"")
    # the header-protection encryptor is kept and reused: each block's mask is AES-ECB of it alone
    for block in (bytes(range(16)), bytes(16), bytes(range(16)), bytes(range(16, 32))):
        assert keys.hp.update(block) == Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(block)


@pytest.mark.parametrize("version", [0x00000001, 0x6B3343CF, 0xFF000016, 0xFF000017, 0xFF00001C, 0xFF00001D,
                                     0xFF000020, 0xFF000021, 0xFF000022, 0xFACEB001, 0xFACEB002, 0xFACEB00E,
                                     0x54303530, 0x54303531, 0x0A0A0A0A, 0x1A2A3A4A])
def test_supported_versions(version: int) -> None:
    assert is_supported_version(version)


@pytest.mark.parametrize("version", [0, 0x51303530, 0x51303436, 0xFF000015, 0xFF000023, 0x709A50C4, 0xFACEB003,
                                     0x12345678])
def test_unsupported_versions(version: int) -> None:
    assert not is_supported_version(version)


# --- real datagrams ----------------------------------------------------------------------------

def test_real_v2_initial_coalesced_with_0rtt() -> None:
    got = initial_crypto(QUIC_V2)
    assert got.version == V2 and got.dcid == QUIC_V2_DCID
    hello = client_hello_from_crypto(got.pieces)
    assert hello.sni == "test"
    assert hello.alpn == ("h3",)
    assert hello.supported_versions == ("TLS 1.3",)


def test_real_google_t051_initial() -> None:
    got = initial_crypto(QUIC_T51)
    assert got.version == 0x54303531
    hello = client_hello_from_crypto(got.pieces)
    assert hello.sni == "www.google.com"
    assert hello.alpn == ("h3-T051",)


def test_dcid_hint_equal_to_the_packet_dcid_changes_nothing() -> None:
    assert initial_crypto(QUIC_V2, dcid_hint=QUIC_V2_DCID) == initial_crypto(QUIC_V2)


# --- synthetic packets -------------------------------------------------------------------------

@pytest.mark.parametrize("version", [V1, V2])
def test_one_initial_one_crypto_frame(version: int) -> None:
    got = initial_crypto(protect(crypto(0, HELLO) + bytes(900), version=version))
    assert got == InitialCrypto(version, RFC_DCID, [(0, HELLO)])
    hello = client_hello_from_crypto(got.pieces)
    assert (hello.sni, hello.alpn) == ("example.org", ("h3", "h3-29"))


def test_out_of_order_frames_between_ping_ack_padding_and_connection_close() -> None:
    a, b, c = HELLO[:40], HELLO[40:90], HELLO[90:]
    ack = b"\x02" + varint(5) + varint(100) + varint(2) + varint(0) + varint(1) + varint(1) + varint(0) + varint(0)
    ack_ecn = b"\x03" + varint(1) + varint(0) + varint(0) + varint(0) + varint(7) + varint(8) + varint(9)
    close = b"\x1c" + varint(0x0A) + varint(6) + varint(3) + b"bye" + b"\x1d" + varint(1) + varint(0)
    payload = (b"\x01" + crypto(90, c) + bytes(17) + ack + crypto(40, b) + b"\x01" + ack_ecn + close
               + crypto(0, a) + bytes(300))
    got = initial_crypto(protect(payload))
    assert [off for off, _ in got.pieces] == [90, 40, 0]
    assert client_hello_from_crypto(got.pieces).sni == "example.org"


def test_frame_not_allowed_in_initial_stops_the_frame_walk() -> None:
    stream = b"\x08" + varint(0) + b"data"                 # STREAM: never in an Initial
    got = initial_crypto(protect(crypto(0, HELLO[:50]) + stream + crypto(50, HELLO[50:])))
    assert got.pieces == [(0, HELLO[:50])]


def test_client_hello_across_datagrams_and_duplicates() -> None:
    first = initial_crypto(protect(crypto(0, HELLO[:70]), pn=0))
    assert client_hello_from_crypto(first.pieces) is None
    again = initial_crypto(protect(crypto(0, HELLO[:70]), pn=1))       # a retransmission
    rest = initial_crypto(protect(crypto(60, HELLO[60:]), pn=2))       # overlapping the first
    assert client_hello_from_crypto(rest.pieces + again.pieces + first.pieces).sni == "example.org"


def test_coalesced_initials_skip_handshake_packets_and_trailing_padding() -> None:
    datagram = (protect(crypto(0, HELLO[:100]), pn=0) + protect(b"\x01" * 30, kind="handshake", pn=1)
                + protect(crypto(100, HELLO[100:]), pn=1) + bytes(200))
    got = initial_crypto(datagram)
    assert [off for off, _ in got.pieces] == [0, 100]
    assert client_hello_from_crypto(got.pieces).sni == "example.org"


def test_later_initials_with_another_dcid_use_the_first_dcid_keys() -> None:
    """quic_frags_different_dcid.pcapng: after the server's Initial the client switches to the
    server's CID as DCID, but Initial keys still come from the first DCID."""
    later = protect(crypto(80, HELLO[80:]), dcid=bytes(range(20)), pn=1)
    with pytest.raises(Malformed, match="quic_initial_decrypt_failed"):
        initial_crypto(later)
    got = initial_crypto(later, dcid_hint=RFC_DCID)
    assert got.dcid == RFC_DCID and got.pieces == [(80, HELLO[80:])]


def test_hint_that_does_not_open_falls_back_to_the_packet_dcid() -> None:
    """After a Retry the client derives new keys from the new DCID: a stale hint must not block."""
    got = initial_crypto(protect(crypto(0, HELLO)), dcid_hint=b"\x99" * 8)
    assert got.dcid == RFC_DCID


def test_long_packet_number_and_token() -> None:
    got = initial_crypto(protect(crypto(0, HELLO), pn=0x01020304, pn_len=4, token=b"t" * 40))
    assert got.pieces == [(0, HELLO)]


@pytest.mark.parametrize("data", [
    b"",
    b"\x40" + bytes(1199),                                  # short header (1-RTT)
    bytes(1200),                                            # zeros: not QUIC
    b"\x80\x00\x00\x00\x00\x08" + bytes(8) + b"\x08" + bytes(8) + b"\x00\x00\x00\x01",  # Version Negotiation
    b"\xc3\x51\x30\x35\x30\x08" + bytes(30),               # Google Q050: gQUIC crypto, not read
    b"\xc3\x12\x34\x56\x78\x08" + bytes(30),               # unknown version
    b"\xf0\x00\x00\x00\x01\x08" + bytes(8) + b"\x00" + bytes(40),   # v1 Retry
], ids=["empty", "short_header", "zeros", "version_negotiation", "q050", "unknown_version", "retry"])
def test_not_an_initial_is_none(data: bytes) -> None:
    assert initial_crypto(data) is None


def test_handshake_only_datagram_is_none() -> None:
    assert initial_crypto(protect(b"\x01" * 40, kind="handshake")) is None


PACKET = protect(crypto(0, HELLO) + bytes(100))


@pytest.mark.parametrize("data, reason", [
    (PACKET[:5], "quic_header_truncated"),
    (PACKET[:12], "quic_header_truncated"),
    (PACKET[:-1], "quic_packet_truncated"),
    (PACKET[:5] + b"\x15" + bytes(40), "quic_cid_too_long"),
    (PACKET[:-3] + bytes([PACKET[-3] ^ 1]) + PACKET[-2:], "quic_initial_decrypt_failed"),
    (b"\xc0\x00\x00\x00\x01\x00\x00\x00\x05" + bytes(5), "quic_packet_too_short"),
    (b"\xc0\x00\x00\x00\x01\x00\x00\xff", "quic_varint_truncated"),
], ids=["version_cut", "cids_cut", "payload_cut", "cid_too_long", "bad_tag", "too_short", "token_length_cut"])
def test_broken_initial_is_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as info:
        initial_crypto(data)
    assert info.value.reason == reason


def test_crypto_frame_longer_than_the_packet_is_malformed() -> None:
    with pytest.raises(Malformed, match="quic_frame_truncated"):
        initial_crypto(protect(b"\x06" + varint(0) + varint(500) + HELLO[:50]))


def test_ack_with_absurd_range_count_is_malformed_at_once() -> None:
    ack = b"\x02" + varint(5) + varint(0) + varint(1 << 60) + varint(0)
    with pytest.raises(Malformed, match="quic_frame_truncated"):
        initial_crypto(protect(ack + bytes(20)))


# --- CRYPTO reassembly -------------------------------------------------------------------------

def test_reassembly_needs_offset_zero_and_no_gap() -> None:
    assert client_hello_from_crypto([]) is None
    assert client_hello_from_crypto([(10, HELLO[10:])]) is None
    assert client_hello_from_crypto([(0, HELLO[:3])]) is None                 # header incomplete
    assert client_hello_from_crypto([(0, HELLO[:30]), (31, HELLO[31:])]) is None
    assert client_hello_from_crypto([(31, HELLO[31:]), (0, HELLO[:30]), (30, HELLO[30:31])]).sni == "example.org"


def test_bytes_after_the_client_hello_are_ignored() -> None:
    assert client_hello_from_crypto([(0, HELLO + b"\x14\x00\x00\x00")]).sni == "example.org"


def test_first_message_not_a_client_hello_is_malformed() -> None:
    with pytest.raises(Malformed, match="quic_crypto_not_client_hello"):
        client_hello_from_crypto([(0, b"\x02" + HELLO[1:])])


def test_client_hello_announced_too_long_is_malformed() -> None:
    with pytest.raises(Malformed, match="tls_handshake_too_long"):
        client_hello_from_crypto([(0, b"\x01\xff\xff\xff")])


def test_broken_client_hello_body_is_malformed() -> None:
    broken = HELLO[:4] + HELLO[4:-6] + b"\xff\xff" + HELLO[-4:]
    with pytest.raises(Malformed):
        client_hello_from_crypto([(0, broken)])


def test_parse_client_hello_message_checks_the_length_field() -> None:
    assert parse_client_hello_message(HELLO).sni == "example.org"
    with pytest.raises(Malformed):
        parse_client_hello_message(HELLO[:-1])
    with pytest.raises(Malformed):
        parse_client_hello_message(HELLO[:3])


def test_large_client_hello_over_several_packets() -> None:
    big = client_hello("big.example", ("h3",), pad=3000)        # like a post-quantum key share
    pieces = []
    for i, at in enumerate(range(0, len(big), 1000)):
        pieces += initial_crypto(protect(crypto(at, big[at:at + 1000]), pn=i)).pieces
    assert client_hello_from_crypto(pieces[::-1]).sni == "big.example"


# --- the nDPI corpus against tshark ------------------------------------------------------------

CAPTURES = ["quic-23.pcap", "quic-24.pcap", "quic-27.pcap", "quic-28.pcap", "quic-29.pcap", "quic-v2.pcapng",
            "quic-mvfst-22.pcap", "quic-mvfst-27.pcapng", "quic-mvfst-exp.pcap", "quic_t50.pcap", "quic_t51.pcap",
            "quic_0RTT.pcap", "quic_frags_ch_out_of_order_same_packet_craziness.pcapng", "quic_interop_V.pcapng",
            "quic_crypto_aes_auth_size.pcap", "doq_adguard.pcapng", "google_meet.pcapng",
            "quic_frags_different_dcid.pcapng", "quic_frags_ch_in_multiple_packets.pcapng", "quic-33.pcapng",
            "quic-34.pcap", "quic-forcing-vn-with-data.pcapng", "quic_q50.pcap", "quic046.pcap"]


def _udp_datagrams(path: Path):
    """(endpoint, endpoint, UDP payload) of every UDP datagram, in capture order (ICMP quotes left out)."""
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import rdpcap
    for pkt in rdpcap(str(path)):
        if UDP not in pkt or ICMP in pkt or pkt.haslayer("ICMPv6DestUnreach"):
            continue
        net = pkt[IP] if IP in pkt else pkt[IPv6] if IPv6 in pkt else None
        if net is None:
            continue
        udp = pkt[UDP]
        yield (net.src, udp.sport), (net.dst, udp.dport), bytes(udp.payload)


def quic_snis(path: Path) -> dict[tuple, str]:
    """SNI per unordered UDP 5-tuple, the way a flow table would use this module: feed each
    datagram, keep the first client Initial's DCID as the hint, stop once the hello is read."""
    state: dict[tuple, dict] = defaultdict(lambda: {"dcid": None, "pieces": [], "sni": None, "done": False})
    for src, dst, payload in _udp_datagrams(path):
        flow = state[tuple(sorted([src, dst]))]
        if flow["done"]:
            continue
        try:
            got = initial_crypto(payload, flow["dcid"])
            if got is None:
                continue
            flow["dcid"] = flow["dcid"] or got.dcid
            flow["pieces"] += got.pieces
            hello = client_hello_from_crypto(flow["pieces"])
        except Malformed:
            continue                      # the server's Initials, and broken ones
        if hello is not None:
            flow["sni"], flow["done"] = hello.sni, True
    return {key: flow["sni"] or "" for key, flow in state.items()}


@pytest.mark.corpus
@pytest.mark.parametrize("capture", CAPTURES)
def test_sni_matches_tshark(capture: str) -> None:
    path = CORPUS / "pcap" / capture
    if not path.exists():
        pytest.skip("nDPI corpus not present")
    ours = quic_snis(path)
    with open(CORPUS / "tshark-flows" / f"{capture}.flows.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["proto"] == "udp"]
    assert rows
    wrong = []
    for r in rows:
        key = tuple(sorted([(r["addr_a"], int(r["port_a"])), (r["addr_b"], int(r["port_b"]))]))
        if ours.get(key, "") != r["sni"]:
            wrong.append((key, r["sni"], ours.get(key)))
    assert not wrong


# --- never crash, bounded time -----------------------------------------------------------------

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEEDS = [QUIC_V2, QUIC_T51, PACKET, protect(crypto(0, HELLO[:100]) + b"\x02\x05\x00\x01\x00\x00\x00" + bytes(40))
         + protect(b"\x01" * 30, kind="handshake")]


def run_all(data: bytes) -> None:
    for hint in (None, RFC_DCID):
        with contextlib.suppress(Malformed):
            got = initial_crypto(data, hint)
            if got is not None:
                client_hello_from_crypto(got.pieces)




@SETTINGS
@given(st.binary(max_size=1500))
def test_random_bytes(data: bytes) -> None:
    run_all(data)
    run_all(b"\xc0\x00\x00\x00\x01" + data)


@SETTINGS
@given(mutated(SEEDS))
def test_mutated_datagrams(data: bytes) -> None:
    run_all(data)


@SETTINGS
@given(st.binary(max_size=1200))
def test_random_frames_inside_a_valid_initial(payload: bytes) -> None:
    """Whatever the decrypted payload holds, the frame walk returns or raises Malformed."""
    with contextlib.suppress(Malformed):
        got = initial_crypto(protect(payload))
        client_hello_from_crypto(got.pieces)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 1 << 62), st.binary(max_size=64)), max_size=40),
       st.lists(st.integers(0, len(HELLO)), max_size=6))
def test_random_crypto_pieces(pieces: list[tuple[int, bytes]], cuts: list[int]) -> None:
    bounds = sorted({0, len(HELLO), *cuts})
    pieces = pieces + [(a, HELLO[a:b]) for a, b in zip(bounds, bounds[1:])]
    with contextlib.suppress(Malformed):
        client_hello_from_crypto(pieces)


HOSTILE = {
    "many_packets": lambda k: b"\xe0\x00\x00\x00\x01\x00\x00\x00" * (2000 * k),   # empty v1 Handshake packets
    "zeros": lambda k: bytes(16_384 * k), "ones": lambda k: b"\xff" * (16_384 * k),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_inputs_take_linear_work(name: str) -> None:
    """Four times the input costs at most about four times the work (lines executed, not
    seconds: a quadratic loop would cost sixteen)."""
    small, large = HOSTILE[name](1), HOSTILE[name](4)
    work_small, work_large = python_lines(run_all, small), python_lines(run_all, large)
    assert work_large <= 4.5 * max(work_small, 1_000), (work_small, work_large)


def test_many_acks_and_tiny_crypto_pieces_take_linear_work() -> None:
    def acks(k: int) -> bytes:                 # one protected Initial full of 1-byte ACK-range frames
        return protect((b"\x02\x00\x00\x00\x00" + b"\x01") * (48 * k))

    def pieces(k: int) -> list:                # the hello in 1-byte CRYPTO pieces, backwards, k times over
        return [(i, HELLO[i:i + 1]) for i in range(len(HELLO))][::-1] * (5 * k)

    for build, call in ((acks, run_all), (pieces, client_hello_from_crypto)):
        small, large = python_lines(call, build(1)), python_lines(call, build(4))
        assert large <= 4.5 * max(small, 1_000), (build.__name__, small, large)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from([b"\x00", b"\x00" * 7, b"\x00" * 300, b"\x01", b"\x06\x00", b"\x80"]), max_size=12),
       st.data())
def test_after_padding_is_the_first_nonzero_byte(parts: list[bytes], data) -> None:
    """quic._after_padding against a regex search for the first byte that is not 0."""
    import re
    from apnstrace.decode.quic import _after_padding
    payload = b"".join(parts)
    pos = data.draw(st.integers(0, len(payload)))
    found = re.compile(rb"[^\x00]").search(payload, pos)
    assert _after_padding(payload, pos) == (found.start() if found else len(payload))
