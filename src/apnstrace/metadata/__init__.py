"""TLS, DNS and HTTP metadata from the few packets that carry it, attached to flows."""
from .attach import NAME_SOURCE, attach
from .collect import MetadataCollector

__all__ = ["MetadataCollector", "attach", "NAME_SOURCE"]
