"""Push -> check-in -> follow-up sequences (docs/sequences.md)."""
from .activity import Activity, ActivityCollector
from .build import build_sequences

__all__ = ["Activity", "ActivityCollector", "build_sequences"]
