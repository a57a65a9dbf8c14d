"""atheris: the DNS message parser (UDP and TCP framing) and its compiled scan, on any bytes."""
from __future__ import annotations

import atheris
from common import COMPILED, fuzz

with atheris.instrument_imports(include=["apnstrace"], exclude=COMPILED):
    from apnstrace.decode import dns
    from apnstrace.decode.dns_fast import scan_dns
    from apnstrace.decode.malformed import Malformed

from fast import one_payload


def test_one_input(data: bytes) -> None:
    for over_tcp in (False, True):
        try:
            dns.parse_dns(data, over_tcp=over_tcp)
        except Malformed:
            pass
    scan_dns(*one_payload(data))


if __name__ == "__main__":
    fuzz("dns", test_one_input)
