"""Keyed pseudonyms for what identifies a site in a Result, so a report can be shared.

Internal addresses (RFC 1918, carrier-grade NAT, IPv4 and IPv6 link-local, IPv6 unique local,
plus a site profile's internal subnets) keep their network and get their host bits permuted by
a keyed Feistel network: one pseudonym per address, no two addresses alike, still an address
of the same network (so tables, charts and grouping work as before). MAC-derived IPv6
interface IDs (EUI-64, ff:fe in the middle), wherever the prefix, are permuted the same way,
and so is the interface ID of every global IPv6 address a device used as a client (`devices`:
a privacy address identifies its device for a day; the /64 prefix, the site's, is kept).
Device names (first label of .local / .lan / .home / .internal names, and possessive device
names such as Johns-iPhone) become host-<hex> / device-<hex>. Apple's and other public
service addresses and names are kept. The same key gives the same pseudonyms in every run.

Every text cell of every table goes through the same token replacement, so an address or
name inside a sentence or evidence text is replaced exactly as in its own column.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Iterable
from functools import lru_cache

import pandas as pd

INTERNAL_V4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
INTERNAL_V6 = ("fc00::/7",)
LINK_LOCAL_V6 = ipaddress.ip_network("fe80::/10")
ROUNDS = 6

_V4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_V6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f:]{2,39}(?![\w:])")
_LOCAL_NAME = re.compile(r"(?<![\w.-])([A-Za-z0-9][\w-]*)((?:\.[\w-]+)*\.(?:local|lan|home|internal|localdomain))"
                         r"(?![\w-])", re.IGNORECASE)
_DEVICE_NAME = re.compile(r"(?<![\w-])[A-Za-z0-9]+(?:s|'s|\u2019s)[- ](?:i[Pp]hone|i[Pp]ad|i[Pp]od|MacBook(?:[- ](?:Pro|Air))?"
                          r"|iMac|Mac[- ]?mini|Mac[- ]?Pro|Mac[- ]?Studio|Apple[- ]?TV|Apple[- ]?Watch)"
                          r"(?:[- ]?\d+)?(?![\w-])")


def _v6_or_none(text: str) -> ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    return addr if addr.version == 6 else None


class Anonymizer:
    """Maps addresses and names to pseudonyms under one key (random when none is given)."""

    def __init__(self, key: str | bytes | None = None,
                 internal: Iterable[str | ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
                 devices: Iterable[str] = ()) -> None:
        if key is None:
            key = os.urandom(32)
        self.key = key.encode() if isinstance(key, str) else bytes(key)
        nets = [ipaddress.ip_network(n, strict=False) for n in (*INTERNAL_V4, *INTERNAL_V6, *internal)]
        self.networks = sorted(nets, key=lambda n: -n.prefixlen)      # most specific first
        self.device_v6 = {int(a) for a in map(_v6_or_none, devices) if a is not None}
        self.address = lru_cache(maxsize=1 << 16)(self._address)

    # -- one value ----------------------------------------------------------------------
    def _address(self, text: str) -> str:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return text
        for net in self.networks:
            if addr.version == net.version and addr in net:
                if addr.version == 6 and addr in LINK_LOCAL_V6:
                    return str(self._permute(addr, 64, b"ll6"))
                return str(self._permute(addr, addr.max_prefixlen - net.prefixlen, str(net).encode()))
        if addr.version == 6 and (addr in LINK_LOCAL_V6 or (int(addr) >> 24) & 0xFFFF == 0xFFFE
                                  or int(addr) in self.device_v6):
            return str(self._permute(addr, 64, b"eui64"))
        return text

    def _permute(self, addr, bits: int, domain: bytes):
        if bits <= 0:
            return addr
        value = int(addr)
        host = value & ((1 << bits) - 1)
        return ipaddress.ip_address(value - host + self._feistel(host, bits, domain))

    def _feistel(self, value: int, bits: int, domain: bytes) -> int:
        """A keyed permutation of [0, 2**bits): balanced Feistel rounds, cycle-walking when bits is odd."""
        width = bits + (bits & 1)
        half = width // 2
        mask = (1 << half) - 1
        while True:
            left, right = value >> half, value & mask
            for r in range(ROUNDS):
                digest = hmac.new(self.key, domain + bytes([r]) + right.to_bytes(16, "big"), hashlib.sha256).digest()
                left, right = right, left ^ (int.from_bytes(digest[:16], "big") & mask)
            value = (left << half) | right
            if value < 1 << bits:
                return value

    def tag(self, kind: str, text: str) -> str:
        digest = hmac.new(self.key, kind.encode() + b"\0" + text.lower().encode(), hashlib.sha256).hexdigest()
        return f"{kind}-{digest[:8]}"

    def text(self, value: str) -> str:
        """Every address and device name inside a text cell replaced."""
        value = _V4.sub(lambda m: self.address(m.group()), value)
        if ":" in value:
            value = _V6.sub(lambda m: self.address(m.group()), value)
        value = _LOCAL_NAME.sub(lambda m: self.tag("host", m.group(1)) + m.group(2), value)
        return _DEVICE_NAME.sub(lambda m: self.tag("device", m.group()), value)

    # -- whole tables -------------------------------------------------------------------
    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy with every text column's distinct values replaced (each value once)."""
        out = frame.copy()
        for name in out.columns:
            column = out[name]
            if not (pd.api.types.is_string_dtype(column) or column.dtype == object) or not len(column):
                continue
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            mapped = [self.text(v) if isinstance(v, str) else v for v in uniques]
            values = pd.array(mapped, dtype=column.dtype) if pd.api.types.is_string_dtype(column) else \
                pd.Series(mapped, dtype=object).array
            taken = values.take(codes, allow_fill=True)
            out[name] = pd.Series(taken, index=column.index, dtype=column.dtype)
        return out
