"""atheris: the HTTP request and response head parsers and the compiled head scan, on any bytes."""
from __future__ import annotations

import atheris
from common import COMPILED, call_each, fuzz

with atheris.instrument_imports(include=["apnstrace"], exclude=COMPILED):
    from apnstrace.decode import http
    from apnstrace.decode.http_fast import scan_http
    from apnstrace.decode.malformed import Malformed

from fast import one_payload


def test_one_input(data: bytes) -> None:
    call_each((http.parse_request, http.parse_response), data, Malformed)
    scan_http(*one_payload(data))


if __name__ == "__main__":
    fuzz("http", test_one_input)
