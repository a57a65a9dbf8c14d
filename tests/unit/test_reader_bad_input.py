"""Spec section 6 in the library: a broken file is named with its record and what is wrong,
everything before the break is kept, and nothing but CaptureError ever comes out."""
from __future__ import annotations

import gzip

import pytest
from conftest import BAD_INPUTS, SAMPLES, T0_NS, conversation, pcap, read_all, write

import apnstrace
from apnstrace.errors import CaptureError
from apnstrace.options import FlowOptions


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda b: b.name)
def test_bad_input_in_the_library(tmp_path, bad):
    path = bad.write(tmp_path)
    if bad.records_kept == 0:
        with pytest.raises(CaptureError) as caught:
            apnstrace.analyze(path)
        assert str(caught.value) == bad.line(path)
        assert caught.value.path == str(path)
    else:
        with pytest.warns(UserWarning) as warned:
            result = apnstrace.analyze(path)
        assert result.problems == [bad.line(path)]
        assert [str(w.message) for w in warned] == [bad.line(path)]
        assert result.stats.records == bad.records_kept
        assert len(result.flows) == bad.flows_kept


@pytest.mark.parametrize("bad", [b for b in BAD_INPUTS if b.records_kept], ids=lambda b: b.name)
def test_everything_before_the_break_is_kept(tmp_path, bad):
    path = bad.write(tmp_path)
    with pytest.warns(UserWarning):
        flows = apnstrace.analyze(path).flows
    with pytest.warns(UserWarning):
        small = apnstrace.analyze(path, options=FlowOptions(chunk_bytes=4096)).flows
    assert flows["pkts_c2s"].sum() + flows["pkts_s2c"].sum() == bad.records_kept
    assert flows.equals(small)


def test_cut_record_keeps_the_exact_frames_before_it(tmp_path):
    frames = conversation(6, payload=b"x" * 30)
    path = write(tmp_path / "cut.pcap", pcap(frames)[:-10])
    rows, stats, _ = read_all(path)
    assert [r["data"] for r in rows] == [f for _, f in frames[:5]]
    assert len(stats.problems) == 1
    assert stats.problems[0].records_read == 5 and stats.problems[0].path == str(path)


def test_gzip_corrupt_in_the_middle_keeps_the_first_member(tmp_path):
    bad = next(b for b in BAD_INPUTS if b.name == "gzip-corrupt-in-the-middle")
    rows, stats, _ = read_all(bad.write(tmp_path))
    assert [r["record"] for r in rows] == list(range(1, 26))
    assert [p.message for p in stats.problems] == [bad.line(tmp_path / bad.filename)]


def test_gzip_header_corrupt_is_a_capture_error(tmp_path):
    packed = bytearray(gzip.compress(pcap(conversation(4)), mtime=0))
    packed[10] = 0xFF                                  # the first deflate block has type 3
    path = write(tmp_path / "head.pcap.gz", bytes(packed))
    with pytest.raises(CaptureError) as caught:
        apnstrace.analyze(path)
    assert str(caught.value) == f"{path}: gzip data is corrupt: Error -3 while decompressing data: invalid block type"


def test_a_directory_is_not_a_capture(tmp_path):
    with pytest.raises(CaptureError, match=r"is a directory, not a capture file$"):
        apnstrace.analyze(tmp_path)


@pytest.mark.parametrize("head,what", [
    (bytes.fromhex("34cdb2a1"), "a modified (Kuznetzov) pcap file, which apnstrace does not read"),
    (b"\x00\x00\x00\x00", "not a pcap or pcapng capture (starts with bytes 00 00 00 00)"),
    (b"PK\x03\x04", "not a pcap or pcapng capture (starts with bytes 50 4b 03 04)"),
])
def test_other_formats_are_named(tmp_path, head, what):
    path = write(tmp_path / "other.cap", head + b"\x00" * 60)
    with pytest.raises(CaptureError) as caught:
        apnstrace.analyze(path)
    assert str(caught.value).startswith(f"{path}: {what}")


def test_one_bad_file_among_good_ones_keeps_the_good_ones(tmp_path):
    junk = write(tmp_path / "junk.pcap", b"hello, world\n")
    good = SAMPLES / "courier_push.pcap"
    with pytest.warns(UserWarning):
        result = apnstrace.analyze([junk, good])
    alone = apnstrace.analyze(good)
    assert result.flows.equals(alone.flows)
    assert result.problems == [f"{junk}: not a pcap or pcapng capture (starts with bytes 68 65 6c 6c)"]


def test_every_file_bad_raises_the_first_problem(tmp_path):
    junk = write(tmp_path / "a.txt", b"hello, world\n")
    empty = write(tmp_path / "b.pcap", b"")
    with pytest.raises(CaptureError) as caught:
        apnstrace.analyze([junk, empty])
    assert str(caught.value) in (f"{junk}: not a pcap or pcapng capture (starts with bytes 68 65 6c 6c)",
                                 f"{empty}: file is empty, not a capture")


def test_no_files_and_unknown_engine_are_input_errors():
    with pytest.raises(apnstrace.InputError, match="no capture files given"):
        apnstrace.analyze([])
    with pytest.raises(apnstrace.InputError, match="unknown engine 'nope'"):
        apnstrace.analyze(SAMPLES / "courier_push.pcap", engine="nope")


def test_record_after_a_cut_file_in_a_rotation_is_still_read(tmp_path):
    frames = conversation(9, step_ns=10**9)
    cut = write(tmp_path / "1.pcap", pcap(frames[:4])[:-5])
    rest = write(tmp_path / "2.pcap", pcap(frames[4:]))
    with pytest.warns(UserWarning):
        result = apnstrace.analyze([rest, cut])
    assert result.stats.records == 8
    flow = result.flows.iloc[0]
    assert flow["pkts_c2s"] + flow["pkts_s2c"] == 8
    assert flow["ts_start"] == pytest.approx(T0_NS / 1e9, abs=1e-6)
    assert result.problems == [f"{cut}, record 4: file cut short in the middle of a record "
                               f"({16 + len(frames[3][1]) - 5} bytes left over)"]
