"""Capture backends: scapy's packet socket (default), tshark through pyshark, and dumpcap's
pcap stream read directly.

Each runs its capture loop in a thread and hands packets over as `Captured` tuples through
`take()`; the engine never sees a backend's own packet objects. Both report how many packets
the kernel or libpcap dropped, which is what tells a user the live result is incomplete.
"""
from __future__ import annotations

import logging
import os
import re
import select
import signal
import socket
import shutil
import struct
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from .batch import Captured
from .preflight import NEEDED, LiveSetupError

SOL_PACKET, PACKET_STATISTICS = 263, 6
SO_RCVBUFFORCE = 33
RECV_BUFFER = 32 << 20       # socket buffer: rides out the pause while a report is written
MAX_FRAME = 262_144          # a GRO/GSO packet on a virtual interface can be ~64 KiB; never cut one
MAX_PENDING = 200_000        # packets waiting for the engine; past this they are dropped (and counted),
                             # so a rate the engine cannot follow costs drops, not unbounded memory


@dataclass(frozen=True, slots=True)
class CaptureCounts:
    """What the capture layer counted (None: the backend cannot tell)."""

    received: int            # packets handed to apnstrace
    dropped: int | None      # lost before apnstrace saw them: kernel socket buffer / libpcap / dumpcap
    interface_dropped: int | None = None     # dropped by the interface or its driver (dumpcap: ps_ifdrop)
    counted_by: str = ""     # where `dropped` comes from, for the summary

    def as_dict(self) -> dict:
        return {"received": self.received, "dropped": self.dropped,
                "interface_dropped": self.interface_dropped, "counted_by": self.counted_by}


class _Threaded:
    """The hand-over both backends share: a capture thread appends, the engine takes."""

    name = ""

    def __init__(self, iface: str, bpf: str, linktype: int | None = None) -> None:
        self.iface, self.bpf = iface, bpf
        self.linktype = linktype                 # the interface's, from preflight (None: not checked)
        self._lock = threading.Lock()
        self._pending: list[Captured] = []
        self._received = 0
        self._overflow = 0                       # packets dropped because the engine fell behind
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None           # why the capture thread ended early, one line

    def take(self) -> list[Captured]:
        with self._lock:
            got, self._pending = self._pending, []
        return got

    def _put(self, packet: Captured) -> None:
        with self._lock:
            if len(self._pending) >= MAX_PENDING:      # the engine is behind: drop here, and count it
                self._overflow += 1
                return
            self._pending.append(packet)
            self._received += 1

    def _put_many(self, packets: list[Captured]) -> None:
        with self._lock:
            room = max(0, MAX_PENDING - len(self._pending))
            self._pending.extend(packets[:room])
            self._received += min(room, len(packets))
            self._overflow += len(packets) - min(room, len(packets))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _spawn(self, target) -> None:
        self._thread = threading.Thread(target=target, name=f"apnstrace-{self.name}", daemon=True)
        self._thread.start()


class ScapyBackend(_Threaded):
    """scapy's Linux packet socket (the one its sniffer opens, conf.L2listen), with the BPF
    attached in the kernel. Frames are read with recv_raw: AsyncSniffer would dissect every
    frame into scapy layers, which apnstrace does not use and which costs ~50x the read."""

    name = "scapy"

    def __init__(self, iface: str, bpf: str, linktype: int | None = None) -> None:
        super().__init__(iface, bpf, linktype)
        self._sock = None
        self._dropped = 0
        self._kernel_seen = 0

    def start(self) -> None:
        import scapy.arch  # noqa: F401  (importing it sets conf.L2listen for this platform)
        from scapy.config import conf
        from scapy.error import Scapy_Exception
        quiet = logging.getLogger("scapy.runtime")      # "Unable to guess type": recv_raw needs no layer class
        level, quiet.level = quiet.level, logging.ERROR
        try:
            self._sock = conf.L2listen(iface=self.iface, filter=self.bpf, promisc=True)
        except PermissionError:
            raise LiveSetupError(f"no permission to capture on {self.iface}: {NEEDED}") from None
        except Scapy_Exception as exc:
            raise LiveSetupError(f"cannot capture on {self.iface}: {exc}") from None
        except OSError as exc:
            raise LiveSetupError(f"cannot capture on {self.iface}: {exc.strerror or exc}") from None
        finally:
            quiet.setLevel(level)
        ins = self._sock.ins
        try:
            ins.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECV_BUFFER)
        except OSError:          # without CAP_NET_ADMIN: the kernel's rmem_max applies
            ins.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        ins.setblocking(False)
        self._loopback = _is_loopback(self.iface)
        self._read_stats()       # counters start now (reading them resets them)
        self._dropped = self._kernel_seen = 0
        self._spawn(self._loop)

    def _loop(self) -> None:
        sock, ins = self._sock, self._sock.ins
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([ins], [], [], 0.2)
                if ready:
                    self._drain(sock)
            self._drain(sock)                # what the kernel still holds when asked to stop
        except OSError as exc:
            self.error = f"capture on {self.iface} failed: {exc.strerror or exc}"

    def _drain(self, sock) -> None:
        from scapy.arch.linux import get_last_packet_timestamp
        loopback = self._loopback
        while True:
            try:
                # scapy's reader with the packet's address: its public recv_raw hides the
                # packet type, which loopback needs (below). VLAN tags are put back either way.
                data, address, ts = sock._recv_raw(sock.ins, MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return
            # On loopback every packet passes twice, going out and coming in; keep one, as
            # libpcap (and so the tshark backend) does. Elsewhere outgoing packets are real.
            if not data or (loopback and address[2] == socket.PACKET_OUTGOING):
                continue
            self._put(Captured(ts if ts is not None else get_last_packet_timestamp(sock.ins), data, len(data)))

    def _read_stats(self) -> None:
        """tpacket_stats: packets and drops since the last read (the kernel resets them)."""
        packets, drops = struct.unpack("II", self._sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        self._kernel_seen += packets
        self._dropped += drops

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._read_stats()
            self._sock.close()

    def counts(self) -> CaptureCounts:
        if self._sock is not None and not self._sock.closed:
            self._read_stats()
        return CaptureCounts(self._received, self._dropped + self._overflow, None,
                             "kernel packet socket (PACKET_STATISTICS tp_drops) + apnstrace backlog")


def _is_loopback(iface: str) -> bool:
    IFF_LOOPBACK = 0x8
    try:
        flags = int(Path(f"/sys/class/net/{iface}/flags").read_text().strip(), 16)
    except (OSError, ValueError):
        return iface == "lo"
    return bool(flags & IFF_LOOPBACK)


# dumpcap's last words: "Packets received/dropped on interface 'veth0': 120/3 (pcap:0/dumpcap:3/flushed:0/ps_ifdrop:0)"
DUMPCAP_STATS = re.compile(r"received/dropped on interface '[^']*': (\d+)/(\d+)(?: \(pcap:(\d+)/dumpcap:(\d+)/"
                           r"flushed:(\d+)/ps_ifdrop:(\d+)\))?")


class TsharkBackend(_Threaded):
    """dumpcap captures, tshark decodes, pyshark reads tshark's JSON (with the raw frame bytes,
    `-x`). Stopping sends dumpcap SIGTERM: it ends its capture cleanly and prints its drop
    counts, tshark reads to the end of the pipe, and nothing captured is lost on the way."""

    name = "tshark"

    def __init__(self, iface: str, bpf: str, linktype: int | None = None) -> None:
        super().__init__(iface, bpf, linktype)
        self._capture = None
        self._stderr: list[str] = []
        self._capturing = threading.Event()      # dumpcap said "Capturing on ..." (or the thread ended)

    def start(self) -> None:
        try:
            import pyshark  # noqa: F401
        except ImportError:
            raise LiveSetupError("--backend tshark needs pyshark: pip install pyshark") from None
        import shutil
        if not shutil.which("tshark") or not shutil.which("dumpcap"):
            raise LiveSetupError("--backend tshark needs tshark and dumpcap (Debian: apt-get install tshark)")
        self._spawn(self._loop)
        # Report "capturing" only once dumpcap has the interface open: packets before are not seen.
        if not self._capturing.wait(timeout=30) or self.error:
            self.stop()
            raise LiveSetupError(self.error or f"tshark did not start capturing on {self.iface} within 30 s")

    def _loop(self) -> None:
        import asyncio
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            capture = _live_capture_class()(interface=self.iface, bpf_filter=self.bpf, use_json=True,
                                            include_raw=True, eventloop=loop)
            capture._log.setLevel(logging.DEBUG)          # pyshark logs dumpcap's and tshark's stderr there
            capture._log.addHandler(_Lines(self._stderr, self._capturing))
            self._capture = capture
            capture.apply_on_packets(self._on_packet)
        except Exception as exc:          # pyshark's own errors (TSharkCrashException, ...): one line
            said = [line for line in self._stderr if line and not line.startswith(("Capturing on", "File:"))]
            self.error = f"tshark capture on {self.iface} failed: {said[-1] if said else str(exc).splitlines()[0]}"
        finally:
            self._capturing.set()
            loop.close()

    def _on_packet(self, pkt) -> None:
        data = pkt.get_raw_packet()
        self._put(Captured(float(pkt.sniff_timestamp), data, max(int(pkt.length), len(data))))

    def stop(self) -> None:
        dumpcap = getattr(self._capture, "dumpcap", None)
        if dumpcap is not None and dumpcap.returncode is None:
            try:
                os.kill(dumpcap.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=30)

    def counts(self) -> CaptureCounts:
        for line in reversed(self._stderr):
            m = DUMPCAP_STATS.search(line)
            if m and f"'{self.iface}'" in line:        # our dumpcap's line, not tshark's own reader's ('-')
                # Captured but never handed over: tshark fell behind (it spools to a temporary
                # file, so dumpcap drops nothing) and was still reading when stop() gave up on it.
                unread = max(0, int(m.group(1)) - self._received - self._overflow)
                dropped = int(m.group(2)) + self._overflow + unread
                ifdrop = int(m.group(6)) if m.group(6) is not None else None
                return CaptureCounts(self._received, dropped, ifdrop,
                                     "dumpcap (libpcap and dumpcap drops) + packets tshark had not decoded at the stop")
        return CaptureCounts(self._received, None, None, "dumpcap (counts are printed when the capture stops)")


def _live_capture_class():
    """pyshark's LiveCapture, except that the parent closes its copies of the dumpcap -> tshark
    pipe (pyshark 0.6 keeps them open, so tshark never sees the capture end), and keeps the
    dumpcap process so stop() can end it with SIGTERM (its clean stop) instead of SIGKILL."""
    import asyncio
    import subprocess

    import pyshark
    from pyshark.capture.capture import Capture
    from pyshark.tshark.tshark import get_process_path

    class LiveCapture(pyshark.LiveCapture):
        dumpcap = None

        async def _get_tshark_process(self, packet_count=None, stdin=None):
            read, write = os.pipe()
            params = [get_process_path(process_name="dumpcap", tshark_path=self.tshark_path)] \
                + self._get_dumpcap_parameters()
            self.dumpcap = await asyncio.create_subprocess_exec(*params, stdout=write, stderr=subprocess.PIPE)
            os.close(write)
            self._create_stderr_handling_task(self.dumpcap.stderr)
            self._created_new_process(params, self.dumpcap, process_name="Dumpcap")
            try:
                return await Capture._get_tshark_process(self, packet_count=packet_count, stdin=read)
            finally:
                os.close(read)

    return LiveCapture


class _Lines(logging.Handler):
    """Keeps the capture processes' stderr lines; sets `capturing` when dumpcap starts."""

    def __init__(self, sink: list[str], capturing: threading.Event) -> None:
        super().__init__(logging.DEBUG)
        self.sink, self.capturing = sink, capturing

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.sink.append(line)
        if line.startswith("Capturing on"):
            self.capturing.set()


class DumpcapBackend(_Threaded):
    """dumpcap (Wireshark's capture engine: libpcap with a kernel ring buffer) writes pcap to a
    pipe and apnstrace reads the records itself. The tshark backend decodes every packet to
    JSON first, which caps it near 2,000 packets/s; apnstrace needs only the raw frames.
    Stopping sends dumpcap SIGTERM: it flushes, prints its drop counts and closes the pipe."""

    name = "dumpcap"
    READ = 1 << 20

    def __init__(self, iface: str, bpf: str, linktype: int | None = None) -> None:
        super().__init__(iface, bpf, linktype)
        self._proc: subprocess.Popen | None = None
        self._stderr: list[str] = []
        self._capturing = threading.Event()

    def start(self) -> None:
        dumpcap = shutil.which("dumpcap")
        if not dumpcap:
            raise LiveSetupError("--backend dumpcap needs dumpcap (Debian: apt-get install tshark)")
        # -P: pcap, not pcapng (fixed 16-byte record headers); -B: kernel buffer in MiB, which
        # rides out a report rewrite; -s: never cut a frame.
        args = [dumpcap, "-i", self.iface, "-f", self.bpf, "-P", "-w", "-", "-B", "64", "-s", str(MAX_FRAME)]
        self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        threading.Thread(target=self._read_stderr, name="apnstrace-dumpcap-stderr", daemon=True).start()
        self._spawn(self._loop)
        if not self._capturing.wait(timeout=30) or self.error or self._proc.poll() is not None:
            self.stop()
            said = [line for line in self._stderr if line and not line.startswith(("Capturing on", "File:"))]
            raise LiveSetupError(self.error or (f"dumpcap could not capture on {self.iface}: {said[-1]}" if said
                                                else f"dumpcap did not start capturing on {self.iface} within 30 s"))

    def _read_stderr(self) -> None:
        for raw in self._proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").strip())
        self._capturing.set()               # dumpcap ended: start() stops waiting and reports why

    def _loop(self) -> None:
        try:
            self._read_stream()
        finally:
            self._capturing.set()

    def _read_stream(self) -> None:
        out = self._proc.stdout
        pending = bytearray()
        header = None
        while True:
            chunk = out.read(self.READ)
            if not chunk:
                break
            pending += chunk
            if header is None:
                if len(pending) < 24:
                    continue
                header = _pcap_header(bytes(pending[:24]))
                if header is None:
                    self.error = f"dumpcap on {self.iface} wrote something that is not a pcap stream"
                    break
                if self.linktype is not None and header.linktype != self.linktype:
                    self.error = (f"dumpcap on {self.iface} captures link type {header.linktype}, "
                                  f"expected {self.linktype}")
                    break
                del pending[:24]
                # The stream's header is written once the interface is open and filtered; dumpcap's
                # "Capturing on" line comes a moment earlier, when the first packets are still missed.
                self._capturing.set()
            used = self._records(pending, header)
            del pending[:used]

    def _records(self, data: bytearray, header: _PcapHeader) -> int:
        """Hand over every whole record in `data`; return the bytes used."""
        unpack, scale, pos, end, got = header.record.unpack_from, header.scale, 0, len(data), []
        view = memoryview(data)
        while end - pos >= 16:
            sec, frac, caplen, wire = unpack(data, pos)
            if end - pos - 16 < caplen:
                break
            got.append(Captured(sec + frac * scale, bytes(view[pos + 16: pos + 16 + caplen]), wire))
            pos += 16 + caplen
        view.release()
        if got:
            self._put_many(got)
        return pos

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    def counts(self) -> CaptureCounts:
        for line in reversed(self._stderr):
            m = DUMPCAP_STATS.search(line)
            if m and (f"'{self.iface}'" in line or f": {self.iface}'" in line):      # 'lo' is 'Loopback: lo'
                ifdrop = int(m.group(6)) if m.group(6) is not None else None
                return CaptureCounts(self._received, int(m.group(2)) + self._overflow, ifdrop,
                                     "dumpcap (libpcap and dumpcap drops) + apnstrace backlog")
        return CaptureCounts(self._received, None, None, "dumpcap (counts are printed when the capture stops)")


@dataclass(frozen=True, slots=True)
class _PcapHeader:
    record: struct.Struct        # sec, fraction, caplen, wire length in the stream's byte order
    scale: float                 # fraction -> seconds (micro- or nanoseconds)
    linktype: int


def _pcap_header(data: bytes) -> _PcapHeader | None:
    for order in ("<", ">"):
        magic, = struct.unpack(order + "I", data[:4])
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            linktype = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
            return _PcapHeader(struct.Struct(order + "IIII"), 1e-6 if magic == 0xA1B2C3D4 else 1e-9, linktype)
    return None


BACKENDS = {"scapy": ScapyBackend, "tshark": TsharkBackend, "dumpcap": DumpcapBackend}
