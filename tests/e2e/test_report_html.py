"""report.html rendered in Debian's headless Chromium: the verdict on the first screen, the
evidence in the page, hostile capture strings shown as text, and no request leaving the file.

Each report is opened once (one screenshot at 1280x800 plus --dump-dom in the same run).
"""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import apnstrace
from apnstrace.report import html as report_html
from apnstrace.report.html import OUTCOMES, render_html

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
WIDTH, HEIGHT = 1280, 800
# Verdict backgrounds in report.css.j2 (--ok-bg, --info-bg, --warn-bg, --fail-bg).
LEVEL_BG = {"ok": (0xE6, 0xF6, 0xEA), "info": (0xE7, 0xF1, 0xFC), "warn": (0xFF, 0xF4, 0xCC),
            "fail": (0xFD, 0xEC, 0xEB)}
BLOCK_TAGS = {"div", "p", "li", "tr", "td", "th", "br", "h1", "h2", "h3", "dt", "dd", "section",
              "header", "footer", "nav", "figure", "table", "ul"}
URL_ATTRS = {"src", "href", "action", "formaction", "poster", "data", "srcset", "background", "xlink:href"}


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is missing: the report tests render report.html in Debian's headless "
                    "Chromium. `make test` installs it (Makefile target `chromium`), or run "
                    "`sudo apt-get install chromium`.")
    return path


def _open_in_chromium(page: Path, shot: Path, profile: Path) -> str:
    """Screenshot at 1280x800 and the DOM after scripts ran, in one Chromium run."""
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
           "--host-resolver-rules=MAP * ~NOTFOUND",          # nothing could be fetched anyway
           f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}", "--dump-dom", page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


class Page(HTMLParser):
    """The few things the tests read from a page: its text, its tables, its verdict lines,
    its scripts, event-handler attributes and URL attributes."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.scripts: list[dict] = []
        self.script_text: list[str] = []
        self.handlers: list[tuple[str, str, str]] = []
        self.urls: list[tuple[str, str, str]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.verdicts: list[tuple[str, str]] = []      # (class attribute, text)
        self.root: dict = {}
        self._skip = 0
        self._table = self._row = self._cell = None
        self._verdict = None
        self.feed(markup)
        self.close()
        self.text = _norm("".join(self.chunks))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.root = attrs
        for name, value in attrs.items():
            if name.startswith("on"):
                self.handlers.append((tag, name, value or ""))
            if name in URL_ATTRS:
                self.urls.append((tag, name, value or ""))
        if tag == "script":
            self.scripts.append(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "table":
            self._table = attrs.get("id", f"table-{len(self.tables)}")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
            self.tables[self._table].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            self._row.append(self._cell)
        if tag == "li" and "verdict" in (attrs.get("class") or "").split():
            self._verdict = (attrs["class"], [])
        self._data(" " if tag in BLOCK_TAGS else "")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        self._data(" " if tag in BLOCK_TAGS else "")
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "li" and self._verdict is not None:
            self.verdicts.append((self._verdict[0], _norm("".join(self._verdict[1]))))
            self._verdict = None

    def handle_data(self, data):
        if self._skip:
            self.script_text.append(data)
            return
        self._data(data)

    def _data(self, data: str) -> None:
        self.chunks.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._verdict is not None:
            self._verdict[1].append(data)

    def rows(self, table: str) -> list[list[str]]:
        """Body rows of a table, each a list of normalized cell texts."""
        return [[_norm("".join(c)) for c in row] for row in self.tables[table][1:]]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _verdict_bands(path: Path) -> list[str]:
    """Levels of the verdict boxes seen top to bottom in the screenshot, read from a pixel
    column just inside each box's coloured left edge."""
    from PIL import Image
    image = Image.open(path).convert("RGB")
    x = 38
    runs: list[list] = []                 # [level, height]
    for y in range(image.height):
        pixel = image.getpixel((x, y))
        level = next((lv for lv, bg in LEVEL_BG.items()
                      if all(abs(a - b) <= 3 for a, b in zip(pixel, bg))), None)
        if runs and runs[-1][0] == level:
            runs[-1][1] += 1
        else:
            runs.append([level, 1])
    # A verdict box is at least 30 px tall; the outcome pills further down are about 20.
    return [level for level, height in runs if level is not None and height >= 30]


# ---------------------------------------------------------------- reports, rendered once

CASES = {
    "sequences": ("sequences_site.pcap", apnstrace.Site(mdm_hosts=["mdm.example.com:8443"])),
    "blocked": ("blocked_reasons.pcap", None),
    "hostile": ("hostile_strings.pcap", None),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """name -> (result, report.html path, raw HTML, screenshot path, Page of the dumped DOM)."""
    _chromium()
    out = {}
    for name, (capture, site) in CASES.items():
        folder = tmp_path_factory.mktemp(f"report_{name}")
        result = apnstrace.analyze(SAMPLES / capture, site=site)
        page = result.to_html(folder / "report.html")
        shot = folder / "screen.png"
        dom = _open_in_chromium(page, shot, folder / "profile")
        out[name] = (result, page, page.read_text(encoding="utf-8"), shot, Page(dom))
    return out


# ---------------------------------------------------------------- (1) the answer and the evidence

@pytest.mark.parametrize("name", ["sequences", "blocked"])
def test_verdict_fits_the_first_screen_in_its_colours(rendered, name):
    result, _, _, shot, _ = rendered[name]
    assert _png_size(shot) == (WIDTH, HEIGHT)
    assert _verdict_bands(shot) == [v.level for v in result.verdicts]


@pytest.mark.parametrize("name", ["sequences", "blocked"])
def test_every_verdict_line_is_in_the_page(rendered, name):
    result, _, _, _, page = rendered[name]
    assert len(page.verdicts) == len(result.verdicts)
    for (cls, text), v in zip(page.verdicts, result.verdicts):
        assert cls == f"verdict level-{v.level}"
        assert text == _norm(f"{report_html.LEVEL_LABEL[v.level]} {v.topic} {v.text}")
        assert _norm(v.text) in page.text


@pytest.mark.parametrize("name", ["sequences", "blocked"])
def test_blocked_table_has_every_sentence_worst_first(rendered, name):
    result, _, _, _, page = rendered[name]
    rows = page.rows("blocked-table")
    assert len(result.blocked) > 0
    assert [r[-1] for r in rows] == [_norm(s) for s in result.blocked["sentence"]]
    assert [r[2] for r in rows] == list(result.blocked["reason"])
    for sentence in result.blocked["sentence"]:
        assert _norm(sentence) in page.text


@pytest.mark.parametrize("name", ["sequences", "blocked"])
def test_sequence_outcomes_worst_first(rendered, name):
    result, _, _, _, page = rendered[name]
    header = [_norm("".join(c)) for c in page.tables["sequences-table"][0]]
    outcome_at, device_at = header.index("Outcome"), header.index("Device")
    rows = page.rows("sequences-table")
    labels = {label: key for key, (label, _) in OUTCOMES.items()}
    shown = [labels[r[outcome_at]] for r in rows]
    assert sorted(shown) == sorted(result.sequences["outcome"])
    rank = list(OUTCOMES)
    assert [rank.index(o) for o in shown] == sorted(rank.index(o) for o in shown)
    for key, (label, _) in OUTCOMES.items():
        count = int((result.sequences["outcome"] == key).sum())
        if count:
            assert f"{label}: {count}" in page.text
    assert sorted(r[device_at] for r in rows) == sorted(result.sequences["device_ip"])


def test_site_report_shows_courier_timing_charts_flows_and_capture_facts(rendered):
    result, _, raw, _, page = rendered["sequences"]
    assert len(page.rows("courier-table")) == len(result.courier)
    assert {r[0] for r in page.rows("courier-table")} == set(result.courier["device_ip"])
    assert "push -> check-in" in page.text
    assert len(page.rows("flows-table")) == len(result.flows)
    assert f"All {len(result.flows)} flows" in page.text
    # blocked flows lead the flows table
    first = page.rows("flows-table")[:int(result.flows["blocked"].sum())]
    assert {int(r[0]) for r in first} == set(result.flows.loc[result.flows["blocked"].to_numpy(bool), "flow_id"])
    images = [v for tag, attr, v in page.urls if tag == "img"]
    assert len(images) == 5 and all(v.startswith("data:image/png;base64,") for v in images)
    assert f"{result.stats.records:,} read" in page.text
    assert "2025-03-11 17:14:02 UTC" in page.text
    assert page.root.get("data-sortable") == "ready"      # its one script ran under the page's CSP


# ---------------------------------------------------------------- (2) hostile strings stay text

def test_hostile_strings_are_text_not_markup(rendered):
    result, _, raw, _, page = rendered["hostile"]
    truth = json.loads((SAMPLES / "hostile_strings.pcap.truth.json").read_text())
    # The DOM after Chromium ran it: only the report's own script, no event handlers.
    assert len(page.scripts) == 1 and "src" not in page.scripts[0]
    assert page.handlers == []
    assert page.root.get("data-sortable") == "ready"
    for tag, attr, value in page.urls:
        assert tag == "a" and value.startswith("#") or tag == "img" and value.startswith("data:image/png;base64,"), \
            (tag, attr, value[:80])
    # Every hostile name that reaches a table is there as text (the DNS answer's name is in no table).
    for key, item in truth["names"].items():
        if key == "dns_answer":
            continue
        text = item["as_decoded"]
        shown = text[:report_html.CUT]
        assert shown in page.text, key
        if len(text) > report_html.CUT:
            assert f"… +{len(text) - report_html.CUT:,} characters" in page.text
    assert '"onerror=alert(1) x=".courier.push.apple.com' in page.text
    assert "<script>alert(1)</script>.push.apple.com answered NXDOMAIN" in page.text   # the blocked sentence
    assert any("<script>alert(1)</script>" in text or '"onerror=alert(1) x="' in text for _, text in page.verdicts)
    # The raw file: markup only where the report put it.
    assert raw.count("<script") == 1
    assert "<script>alert" not in raw and "<img src=x" not in raw
    assert re.search(r"<[a-zA-Z][^<>]*\son[a-z]+\s*=", raw) is None
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    assert "\u202e" not in raw and not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", raw)


def test_control_and_bidi_characters_are_shown_not_obeyed(rendered):
    """Strings a library user puts in a Result (the decoders already \\xNN-escape wire bytes):
    bidi overrides, controls and even a lone surrogate become visible marks."""
    result = rendered["hostile"][0]
    flows = result.flows.copy()
    evil = "\u202egpj.exe\u2066\x1b[2J\x00\u200b\ud800<b>x</b>"
    flows["server_name"] = flows["server_name"].astype(object)
    flows.loc[flows.index[1], "server_name"] = evil
    edited = apnstrace.Result(flows=flows, stats=result.stats, blocked=result.blocked, timing=result.timing,
                              courier=result.courier, sequences=result.sequences)
    markup = render_html(edited, charts={})
    markup.encode("utf-8")                                  # no lone surrogate left to fail on
    for ch in ("\u202e", "\u2066", "\x1b", "\x00", "\u200b", "\ud800"):
        assert ch not in markup
    for code in ("202E", "2066", "001B", "0000", "200B", "D800"):
        assert f"&lt;U+{code}&gt;" in markup
    assert "<bdi>" in markup and "&lt;b&gt;x&lt;/b&gt;" in markup and "<b>x</b>" not in markup


# ---------------------------------------------------------------- (3) nothing leaves the file

@pytest.mark.parametrize("name", list(CASES))
def test_no_external_requests(rendered, name):
    _, _, raw, _, page = rendered[name]
    assert re.search(r"""\b(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", raw, re.I) is None
    for tag, attr, value in page.urls:
        assert not re.match(r"\s*(?:https?:)?//", value, re.I), (tag, attr, value[:80])
    assert "@import" not in raw and not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", raw, re.I)
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', raw)
    assert csp and "default-src 'none'" in csp.group(1) and "img-src data:" in csp.group(1)


# ---------------------------------------------------------------- the flows table is capped

def test_flows_table_is_capped_with_a_note(rendered, monkeypatch):
    result = rendered["blocked"][0]
    monkeypatch.setattr(report_html, "FLOW_LIMIT", 4)
    page = Page(render_html(result, charts={}))
    rows = page.rows("flows-table")
    assert len(rows) == 4
    blocked_ids = set(result.flows.loc[result.flows["blocked"].to_numpy(bool), "flow_id"])
    assert {int(r[0]) for r in rows} <= blocked_ids          # the most relevant: blocked first
    hidden = len(result.flows) - 4
    assert f"The 4 most relevant of {len(result.flows)} flows" in page.text
    assert f"{hidden} more flows are not shown: flows.csv" in page.text


@pytest.mark.parametrize("name", ["sequences", "blocked", "hostile"])
def test_page_fits_a_1280_pixel_window_without_scrolling_sideways(rendered, name, tmp_path):
    # The sequences table was 79 px wider than its column at 1280 px (the whole page scrolled
    # sideways) while its sentence column kept a 240 px minimum.
    _, _, markup, _, _ = rendered[name]
    # A copy that reports its own widths: the report's policy allows only its own script, so the
    # copy drops the policy (the measurement only; the report itself is checked above).
    probe = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", markup)
    assert probe != markup
    probe = probe.replace("</body>", "<script>document.body.setAttribute('data-widths', "
                          "document.documentElement.scrollWidth + ' ' + document.documentElement.clientWidth)"
                          "</script></body>")
    page = tmp_path / "probe.html"
    page.write_text(probe, encoding="utf-8")
    dom = _open_in_chromium(page, tmp_path / "probe.png", tmp_path / "profile")
    scroll, client = map(int, re.search(r'data-widths="(\d+) (\d+)"', dom).groups())
    assert scroll <= client, f"page {scroll} px wide in a {client} px window"
