"""Issue 8: files read in parallel (processes, Dask) give exactly the single-process result;
flows datasets append and read back by date."""
from __future__ import annotations

import gc
import logging
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import apnstrace
from apnstrace.scale import read_flows, write_flows
from conftest import CORPUS, SAMPLES

TABLES = ("flows", "sequences", "blocked", "timing", "courier", "icmp_errors")
ROTATED = [SAMPLES / "sequences_rot_a.pcap", SAMPLES / "sequences_rot_b.pcap"]


def assert_same(expected: apnstrace.Result, got: apnstrace.Result) -> None:
    for name in TABLES:        # every column and row, flow_id order included
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), obj=name)
    assert got.stats.as_dict() == expected.stats.as_dict()


def replayed(caplog) -> int:
    """Flow keys the merge replayed across file boundaries (from its log line)."""
    lines = [r.getMessage() for r in caplog.records if "replayed across boundaries" in r.getMessage()]
    assert lines, "the parallel path did not run"
    return int(lines[-1].split(": ")[1].split()[0])


def split(capture: Path, folder: Path, per_file: int) -> list[Path]:
    folder.mkdir()
    subprocess.run(["editcap", "-c", str(per_file), str(capture), str(folder / "part.pcap")], check=True)
    return sorted(folder.glob("part_*.pcap"))


def test_rotated_samples_two_workers_same_as_one_process(caplog) -> None:
    single = apnstrace.analyze(ROTATED, workers=1)
    with caplog.at_level(logging.INFO, logger="apnstrace.scale.merge"):
        parallel = apnstrace.analyze(list(reversed(ROTATED)), workers=2)
    assert len(single.sequences) > 0 and replayed(caplog) > 0
    assert_same(single, parallel)


def test_default_is_one_process_per_core_for_big_captures_and_one_for_a_single_file(monkeypatch, caplog) -> None:
    import apnstrace.scale.workers as workers
    monkeypatch.setattr(workers, "default_workers", lambda: 2)
    with caplog.at_level(logging.INFO, logger="apnstrace.scale.merge"):
        small = apnstrace.analyze(ROTATED)              # a few KB: one process does it sooner
    assert not [r for r in caplog.records if "replayed across boundaries" in r.getMessage()]
    monkeypatch.setattr(workers, "AUTO_MIN_BYTES", 1)
    with caplog.at_level(logging.INFO, logger="apnstrace.scale.merge"):
        by_default = apnstrace.analyze(ROTATED)
    replayed(caplog)                      # the files went through the parallel path
    assert_same(small, by_default)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="apnstrace.scale.merge"):
        apnstrace.analyze(ROTATED[0])
    assert not [r for r in caplog.records if "replayed across boundaries" in r.getMessage()]


@pytest.mark.parametrize("name, per_file", [("1kxun.pcap", 300), ("netflix.pcap", 150)])
def test_split_corpus_capture_two_workers_same_as_whole_capture(tmp_path: Path, caplog, name: str,
                                                                 per_file: int) -> None:
    capture = CORPUS / "pcap" / name
    parts = split(capture, tmp_path / "parts", per_file)
    assert len(parts) >= 4
    whole = apnstrace.analyze(capture)
    with caplog.at_level(logging.INFO, logger="apnstrace.scale.merge"):
        parallel = apnstrace.analyze(parts, workers=2)
    assert replayed(caplog) > 0          # flows did cross file boundaries
    for table in ("flows", "sequences", "blocked", "timing", "courier"):
        pd.testing.assert_frame_equal(getattr(parallel, table), getattr(whole, table), obj=table)
    assert parallel.flows["server_name"].notna().sum() > 10


def test_dask_local_cluster_two_workers_same_as_one_process(tmp_path: Path) -> None:
    parts = split(CORPUS / "pcap" / "1kxun.pcap", tmp_path / "parts", 400)
    single = apnstrace.analyze(parts, workers=1)
    on_dask = apnstrace.analyze(parts, dask="local", workers=2)
    assert_same(single, on_dask)
    rotated = apnstrace.analyze(ROTATED, dask="local", workers=2)
    assert_same(apnstrace.analyze(ROTATED, workers=1), rotated)


def _dataset_of_two_runs(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """Two results' flows appended as runs "a" and "b" to a new dataset."""
    first = apnstrace.analyze(ROTATED[0]).flows
    second = apnstrace.analyze(SAMPLES / "courier_push.pcap").flows
    root = tmp_path / "flows"
    write_flows(first, root, run="a")
    write_flows(second, root, run="b")
    return first, second, root


def test_dataset_appends_and_reads_back_by_date(tmp_path: Path) -> None:
    first, second, root = _dataset_of_two_runs(tmp_path)
    back = read_flows(root)
    assert len(back) == len(first) + len(second)
    assert sorted(back["run"].unique()) == ["a", "b"]
    mine = back[back["run"] == "a"].sort_values("flow_id").reset_index(drop=True)
    assert mine["flow_id"].tolist() == first["flow_id"].tolist()
    assert mine["sni"].tolist() == first["sni"].tolist()
    dates = sorted(p.name for p in root.iterdir())
    assert all(d.startswith("date=") for d in dates)
    day = dates[0].removeprefix("date=")
    only = read_flows(root, start=day, end=day)
    expected = pd.to_datetime(back["ts_start"], unit="s", utc=True).dt.strftime("%Y-%m-%d").eq(day).sum()
    assert len(only) == expected
    with pytest.raises(apnstrace.errors.InputError):
        write_flows(first, root, run="a")        # the same run twice would double its flows


def test_dataset_query_with_duckdb_matches_pandas(tmp_path: Path) -> None:
    """query() runs SQL over the partitioned dataset (the `date` and `run` columns included)."""
    from apnstrace.scale.dataset import query
    first, second, root = _dataset_of_two_runs(tmp_path)
    counts = query(root, "SELECT run, count(*) AS n, sum(bytes_c2s) AS up FROM flows GROUP BY run ORDER BY run")
    assert counts["run"].tolist() == ["a", "b"]
    assert counts["n"].tolist() == [len(first), len(second)]
    assert counts["up"].tolist() == [first["bytes_c2s"].sum(), second["bytes_c2s"].sum()]
    day = sorted(p.name for p in root.iterdir())[0].removeprefix("date=")
    got = query(root, f"SELECT flow_id, sni FROM flows WHERE date = '{day}' AND run = 'a' ORDER BY flow_id")
    expected = read_flows(root, start=day, end=day, runs=["a"], columns=["flow_id", "sni"])
    expected = expected.sort_values("flow_id").reset_index(drop=True)
    assert got["flow_id"].tolist() == expected["flow_id"].tolist()
    assert got["sni"].fillna("-").tolist() == expected["sni"].fillna("-").tolist()
    assert expected["sni"].notna().any()


def test_cli_workers_and_dataset(tmp_path: Path, cli_runner=None) -> None:
    from click.testing import CliRunner
    from apnstrace.cli import cli
    out, data = tmp_path / "report", tmp_path / "flows"
    result = CliRunner().invoke(cli, ["analyze", "--workers", "2", "--dataset", str(data), "--run", "day1",
                                      "-o", str(out), *map(str, ROTATED)])
    assert result.exit_code == 0, result.output
    assert "Flows dataset:" in result.output
    flows = read_flows(data)
    assert len(flows) == len(apnstrace.analyze(ROTATED, workers=1).flows)


def _hello_record(sni: str) -> bytes:
    from unit.test_parse_quic import client_hello
    hs = client_hello(sni, ("apns-security-v3",), pad=300)
    return b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs


def _dns_answer(name: str, addr: str) -> bytes:
    import ipaddress
    import struct
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00" + struct.pack("!HH", 1, 1)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + ipaddress.ip_address(addr).packed
    return struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + q + answer


def test_flows_cut_at_every_boundary_kind_merge_exactly(tmp_path: Path, caplog) -> None:
    """A ClientHello split across two files, a port reused after FIN (new flow in the next
    file), a SYN after payload, a DNS answer in the next file naming a later flow's server:
    every cut point gives the single-process result."""
    from conftest import T0_NS, ether, ip4, pcap, tcp, udp, write
    C, S, S2, R = "10.0.0.5", "17.57.144.10", "192.0.2.80", "10.0.0.1"
    hello = _hello_record("1-courier.push.apple.com")
    ms = 1_000_000
    frames = []

    def at(t_ms: float, frame: bytes) -> None:
        frames.append((T0_NS + int(t_ms * ms), ether(frame)))

    # Courier: handshake, hello in two segments, server data, keep-alives.
    at(0, ip4(C, S, 6, tcp(50000, 5223, "S", seq=100)))
    at(20, ip4(S, C, 6, tcp(5223, 50000, "SA", seq=900, ack=101)))
    at(21, ip4(C, S, 6, tcp(50000, 5223, "A", seq=101, ack=901)))
    at(22, ip4(C, S, 6, tcp(50000, 5223, "PA", seq=101, ack=901, payload=hello[:200])))
    at(23, ip4(C, S, 6, tcp(50000, 5223, "PA", seq=301, ack=901, payload=hello[200:])))
    for i in range(12):
        at(40 + 900 * i, ip4(S, C, 6, tcp(5223, 50000, "PA", seq=901 + 50 * i, ack=101 + len(hello),
                                           payload=bytes(50))))
        at(60 + 900 * i, ip4(C, S, 6, tcp(50000, 5223, "PA", seq=101 + len(hello) + 10 * i, ack=951 + 50 * i,
                                           payload=bytes(10))))
    # A connection closed with FIN both ways, then the same ports again (a new flow).
    for base, seq in ((100, 1000), (5000, 7000)):
        at(base, ip4(C, S2, 6, tcp(50001, 443, "S", seq=seq)))
        at(base + 5, ip4(S2, C, 6, tcp(443, 50001, "SA", seq=1, ack=seq + 1)))
        at(base + 6, ip4(C, S2, 6, tcp(50001, 443, "PA", seq=seq + 1, ack=2, payload=b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")))
        at(base + 30, ip4(S2, C, 6, tcp(443, 50001, "PA", seq=2, ack=seq + 30, payload=b"HTTP/1.1 200 OK\r\n\r\n")))
        at(base + 40, ip4(C, S2, 6, tcp(50001, 443, "FA", seq=seq + 30, ack=21)))
        at(base + 45, ip4(S2, C, 6, tcp(443, 50001, "FA", seq=21, ack=seq + 31)))
    # Payload, then a SYN on the same ports (not closed: no new flow), then TLS.
    at(200, ip4(C, S2, 6, tcp(50002, 8443, "PA", seq=5, payload=b"hello")))
    at(6000, ip4(C, S2, 6, tcp(50002, 8443, "S", seq=50)))
    at(6001, ip4(C, S2, 6, tcp(50002, 8443, "PA", seq=51, payload=_hello_record("mdm.example.com"))))
    # DNS: query early, answer later; a flow to the answered address after it.
    at(300, ip4(C, R, 17, udp(53000, 53, _dns_answer("cdn.example.net", "198.51.100.7")[:12])))
    at(7000, ip4(R, C, 17, udp(53, 53000, _dns_answer("cdn.example.net", "198.51.100.7"))))
    at(7100, ip4(C, "198.51.100.7", 6, tcp(50003, 443, "S", seq=1)))
    frames.sort(key=lambda f: f[0])
    whole = write(tmp_path / "whole.pcap", pcap(frames))
    expected = apnstrace.analyze(whole)
    assert len(expected.flows) >= 6 and expected.flows["sni"].notna().sum() == 2
    for cut in range(1, len(frames)):
        a = write(tmp_path / f"a{cut}.pcap", pcap(frames[:cut]))
        b = write(tmp_path / f"b{cut}.pcap", pcap(frames[cut:]))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="apnstrace.scale.merge"):
            got = apnstrace.analyze([b, a], workers=2)
        replayed(caplog)
        for table in ("flows", "sequences", "blocked", "timing", "courier"):
            pd.testing.assert_frame_equal(getattr(got, table), getattr(expected, table), obj=f"cut {cut}: {table}")


def test_keys_a_worker_did_not_keep_are_read_again(tmp_path: Path, caplog) -> None:
    """Workers spill only keys that look like they may cross (scale/boundary.py). A port reused
    by a SYN minutes into the next file while the earlier connection was left open, and a stray
    packet long after a close, cross all the same: the merge reads those files again and the
    result is the single-process one."""
    from conftest import T0_NS, ether, ip4, pcap, tcp, write
    C, S = "10.0.0.7", "192.0.2.44"
    s = 1_000_000_000
    first, second = [], []
    # File one (0-100 s): a connection left open, and one from 40 s closed at 50 s.
    first += [(T0_NS, ip4(C, S, 6, tcp(51000, 443, "S", seq=10))),
              (T0_NS + 1_000_000, ip4(S, C, 6, tcp(443, 51000, "SA", seq=90, ack=11))),
              (T0_NS + 2_000_000, ip4(C, S, 6, tcp(51000, 443, "PA", seq=11, ack=91, payload=b"GET / HTTP/1.1\r\n\r\n")))]
    first += [(T0_NS + 40 * s, ip4(C, S, 6, tcp(51001, 443, "S", seq=500))),
              (T0_NS + 40 * s + 1_000_000, ip4(S, C, 6, tcp(443, 51001, "SA", seq=7, ack=501))),
              (T0_NS + 41 * s, ip4(C, S, 6, tcp(51001, 443, "PA", seq=501, ack=8, payload=b"x" * 40))),
              (T0_NS + 50 * s, ip4(C, S, 6, tcp(51001, 443, "FA", seq=541, ack=8))),
              (T0_NS + 50 * s + 1_000_000, ip4(S, C, 6, tcp(443, 51001, "FA", seq=8, ack=542)))]
    first += [(T0_NS + 100 * s, ip4(C, S, 6, tcp(51002, 443, "S", seq=1)))]
    # File two (200-400 s): a stray ACK of the closed connection; the open one's ports again,
    # from a SYN 100 s in, with data, closed long before the file ends.
    second += [(T0_NS + 200 * s, ip4(C, S, 6, tcp(51003, 443, "S", seq=1))),
               (T0_NS + 210 * s, ip4(C, S, 6, tcp(51001, 443, "A", seq=542, ack=9))),
               (T0_NS + 300 * s, ip4(C, S, 6, tcp(51000, 443, "S", seq=7000))),
               (T0_NS + 300 * s + 1_000_000, ip4(S, C, 6, tcp(443, 51000, "SA", seq=3, ack=7001))),
               (T0_NS + 301 * s, ip4(C, S, 6, tcp(51000, 443, "PA", seq=7001, ack=4, payload=b"y" * 30))),
               (T0_NS + 302 * s, ip4(C, S, 6, tcp(51000, 443, "FA", seq=7031, ack=4))),
               (T0_NS + 302 * s + 1_000_000, ip4(S, C, 6, tcp(443, 51000, "FA", seq=4, ack=7032))),
               (T0_NS + 400 * s, ip4(C, S, 6, tcp(51003, 443, "S", seq=1)))]
    frames = [(t, ether(f)) for t, f in first + second]
    whole = write(tmp_path / "whole.pcap", pcap(frames))
    a = write(tmp_path / "a.pcap", pcap(frames[:len(first)]))
    b = write(tmp_path / "b.pcap", pcap(frames[len(first):]))
    expected = apnstrace.analyze(whole)
    with caplog.at_level(logging.INFO, logger="apnstrace.scale.merge"):
        got = apnstrace.analyze([a, b], workers=2)
    again = [r.getMessage() for r in caplog.records if "reading again" in r.getMessage()]
    assert any(m.startswith(str(a)) for m in again) and any(m.startswith(str(b)) for m in again)
    for table in ("flows", "sequences", "blocked", "timing", "courier"):
        pd.testing.assert_frame_equal(getattr(got, table), getattr(expected, table), obj=table)


def test_a_file_starting_before_the_previous_one_ends_is_read_from_that_clock(tmp_path: Path, caplog) -> None:
    """The second file starts 0.3 s before the first one's last frame (a capture reordered at
    the cut). Its worker's clock starts lower than the single-process clock; here that makes a
    difference: key C's second frame comes 120.15 s after C's first by the worker's clock (a new
    flow past the 120 s UDP timeout) but 119.85 s by the real one (the same flow). The merge
    reads the file again from the real clock."""
    from conftest import T0_NS, ether, ip4, pcap, udp, write
    C, S = "10.0.0.7", "192.0.2.53"

    def at(t: float, port: int) -> tuple:
        return T0_NS + round(t * 1e9), ether(ip4(C, S, 17, udp(port, 53, b"q" * 12)))

    first = [at(0.0, 7000), at(10.5, 7001)]
    second = [at(10.2, 7002), at(130.35, 7003), at(130.15, 7002)]
    whole = write(tmp_path / "whole.pcap", pcap(first + second))
    a = write(tmp_path / "a.pcap", pcap(first))
    b = write(tmp_path / "b.pcap", pcap(second))
    expected = apnstrace.analyze(whole)
    assert sorted(expected.flows.loc[expected.flows["client_port"] == 7002, "pkts_c2s"]) == [2]
    with caplog.at_level(logging.INFO, logger="apnstrace.scale.merge"):
        got = apnstrace.analyze([a, b], workers=2)
    assert any(str(b) in r.getMessage() and "from that clock" in r.getMessage() for r in caplog.records)
    for table in ("flows", "sequences", "blocked", "timing", "courier"):
        pd.testing.assert_frame_equal(getattr(got, table), getattr(expected, table), obj=table)


def test_unreachable_dask_scheduler_is_one_sentence(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from apnstrace.cli import cli
    result = CliRunner().invoke(cli, ["analyze", "--dask", "tcp://127.0.0.1:9", "-o", str(tmp_path / "r"),
                                      *map(str, ROTATED)])
    assert result.exit_code == 2, result.output
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output


def test_bad_cut_gzip_and_pcapng_files_give_the_same_result_and_problems(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_text("hello, not a capture")
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((SAMPLES / "sequences_rot_a.pcap").read_bytes()[:20000])
    paths = [junk, cut, ROTATED[1], SAMPLES / "courier_push.pcap.gz", SAMPLES / "site_mixed.pcapng"]
    with pytest.warns(UserWarning):
        single = apnstrace.analyze(paths, workers=1)
    with pytest.warns(UserWarning):
        parallel = apnstrace.analyze(paths, workers=2)
    assert len(single.problems) == 2 and len(single.flows) > 10
    assert_same(single, parallel)


def _crossing_frames() -> list[tuple[int, bytes]]:
    """Devices whose courier connections (ClientHello split in two segments, keep-alives, server
    pushes) cross every boundary of a split into several files, DNS answers for later flows,
    short HTTP flows closed within a file and a port reused after a close."""
    from conftest import T0_NS, ether, ip4, tcp, udp
    S, R = "17.57.144.10", "10.0.0.1"
    ms = 1_000_000
    frames = []

    def at(t_ms: float, frame: bytes) -> None:
        frames.append((T0_NS + int(t_ms * ms), ether(frame)))

    for d in range(8):
        C = f"10.0.1.{10 + d}"
        hello = _hello_record(f"{d}-courier.push.apple.com")
        port, t0 = 50000 + d, 7 * d
        at(t0, ip4(C, S, 6, tcp(port, 5223, "S", seq=100)))
        at(t0 + 20, ip4(S, C, 6, tcp(5223, port, "SA", seq=900, ack=101)))
        at(t0 + 21, ip4(C, S, 6, tcp(port, 5223, "A", seq=101, ack=901)))
        at(t0 + 22, ip4(C, S, 6, tcp(port, 5223, "PA", seq=101, ack=901, payload=hello[:150])))
        at(t0 + 23, ip4(C, S, 6, tcp(port, 5223, "PA", seq=251, ack=901, payload=hello[150:])))
        for i in range(30):
            t = t0 + 40 + 1000 * i + 37 * d
            at(t, ip4(S, C, 6, tcp(5223, port, "PA", seq=901 + 60 * i, ack=101 + len(hello), payload=bytes(60))))
            at(t + 15, ip4(C, S, 6, tcp(port, 5223, "PA", seq=101 + len(hello) + 10 * i, ack=961 + 60 * i,
                                         payload=bytes(10))))
        # A DNS answer, then an HTTP flow to the answered address, closed; the port again later.
        addr = f"198.51.100.{20 + d}"
        at(3000 + 500 * d, ip4(R, C, 17, udp(53, 40000 + d, _dns_answer(f"mdm{d}.example.net", addr))))
        for base, seq in ((3100 + 500 * d, 1000), (17000 + 900 * d, 5000)):
            at(base, ip4(C, addr, 6, tcp(41000 + d, 80, "S", seq=seq)))
            at(base + 4, ip4(addr, C, 6, tcp(80, 41000 + d, "SA", seq=1, ack=seq + 1)))
            at(base + 5, ip4(C, addr, 6, tcp(41000 + d, 80, "PA", seq=seq + 1, ack=2,
                                             payload=b"GET /mdm HTTP/1.1\r\nHost: mdm\r\n\r\n")))
            at(base + 900, ip4(addr, C, 6, tcp(80, 41000 + d, "PA", seq=2, ack=seq + 33,
                                               payload=b"HTTP/1.1 200 OK\r\n\r\n")))
            at(base + 950, ip4(C, addr, 6, tcp(41000 + d, 80, "FA", seq=seq + 33, ack=21)))
            at(base + 951, ip4(addr, C, 6, tcp(80, 41000 + d, "FA", seq=21, ack=seq + 34)))
    frames.sort(key=lambda f: f[0])
    return frames


@pytest.mark.parametrize("workers", [2, 3])
def test_replay_shards_give_the_single_process_result(tmp_path: Path, caplog, workers: int) -> None:
    """Keys crossing several files are replayed in one shard per worker process (split by key
    hash): the result is the single-process one, and each shard replayed keys."""
    from conftest import pcap, write
    from apnstrace.scale.replay import shard_of
    frames = _crossing_frames()
    whole = write(tmp_path / "whole.pcap", pcap(frames))
    expected = apnstrace.analyze(whole)
    assert len(expected.flows) >= 30 and expected.flows["sni"].notna().sum() == 8
    cuts = np.linspace(0, len(frames), 6).astype(int)
    parts = [write(tmp_path / f"p{i}.pcap", pcap(frames[a:b])) for i, (a, b) in enumerate(zip(cuts, cuts[1:]))]
    with caplog.at_level(logging.INFO, logger="apnstrace.scale.merge"):
        got = apnstrace.analyze(parts, workers=workers)
    assert replayed(caplog) >= 8
    assert f"in {workers} shards" in caplog.text
    for table in ("flows", "sequences", "blocked", "timing", "courier"):
        pd.testing.assert_frame_equal(getattr(got, table), getattr(expected, table), obj=table)
    assert_same(apnstrace.analyze(parts, workers=1), got)
    keys = np.array([key for key in range(1, 10_000)], np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    assert sorted(np.unique(shard_of(keys, workers)).tolist()) == list(range(workers))


def test_spill_folder_is_removed_once_the_merge_is_done_with_it(tmp_path: Path, monkeypatch) -> None:
    """The merge reports when it no longer reads the spill (after the replay): the folder is then
    removed beside the stages over all flows, and nothing is left in --spill-dir afterwards."""
    import apnstrace.scale.workers as workers
    real, seen = workers.merge, []

    def merge(*args, spill_done, **kwargs):
        def done():
            folders = list((tmp_path / "spill").glob("apnstrace-spill-*/file-*"))
            seen.append(len(folders))
            spill_done()
        return real(*args, spill_done=done, **kwargs)

    monkeypatch.setattr(workers, "merge", merge)
    (tmp_path / "spill").mkdir()
    got = apnstrace.analyze(ROTATED, workers=2, spill_dir=tmp_path / "spill")
    assert seen == [len(ROTATED)]               # called once, with every file's spill still there
    assert list((tmp_path / "spill").iterdir()) == []
    assert gc.get_freeze_count() == 0           # the caller's objects are not left frozen by the fork
    assert_same(apnstrace.analyze(ROTATED, workers=1), got)
