"""DNS parser on real messages from the nDPI corpus (/work/shared/corpus/ndpi/pcap).

Payloads extracted with
    tshark -r <capture> -Y frame.number==<n> -T fields -e udp.payload     (or -e tcp.payload)
and expected values read from tshark for the same frame:
    tshark -r <capture> -Y frame.number==<n> -T fields -e dns.id -e dns.flags.rcode -e dns.qry.name \
        -e dns.qry.type -e dns.resp.name -e dns.resp.type -e dns.resp.ttl -e dns.cname -e dns.a
"""
from __future__ import annotations

import struct

import pytest

from apnstrace.decode.dns import DnsAnswer, DnsMessage, parse_dns, rcode_name, type_name
from apnstrace.decode.malformed import Malformed

# iphone.pcap frame 59: captive.apple.com, a chain of 3 CNAMEs, then 2 A records; every owner
# name after the question is a compression pointer. tshark: dns.id 0x6043,
#   dns.resp.name captive.apple.com,captive-cidr.origin-apple.com.akadns.net,
#       captive-cdn.origin-apple.com.akadns.net,captive.g.aaplimg.com,captive.g.aaplimg.com
#   dns.resp.type 5,5,5,1,1  dns.resp.ttl 4502,188,230,17,17  dns.a 17.253.105.202,17.253.53.202
DNS_CAPTIVE = bytes.fromhex(
    "6043818000010005000000000763617074697665056170706c6503636f6d0000010001c00c0005000100001196002a0c"
    "636170746976652d636964720c6f726967696e2d6170706c6503636f6d06616b61646e73036e657400c02f0005000100"
    "0000bc000e0b636170746976652d63646ec03cc06500050001000000e6001407636170746976650167076161706c696d"
    "67c01ac07f0001000100000011000411fd69cac07f0001000100000011000411fd35ca"
)

# dns_long_domainname.pcap frame 2: tshark dns.id 0x8b54, dns.flags.rcode 3 (NXDOMAIN),
#   dns.qry.name gmr02c.16.0.fhkfhsdkfhsk.tunnel.example.com, qry.type 1, 0 answers, 1 authority (SOA).
DNS_NX = bytes.fromhex(
    "8b548183000100000001000006676d7230326302313601300c66686b666873646b6668736b0674756e6e656c07657861"
    "6d706c6503636f6d0000010001c02c00060001000005c3002c026e73056963616e6e036f726700036e6f6303646e73c0"
    "4c7867fabe00001c2000000e100012750000000e10"
)

# dns_fragmented.pcap frames 48 (query) and 50 (response), DNS over TCP with the 2-byte length
# prefix. tshark: dns.id 0x80e4, qry weberlab.de type 48 (DNSKEY); the response has 4 answers,
#   dns.resp.type 48,48,46,46 (DNSKEY, RRSIG) with ttl 60, then an OPT record in additional.
DNS_TCP_Q = bytes.fromhex(
    "003480e4012000010000000000010877656265726c61620264650000300001000029100000008000000c000a00081b9a"
    "f622ab2c9740"
)
DNS_TCP_R = bytes.fromhex(
    "06c280e4850000010004000000010877656265726c61620264650000300001c00c003000010000003c01080100030a03"
    "010001d054dc28f150ac3b49e6336bb731caafd7837ce7550b0ccee17f51e2da8a03ae6ed24787184bfa6d76f48c5091"
    "32a8f094485dc2970fe6958b3b629a5f3ef013c25c534f7ed1697450b30513461e3fdc6b583f165724eafe5abda7c1fe"
    "11aa6d6298d8b10629be64b585868fc241d26aca1aa0d954fca2782d1d615bf4da239a3af521765ed0b605726d1dd5ea"
    "01e58681b40711be19b8d4a7e3723c295bb8c388c1f95b546079f78e8fc9019082718d5f62f5307ba639a602fc3dd49f"
    "2cd064d326aa3f391b00cd3f011e0df2eaeb09b50547f1eccc3070456e3b607462653288f8927d4a064f09b63f59c634"
    "c8656228f76d8f55bf2c42a8f4272b4b394ebdc00c003000010000003c02080101030a03010001ddeffded22ad760a3b"
    "0b58101dd53deef3f7daaf8b995ef7fcb55d7ca9969e72ff9c5aaab9bfade946f29831f06b0d5b6220be224a009e9489"
    "4e391112a81fe7f3daa7f6494147156c24c1e896c8b6781191e1a30be2084c7de0fe0eb3034a5e67581dedfcae51cf6b"
    "edceca95bd8187d1f6584228ade77823eaf3f68516c4d323b750f90da41115a208c0b26e5e163b0b01a3f4659cf338ca"
    "e7cc28894006233935640f36623a8d8cc0629628c9485df479e72080e5350f3d1e95d07459b2b0cada5d86fba833a838"
    "488ea1db6d287d32fefb49d92454d39445e0012e99a708533022e4b2f670c4310bbb7bae50c8e17e363517ce2c0a86b8"
    "e79c9458f3ab3dce7402567a0fc002749b6f4d80182910dfbd135f5856bde017b7ac693d638b8075d22c817f973fb097"
    "e0e6f193560e79f9cc426e123df1a2f6b583cce645724e9aa03a5611aa7b0c45f1cfb229e344387cf85f8fd12e658722"
    "e11bbdba0fd340e4e40f5b87264656ccad38983e37084542dbc158b983f36145b5f4addaf99b1453700193a745958938"
    "6f4bed315c1889b538450b9a8854c852ec0463170c53aed64d28ea9aa6e3de6db01b8cc893697dd4283f03a4529b0a8b"
    "a8e636aeaf463bef36225b705ca54d0aea1c64c6b8ea29b94b016d45e3fe73abe08ea3e3693a18322e4f22c391a56b76"
    "bc579869df3674ad76a5a6bc75e8fd8170765b3d6dc4fbc00c002e00010000003c021f00300a020000003c5d27b1b05d"
    "0023c1337b0877656265726c616202646500c364ca216ac342cdd672faa5d3fa2f44b97fe29e56a81dc9283d0ea96543"
    "39e4738a8975b06c21766e0476bd36ad96d7e0750318b231cb6fdcbcffc2b5eb1d5b20da3b8c784f8624379993e78510"
    "db0bcd7dfe683f0c026511fa38fcf207ae868e5c7904b3172503749f9795f3a8c63c74822308c488468866a73dda8ddd"
    "60f10e673e1bebba24e2deb6e491a16ebc0bba2416b34b1be99414c646c2e2c03fe4793d47d1c87b055735a19eb19a4a"
    "b2ebcbc8b03eb7163d6bd4faedee99ab0874c2b8482c3bbf03f5d090b9608b909431194557263e422371efef1145829b"
    "b659d2bb1221011f9ac7a618dbf2124f15ea7572083381d48eee0af83cbd7a510278a5a156128be549248a37a0aa5742"
    "a5cd8e542a9a02e1b39c44c8a2ba391c80b45c2730cd8d370fe7debdf5e89105872749436eecd47f0103ac2ded607060"
    "4c615236f2e5c00628c52493d461014544a290618cbb53c6ae81fa1d24294d33ee4f8c3acded551aa325bf0ad6c58a02"
    "d96a37bf49b2c592877da1392e8677ad2fb7f21279467f12a6119db5f2a3dcb0a0c946b472ca673e59d67eb4f719bd05"
    "ebe80552ed1652a144d5ffee5d55dda45aeb85db0e6bb27008394df0c0810f86c4f0abd9e385bf41a7d8ce307dc515ba"
    "38b2b36f638a6870eb3d2e27353acf35ddbbbb572433dcdaefff17cf38fbef1bffee7dc3c43b5dc59c1eddc20ff29937"
    "9ebbc363002e00010000003c011f00300a020000003c5d27b1b05d0023c190470877656265726c616202646500a53c4c"
    "9c4569c62b9f38f3ae26c9ca1cc8fcf65333cd68eccd0de776d58468a3fbdce125135ea141b665b849014304040bbb81"
    "e6a9c49ed4d73f94aa19054a2f10bba8d13a7322879c739a2c573a33b64621d3f1e33340c1ea8a5ade7b199dcfeeeb1f"
    "88c2820a4083661e9d1333a6f86b7f4f8e11650d870aba74d61594d5a0d587f5a31091b19e978aada97a695ee0a3a482"
    "86d610281d10b68c9c864a509d16b6901926e09b0083ef6a4dd880770d3d1e126f1d652914cf5ba4318c5b072795ff07"
    "a98d315b6a1bdef0cda3bfba05701fcd50b762e5a63e566fcef702d31b77b39060bc2127b7e1c49f713499fa4a5551a7"
    "a0bed4fd96caeffb5349a03feb000029100000008000001c000a00181b9af622ab2c9740e40584c05d08fc19f07835a1"
    "15ea8294"
)

CAPTIVE = DnsMessage(
    id=0x6043, is_response=True, rcode=0, rcode_name="NOERROR", questions=(("captive.apple.com", "A"),),
    answers=(
        DnsAnswer("captive.apple.com", "CNAME", "captive-cidr.origin-apple.com.akadns.net", 4502),
        DnsAnswer("captive-cidr.origin-apple.com.akadns.net", "CNAME", "captive-cdn.origin-apple.com.akadns.net", 188),
        DnsAnswer("captive-cdn.origin-apple.com.akadns.net", "CNAME", "captive.g.aaplimg.com", 230),
        DnsAnswer("captive.g.aaplimg.com", "A", "17.253.105.202", 17),
        DnsAnswer("captive.g.aaplimg.com", "A", "17.253.53.202", 17),
    ))


def header(qd: int = 1, an: int = 0, flags: int = 0x8180) -> bytes:
    return struct.pack("!HHHHHH", 0x1234, flags, qd, an, 0, 0)


def test_cname_chain_with_compression_pointers() -> None:
    assert DNS_CAPTIVE.count(b"\xc0") >= 5                        # pointers are really in use
    assert parse_dns(DNS_CAPTIVE) == CAPTIVE


def test_nxdomain() -> None:
    message = parse_dns(DNS_NX)
    assert (message.id, message.is_response, message.rcode, message.rcode_name) == (0x8B54, True, 3, "NXDOMAIN")
    assert message.questions == (("gmr02c.16.0.fhkfhsdkfhsk.tunnel.example.com", "A"),)
    assert message.answers == ()


def test_dns_over_tcp_query_and_response() -> None:
    query = parse_dns(DNS_TCP_Q, over_tcp=True)
    assert (query.id, query.is_response, query.answers) == (0x80E4, False, ())
    assert query.questions == (("weberlab.de", "DNSKEY"),)
    response = parse_dns(DNS_TCP_R, over_tcp=True)
    assert response.id == 0x80E4 and response.rcode_name == "NOERROR"
    assert [(a.name, a.rtype, a.value, a.ttl) for a in response.answers] == \
        [("weberlab.de", "DNSKEY", None, 60)] * 2 + [("weberlab.de", "RRSIG", None, 60)] * 2


def test_tcp_prefix_is_not_part_of_the_message() -> None:
    framed = struct.pack("!H", len(DNS_CAPTIVE)) + DNS_CAPTIVE
    assert parse_dns(framed, over_tcp=True) == CAPTIVE
    assert parse_dns(framed + b"\x00\x0cnext message", over_tcp=True) == CAPTIVE
    with pytest.raises(Malformed) as bad:
        parse_dns(DNS_TCP_R[:300], over_tcp=True)              # the capture cut the message
    assert bad.value.reason == "dns_answer_truncated"


def test_aaaa_and_uppercase_names() -> None:
    question = b"\x03WWW\x05Apple\x03COM\x00\x00\x1c\x00\x01"
    answer = b"\xc0\x0c\x00\x1c\x00\x01\x00\x00\x00\x3c\x00\x10" + bytes.fromhex("2a0126b0000000000000000000000001")
    message = parse_dns(header(an=1) + question + answer)
    assert message.questions == (("www.apple.com", "AAAA"),)
    assert message.answers == (DnsAnswer("www.apple.com", "AAAA", "2a01:26b0::1", 60),)


def test_odd_label_bytes_stay_data() -> None:
    message = parse_dns(header() + b"\x04a.\x00\xff\x03com\x00\x00\x01\x00\x01")
    assert message.questions == (("a\\x2e\\x00\\xff.com", "A"),)


def test_root_name_and_unknown_type() -> None:
    message = parse_dns(header(an=1) + b"\x00\xff\x00\x00\x01" + b"\x00\xff\x00\x00\x01\x00\x00\x00\x05\x00\x01z")
    assert message.questions == (("", "TYPE65280"),)
    assert message.answers == (DnsAnswer("", "TYPE65280", None, 5),)


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\x12\x34\x81\x80", "dns_header_truncated"),
    (header() + b"\x03www", "dns_name_truncated"),
    (header() + b"\x03www\x00\x00", "dns_question_truncated"),
    (header() + b"\xc0\x0c\x00\x01\x00\x01", "dns_bad_pointer"),                  # points at itself
    (header() + b"\xc0\x20\x00\x01\x00\x01", "dns_bad_pointer"),                  # points forward
    (header() + b"\x41x\x00\x00\x01\x00\x01", "dns_bad_label"),                   # 0x40: extended label
    (header() + b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3f" + b"d" * 63
     + b"\x00\x00\x01\x00\x01", "dns_name_too_long"),
    (header(an=1) + b"\x00\x00\x01\x00\x01" + b"\x00\x00\x01\x00\x01\x00\x00\x00\x05\x00\x03abc", "dns_bad_rdata"),
    (header(an=1) + b"\x00\x00\x01\x00\x01" + b"\x00\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04ab",
     "dns_answer_truncated"),
    (b"\x00", "dns_tcp_length_truncated"),
])
def test_malformed_reasons(payload: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as bad:
        parse_dns(payload, over_tcp=payload == b"\x00")
    assert bad.value.reason == reason


def test_pointer_loop_is_bounded() -> None:
    # 12: "a" then a pointer back to 12: a loop made only of backward pointers.
    with pytest.raises(Malformed) as bad:
        parse_dns(header() + b"\x01a\xc0\x0c\x00\x01\x00\x01")
    assert bad.value.reason in ("dns_name_loop", "dns_name_too_long")


def chained(pointers: int) -> bytes:
    """An unknown-type answer whose rdata is a root name then pointers, each to the one before;
    a second answer's owner name points at the last of them."""
    rdata = b"\x00" + b"".join(struct.pack("!H", 0xC000 | (23 if i == 0 else 24 + 2 * (i - 1)))
                               for i in range(pointers))
    first = b"\x00" + struct.pack("!HHIH", 0xFF00, 1, 5, len(rdata)) + rdata
    second = struct.pack("!H", 0xC000 | (24 + 2 * (pointers - 1))) + struct.pack("!HHIH", 1, 1, 5, 4) + bytes(4)
    return header(qd=0, an=2) + first + second


def test_pointer_chains_are_bounded() -> None:
    assert parse_dns(chained(30)).answers[1] == DnsAnswer("", "A", "0.0.0.0", 5)
    with pytest.raises(Malformed) as bad:
        parse_dns(chained(40))
    assert bad.value.reason == "dns_name_loop"


def test_cname_rdata_must_hold_exactly_the_name() -> None:
    answer = b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x05\x00\x05\x01b\xc0\x0c" + b"\x00"
    with pytest.raises(Malformed) as bad:
        parse_dns(header(an=1) + b"\x01a\x00\x00\x01\x00\x01" + answer[:-1] + b"\xff")
    assert bad.value.reason == "dns_bad_rdata"


def test_names_of_codes() -> None:
    assert [rcode_name(c) for c in (0, 2, 3, 5, 15)] == ["NOERROR", "SERVFAIL", "NXDOMAIN", "REFUSED", "RCODE15"]
    assert [type_name(t) for t in (1, 5, 28, 65, 4000)] == ["A", "CNAME", "AAAA", "HTTPS", "TYPE4000"]
