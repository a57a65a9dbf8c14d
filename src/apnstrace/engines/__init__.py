"""Alternative flow engines: `scapy_engine` is the slow, obvious reference for the fast engine."""
