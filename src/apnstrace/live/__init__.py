"""Live capture: packets from an interface, in small batches, into the same engine as files
(pipeline.Session). backends.py captures, batch.py builds RawBatch chunks, rolling.py times
the report and the pcap rotation, view.py shows it, run.py ties them together."""
from .preflight import DEFAULT_BPF, LiveSetupError
from .run import LiveConfig, LiveOutcome, run_live

__all__ = ["DEFAULT_BPF", "LiveConfig", "LiveOutcome", "LiveSetupError", "run_live"]
