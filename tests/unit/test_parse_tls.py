"""TLS parsers on real handshakes from the nDPI corpus (/work/shared/corpus/ndpi/pcap).

Each payload below was extracted with
    tshark -r <capture> -Y frame.number==<n> -T fields -e tcp.payload
and the expected values are what tshark shows for the same frame, e.g.
    tshark -r codm.pcap -Y frame.number==5 -T fields -e tls.handshake.extensions_server_name \
        -e tls.handshake.extensions_alpn_str -e tls.handshake.extensions.supported_version
Synthetic variants (re-framed records, flipped bytes) are built from these real bytes.
"""
from __future__ import annotations

import pytest

from apnstrace.decode.malformed import Malformed
from apnstrace.decode.tls import (ClientHello, ServerFlight, alert_name, first_alert, needed_length,
                                  parse_client_hello, parse_server_flight, records, version_name)

# codm.pcap frames 4 + 5: one ClientHello record (512 + 5 bytes) cut across two TCP segments.
# tshark (frame 5, "[2 Reassembled TCP Segments (517 bytes): #4(512), #5(5)]"):
#   server_name west-tdm.codmwest.com, alpn http/1.1, supported_versions 0x0304,0x0303,0x0302,0x0301
CODM_SEG1 = bytes.fromhex(
    "1603010200010001fc0303138842e8fcece6f1955d5feb0399134457fcd79b0d8fccc445b55dd2c98406852064faad2b"
    "166f1dcf2de7df7ba2a583d460ed859b603531d30937e885f3522bf80022130113021303c02bc02ccca9c02fc030cca8"
    "c009c00ac013c014009c009d002f0035010001910000001a0018000015776573742d74646d2e636f646d776573742e63"
    "6f6d00170000ff01000100000a00080006001d00170018000b00020100002300000010000b000908687474702f312e31"
    "000500050100000000000d00140012040308040401050308050501080606010201003300260024001d0020a67964d473"
    "669ac96d6ba45cb1c8940e649a084bfc0d8ad5aa27df9b1418ec2b002d00020101002b00090803040303030203010015"
    "00e300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
)
CODM_SEG2 = bytes.fromhex(
    "0000000000"
)
CODM_HELLO = CODM_SEG1 + CODM_SEG2

# codm.pcap frame 7 (first 100 of 1432 bytes): ServerHello record (89 bytes), then a record cut short.
# tshark: tls.handshake.version 0x0303, tls.handshake.extensions_alpn_str http/1.1
CODM_SH = bytes.fromhex(
    "1603030054020000500303a72f6db293778a164c1e723a84db7a296e5c710319e9af86a4e6cd24f8b8e3d400c02f0000"
    "28ff0100010000000000000b000403000102002300000010000b000908687474702f312e31001700001603030fca0b00"
    "0fc6000f"
)

# tls_1.3_unidirectional_server.pcapng frame 3: ServerHello, ChangeCipherSpec, encrypted records.
# tshark: tls.record.length 128,1,74; tls.handshake.version 0x0303; tls.handshake.extensions.supported_version 0x0304
TLS13_SH = bytes.fromhex(
    "16030300800200007c0303c57417b3a7267c19e1431447bf571918fc463e2a2992c63d2241054efb49195020691ce201"
    "36f8bc28a70a33e7ef38c01b821e4bab3b8775d4691789deb9ca7814130100003400290002000000330024001d0020cc"
    "4c7a4927e6c3b46de7f9db39ddab59adb5e876213215a1c41bf035b2acca4e002b00020304140303000101170303004a"
    "777cec0ef78baa149b1eec701520aa4c2f683963226baf5aea6efb6f9572dced792351544723fa5e364619f3dcd40e8a"
    "de9d4b8ac1bdca5854c4e305946ffc3a17975ddad27f26284d6c"
)

# selfsigned.pcap frame 7: ServerHello, Certificate, ServerKeyExchange, ServerHelloDone, one record each.
# tshark -r selfsigned.pcap -Y frame.number==7 -V | grep -A1 'issuer:\|subject:' ->
#   issuer and subject rdnSequence: id-at-organizationName=ntop.org,id-at-stateOrProvinceName=Some-State,
#   id-at-countryName=IT; tls.record.length 89,843,401,4; tls.handshake.type 2,11,12,14
SELFSIGNED_FLIGHT = bytes.fromhex(
    "16030300590200005503033fafb07bb5e76570e4d147dc08061bd0b80718a2ff69e5ef444f574e4752440120a34fca69"
    "4658de7bf61a431b301941a3622d93d6282342658ce4f014c67b622bc03000000dff01000100000b0004030001021603"
    "03034b0b0003470003440003413082033d30820225a003020102020900916a4cd167871602300d06092a864886f70d01"
    "010b05003035310b30090603550406130249543113301106035504080c0a536f6d652d53746174653111300f06035504"
    "0a0c086e746f702e6f7267301e170d3135313031303135353534375a170d3136313030393135353534375a3035310b30"
    "090603550406130249543113301106035504080c0a536f6d652d53746174653111300f060355040a0c086e746f702e6f"
    "726730820122300d06092a864886f70d01010105000382010f003082010a0282010100caaf0b1fab45b71af135d959f3"
    "5e5ed54c5c8c15051e0e1e1f02a828449b4578f3a1a70eb3dc200e6a1df31d86b85a6bc4188bb1b95849a0ad9b7d5e79"
    "ebf7036f5b25eb88ddd8434ca2aefcb0857aded534d4ef358e3474edc125c65f9a137b3f2bfc71c00b79c1b81a58a697"
    "e758bdd1a885e353b2ca7c6ca2c9a22af5840381130072f50b9ff2ef94bfdeb110d86569b39fe742a0c1011841073b58"
    "298bb5b7bf826b3758ef4d3ffeeef9c3f4cdcfad896ede915040095da7c4f23e9972efdf796d6339d2873c2950916a3c"
    "787b4d0ca5778c888b4d89b80c9a029050e50c0e42668f56a7c5b3fe9d88e4e0d037aa4c4f1456229ca709ceac6e7231"
    "3d7bab0203010001a350304e301d0603551d0e04160414034b951fd595a8bc75826093ab10e181f81d74c1301f060355"
    "1d23041830168014034b951fd595a8bc75826093ab10e181f81d74c1300c0603551d13040530030101ff300d06092a86"
    "4886f70d01010b050003820101002fdc84bec06e4da50a7cd82c40686e44bf82223f01e7543b7c63d1014cb4b85445d3"
    "707c1e41f1ddd6d62c09a4f5052d9fefb596d77f40c1319f28853f49de41d375a98e2e9659a1ecbbca6f1f919f435d98"
    "7920f122abcebbd659b7d1d5c890c8d932e3565c9f37382bd0b2a59ad30e9e36e1518aa63ab659928f0b0da2e6aca1f7"
    "419025c94d801e027c0e75d41f630723b51484d250475a9a0aca37c890aa2020393b9ea3c94ecbff166a85245db256e0"
    "7602c1c2860f9dd4536279304a9dc67404fe37a2ed06f3fbe308b996b97c9696265d90bf8128b68216b724260a74a385"
    "19c497f18185bd044d59341441a81ed8e3517e04b45c185a6cfbc5f54af616030301910c00018d030019850401cf90b4"
    "c9f03ddc1d2d7f9d044b38d91d79298c7f5dbfaff6f15ae0a31637d8f066c7979716b3966a5950d7ceecec500eca5735"
    "23fcd22a4051fd538d23b2ac97990111ab85ff4a3f573add0cf7d86dafdb610800ec1617954895c4a28a74f4dfd15bec"
    "51170e58a2291fcb0cc52ef45ee39f3a1160945e09e58eb4d0f7c7f29f579b1606010100ae99e14c22ab440e4d3586d3"
    "fbcd0a0817a9e263f7fa048ebaf859484d5fbbd2d0035b19a94ee77d17481601993c4ee4e34209add591f0a877d22d24"
    "96bd3c7bc8505329c6c0ad4e3ac0403cd217f08c445262056b283c0d7678d1acb09e75b200038f7a9bc98506d2754bad"
    "7e6271ceb58ec305cab67adee77daef5272457f4b242b66ce36999d15e2e9eb1eaa08b2ce878070ee5e24ee0f6a8bccc"
    "e4508c170c08aa745b4187c35f8c31c90e215504588e3146f7b62455b6180c523479f58d10c4537560be13edaf08fd4b"
    "ee8cdce5a3299e8c6991eb397046b206af9d08bb1caffcbbc2c1872057fc7c8919bb4c85b4ff779a40c3b2803f89eff7"
    "59ae7c7516030300040e000000"
)

# 443-curl.pcap server stream (frames 6, 7), cut right after the leaf certificate's last byte.
# tshark (frame 7, leaf): issuer id-at-commonName=Let's Encrypt Authority X3,id-at-organizationName=Let's Encrypt,
#   id-at-countryName=US; subject id-at-commonName=www.ntop.org. Frame 6: alpn h2, version 0x0303.
CURL_TO_LEAF = bytes.fromhex(
    "16030300660200006203038f72dd2e35dcf5ddf38ae75db855d1610b4db32937cb20cd3187eec12057fb2520ea8fcd1d"
    "a8f8635bd5df2a45b603764dd7cfb5f82666ff77fd47635bf9a8f0cbc02f00001aff0100010000000000000b00040300"
    "010200100005000302683216030309f80b0009f40009f10005553082055130820439a003020102021203c56f6636eda7"
    "2f7f4c5665fa055d933255300d06092a864886f70d01010b0500304a310b300906035504061302555331163014060355"
    "040a130d4c6574277320456e6372797074312330210603550403131a4c6574277320456e637279707420417574686f72"
    "697479205833301e170d3139313231373031313732385a170d3230303331363031313732385a30173115301306035504"
    "03130c7777772e6e746f702e6f726730820122300d06092a864886f70d01010105000382010f003082010a0282010100"
    "9d21c341aca0d61662ac85f82eaa37586e4aa4c1e78858b732bc3bd07719aa2ad95b9354b3d9aec9e47675a3b2263aec"
    "adcc5ee577871177f9aeeebe9588d72a2254a291b02c65a2d4cba203d83159664b59579612db71126c134ea5a54a147c"
    "8a9df6785d4b5a9c3e174fdced0342d9b2e599c4a42bda144bc956c598b35e1c203117836aa3d160312f85962d75f59c"
    "7e4a520ed453a03804f36b8aac3babe10d6edfcb8126ca7f66e938dbb1bed9b38b374a48b0409792582a41666156a12a"
    "be80d51c3448c25cf234ac1bb7b47e19f7e05f9b29e605246f238f73ef8647e7ce54beff32eccd5a9d94af6cd384de14"
    "17a7a73147450ab77f68215af030c6c10203010001a38202623082025e300e0603551d0f0101ff0404030205a0301d06"
    "03551d250416301406082b0601050507030106082b06010505070302300c0603551d130101ff04023000301d0603551d"
    "0e0416041466773997662725aabee187a7bb2b96b887f091d7301f0603551d23041830168014a84a6a63047dddbae6d1"
    "39b7a64565eff3a8eca1306f06082b0601050507010104633061302e06082b060105050730018622687474703a2f2f6f"
    "6373702e696e742d78332e6c657473656e63727970742e6f7267302f06082b060105050730028623687474703a2f2f63"
    "6572742e696e742d78332e6c657473656e63727970742e6f72672f30170603551d110410300e820c7777772e6e746f70"
    "2e6f7267304c0603551d20044530433008060667810c0102013037060b2b0601040182df130101013028302606082b06"
    "010505070201161a687474703a2f2f6370732e6c657473656e63727970742e6f726730820105060a2b06010401d67902"
    "04020481f60481f300f10077005ea773f9df56c0e7b536487dd049e0327a919a0c84a112128418759681714558000001"
    "6f11a560100000040300483046022100845c7a86f886701b33dac96e712963e039d0f1da57ad6b98ffc53e88301c9967"
    "02210088adece4d8beb497227f62aba33cc203e1f8679c2c18efeb3fb99697ff2f3d3000760007b75c1be57d68fff1b0"
    "c61d2315c7bae6577c5794b76aeebc613a1a69d3a21c0000016f11a5602d0000040300473045022030285d401a7288a1"
    "a112d95f8c6a6700af4e0ded3e0169097d92ed98e3155ed1022100a8937e127dd3fbfc9dad312be5334521fb5423ee2f"
    "bd595bc198896ac4d8546e300d06092a864886f70d01010b0500038201010017faeb420ed7e96870a1138ae3e406e76b"
    "3361a0d82313c1ac2667c6166341fb66e72679928b8c122bd74ae173fc57cf228d3e5925ba3552e103736fae2ccaa4a1"
    "74ef4d289613b37c1a1594cbef274bbd6d03e1f7332373bebcf0d98706692e69fe9ea4be7963a821f38b4fbc9b42a981"
    "9aa5e0201a320650921e195ea5c675640961643b8e6b15631ec2fb4d3549a973d7e8cce0ecb492e04e79288cfd8dbd45"
    "04fab24926ab6fa176d14e1aa04f2f62ef83b02d7b6561cbd92664ce6465685c150b6a6bcd05a48bc19f19bd3edf006f"
    "d8a4558dbaba9645723939195cfaf6a707c993ecb5b13cc6c595cbef1cd879104fb08f8ad40045b927dde24fbc94fe"
)

# tls_alert.pcap frame 6: tshark tls.alert_message.level 2, tls.alert_message.desc 70 (Protocol Version).
ALERT = bytes.fromhex(
    "15030100020246"
)

# 443-curl.pcap frame 100: tshark "Encrypted Alert" (record length 26, after ChangeCipherSpec).
ENCRYPTED_ALERT = bytes.fromhex("150303001a0000000000000006efb7a15cd4103fc7beddc585b23f3d82b4a9")

CODM = ClientHello(sni="west-tdm.codmwest.com", alpn=("http/1.1",), legacy_version="TLS 1.2",
                   supported_versions=("TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0"))
SELF_NAME = "O=ntop.org,ST=Some-State,C=IT"


def record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return bytes([content_type, version >> 8, version & 0xFF, len(body) >> 8, len(body) & 0xFF]) + body


def handshake_layer(stream: bytes) -> bytes:
    return b"".join(body for ctype, _, body in records(stream) if ctype == 22)


# --- ClientHello ---------------------------------------------------------------------------------

def test_client_hello_fields_match_tshark() -> None:
    hello = parse_client_hello(CODM_HELLO)
    assert hello == CODM
    assert hello.max_version == "TLS 1.3"


def test_client_hello_split_over_two_tcp_segments() -> None:
    assert needed_length(CODM_SEG1[:4]) is None                  # not even a record header yet
    assert needed_length(CODM_SEG1[:5]) == 517
    assert needed_length(CODM_SEG1) == 517 > len(CODM_SEG1)      # wait for the next segment
    with pytest.raises(Malformed) as bad:
        parse_client_hello(CODM_SEG1)
    assert bad.value.reason == "tls_handshake_truncated"
    assert needed_length(CODM_HELLO) == 517 == len(CODM_HELLO)
    assert parse_client_hello(CODM_HELLO) == CODM


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 100, 511])
def test_client_hello_split_over_two_records(cut: int) -> None:
    message = handshake_layer(CODM_HELLO)                       # the ClientHello handshake message
    first, second = record(22, message[:cut], 0x0301), record(22, message[cut:], 0x0301)
    stream = first + second
    assert parse_client_hello(stream) == CODM
    assert needed_length(first) == len(first) + 5               # needs at least the next header
    assert needed_length(first + second[:5]) == len(stream)
    assert needed_length(stream + b"\x17\x03\x03\x00\x01x") == len(stream)
    with pytest.raises(Malformed) as bad:
        parse_client_hello(first + second[:-1])
    assert bad.value.reason == "tls_handshake_truncated"


def test_one_record_holding_the_hello_and_more_messages() -> None:
    message = handshake_layer(CODM_HELLO)
    stream = record(22, message + b"\x10\x00\x00\x02ab")       # a second message after the hello
    assert parse_client_hello(stream) == CODM
    assert needed_length(stream) == len(stream)


def test_records_walk_complete_records_only() -> None:
    assert [(t, v, len(b)) for t, v, b in records(TLS13_SH)] == [(22, 0x0303, 128), (20, 0x0303, 1),
                                                                  (23, 0x0303, 74)]
    assert records(CODM_SEG1) == []                              # incomplete: nothing yet, no error
    assert [len(b) for _, _, b in records(CODM_HELLO + CODM_SEG1)] == [512]
    assert records(b"") == []


def test_non_printable_name_bytes_are_kept_as_escapes() -> None:
    at = CODM_HELLO.index(b"west-tdm")
    hello = parse_client_hello(CODM_HELLO[:at] + b"w\x00\xff\\-tdm" + CODM_HELLO[at + 8:])
    assert hello.sni == "w\\x00\\xff\\x5c-tdm.codmwest.com"


@pytest.mark.parametrize(("data", "reason"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "tls_record_bad_header"),
    (bytes.fromhex("80 2e 01 0301 0015 0000 0010") + bytes(37), "tls_sslv2_client_hello"),
    (TLS13_SH, "tls_not_client_hello"),
    (ALERT, "tls_not_handshake"),
    (CODM_HELLO[:5] + b"\x01\x00\x00\x05" + CODM_HELLO[9:], "tls_client_hello_bad_length"),
    (record(22, b""), "tls_handshake_record_empty"),
])
def test_client_hello_malformed_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as bad:
        parse_client_hello(data)
    assert bad.value.reason == reason


def test_client_hello_extension_length_lies() -> None:
    at = CODM_HELLO.index(b"west-tdm") - 2                        # server_name's host_name length
    lying = CODM_HELLO[:at] + b"\x40\x00" + CODM_HELLO[at + 2:]
    with pytest.raises(Malformed) as bad:
        parse_client_hello(lying)
    assert bad.value.reason == "tls_sni_bad_length"


# --- server flight -------------------------------------------------------------------------------

def test_tls13_server_hello_version_from_supported_versions() -> None:
    flight = parse_server_flight(TLS13_SH)
    assert flight == ServerFlight(version="TLS 1.3", alpn=None, alert=None, cert_subject=None,
                                  cert_issuer=None, hello_seen=True, hello_done=False)
    assert parse_server_flight(TLS13_SH[:133]).version == "TLS 1.3"   # the ServerHello record alone


def test_tls12_server_hello_cut_short_by_the_capture() -> None:
    flight = parse_server_flight(CODM_SH)
    assert (flight.version, flight.alpn, flight.hello_seen, flight.hello_done) == ("TLS 1.2", "http/1.1", True, False)
    assert flight.cert_issuer is None and flight.problem is None


def test_tls12_server_flight_with_certificate() -> None:
    flight = parse_server_flight(SELFSIGNED_FLIGHT)
    assert flight == ServerFlight(version="TLS 1.2", alpn=None, alert=None, cert_subject=SELF_NAME,
                                  cert_issuer=SELF_NAME, hello_seen=True, hello_done=True)


def test_leaf_certificate_read_before_the_chain_is_complete() -> None:
    flight = parse_server_flight(CURL_TO_LEAF)
    assert flight.cert_issuer == "CN=Let's Encrypt Authority X3,O=Let's Encrypt,C=US"
    assert flight.cert_subject == "CN=www.ntop.org"
    assert (flight.version, flight.alpn, flight.hello_done) == ("TLS 1.2", "h2", False)
    short = parse_server_flight(CURL_TO_LEAF[:-1])
    assert short.hello_seen and short.cert_issuer is None and short.problem is None


@pytest.mark.parametrize("size", [1, 7, 100, 1000])
def test_server_handshake_layer_reframed_into_records_of_any_size(size: int) -> None:
    layer = handshake_layer(SELFSIGNED_FLIGHT)                   # 4 messages, 1337 bytes
    stream = b"".join(record(22, layer[i:i + size]) for i in range(0, len(layer), size))
    assert parse_server_flight(stream) == parse_server_flight(SELFSIGNED_FLIGHT)


def test_several_messages_in_one_record() -> None:
    stream = record(22, handshake_layer(SELFSIGNED_FLIGHT))      # as tls_certificate_too_long.pcap sends it
    assert parse_server_flight(stream).cert_issuer == SELF_NAME


def test_unparseable_certificate_is_a_problem_not_a_failure() -> None:
    at = SELFSIGNED_FLIGHT.index(bytes.fromhex("3082033d"))      # the leaf's DER SEQUENCE header
    broken = SELFSIGNED_FLIGHT[:at] + b"\x04" + SELFSIGNED_FLIGHT[at + 1:]
    flight = parse_server_flight(broken)
    assert flight.hello_seen and flight.cert_issuer is None
    assert flight.problem == "tls_certificate_unparseable"


def test_garbage_after_the_hello_keeps_what_was_read() -> None:
    flight = parse_server_flight(TLS13_SH[:133] + b"\x99" * 10)
    assert flight.version == "TLS 1.3" and flight.problem == "tls_record_bad_header"


def test_server_flight_of_nothing_yet() -> None:
    assert parse_server_flight(b"") == ServerFlight(None, None, None, None, None, False, False)
    assert not parse_server_flight(CODM_SH[:50]).hello_seen      # first record incomplete
    with pytest.raises(Malformed):
        parse_server_flight(b"HTTP/1.1 400 Bad Request\r\n")


# --- alerts ----------------------------------------------------------------------------------------

def test_fatal_alert() -> None:
    assert first_alert(ALERT) == "fatal/protocol_version"
    flight = parse_server_flight(ALERT)
    assert flight.alert == "fatal/protocol_version" and not flight.hello_seen and flight.version is None


def test_alert_after_the_hello_in_the_same_flight() -> None:
    flight = parse_server_flight(CURL_TO_LEAF[:107] + record(21, b"\x02\x28"))
    assert flight.alert == "fatal/handshake_failure" and flight.version == "TLS 1.2"


def test_encrypted_alerts_are_not_decoded() -> None:
    assert first_alert(ENCRYPTED_ALERT) is None                   # 26 bytes: encrypted close_notify
    ccs = record(20, b"\x01")
    assert first_alert(ccs + record(21, b"\x02\x28")) is None     # after ChangeCipherSpec
    assert first_alert(TLS13_SH) is None
    assert first_alert(CODM_HELLO + record(21, b"\x01\x00")) == "warning/close_notify"


def test_names() -> None:
    assert [version_name(v) for v in (0x0300, 0x0301, 0x0302, 0x0303, 0x0304)] == \
        ["SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]
    assert version_name(0x7F1C) == "TLS 1.3 (draft 28)"
    assert version_name(0xFB1A) == "0xfb1a"
    assert alert_name(2, 40) == "fatal/handshake_failure"
    assert alert_name(1, 0) == "warning/close_notify"
    assert alert_name(2, 200) == "fatal/unknown_200"


def test_grease_versions_are_dropped() -> None:
    at = CODM_HELLO.index(bytes.fromhex("002b0009080304"))         # supported_versions, 4 versions
    greased = CODM_HELLO[:at + 5] + b"\x7a\x7a" + CODM_HELLO[at + 7:]
    assert parse_client_hello(greased).supported_versions == ("TLS 1.2", "TLS 1.1", "TLS 1.0")
