"""Issue 8: files read in parallel (processes, Dask) give exactly the single-process result;
flows datasets append and read back by date."""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path

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
    single = apnstrace.analyze(ROTATED)
    with caplog.at_level(logging.INFO, logger="apnstrace.scale.merge"):
        parallel = apnstrace.analyze(list(reversed(ROTATED)), workers=2)
    assert len(single.sequences) > 0 and replayed(caplog) > 0
    assert_same(single, parallel)


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
    assert_same(apnstrace.analyze(ROTATED), rotated)


def test_dataset_appends_and_reads_back_by_date(tmp_path: Path) -> None:
    first = apnstrace.analyze(ROTATED[0]).flows
    second = apnstrace.analyze(SAMPLES / "courier_push.pcap").flows
    root = tmp_path / "flows"
    write_flows(first, root, run="a")
    write_flows(second, root, run="b")
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


def test_cli_workers_and_dataset(tmp_path: Path, cli_runner=None) -> None:
    from click.testing import CliRunner
    from apnstrace.cli import cli
    out, data = tmp_path / "report", tmp_path / "flows"
    result = CliRunner().invoke(cli, ["analyze", "--workers", "2", "--dataset", str(data), "--run", "day1",
                                      "-o", str(out), *map(str, ROTATED)])
    assert result.exit_code == 0, result.output
    assert "Flows dataset:" in result.output
    flows = read_flows(data)
    assert len(flows) == len(apnstrace.analyze(ROTATED).flows)
