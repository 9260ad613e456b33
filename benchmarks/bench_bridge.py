"""The OSC bridge: ping round trips per transport, 50 clients x 20 jobs under load, floods and amplification.

Round trips: a running `cuesmith serve` (subprocess) answers /cuesmith/ping on
UDP, TCP (SLIP) and WebSocket; the baseline is python-osc's own
ThreadingOSCUDPServer echoing a message back (another subprocess), timed by
the same raw-socket loop. UDP loops (the baseline's too) send at most 500 pings
a second, under the engine's per-peer rate limit. `BridgeClient.ping()` (the panel's call, with its
receiver thread) is timed too.

Load: 50 BridgeClients (UDP, TCP and WebSocket mixed) each submit 20
"analyze" jobs of one short generated clip whose analysis is cached (the job
itself is small: the cost measured is the bridge, the journal and the
service). The baseline submits the same 1,000 jobs to an in-process
JobService, without the bridge.

Flood: one UDP socket sends pings (or hostile bundles, or garbage) at a set
rate for a few seconds while a probe pings over UDP and TCP every 50 ms; the
highest rate at which every probe ping was answered within 1 s is what the
server survives. Amplification: the bytes each reply path sends back (to the
sender and to a `reply=` address) over the bytes of the request.
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bridge_helpers import short_clip, start_engine

TITLE = "OSC bridge: ping round trips, 50 clients x 20 jobs, floods and amplification"
PINGS = 2000
CLIENTS, JOBS_PER_CLIENT = 50, 20
ECHO_SERVER = """
import sys
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient
def echo(client_address, address, *args):
    SimpleUDPClient(*client_address).send_message("/pong", list(args))
d = Dispatcher(); d.map("/ping", echo, needs_reply_address=True)
server = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def time_loop(send, receive, n: int = PINGS, warmup: int = 100, period: float = 0.0) -> list[float]:
    """Round trips; `period`: at most one per that many seconds (UDP: under the engine's per-peer rate)."""
    times = []
    for i in range(warmup + n):
        start = time.perf_counter()
        send(i)
        receive()
        if i >= warmup:
            times.append(time.perf_counter() - start)
        time.sleep(max(0.0, period - (time.perf_counter() - start)))
    return times


UDP_PERIOD = 0.002  # 500 round trips a second: under REPLY_RATE (plugin_bridge/transports.py)


def udp_round_trips(port: int, address: str) -> list[float]:
    from cuesmith.plugin_bridge.protocol import encode_message

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        return time_loop(lambda i: sock.sendto(encode_message(address, [f"t{i}"]), ("127.0.0.1", port)),
                         lambda: sock.recv(65536), period=UDP_PERIOD)


def tcp_round_trips(port: int) -> list[float]:
    from pythonosc import slip

    from cuesmith.plugin_bridge.protocol import SlipStream, encode_message

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = SlipStream()

        def receive():
            while not stream.feed(sock.recv(65536)):
                pass
        return time_loop(lambda i: sock.sendall(slip.encode(encode_message("/cuesmith/ping", [f"t{i}"]))), receive)


def ws_round_trips(port: int) -> list[float]:
    from websockets.sync.client import connect

    from cuesmith.plugin_bridge.protocol import encode_message

    from cuesmith.engine.config import user_token

    token = f"token={user_token()}"  # the WebSocket asks for it
    with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        return time_loop(lambda i: ws.send(encode_message("/cuesmith/ping", [f"t{i}", token])), lambda: ws.recv(5))


def client_round_trips(engine, transport: str) -> list[float]:
    with engine.client(transport) as client:
        return time_loop(lambda i: None, client.ping, n=PINGS // 2, period=UDP_PERIOD if transport == "udp" else 0.0)


def baseline_round_trips() -> list[float]:
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        return udp_round_trips(port, "/ping")
    finally:
        proc.kill()
        proc.wait()


def ping_table(engine) -> str:
    rows = [("python-osc ThreadingOSCUDPServer echo (baseline)", "udp raw socket", baseline_round_trips())]
    rows += [("cuesmith serve", "udp raw socket", udp_round_trips(engine.port, "/cuesmith/ping")),
             ("cuesmith serve", "tcp SLIP raw socket", tcp_round_trips(engine.port)),
             ("cuesmith serve", "ws binary frames (websockets sync client)", ws_round_trips(engine.ws_port))]
    rows += [("cuesmith serve", f"BridgeClient.ping() {t}", client_round_trips(engine, t)) for t in ("udp", "tcp", "ws")]
    base_p50, _ = percentiles(rows[0][2])
    lines = ["| server | client | n | p50 ms | p99 ms | p50 vs baseline |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for server, client, times in rows:
        p50, p99 = percentiles(times)
        lines.append(f"| {server} | {client} | {len(times)} | {p50:.3f} | {p99:.3f} | {p50 / base_p50:.2f}x |")
    return "\n".join(lines)


def load_bridge(engine, clip: Path) -> dict:
    """50 clients in threads, 20 analyze jobs each; every job's final event counted as it arrives."""
    import psutil

    process = psutil.Process(engine.proc.pid)
    with engine.client("udp") as warm:  # the first job fills the analysis cache
        assert warm.wait(warm.submit("analyze", {"video": str(clip)}), timeout=300)["event"] == "result"
    rss_before = process.memory_info().rss
    transports = ["udp", "tcp", "ws"]
    stats = {"accepted": 0, "results": 0, "by_event": 0, "other": 0, "errors": [],
             "missed": {t: 0 for t in transports}}
    lock = threading.Lock()
    seen = []  # (transport, job ids, final events received), counted after the run
    clients = []

    def one_client(index: int) -> None:
        finals = {}
        client = engine.client(transports[index % 3], timeout=30,
                               on_event=lambda e: finals.setdefault(e["job_id"], e) if e["event"] != "progress" else None)
        try:
            jobs = [client.submit("analyze", {"video": str(clip)}) for _ in range(JOBS_PER_CLIENT)]
            with lock:
                stats["accepted"] += len(jobs)
            outcomes = [client.wait(job, timeout=900) for job in jobs]
            with lock:
                stats["results"] += sum(o["event"] == "result" for o in outcomes)
                stats["other"] += sum(o["event"] != "result" for o in outcomes)
                seen.append((transports[index % 3], jobs, finals))
        except Exception as error:
            with lock:
                stats["errors"].append(repr(error))
        finally:
            clients.append(client)  # closed after the count below: a late event still arrives

    start = time.perf_counter()
    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats["seconds"] = time.perf_counter() - start
    time.sleep(2.0)  # wait() may have read a final state from the journal just before its event arrived
    for transport, jobs, finals in seen:
        stats["by_event"] += sum(job in finals for job in jobs)
        stats["missed"][transport] += sum(job not in finals for job in jobs)
    for client in clients:
        client.close()
    stats["rss_before"], stats["rss_after"] = rss_before, process.memory_info().rss
    return stats


def load_direct(clip: Path, cache: Path) -> float:
    """The same 1,000 jobs on an in-process JobService (no bridge): seconds."""
    import os

    from cuesmith.engine.service import JobService

    os.environ["CUESMITH_CACHE_DIR"] = str(cache)
    with tempfile.TemporaryDirectory() as folder:
        service = JobService(journal=Path(folder) / "journal.sqlite", output_root=Path(folder) / "jobs")
        service.start()
        service.wait(service.submit("analyze", {"video": str(clip)}).id, timeout=300)
        start = time.perf_counter()
        jobs = [service.submit("analyze", {"video": str(clip)}).id for _ in range(CLIENTS * JOBS_PER_CLIENT)]
        finished = [service.wait(job, timeout=900).state for job in jobs]
        seconds = time.perf_counter() - start
        service.stop()
    assert finished.count("done") == len(jobs), finished
    return seconds


FLOOD_SECONDS = 3.0
FLOOD_RATES = (2_000, 10_000, 30_000, 0)  # packets/s offered; 0: as fast as one sender can
NEGATIVE_BUNDLE = b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", -8) + b"\x00" * 8


def flood(port: int, packet: bytes, rate: int, seconds: float, sent: list) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        start, count = time.perf_counter(), 0
        while (now := time.perf_counter()) - start < seconds:
            if rate and count >= rate * (now - start):
                time.sleep(0.0005)
                continue
            try:
                sock.sendto(packet, ("127.0.0.1", port))
                count += 1
            except BlockingIOError:
                time.sleep(0.0001)
        sent.append(count / (time.perf_counter() - start))


def probe_during_flood(engine, packet: bytes, rate: int) -> dict:
    """Probe pings over UDP and TCP every 50 ms (1 s timeout) while one socket floods the engine."""
    from cuesmith.engine import CuesmithError

    sent: list[float] = []
    sender = threading.Thread(target=flood, args=(engine.port, packet, rate, FLOOD_SECONDS, sent))
    answered = {"udp": [], "tcp": []}
    clients = {t: engine.client(t, timeout=1.0) for t in answered}
    for client in clients.values():
        client.ping()
    sender.start()
    start = time.perf_counter()
    while time.perf_counter() - start < FLOOD_SECONDS:
        for transport, client in clients.items():
            try:
                answered[transport].append(client.ping())
            except CuesmithError:
                answered[transport].append(None)
        time.sleep(0.05)
    sender.join()
    for client in clients.values():
        client.close()
    time.sleep(0.5)  # let the engine drain its socket before the next rate
    out = {"offered": sent[0]}
    for transport, times in answered.items():
        ok = [t for t in times if t is not None]
        out[transport] = (len(ok), len(times), max(ok) * 1e3 if ok else float("nan"))
    return out


def flood_table(engine) -> tuple[str, dict]:
    import random

    from cuesmith.plugin_bridge.protocol import encode_message

    garbage = bytes(random.Random(1).randrange(256) for _ in range(64))
    kinds = [("ping (answered, rate-limited per peer)", encode_message("/cuesmith/ping", ["flood"])),
             ("28-byte bundle, element size -8", NEGATIVE_BUNDLE), ("64 random bytes", garbage)]
    lines = ["| flood packet | offered packets/s | achieved packets/s | probe pings answered udp | worst udp ms | "
             "probe pings answered tcp | worst tcp ms |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    survived: dict[str, float] = {}
    for name, packet in kinds:
        for rate in FLOOD_RATES:
            r = probe_during_flood(engine, packet, rate)
            (u_ok, u_n, u_ms), (t_ok, t_n, t_ms) = r["udp"], r["tcp"]
            lines.append(f"| {name} | {'max' if rate == 0 else rate} | {r['offered']:.0f} | {u_ok}/{u_n} | "
                         f"{u_ms:.1f} | {t_ok}/{t_n} | {t_ms:.1f} |")
            if u_ok == u_n and t_ok == t_n:
                survived[name] = max(survived.get(name, 0.0), r["offered"])
    return "\n".join(lines), survived


def bytes_back(sock: socket.socket, seconds: float = 0.5) -> int:
    total, deadline = 0, time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            total += len(sock.recv(70000))
        except socket.timeout:
            break
    return total


def bytes_back_for(port: int, packet: bytes) -> int:
    """The bytes that come back to the sender of one datagram."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # count every reply, drop none
        sender.bind(("127.0.0.1", 0))
        sender.sendto(packet, ("127.0.0.1", port))
        return bytes_back(sender)


def amplification_rows(engine, victim: socket.socket, token: str, who: str) -> list[str]:
    from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
    from pythonosc.osc_message import OscMessage

    from cuesmith.plugin_bridge.protocol import encode_message

    reply = f"reply=127.0.0.1:{victim.getsockname()[1]}"
    extra = [token] if token else []

    def bundle(address: str, args: list) -> bytes:
        builder = OscBundleBuilder(IMMEDIATELY)
        for i in range(64):
            builder.add_content(OscMessage(encode_message(address, [f"l{i}", *args])))
        return builder.build().dgram

    cases = [("ping", encode_message("/cuesmith/ping", ["t", *extra])),
             ("status", encode_message("/cuesmith/status", ["t", *extra])),
             ("list 100", encode_message("/cuesmith/list", ["t", 100, *extra])),
             ("bundle of 64 `list 100` with reply=", bundle("/cuesmith/list", [100, reply, *extra])),
             ("unknown address", encode_message("/cuesmith/nothing", ["t", *extra])),
             ("cancel of no job", encode_message("/cuesmith/cancel", ["t", "0123456789ab", *extra])),
             ("28-byte bundle, element size -8", NEGATIVE_BUNDLE),
             ("8 random bytes", bytes(range(1, 9)))]
    rows = []
    for name, packet in cases:
        back = bytes_back_for(engine.port, packet)
        elsewhere = bytes_back(victim, 0.3)
        factor = (back + elsewhere) / len(packet)
        rows.append(f"| {who} | {name} | {len(packet)} | {back} | {elsewhere} | {factor:.2f} |")
    return rows


def amplification_table(clip: Path, folder: Path) -> str:
    """Reply bytes over request bytes, per reply path: a sender the engine trusts (this machine, no --token)
    and one it does not (no token to an engine started with --token), 12 jobs in the journal to list."""
    lines = ["| sender | request | bytes in | bytes back | bytes to reply= | factor |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for who, token in (("this machine, loopback open", ""), ("no token, engine with --token", "s3cret")):
        engine = start_engine(folder / f"amplification-{bool(token)}", token=token or None)
        try:
            with engine.client("udp") as client:
                for seed in range(12):
                    client.submit("analyze", {"video": str(clip), "seed": seed}, priority=-1)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim:
                victim.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                victim.bind(("127.0.0.1", 0))
                lines += amplification_rows(engine, victim, "", who)
        finally:
            engine.kill()
    return "\n".join(lines)


def run() -> str:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        os.environ["XDG_CONFIG_HOME"] = str(folder / "config")  # the engine's token, not in the user's config
        clip = short_clip(folder / "clip.mp4", seconds=2.4)
        engine = start_engine(folder / "engine")
        try:
            pings = ping_table(engine)
            floods, survived = flood_table(engine)
            load = load_bridge(engine, clip)
        finally:
            engine.kill()
        amplified = amplification_table(clip, folder)
        direct = load_direct(clip, folder / "direct-cache")
    total = CLIENTS * JOBS_PER_CLIENT
    mib = 1 / (1 << 20)
    return "\n".join([
        "Ping round trips against a running `cuesmith serve` (a subprocess; both servers on loopback; the "
        "baseline is python-osc's threading UDP server echoing the message, timed by the same raw-socket loop).",
        "",
        pings,
        "",
        f"Load: {CLIENTS} clients (UDP, TCP, WebSocket in turn) x {JOBS_PER_CLIENT} `analyze` jobs of a 2.4 s "
        "generated clip whose analysis is cached, `--max-running 1`; baseline: the same jobs submitted to an "
        "in-process JobService (no bridge).",
        "",
        "| run | jobs | accepted | answered: result | final event received | lost | errors | seconds | jobs/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| in-process JobService (baseline) | {total} | {total} | {total} | - | 0 | 0 | {direct:.1f} | "
        f"{total / direct:.1f} |",
        f"| 50 clients through the bridge | {total} | {load['accepted']} | {load['results']} | {load['by_event']} | "
        f"{load['accepted'] - load['results'] - load['other']} | {len(load['errors'])} | {load['seconds']:.1f} | "
        f"{load['accepted'] / load['seconds']:.1f} ({load['seconds'] / direct:.2f}x the baseline's time) |",
        "",
        "Final events not received (the client's `wait` then read the job's state from the journal): "
        + ", ".join(f"{t} {n}" for t, n in load["missed"].items()) + ".",
        "",
        f"Engine RSS: {load['rss_before'] * mib:.0f} MiB before the load, {load['rss_after'] * mib:.0f} MiB after."
        + (f" Errors: {'; '.join(load['errors'][:3])}" if load["errors"] else ""),
        "",
        f"Floods: one UDP socket sends for {FLOOD_SECONDS:.0f} s at the offered rate while probe pings go over UDP "
        "and TCP every 50 ms (timeout 1 s; the UDP probe shares the flooded socket's queue). Highest rate with "
        "every probe answered: " + ", ".join(f"{k}: {v:,.0f}/s" for k, v in survived.items()) + ".",
        "",
        floods,
        "",
        "Amplification per reply path: bytes back over bytes in, for one datagram (0.5 s of replies counted).",
        "",
        amplified,
    ])
