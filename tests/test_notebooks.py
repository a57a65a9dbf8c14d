"""The notebooks in notebooks/ run top to bottom on the sample captures (a failing cell fails the
suite), show what they promise (checked on the executed outputs, cells found by their tags), and
are committed without outputs."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import apnstrace

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SAMPLES = REPO / "sample_pcaps"
SITE = apnstrace.Site(mdm_hosts=["mdm.example.com:8443"])
CELL_TIMEOUT_S = 300

_executed: dict[str, nbformat.NotebookNode] = {}


def execute(path: Path, cwd: Path, tmp: Path | None = None) -> nbformat.NotebookNode:
    """Run the notebook as Jupyter would (kernel started in `cwd`); any cell error raises."""
    notebook = nbformat.read(path, as_version=4)
    with pytest.MonkeyPatch.context() as mp:
        if tmp is not None:
            mp.setenv("TMPDIR", str(tmp))          # the kernel inherits it: tempfile writes under tmp
        NotebookClient(notebook, timeout=CELL_TIMEOUT_S, startup_timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Each notebook executed once from notebooks/, shared by the tests of this module."""
    def get(name: str) -> nbformat.NotebookNode:
        if name not in _executed:
            _executed[name] = execute(NOTEBOOK_DIR / name, NOTEBOOK_DIR, tmp_path_factory.mktemp(name))
        return _executed[name]
    return get


def tagged(notebook: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    cells = [c for c in notebook.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def text_of(cell: nbformat.NotebookNode) -> str:
    """Everything a cell printed or displayed as text."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def has_image(cell: nbformat.NotebookNode) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def test_there_are_notebooks() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"investigate_a_capture.ipynb", "compare_before_after.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, \
                f"commit notebooks without outputs: {path.name} cell {cell.get('id')}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, executed) -> None:
    notebook = executed(path.name)
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_find_the_samples_from_the_repo_root(path: Path, tmp_path: Path) -> None:
    """The parameters cell alone, with the kernel started in the repository root instead."""
    notebook = nbformat.read(path, as_version=4)
    params = tagged(notebook, "parameters")
    names = re.findall(r"^([A-Z_]+) = .*SAMPLES /", params.source, re.M)
    assert names
    check = nbformat.v4.new_code_cell(
        "missing = [str(p) for name in %r for p in globals()[name] if not Path(p).is_file()]\n"
        "assert not missing, missing" % (names,))
    notebook.cells = [params, check]
    probe = tmp_path / path.name
    nbformat.write(notebook, probe)
    execute(probe, REPO)


# --- investigate_a_capture: what an admin reads, in order ----------------------------------------

@pytest.fixture(scope="module")
def site_result():
    return apnstrace.analyze(SAMPLES / "sequences_site.pcap", site=SITE)


def test_investigate_shows_the_verdicts_and_blocked_sentences(executed, site_result) -> None:
    notebook = executed("investigate_a_capture.ipynb")
    shown = text_of(tagged(notebook, "verdicts"))
    assert site_result.verdicts
    for verdict in site_result.verdicts:
        assert verdict.line() in shown
    assert "APNs: OK - 10 devices connected on 5223" in shown
    sentences = text_of(tagged(notebook, "blocked"))
    assert len(site_result.blocked) == 4
    for sentence in site_result.blocked["sentence"]:
        assert sentence in sentences
    assert "NXDOMAIN" in sentences


def test_investigate_shows_sequences_courier_timing(executed) -> None:
    notebook = executed("investigate_a_capture.ipynb")
    outcomes = text_of(tagged(notebook, "outcomes"))
    for outcome, n in [("checked_in", 6), ("no_checkin", 3), ("unsolicited_checkin", 2), ("checkin_blocked", 2)]:
        assert re.search(rf"{outcome}\s+{n}\b", outcomes), outcomes
    assert "no_response: TCP 8443" in text_of(tagged(notebook, "sequence-problems"))
    assert re.search(r"50%\s+0\.85", text_of(tagged(notebook, "latency")))
    assert "1 courier connection" in text_of(tagged(notebook, "courier"))
    assert "push_checkin_s" in text_of(tagged(notebook, "timing"))


def test_investigate_shows_charts_as_images(executed) -> None:
    notebook = executed("investigate_a_capture.ipynb")
    for tag in ("plot-timeline", "plot-latency", "plot-device"):
        cell = tagged(notebook, tag)
        assert "result.plot." in cell.source
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, f"{tag}: {len(images)} images (a figure shown twice, or not at all)"


def test_investigate_filters_one_device(executed) -> None:
    shown = text_of(tagged(executed("investigate_a_capture.ipynb"), "device"))
    assert shown.startswith("10.20.5.70")          # the device with the most blocked rows (two S0 to 8443)
    assert shown.count("no_response") == 2 and "apns-courier" in shown
    assert "checkin_blocked" in text_of(tagged(executed("investigate_a_capture.ipynb"), "device-sequences"))


def test_investigate_writes_the_report(executed) -> None:
    shown = text_of(tagged(executed("investigate_a_capture.ipynb"), "report"))
    match = re.search(r"report: (\S+report\.html) \(", shown)
    assert match, shown
    report = Path(match.group(1))
    html = report.read_text(encoding="utf-8")
    assert "10 devices connected on 5223" in html
    assert {p.name for p in report.parent.glob("*.parquet")} == {
        "flows.parquet", "sequences.parquet", "blocked.parquet", "timing.parquet", "courier.parquet"}


# --- compare_before_after: the firewall change fixed the 5223 block ------------------------------

def test_compare_shows_verdicts_side_by_side(executed) -> None:
    shown = text_of(tagged(executed("compare_before_after.ipynb"), "verdicts"))
    before = apnstrace.analyze(SAMPLES / "blocked_syn.pcap", site=SITE)
    after = apnstrace.analyze([SAMPLES / "courier_push.pcap", SAMPLES / "mdm_checkin.pcap"], site=SITE)
    for verdict in [*before.verdicts, *after.verdicts]:
        assert f"{verdict.level.upper()}: {verdict.text}" in shown
    assert "5223 dropped for 1 device" in shown and "OK - 1 device connected on 5223" in shown


def test_compare_shows_the_5223_block_gone(executed) -> None:
    notebook = executed("compare_before_after.ipynb")
    lines = text_of(tagged(notebook, "blocked-summary")).splitlines()
    gone = [line for line in lines if line.startswith("gone")]
    assert any(" apns 5223 no_response: 1 before, 0 after" in line for line in gone), lines
    assert any(" mdm 8443 reset: 1 before, 0 after" in line for line in gone), lines
    assert not [line for line in lines if line.startswith(("new", "still"))], lines
    ports = text_of(tagged(notebook, "courier-ports"))
    assert re.search(r"5223\s+1 blocked\s+1 up", ports), ports
    assert re.search(r"443\s+1 up\s+-", ports), ports


def test_compare_shows_pushes_answered_after(executed) -> None:
    notebook = executed("compare_before_after.ipynb")
    outcomes = text_of(tagged(notebook, "outcomes"))
    assert re.search(r"checked_in\s+0\s+1", outcomes), outcomes
    assert re.search(r"after\s+1\s+0\.8254", text_of(tagged(notebook, "latency")))
    for tag in ("figure", "plot-blocked"):
        assert has_image(tagged(notebook, tag)), tag
