"""tls_expectations.toml -> what each Apple service's real TLS server looks like, checked on load."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ..errors import ConfigError

SOURCE = "tls_expectations.toml"


@dataclass(frozen=True, slots=True)
class TlsExpectation:
    service: str
    issuer_contains: tuple[str, ...]       # a visible leaf issuer must contain one of these
    client_alpn: re.Pattern | None         # when the client offered one of these ...
    server_alpn: re.Pattern | None         # ... a TLS <= 1.2 server must select one of these

    def issuer_is_expected(self, issuer: str) -> bool:
        text = issuer.casefold()
        return any(part.casefold() in text for part in self.issuer_contains)


@dataclass(frozen=True, slots=True)
class TlsExpectations:
    teardown_s: float
    services: dict[str, TlsExpectation]


@cache
def tls_expectations() -> TlsExpectations:
    text = resources.files(__package__).joinpath(SOURCE).read_text("utf-8")
    return load_expectations(text)


def load_expectations(text: str, source: str = SOURCE) -> TlsExpectations:
    try:
        raw = tomllib.loads(text)
        teardown = float(raw.get("teardown_s", 1.0))
        services = {}
        for i, entry in enumerate(raw.get("service", [])):
            where = f"service #{i + 1}"
            name = entry.get("service")
            if not isinstance(name, str) or not name:
                raise ValueError(f"{where} has no service name")
            unknown = set(entry) - {"service", "issuer_contains", "client_alpn", "server_alpn", "source"}
            if unknown:
                raise ValueError(f"{where} ({name}): unknown key {sorted(unknown)[0]!r}")
            services[name] = TlsExpectation(name, tuple(_strings(entry, "issuer_contains", where)),
                                            _globs(_strings(entry, "client_alpn", where)),
                                            _globs(_strings(entry, "server_alpn", where)))
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return TlsExpectations(teardown, services)


def _strings(entry: dict, key: str, where: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}: {key} must be a list of non-empty strings")
    return value


def _globs(patterns: list[str]) -> re.Pattern | None:
    """ALPN globs, each matching one whole entry of a comma-separated list."""
    if not patterns:
        return None
    body = "|".join("".join(".*" if c == "*" else re.escape(c) for c in p) for p in patterns)
    return re.compile(f"(?:^|,)(?:{body})(?:,|$)", re.IGNORECASE)
