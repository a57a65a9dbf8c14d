"""Report charts: every chart for every sample capture and for empty results, checked on the
Figure's artists (titles, labels with units, bar / marker counts, colours), not on pixels."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import same_color, to_rgba
from matplotlib.figure import Figure

import apnstrace
from apnstrace import schema
from apnstrace.pipeline import Result
from apnstrace.report import chart_style, charts
from apnstrace.stats import RunStats

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
SITE = apnstrace.Site(mdm_hosts=["mdm.example.com:8443"])
SAMPLE_NAMES = ["sequences_site", "blocked_reasons", "courier_flapping", "site_categories",
                "courier_push", "blocked_syn", "mdm_checkin"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results() -> dict[str, Result]:
    return {name: apnstrace.analyze(SAMPLES / f"{name}.pcap", site=SITE if name == "sequences_site" else None)
            for name in SAMPLE_NAMES}


def empty_result() -> Result:
    return Result(flows=schema.to_frame(None, schema.FLOWS), stats=RunStats())


def title(fig: Figure) -> str:
    return fig._suptitle.get_text() + "\n" + chart_style.subtitle_of(fig)


def texts(fig: Figure) -> str:
    out = [title(fig)]
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
    return "\n".join(out)


def by_gid(fig: Figure, gid: str) -> list:
    return [a for ax in fig.axes for a in [*ax.collections, *ax.patches, *ax.lines] if a.get_gid() == gid]


def collection(fig: Figure, gid: str):
    found = [c for ax in fig.axes for c in ax.collections if c.get_gid() == gid]
    assert len(found) == 1, (gid, found)
    return found[0]


def labelled_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.axison]


# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("sample", SAMPLE_NAMES)
@pytest.mark.parametrize("name", list(charts.CHARTS))
def test_every_chart_renders_for_every_sample(results, sample, name):
    fig = charts.CHARTS[name](results[sample])
    assert isinstance(fig, Figure)
    assert fig._suptitle is not None and fig._suptitle.get_text().strip()
    for ax in labelled_axes(fig):
        # every labelled axis says its unit (in parentheses) or is a list of names
        for label in (ax.get_xlabel(), ax.get_ylabel()):
            if label:
                assert "(" in label and ")" in label, (name, label)
    data = charts.png_bytes(fig)
    assert data.startswith(PNG_MAGIC)
    width_px = fig.get_size_inches()[0] * charts.DPI
    assert 1000 <= width_px <= 1200


@pytest.mark.parametrize("name,message", [
    ("timeline", "no flows in this capture"),
    ("latency", "no pushes or check-ins in this capture"),
    ("blocked", "no blocked flows or DNS failures in this capture"),
    ("traffic", "no flows in this capture"),
    ("courier", "no APNs courier connections in this capture"),
])
def test_empty_result_says_what_is_missing(name, message):
    fig = charts.CHARTS[name](empty_result())
    assert message in texts(fig)
    assert charts.png_bytes(fig).startswith(PNG_MAGIC)


def test_latency_without_any_checkin(results):
    fig = charts.latency(results["courier_flapping"])     # pushes, no MDM at all
    assert "no push was followed by a check-in" in texts(fig)
    assert charts.png_bytes(fig).startswith(PNG_MAGIC)


# --- timeline ---------------------------------------------------------------------------

def test_timeline_bars_and_markers_match_the_data(results):
    r = results["sequences_site"]
    fig = charts.timeline(r)
    ax = fig.axes[0]
    devices = [t.get_text() for t in ax.get_yticklabels()]
    assert ax.get_xlabel() == "time (UTC)"
    assert "Per-device timeline" in title(fig)
    shown = r.flows[r.flows["client_ip"].isin(devices)]
    n_blocked = int(shown["blocked"].fillna(False).sum())
    assert len(collection(fig, "flows").get_paths()) == len(shown) - n_blocked
    assert len(collection(fig, "blocked_flows").get_paths()) == n_blocked == 3
    seq = r.sequences
    assert len(collection(fig, "pushes").get_offsets()) == int(seq["push_ts"].notna().sum()) == 11
    ok = seq["outcome"].isin(["checked_in", "unsolicited_checkin"]).sum()
    assert len(collection(fig, "checkins").get_offsets()) == ok == 8
    assert len(collection(fig, "checkins_blocked").get_offsets()) == (seq["outcome"] == "checkin_blocked").sum() == 2
    # all ten courier devices (and the MDM server, a client of APNs) fit: nobody left out
    assert len(devices) == 11 and "left out" not in title(fig)
    assert devices[0] in set(r.blocked["client_ip"])     # problems first


def test_timeline_blocked_flows_in_warning_style(results):
    fig = charts.timeline(results["blocked_reasons"])
    style = chart_style.styles()["blocked"]
    bad = collection(fig, "blocked_flows")
    assert bad.get_hatch() == style["hatch"]
    assert all(same_color(c, style["edgecolor"]) for c in bad.get_edgecolors())
    assert len(bad.get_paths()) == int(results["blocked_reasons"].flows["blocked"].fillna(False).sum())
    assert same_color(collection(fig, "blocked_markers").get_facecolors()[0], style["markercolor"])
    legend = fig.legends[0]
    assert "blocked flow" in [t.get_text() for t in legend.get_texts()]


def test_timeline_given_devices(results):
    fig = charts.timeline(results["sequences_site"], devices=["10.20.5.37", "10.20.5.70"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["10.20.5.37", "10.20.5.70"]


def synthetic_fleet(devices: int = 300, scans: int = 6000) -> Result:
    """Many devices with a courier each, pushes for a few, one device scanning thousands of ports."""
    rng = np.random.default_rng(7)
    t0 = 1_700_000_000.0
    ips = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(devices)]
    n_bg = devices * 5
    starts = np.concatenate([t0 + rng.uniform(0, 60, devices), t0 + rng.uniform(0, 3600, n_bg),
                             t0 + 100 + np.arange(scans) * 0.01])
    durs = np.concatenate([np.full(devices, 3000.0), rng.exponential(5, n_bg), np.zeros(scans)])
    clients = ips + [ips[i % devices] for i in range(n_bg)] + [ips[10]] * scans
    cats = ["apns"] * devices + list(rng.choice(["mdm", "apple", "dns", "other"], n_bg)) + ["other"] * scans
    blocked = np.concatenate([np.zeros(devices + n_bg, bool), np.ones(scans, bool)])
    n = len(starts)
    flows = schema.to_frame({
        "flow_id": np.arange(n), "ts_start": starts, "ts_end": starts + durs, "duration": durs,
        "transport": ["tcp"] * n, "client_ip": clients, "server_ip": ["17.57.146.1"] * n,
        "server_port": np.concatenate([np.full(devices + n_bg, 443), 1 + np.arange(scans)]).astype("int32"),
        "category": cats, "service": ["apns-courier"] * devices + ["x"] * (n - devices),
        "blocked": blocked, "block_reason": np.where(blocked, "no_response", None),
        "bytes_c2s": rng.integers(100, 10_000, n), "bytes_s2c": rng.integers(100, 100_000, n),
        "client_port": np.full(n, 50000, "int32"), "syn_retries": np.zeros(n, "int32"),
        "pkts_c2s": np.ones(n, "int64"), "pkts_s2c": np.ones(n, "int64"), "retransmits": np.zeros(n, "int64"),
    }, schema.FLOWS)
    pushed = ips[10:40]
    sequences = schema.to_frame({
        "device_ip": pushed, "push_ts": t0 + 500 + np.arange(30.0),
        "checkin_ts": t0 + 501 + np.arange(30.0), "latency_s": np.ones(30),
        "outcome": ["checked_in"] * 30,
    }, schema.SEQUENCES)
    bl = flows[flows["blocked"]]
    blocked_frame = schema.to_frame({
        "ts": bl["ts_start"].to_numpy(), "client_ip": bl["client_ip"].to_numpy(),
        "transport": ["tcp"] * len(bl), "server_port": bl["server_port"].to_numpy(),
        "category": bl["category"].to_numpy(), "reason": ["no_response"] * len(bl),
    }, schema.BLOCKED)
    courier = schema.to_frame({
        "device_ip": ips, "connections": np.ones(devices, np.int64),
        "lifetime_p50_s": np.full(devices, 3000.0), "lifetime_max_s": np.full(devices, 3000.0),
        "closed_by_network": np.zeros(devices, np.int64), "reconnects_per_hour": np.zeros(devices),
        "flapping": np.zeros(devices, bool),
    }, schema.COURIER)
    return Result(flows=flows, stats=RunStats(), sequences=sequences, blocked=blocked_frame, courier=courier)


def test_timeline_picks_devices_worth_showing_and_says_how_many_are_left_out():
    r = synthetic_fleet()
    fig = charts.timeline(r, max_devices=20)
    devices = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(devices) == 20
    assert "20 of 300 devices" in title(fig) and "280 left out" in title(fig)
    # the 30 pushed devices come before the rest (no Apple blocked flows in this fleet)
    assert set(devices) <= set(r.sequences["device_ip"])


def one_device_flows(starts: np.ndarray, durs: np.ndarray, cats: list[str]) -> Result:
    n = len(starts)
    flows = schema.to_frame({
        "flow_id": np.arange(n), "ts_start": starts, "ts_end": starts + durs, "duration": durs,
        "transport": ["tcp"] * n, "client_ip": ["10.0.0.5"] * n, "server_ip": ["17.1.1.1"] * n,
        "server_port": np.full(n, 443, "int32"), "category": cats, "blocked": np.zeros(n, bool),
        "client_port": np.full(n, 50000, "int32"), "syn_retries": np.zeros(n, "int32"),
        "bytes_c2s": np.ones(n, "int64"), "bytes_s2c": np.ones(n, "int64"), "pkts_c2s": np.ones(n, "int64"),
        "pkts_s2c": np.ones(n, "int64"), "retransmits": np.zeros(n, "int64"),
    }, schema.FLOWS)
    return Result(flows=flows, stats=RunStats())


def drawn_categories(fig: Figure, cats: list[str]) -> list[str]:
    drawn = collection(fig, "flows").get_facecolors()
    return [next(c for c in cats if same_color(chart_style.category_colour(c), rgba)) for rgba in drawn]


def test_timeline_draws_management_flows_over_concurrent_generic_ones():
    # iphone.pcap: two short SUS flows ran while longer iCloud (apple) flows were open on the
    # same device row; drawn longest first, the SUS bars were hidden under the apple ones.
    t0 = 1_700_000_000.0
    cats = ["sus", "mdm", "apple", "other", "dns"]
    r = one_device_flows(np.array([t0, t0 + 1.0, t0 + 2.0, t0 + 2.5, t0 + 0.5]), np.array([0.2, 0.3, 4.0, 3.0, 5.0]),
                         cats)
    # least telling first (underneath), colours.toml order reversed; duration does not decide
    assert drawn_categories(charts.timeline(r), cats) == ["other", "dns", "apple", "sus", "mdm"]


def test_timeline_draws_the_courier_band_over_concurrent_other_flows():
    # whatsapp_login_call.pcap: a call's "other" flows ran for tens of seconds over the courier
    # connection that spans the capture; drawn after the band, they hid it.
    t0 = 1_700_000_000.0
    cats = ["other", "apns", "mdm"]
    r = one_device_flows(np.array([t0 + 30.0, t0, t0 + 50.0]), np.array([20.0, 140.0, 0.5]), cats)
    fig = charts.timeline(r)
    # by category as for short bars (apns is the most telling); the band is thinner than a short
    # bar, so the bars it is drawn over still show above and below it
    assert drawn_categories(fig, cats) == ["other", "mdm", "apns"]
    heights = [np.ptp(path.vertices[:, 1]) for path in collection(fig, "flows").get_paths()]
    assert heights[2] < heights[0] == heights[1]


def test_many_blocked_flows_are_merged():
    # Speed is measured in bench/, not here: what keeps it fast is that 20,000 attempts become few paths.
    r = synthetic_fleet(scans=20_000)
    fig = charts.timeline(r)
    assert charts.png_bytes(fig)[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(collection(fig, "blocked_flows").get_paths()) < 100     # 20,000 scan attempts, merged


# --- other charts -----------------------------------------------------------------------

def test_latency_marks_p50_p95_and_outcomes(results):
    r = results["sequences_site"]
    fig = charts.latency(r)
    lat = r.sequences["latency_s"].dropna().to_numpy(dtype=float)
    p50 = [a for a in by_gid(fig, "p50")][0]
    p95 = [a for a in by_gid(fig, "p95")][0]
    assert p50.get_xdata()[0] == pytest.approx(np.percentile(lat, 50))
    assert p95.get_xdata()[0] == pytest.approx(np.percentile(lat, 95))
    hist = [a for a in by_gid(fig, "latency_hist")]
    assert sum(b.get_height() for b in hist) == len(lat) == 6
    ax_hist, ax_out = fig.axes[0], fig.axes[1]
    assert ax_hist.get_xlabel() == "push \u2192 check-in latency (s)"
    assert "check-ins (count)" == ax_hist.get_ylabel()
    outcomes = {t.get_text(): b.get_width()
                for t, b in zip(ax_out.get_yticklabels(), by_gid(fig, "outcomes"))}
    assert outcomes == {"checked in": 6, "unsolicited check-in": 2, "no check-in": 3, "check-in blocked": 2}
    assert "p50" in title(fig) and "p95" in title(fig)


def test_blocked_by_category_port_and_reason(results):
    r = results["blocked_reasons"]
    fig = charts.blocked(r)
    ax_port, ax_reason = fig.axes[0], fig.axes[1]
    bars = by_gid(fig, "by_port")
    assert sum(b.get_width() for b in bars) == len(r.blocked) == 15
    labels = [t.get_text() for t in ax_port.get_yticklabels()]
    assert labels[0] == "apns \u00b7 TCP 5223"        # APNs first, then by count
    assert "apns \u00b7 DNS lookup" in labels
    reasons = [t.get_text() for t in ax_reason.get_yticklabels()]
    assert set(reasons) == set(r.blocked["reason"])
    assert "(count)" in ax_port.get_xlabel()
    assert "10 blocked flows, 5 DNS failures" in title(fig)


def test_blocked_groups_past_the_limit_per_category():
    r = synthetic_fleet(scans=500)
    fig = charts.blocked(r, max_groups=10)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 11 and labels[-1] == "other \u00b7 490 more ports"
    assert sum(b.get_width() for b in by_gid(fig, "by_port")) == 500


def test_traffic_conserves_bytes_and_stacks_by_category(results):
    r = results["site_categories"]
    fig = charts.traffic(r, bins=5.0)
    assert fig.axes[0].get_xlabel() == "time (UTC)"
    assert "B/s" in fig.axes[0].get_ylabel()
    present = set(r.flows["category"])
    drawn = {a.get_gid().split(":", 1)[1] for a in fig.axes[0].collections if str(a.get_gid()).startswith("traffic:")}
    assert drawn == present
    f = r.flows
    start = f["ts_start"].to_numpy(float)
    end = f["ts_end"].to_numpy(float)
    total = (f["bytes_c2s"] + f["bytes_s2c"]).to_numpy(float)
    edges = np.arange(np.floor(start.min()), end.max() + 5, 5.0)
    assert charts._spread(start, end, total, edges).sum() == pytest.approx(total.sum())


def test_traffic_bins_options(results):
    r = results["sequences_site"]
    assert "10.0 s bins" in title(charts.traffic(r))            # auto: ~100 bins over 9.8 min
    assert "30.0 s bins" in title(charts.traffic(r, bins="30s"))
    assert "1.0 min bins" in title(charts.traffic(r, bins=60.0))


def test_courier_highlights_flapping_devices(results):
    r = results["courier_flapping"]
    fig = charts.courier(r)
    warn = charts.warning_colour()
    flap = collection(fig, "lifetimes_flapping")
    assert len(flap.get_offsets()) == 12 and same_color(flap.get_facecolors()[0][:3], to_rgba(warn)[:3])
    assert len(collection(fig, "lifetimes").get_offsets()) == 1
    bars = by_gid(fig, "reconnects_flapping")
    assert len(bars) == 1 and same_color(bars[0].get_facecolor(), warn)
    assert bars[0].get_width() == pytest.approx(33.243656, rel=1e-4)
    labels = {t.get_text(): t for t in fig.axes[0].get_yticklabels()}
    assert same_color(labels["10.20.5.37"].get_color(), warn)
    assert not same_color(labels["10.20.5.61"].get_color(), warn)
    assert "1 flapping" in title(fig)
    assert fig.axes[0].get_xlabel() == "connection lifetime (log scale)"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1 min", "2 min", "5 min", "10 min", "30 min"]


def test_courier_says_when_a_reconnect_rate_cannot_be_given(results):
    # The flapping sample spans over 10 minutes: rates; the site sample spans 9.8: none.
    rates = [t.get_text() for t in charts.courier(results["courier_flapping"]).axes[1].texts]
    assert sorted(rates) == ["0.0/h (1 conn, 0 cut)", "33.2/h (12 conn, 12 cut)"]
    r = results["sequences_site"]
    assert r.courier["reconnects_per_hour"].isna().all()
    said = [t.get_text() for t in charts.courier(r).axes[1].texts]
    assert len(said) == len(r.courier) and all(s.startswith("n/a: under 10 min seen (") for s in said)


def test_courier_shows_at_most_max_devices():
    fig = charts.courier(synthetic_fleet(devices=60), max_devices=15)
    assert len(fig.axes[0].get_yticklabels()) == 15
    assert "15 shown (45 left out)" in title(fig)


# --- colours ----------------------------------------------------------------------------

def test_a_category_has_the_same_colour_in_every_chart(results):
    r = results["sequences_site"]
    timeline_fig = charts.timeline(r)
    legend = {t.get_text(): h for t, h in zip(timeline_fig.legends[0].get_texts(),
                                               timeline_fig.legends[0].legend_handles)}
    traffic_fig = charts.traffic(r)
    blocked_fig = charts.blocked(r)
    for cat in ("apns", "mdm", "file_share", "dns"):
        expected = charts.category_colour(cat)
        assert same_color(legend[cat].get_facecolor(), expected)
        fills = [a for a in traffic_fig.axes[0].collections if a.get_gid() == f"traffic:{cat}"]
        assert same_color(fills[0].get_facecolor()[0], expected)
    for cat in ("mdm", "file_share"):
        bars = [p for p in blocked_fig.axes[1].patches if p.get_gid() == f"reason:{cat}" and p.get_width() > 0]
        assert bars and all(same_color(b.get_facecolor(), charts.category_colour(cat)) for b in bars)
    # the flows drawn in the timeline use the same palette
    faces = collection(timeline_fig, "flows").get_facecolors()
    palette = {tuple(np.round(to_rgba(charts.category_colour(c)), 6)) for c in chart_style.category_colours()}
    assert {tuple(np.round(f, 6)) for f in faces} <= palette


def test_colours_file_is_loaded_once_and_distinct():
    assert chart_style.styles() is chart_style.styles()
    colours = [c for k, c in chart_style.category_colours().items() if k != "unknown"]
    assert len(set(colours)) == len(colours)
    assert charts.warning_colour() not in colours
    for cat in ("apns", "mdm", "enrollment", "sus", "file_share", "http_distribution", "apple", "dns", "other"):
        assert cat in chart_style.category_colours()


# --- output -----------------------------------------------------------------------------

def test_save_charts_and_png_bytes(results, tmp_path):
    written = charts.save_charts(results["sequences_site"], tmp_path / "charts")
    assert set(written) == set(charts.CHARTS)
    for name, path in written.items():
        assert path == tmp_path / "charts" / f"{name}.png"
        assert path.read_bytes().startswith(PNG_MAGIC)


def test_plots_methods_return_the_same_figures(results):
    r = results["sequences_site"]
    plots = charts.Plots(r)
    for name in charts.CHARTS:
        fig = getattr(plots, name)()
        assert isinstance(fig, Figure)
        assert title(fig) == title(charts.CHARTS[name](r))
    assert [t.get_text() for t in plots.timeline(devices=["10.20.5.37"]).axes[0].get_yticklabels()] == ["10.20.5.37"]
    assert "timeline()" in repr(plots)


def test_charts_draw_in_threads(results):
    errors: list[BaseException] = []

    def draw(name: str, r: Result) -> None:
        try:
            charts.png_bytes(charts.CHARTS[name](r))
        except BaseException as exc:       # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=draw, args=(name, results[s]))
               for name in charts.CHARTS for s in ("sequences_site", "courier_flapping")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
