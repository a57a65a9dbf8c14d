"""Real traffic for the live-capture lab (tests/live_lab.py), run inside its namespaces.

    python live_lab_traffic.py servers CERT KEY COURIER_IP MDM_IP PUSH_AFTER_S
    python live_lab_traffic.py client COURIER_IP MDM_IP BLOCKED_IP

servers: an APNs-like courier on COURIER_IP:5223 (TLS 1.3): answers the device's connect
message at once, then after PUSH_AFTER_S of silence sends one unsolicited record (the push);
an MDM server on MDM_IP:8443 (TLS) answering one HTTP request per connection.
client: connects to the courier with an Apple courier SNI, waits for the push, checks in with
the MDM server, then tries the two blocked ports (DROP on 443, REJECT on 2197) and keeps the
courier open a little longer. Prints one line per step so a failing test shows where.
"""
from __future__ import annotations

import socket
import ssl
import sys
import threading
import time

COURIER_SNI = "1-courier.push.apple.com"
MDM_SNI = "mdm.lab.example"
CONNECT_MSG = b"\x07" + b"c" * 60          # what a device says first on its courier connection
PUSH = b"\x0a" + b"p" * 90                  # the server's unsolicited record


def say(*words) -> None:
    print(time.strftime("%H:%M:%S"), *words, flush=True)


def servers(cert: str, key: str, courier_ip: str, mdm_ip: str, push_after: float) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)

    def courier(conn: socket.socket) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(4096)
            tls.sendall(b"\x08" + b"a" * 30)             # the answer to connect: not a push
            time.sleep(push_after)
            tls.sendall(PUSH)
            say("courier: push sent")
            try:
                while tls.recv(4096):
                    pass
            except OSError:
                pass

    def mdm(conn: socket.socket) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            request = tls.recv(65536)
            body = b'{"status":"Idle"}'
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            say("mdm: answered", request.split(b"\r\n", 1)[0].decode(errors="replace"))

    def serve(ip: str, port: int, handler) -> None:
        listener = socket.create_server((ip, port))
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    for ip, port, handler in ((courier_ip, 5223, courier), (mdm_ip, 8443, mdm)):
        threading.Thread(target=serve, args=(ip, port, handler), daemon=True).start()
    time.sleep(0.2)
    say("ready")
    threading.Event().wait()


def client(courier_ip: str, mdm_ip: str, blocked_ip: str) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE      # the lab's self-signed certificate
    courier = ctx.wrap_socket(socket.create_connection((courier_ip, 5223), timeout=20), server_hostname=COURIER_SNI)
    courier.sendall(CONNECT_MSG)
    courier.recv(4096)
    say("client: courier connected")
    while True:                                   # TLS 1.3 session tickets may come first
        data = courier.recv(4096)
        if data.startswith(PUSH[:1]):
            break
    say("client: push received")
    time.sleep(0.3)
    with ctx.wrap_socket(socket.create_connection((mdm_ip, 8443), timeout=10), server_hostname=MDM_SNI) as mdm:
        mdm.sendall(b"PUT /mdm/checkin HTTP/1.1\r\nHost: " + MDM_SNI.encode() + b":8443\r\n"
                    b"User-Agent: MDM/1.0\r\nContent-Length: 2\r\n\r\n{}")
        say("client: checked in:", mdm.recv(4096).split(b"\r\n", 1)[0].decode())
    for port, timeout in ((443, 3.5), (2197, 3.0)):
        try:
            socket.create_connection((blocked_ip, port), timeout=timeout).close()
            say(f"client: {port} unexpectedly open")
        except OSError as exc:
            say(f"client: {port} blocked: {exc}")
    say("client: done (courier left open)")
    threading.Event().wait()          # the courier stays up until the lab stops this process


if __name__ == "__main__":
    if sys.argv[1] == "servers":
        servers(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6]))
    else:
        client(*sys.argv[2:5])
