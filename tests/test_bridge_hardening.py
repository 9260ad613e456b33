"""Issue 14, cases 1-5, against a real `cuesmith serve`: one packet, file, address or pile of idle connections
must not stop the engine, send its replies elsewhere, or amplify."""
import json
import os
import signal
import socket
import stat
import struct
import time

import psutil
import pytest

from bridge_helpers import engine_process, running_engine, short_clip  # noqa: F401  (a fixture)
from cuesmith.engine.config import config_path, user_token
from cuesmith.plugin_bridge.client import BridgeError
from cuesmith.plugin_bridge.protocol import decode_packet, encode_message
from cuesmith.plugin_bridge.transports import REPLY_RATE
from pythonosc import slip
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

NEGATIVE_BUNDLE = b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", -8) + b"\x00" * 8  # python-osc loops forever


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return short_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=3.0)


def pings_within_a_second(engine) -> None:
    for transport in ("udp", "tcp", "ws"):
        with engine.client(transport, timeout=1.0) as client:
            assert client.ping() < 1.0, transport


def rss_mb(engine) -> float:
    return psutil.Process(engine.proc.pid).memory_info().rss / 2**20


def test_a_bundle_element_of_negative_size_on_any_transport_stops_nothing(tmp_path):
    assert len(NEGATIVE_BUNDLE) == 28
    with running_engine(tmp_path) as engine:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(5)
            udp.sendto(NEGATIVE_BUNDLE, ("127.0.0.1", engine.port))
            assert decode_packet(udp.recv(4096))[0].args[1] == "bad_packet"
        with socket.create_connection(("127.0.0.1", engine.port), timeout=5) as tcp:
            tcp.sendall(slip.encode(NEGATIVE_BUNDLE))
            assert decode_packet(slip.decode(tcp.recv(4096).strip(slip.END)))[0].args[1] == "bad_packet"
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{engine.ws_port}/") as ws:
            ws.send(NEGATIVE_BUNDLE)
            assert decode_packet(ws.recv(timeout=5))[0].args[1] == "bad_packet"
        pings_within_a_second(engine)
        started = time.monotonic()
        assert engine.stop(signal.SIGTERM, timeout=30) == 0
        assert time.monotonic() - started < 30 and engine.lines[-1] == "cuesmith serve: stopped"
        assert len("\n".join(engine.lines)) < 10_000  # no log flood


def test_request_files_that_are_dev_zero_or_a_fifo_are_refused_at_once(engine_process, tmp_path):
    zero, fifo, timeline = tmp_path / "x.json", tmp_path / "fifo" / "x.json", tmp_path / "reel.edl"
    zero.symlink_to("/dev/zero")
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    os.mkfifo(timeline)
    with engine_process.client("udp", timeout=2.0) as client:
        for path in (zero, fifo):
            with pytest.raises(BridgeError) as error:
                client.submit("analyze", str(path))
            assert error.value.code == "bad_json" and "not a regular file" in error.value.message
            pings_within_a_second(engine_process)
        with pytest.raises(BridgeError) as error:
            client.submit("score", {"timeline": str(timeline)})
        assert error.value.code == "bad_request" and "not a regular file" in error.value.message
    pings_within_a_second(engine_process)
    assert rss_mb(engine_process) < 500


def test_a_request_file_read_off_the_network_thread_still_submits(engine_process, clip, tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"video": str(clip), "pad": "x" * 5000}))
    with engine_process.client("tcp") as client:
        final = client.wait(client.submit("analyze", str(path)), timeout=120)
    assert final["event"] == "result", final


def list_bundle(reply_port: int, token: str = "") -> bytes:
    """The issue's 3.9 KB bundle: 64 `list` requests whose replies go to another port."""
    bundle = OscBundleBuilder(IMMEDIATELY)
    for i in range(64):
        builder = OscMessageBuilder("/cuesmith/list")
        for value in (f"l{i}", 100, f"reply=127.0.0.1:{reply_port}", *([token] if token else [])):
            builder.add_arg(value)
        bundle.add_content(builder.build())
    return bundle.build().dgram


def received_bytes(sock: socket.socket, seconds: float) -> int:
    total, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            total += len(sock.recv(70000))
        except socket.timeout:
            break
    return total


def test_an_unauthenticated_sender_gets_back_no_more_than_it_sent_and_nothing_elsewhere(tmp_path, clip):
    with running_engine(tmp_path, token="s3cret") as engine:
        with engine.client("udp") as client:  # some jobs to list
            for seed in range(3):
                client.submit("analyze", {"video": str(clip), "seed": seed})
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim:
            sender.bind(("127.0.0.1", 0))
            victim.bind(("127.0.0.1", 0))
            packet = list_bundle(victim.getsockname()[1])
            assert 3000 < len(packet) < 4500
            sender.sendto(packet, ("127.0.0.1", engine.port))
            back, elsewhere = received_bytes(sender, 1.0), received_bytes(victim, 0.2)
            assert 0 < back <= len(packet) and elsewhere == 0
            # with the token the same bundle is answered in full, to reply=
            sender.sendto(list_bundle(victim.getsockname()[1], "token=s3cret"), ("127.0.0.1", engine.port))
            assert received_bytes(victim, 2.0) > len(packet)


def test_udp_replies_to_one_peer_are_rate_limited_and_others_still_answered(engine_process, clip):
    """One bundle of 64 `list 100` over 20+ jobs asks for 1,344+ replies: the peer gets the burst, no more."""
    with engine_process.client("tcp") as client:
        jobs = [client.submit("analyze", {"video": str(clip)}, priority=-1000) for _ in range(20)]
    bundle = OscBundleBuilder(IMMEDIATELY)
    for i in range(64):
        bundle.add_content(build_list(i))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind(("127.0.0.1", 0))
            started = time.monotonic()
            sock.sendto(bundle.build().dgram, ("127.0.0.1", engine_process.port))
            replies, last = count_datagrams(sock, 1.0)
            elapsed = last - started
        pings_within_a_second(engine_process)
    finally:
        with engine_process.client("tcp") as client:
            for job in jobs:
                try:
                    client.cancel(job)
                except BridgeError:
                    pass  # it ran already
    assert 0.9 * REPLY_RATE <= replies <= REPLY_RATE * (1 + elapsed) + 20, (replies, elapsed)


def test_the_per_peer_rate_is_a_burst_then_a_steady_rate(monkeypatch):
    from cuesmith.plugin_bridge import transports

    now = [100.0]
    monkeypatch.setattr(transports.time, "monotonic", lambda: now[0])
    rate = transports.PeerRate(rate=10.0, burst=5.0, peers=2)
    assert [rate.allow(("a", 1)) for _ in range(7)] == [True] * 5 + [False] * 2
    assert rate.allow(("b", 1))  # another peer has its own bucket
    now[0] += 0.35  # 3.5 tokens back
    assert [rate.allow(("a", 1)) for _ in range(5)] == [True] * 3 + [False] * 2
    rate.allow(("c", 1))
    assert len(rate.buckets) == 2  # the oldest peer is forgotten


def build_list(i: int):
    builder = OscMessageBuilder("/cuesmith/list")
    builder.add_arg(f"l{i}")
    builder.add_arg(100)
    return builder.build()


def count_datagrams(sock: socket.socket, quiet: float) -> tuple[int, float]:
    """Datagrams received until none came for `quiet` seconds, and when the last one came."""
    count, last = 0, time.monotonic()
    sock.settimeout(quiet)
    while True:
        try:
            sock.recv(70000)
        except socket.timeout:
            return count, last
        count, last = count + 1, time.monotonic()


def test_reply_to_another_machine_is_refused(engine_process):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(encode_message("/cuesmith/ping", ["t", "reply=192.0.2.7:9000"]), ("127.0.0.1", engine_process.port))
        reply = decode_packet(sock.recv(4096))[0]
    assert reply.args[:2] == ["t", "bad_arguments"] and "192.0.2.7" in reply.args[2]


def test_the_websocket_takes_no_web_page_and_asks_for_the_generated_token(engine_process, tmp_path):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    token = user_token()
    assert token and len(token) >= 24
    assert stat.S_IMODE(config_path().stat().st_mode) == 0o600
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{engine_process.ws_port}/", origin="https://evil.example")
    assert refused.value.response.status_code == 403
    with connect(f"ws://127.0.0.1:{engine_process.ws_port}/") as ws:
        for args, address in ((["t"], "/cuesmith/error"), (["t", "token=wrong"], "/cuesmith/error"),
                              (["t", f"token={token}"], "/cuesmith/pong")):
            ws.send(json.dumps({"address": "/cuesmith/list", "args": args}) if address == "/cuesmith/error" else
                    json.dumps({"address": "/cuesmith/ping", "args": args}))
            reply = json.loads(ws.recv(timeout=5))
            assert reply["address"] == address and (address != "/cuesmith/error" or reply["args"][1] == "unauthorized")


def test_a_configured_origin_may_open_the_websocket(tmp_path):
    from websockets.sync.client import connect

    with running_engine(tmp_path, extra=("--origin", "https://panel.example")) as engine:
        with connect(f"ws://127.0.0.1:{engine.ws_port}/", origin="https://panel.example") as ws:
            ws.send(json.dumps({"address": "/cuesmith/ping", "args": ["t", engine.token_option()]}))
            assert json.loads(ws.recv(timeout=5))["address"] == "/cuesmith/pong"


def test_an_unreadable_edl_is_refused_without_quoting_it(engine_process, tmp_path):
    edl = tmp_path / "secret.edl"
    edl.write_text("TITLE: x\n001  AX  V  C  the-secret-line /root:/bin/bash\n")
    with engine_process.client("ws") as client:
        with pytest.raises(BridgeError) as error:
            client.submit("score", {"timeline": str(edl)})
    assert error.value.code == "bad_request" and "secret" not in error.value.message.replace(str(edl), "")


def test_hundreds_of_idle_connections_stop_no_client_and_no_job(tmp_path, clip):
    from websockets.sync.client import connect

    extra = ("--max-connections", "32", "--idle-timeout", "120")
    with running_engine(tmp_path, extra=extra, max_files=256) as engine:
        idle = [socket.create_connection(("127.0.0.1", engine.port), timeout=5) for _ in range(300)]
        sockets = [connect(f"ws://127.0.0.1:{engine.ws_port}/", open_timeout=5).__enter__() for _ in range(40)]
        try:
            pings_within_a_second(engine)
            assert psutil.Process(engine.proc.pid).num_fds() < 200
            with engine.client("tcp") as client:
                final = client.wait(client.submit("analyze", {"video": str(clip)}), timeout=120)
            assert final["event"] == "result", final
        finally:
            for sock in idle:
                sock.close()
            for ws in sockets:
                ws.close()


def test_a_silent_connection_is_closed_after_the_idle_timeout(tmp_path):
    with running_engine(tmp_path, extra=("--idle-timeout", "1")) as engine:
        with socket.create_connection(("127.0.0.1", engine.port), timeout=10) as silent:
            started = time.monotonic()
            assert silent.recv(10) == b""
            assert 0.9 < time.monotonic() - started < 8
        pings_within_a_second(engine)


def test_the_token_is_generated_once_privately_beside_the_other_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CUESMITH_TOKEN", raising=False)
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"soundfont": "/sf/a.sf2"}')
    assert user_token() is None
    token = user_token(create=True)
    assert user_token(create=True) == user_token() == token and len(token) >= 24
    assert json.loads(path.read_text()) == {"soundfont": "/sf/a.sf2", "token": token}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv("CUESMITH_TOKEN", "from-the-environment")
    assert user_token(create=True) == "from-the-environment"


def test_a_config_that_is_not_json_is_never_replaced_by_a_token(tmp_path, cli):
    import subprocess

    path = tmp_path / "config" / "cuesmith" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json, but the user's")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("CUESMITH_TOKEN", None)
    run = subprocess.run([cli, "serve", "--port", "0", "--ws-port", "0", "--journal", str(tmp_path / "j.sqlite"),
                          "--output-root", str(tmp_path / "jobs")], env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "config.json" in run.stderr
    assert path.read_text() == "{not json, but the user's"
