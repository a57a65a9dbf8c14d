"""Failed DNS lookups of Apple and site names as rows for the blocked table (docs/blocked.md)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..classify import classify
from ..flows.finalize import UID
from ..sequences.rows import rows_of
from ..site import Site

DNS_PORTS = (53, 5353)
NO_ANSWER_WAIT_S = 2.0        # a query this close to the capture's end may still be answered
WATCHED = ("apns", "mdm", "enrollment", "sus", "apple", "file_share", "http_distribution")


def dns_failures(flows: pd.DataFrame, failures: Sequence, site: Site | None) -> pd.DataFrame:
    """One row per failed lookup of a watched name: the flow's columns, plus qname, qtype,
    reason (dns_<rcode>, dns_sinkhole, dns_no_answer), the answer time, and the name's category."""
    rows = []
    if len(flows) and failures:
        at = rows_of(flows[UID].to_numpy(), np.array([f.uid for f in failures], np.int64))
        for failure, row in zip(failures, at.tolist()):
            if row >= 0:
                rows.append((row, failure.ts, failure.qname, failure.qtype, f"dns_{failure.rcode.lower()}"))
    if len(flows):
        capture_end = float(flows["ts_end"].max())
        query = flows["dns_query"] if "dns_query" in flows else pd.Series(pd.NA, index=flows.index, dtype="string")
        unanswered = np.flatnonzero(
            (flows["transport"] == "udp").to_numpy() & flows["server_port"].isin(DNS_PORTS).to_numpy()
            & query.notna().to_numpy() & (flows["pkts_s2c"] == 0).to_numpy()
            & (capture_end - flows["ts_start"].to_numpy() >= NO_ANSWER_WAIT_S))
        # Each column read at those rows at once (per-row .iat costs ~30 us a row).
        rows += [(i, ts, name, "", "dns_no_answer") for i, ts, name in zip(
            unanswered.tolist(), flows["ts_start"].to_numpy()[unanswered].tolist(),
            query.iloc[unanswered].to_numpy(dtype=object).tolist())]
    if not rows:
        return pd.DataFrame(columns=["row", "ts", "qname", "qtype", "reason", "category", "service"])
    found = pd.DataFrame(rows, columns=["row", "ts", "qname", "qtype", "reason"])
    found = found[found["qname"].astype(bool)]
    categories = _name_categories(found["qname"].unique().tolist(), site)
    found = found.join(categories, on="qname")
    return found[found["category"].isin(WATCHED)].sort_values("ts").reset_index(drop=True)


def _name_categories(names: list[str], site: Site | None) -> pd.DataFrame:
    """What each name is for: the classifier's verdict on a flow to that name on the ports the
    built-in rules and the site's endpoints use; the first watched verdict wins."""
    ports = [5223, 443, 80, 2197, 8443, 8088, 445, 548]
    if site is not None:
        for endpoint in (*site.mdm, *site.distribution, *site.sus):
            ports += list(endpoint.ports)
    ports = list(dict.fromkeys(ports))
    probe = pd.DataFrame({
        "server_name": np.repeat(np.array(names, dtype=object), len(ports)),
        "server_port": np.tile(np.array(ports, np.int64), len(names)),
    })
    probe["transport"] = "tcp"
    probe["sni"] = probe["server_name"]
    verdict = classify(probe, site)
    # Only a verdict about the name counts: the probe's port alone (8443 -> MDM) says nothing.
    verdict["watched"] = ~(verdict["category"].isin(WATCHED) & (verdict["classified_by"] != "port"))
    best = verdict.sort_values("watched", kind="stable").drop_duplicates("server_name")
    best = best.assign(category=best["category"].where(~best["watched"], "other"))
    return best.set_index("server_name")[["category", "service"]]
