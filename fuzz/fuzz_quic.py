"""atheris: QUIC Initial decryption (header protection, AEAD, CRYPTO frames) and the
ClientHello reassembled from CRYPTO pieces, on any datagram bytes."""
from __future__ import annotations

import atheris
from common import COMPILED, fuzz

with atheris.instrument_imports(include=["apnstrace"], exclude=COMPILED):
    from apnstrace.decode import quic
    from apnstrace.decode.malformed import Malformed



def test_one_input(data: bytes) -> None:
    try:
        got = quic.initial_crypto(data)
        if got is not None:
            quic.client_hello_from_crypto(list(got.pieces))
            quic.initial_crypto(data, got.dcid)
    except Malformed:
        pass
    # The pieces themselves, straight from the input: offset-tagged CRYPTO data.
    pieces = [(int.from_bytes(data[i:i + 2], "big"), data[i + 2:i + 64]) for i in range(0, min(len(data), 512), 64)]
    try:
        quic.client_hello_from_crypto(pieces)
    except Malformed:
        pass


if __name__ == "__main__":
    fuzz("quic", test_one_input)
