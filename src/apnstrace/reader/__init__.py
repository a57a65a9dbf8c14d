"""Capture files -> RawBatch chunks (pcap, pcapng, gzip-compressed either)."""
from .stream import first_timestamp, iter_batches, order_by_time

__all__ = ["iter_batches", "first_timestamp", "order_by_time"]
