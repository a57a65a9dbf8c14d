"""A small network for live-capture tests and the live benchmark, built with `ip netns`:

    namespace <tag>c (device side)  vc<tag> 10.77.0.2/24  ==veth==  vs<tag> 10.77.0.1/24  namespace <tag>s
                                    routes 17/8, 10.77.1/24 on-link        + 17.57.144.10 (courier, Apple's range)
                                                                           + 10.77.1.10 (MDM server)
                                                                           iptables: 443 DROP, 2197 REJECT

apnstrace captures inside the device namespace on vc<tag>. Nothing is added to the host's own
namespace: the addresses, routes and firewall rules live and die with the two namespaces.
Names carry the pid and a random tag, so runs side by side do not collide.
"""
from __future__ import annotations

import datetime
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

COURIER_IP, MDM_IP, DEVICE_IP = "17.57.144.10", "10.77.1.10", "10.77.0.2"
APT = {"iptables": "iptables", "nft": "nftables", "tcpreplay": "tcpreplay"}
TRAFFIC = Path(__file__).with_name("live_lab_traffic.py")


def ensure_tool(binary: str) -> str:
    """The binary's path, installing its Debian package when missing (CI runs as root);
    raises when it cannot be had. Never skipped: the lab needs it."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin:/usr/bin")
    if found:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", APT[binary]], env=env, capture_output=True, text=True)
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin:/usr/bin")
    if not found:
        raise RuntimeError(f"{binary} is missing and apt-get install {APT[binary]} failed: {done.stderr[-500:]}")
    return found


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for the lab's TLS servers."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "apnstrace live lab")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("mdm.lab.example")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "lab.crt", folder / "lab.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Lab:
    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}{secrets.token_hex(2)}"
        self.device_ns, self.server_ns = f"at{tag}c", f"at{tag}s"
        self.device_if, self.server_if = f"vc{tag}"[:15], f"vs{tag}"[:15]
        self.procs: list[subprocess.Popen] = []
        self.built = False

    # -- life cycle -----------------------------------------------------------------------
    def build(self, firewall: bool = True) -> Lab:
        ip = ensure_tool("ip")
        run = self._run
        self.built = True                      # from here on, down() has something to remove
        run(ip, "netns", "add", self.device_ns)
        run(ip, "netns", "add", self.server_ns)
        run(ip, "link", "add", self.device_if, "netns", self.device_ns, "type", "veth",
            "peer", "name", self.server_if, "netns", self.server_ns)
        d, s = self.in_device, self.in_server
        run(*d(ip, "link", "set", "lo", "up"))
        run(*s(ip, "link", "set", "lo", "up"))
        run(*d(ip, "addr", "add", f"{DEVICE_IP}/24", "dev", self.device_if))
        run(*d(ip, "link", "set", self.device_if, "up"))
        run(*d(ip, "route", "add", "17.0.0.0/8", "dev", self.device_if))        # on-link: the server answers ARP
        run(*d(ip, "route", "add", "10.77.1.0/24", "dev", self.device_if))
        run(*s(ip, "addr", "add", "10.77.0.1/24", "dev", self.server_if))
        run(*s(ip, "addr", "add", f"{COURIER_IP}/32", "dev", self.server_if))
        run(*s(ip, "addr", "add", f"{MDM_IP}/32", "dev", self.server_if))
        run(*s(ip, "link", "set", self.server_if, "up"))
        run(*s(ip, "route", "add", "10.77.0.0/16", "dev", self.server_if))
        # Offloads off: frames on the wire as a span port would show them (no 64 KiB GRO packets).
        if shutil.which("ethtool"):
            for ns, dev in ((self.in_device, self.device_if), (self.in_server, self.server_if)):
                subprocess.run(ns("ethtool", "-K", dev, "gro", "off", "tso", "off", "gso", "off"), capture_output=True)
        if firewall:
            ipt = ensure_tool("iptables")
            run(*s(ipt, "-A", "INPUT", "-p", "tcp", "-d", COURIER_IP, "--dport", "443", "-j", "DROP"))
            run(*s(ipt, "-A", "INPUT", "-p", "tcp", "-d", COURIER_IP, "--dport", "2197", "-j", "REJECT"))
        return self

    def down(self) -> None:
        """Stop what the lab started and delete both namespaces (the veth pair goes with them)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.built:
            for ns in (self.device_ns, self.server_ns):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def __enter__(self) -> Lab:
        return self.build()

    def __exit__(self, *exc) -> None:
        self.down()

    # -- helpers --------------------------------------------------------------------------
    def in_device(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.device_ns, *argv]

    def in_server(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.server_ns, *argv]

    def start(self, argv: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
        self.procs.append(proc)
        return proc

    def start_servers(self, folder: Path, push_after_s: float = 2.0) -> subprocess.Popen:
        cert, key = self_signed(folder)
        proc = self.start(self.in_server(sys.executable, str(TRAFFIC), "servers", str(cert), str(key), COURIER_IP,
                                         MDM_IP, str(push_after_s)))
        wait_for_line(proc, "ready", "the lab servers")
        return proc

    def start_client(self) -> subprocess.Popen:
        return self.start(self.in_device(sys.executable, str(TRAFFIC), "client", COURIER_IP, MDM_IP, COURIER_IP))

    @staticmethod
    def _run(*argv: str) -> None:
        done = subprocess.run(list(argv), capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def wait_for_line(proc: subprocess.Popen, needle: str, what: str, seen: list[str] | None = None) -> list[str]:
    """Read `proc`'s output until a line contains `needle` (raises with the output if it ends first)."""
    seen = [] if seen is None else seen
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if needle in line:
            return seen
    raise RuntimeError(f"{what} ended before {needle!r}:\n" + "\n".join(seen))
