"""atheris: TLS ClientHello, ServerHello/certificate flight, alerts and record framing, and
the compiled ClientHello/flight scan, on any bytes: a result or Malformed, nothing else."""
from __future__ import annotations

import atheris
from common import COMPILED, call_each, fuzz

with atheris.instrument_imports(include=["apnstrace"], exclude=COMPILED):
    from apnstrace.decode import tls
    from apnstrace.decode.malformed import Malformed
    from apnstrace.decode.tls_fast import scan_tls

from fast import one_payload

CALLS = (tls.parse_client_hello, tls.parse_server_flight, tls.first_alert, tls.records, tls.needed_length)


def test_one_input(data: bytes) -> None:
    call_each(CALLS, data, Malformed)
    scan_tls(*one_payload(data))


if __name__ == "__main__":
    fuzz("tls", test_one_input)
