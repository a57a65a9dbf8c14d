"""The metadata collector beside the engine (beside.py, Session(beside=True)): the same results
as in turn, errors not lost, calls in order, and the compiled kernels releasing the GIL."""
from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

import apnstrace.pipeline as pipeline
from apnstrace.beside import Beside
from apnstrace.options import FlowOptions
from apnstrace.pipeline import Session, _fast_flows
from conftest import CORPUS, SAMPLE_CAPTURES

TABLES = ("flows", "icmp_errors", "blocked", "timing", "courier", "sequences")
# TLS (hellos split over segments, server flights, alerts), DNS over UDP and TCP, HTTP, QUIC
# and captures that count malformed payloads: every path of the collector.
CORPUS_CAPTURES = ("tls_certificate_too_long.pcap", "dns-tunnel-iodine.pcap", "http-manipulated.pcap",
                   "quic-29.pcap", "whatsapp_login_call.pcap", "dns_long_domainname.pcap", "tls-appdata.pcap",
                   "ookla.pcap", "malformed_dns.pcap", "smb_deletefile.pcap", "tls_cipher_lens.pcap",
                   "quic-mvfst-22_decryption_error.pcap", "badpackets.pcap", "rtsp.pcap")


def _run(path, beside: bool):
    # Small chunks: many chunks in flight, each handed over while the engine reads the next.
    session = Session(FlowOptions(chunk_bytes=16 << 10), beside=beside)
    _fast_flows([path], session, None)
    return session.finish()


def _captures():
    chosen = [CORPUS / "pcap" / name for name in CORPUS_CAPTURES]
    missing = [p.name for p in chosen if not p.exists()]
    assert not missing, f"corpus captures missing: {missing}"
    return list(SAMPLE_CAPTURES) + chosen


@pytest.mark.parametrize("path", _captures(), ids=lambda p: p.name)
def test_beside_gives_what_in_turn_gives(path):
    alone, beside = _run(path, beside=False), _run(path, beside=True)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(beside, name), getattr(alone, name), obj=name)
    assert beside.stats.as_dict() == alone.stats.as_dict()


def test_beside_counts_the_collectors_malformed_payloads():
    """The collector counts into stats of its own in its thread; they reach the result's."""
    path = CORPUS / "pcap" / "badpackets.pcap"
    alone = _run(path, beside=False)
    assert alone.stats.malformed["dns_answer_truncated"] == 25      # the collector's DNS reads count these
    assert _run(path, beside=True).stats.malformed == alone.stats.malformed


def test_calls_run_in_order_one_at_a_time_in_another_thread():
    beside, seen, busy = Beside(), [], []
    lock = threading.Lock()

    def work(i):
        with lock:
            busy.append(i)
            assert len(busy) == 1, "two calls at once"
        time.sleep(0.002)
        seen.append((i, threading.get_ident()))
        with lock:
            busy.remove(i)

    for i in range(20):
        beside.run(work, i)
    beside.close()
    assert [i for i, _ in seen] == list(range(20))
    assert {t for _, t in seen} != {threading.get_ident()}


def test_an_error_in_the_thread_is_raised_to_the_caller():
    beside = Beside()
    beside.run(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        beside.wait()
    beside.run(lambda: None)        # usable after the error was raised
    beside.close()


def test_the_next_call_raises_the_error_of_the_one_before():
    beside = Beside()
    ran = []
    beside.run(lambda: [][1])
    with pytest.raises(IndexError):
        beside.run(ran.append, 1)
    assert ran == []                # not started: the caller stops at the error
    beside.close()


def test_analyze_uses_a_second_thread_only_with_a_second_core(monkeypatch):
    made = []
    real = pipeline.Session

    class Spy(real):
        def __init__(self, *args, **kwargs):
            made.append(kwargs.get("beside"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pipeline, "Session", Spy)
    path = SAMPLE_CAPTURES[0]
    for cores, expected in ((1, False), (2, True)):
        monkeypatch.setattr(pipeline, "cores_available", lambda cores=cores: cores)
        pipeline.analyze([path])
        assert made[-1] is expected


def test_every_compiled_kernel_releases_the_gil():
    """A kernel holding the GIL stalls the other thread for its whole run (njit's default)."""
    import importlib
    import pkgutil

    import numba

    import apnstrace
    kernels = []
    for info in pkgutil.walk_packages(apnstrace.__path__, "apnstrace."):
        if info.name.endswith("__main__") or info.name.startswith(("apnstrace.live", "apnstrace.engines")):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher) and value.__module__ == info.name:
                kernels.append((info.name, name, value.targetoptions.get("nogil", False)))
    assert len(kernels) > 50
    holding = [f"{m}.{n}" for m, n, nogil in kernels if not nogil]
    assert not holding, f"kernels holding the GIL: {holding}"


def test_a_kernel_runs_while_another_thread_runs_python():
    """Released in fact: a long compiled loop in one thread leaves the GIL to the other."""
    from apnstrace.reader.walk import njit

    @njit(cache=False)
    def spin(n):
        total = 0
        for i in range(n):
            total += i % 7
        return total

    spin(10)
    done = threading.Event()
    counted = [0]

    def python_loop():
        while not done.is_set():
            counted[0] += 1

    other = threading.Thread(target=python_loop)
    other.start()
    try:
        before = counted[0]
        spin(np.int64(400_000_000))           # ~0.3 s compiled, with no GIL
        during = counted[0] - before
    finally:
        done.set()
        other.join()
    assert during > 1000, f"the Python thread ran {during} times while the kernel ran"


def test_a_beside_dropped_unclosed_ends_its_thread():
    """A run that failed part-way drops its Session without finish(): no thread is left behind."""
    import gc
    beside = Beside(name="dropped-beside")
    beside.run(lambda: None)
    beside.wait()
    thread = beside._thread
    del beside
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_call_lets_its_arguments_go_before_it_is_done():
    """The caller reads the next chunk once wait() returns: the last one's window is gone by then."""
    import weakref

    class Window:
        pass

    beside, window = Beside(), Window()
    ref = weakref.ref(window)
    beside.run(lambda w: None, window)
    del window
    beside.wait()
    assert ref() is None
    beside.close()
