"""End to end over UDP, TCP (SLIP) and WebSocket against a running `cuesmith serve`."""
import json
import re
import signal
import socket
import subprocess
import time

import pretty_midi
import pytest

from bridge_helpers import engine_process, running_engine, short_clip  # noqa: F401  (a fixture)
from cuesmith.engine import CuesmithError, __version__
from cuesmith.plugin_bridge.client import BridgeError, EngineUnavailable
from cuesmith.plugin_bridge.protocol import SlipStream, decode_packet, encode_message
from pythonosc import slip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return short_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=3.0)


@pytest.mark.parametrize("transport", ["udp", "tcp", "ws"])
def test_score_end_to_end(engine_process, clip, transport):
    events = []
    with engine_process.client(transport, on_event=events.append) as client:
        assert client.ping() < 1.0
        job_id = client.submit("score", {"video": str(clip), "stems": False, "seed": 1})
        final = client.wait(job_id, timeout=180)
    assert final["event"] == "result", final
    assert final["job_id"] == job_id and final["kind"] == "score"
    progress = [e for e in events if e["event"] == "progress" and e["job_id"] == job_id]
    assert progress and all(0.0 <= e["fraction"] <= 1.0 for e in progress)
    result = json.loads(open(final["result"]).read())
    midi = pretty_midi.PrettyMIDI(result["variations"][0]["midi"])
    assert sum(len(i.notes) for i in midi.instruments) > 0
    assert final["result"].startswith(str(engine_process.output_root.resolve()))
    engine_process.wait_for(re.escape(f"job {job_id} (score) done: {final['result']}"), timeout=10)


def test_score_with_stems_over_udp(engine_process, clip):
    with engine_process.client("udp") as client:
        final = client.wait(client.submit("score", {"video": str(clip), "seed": 2}), timeout=300)
    assert final["event"] == "result", final
    variation = json.loads(open(final["result"]).read())["variations"][0]
    assert variation["stems"] and all(open(path, "rb").read(4) == b"RIFF" for path in variation["stems"].values())
    assert pretty_midi.PrettyMIDI(variation["midi"]).get_end_time() > 2.0


def test_status_list_and_errors_on_each_transport(engine_process):
    for transport in ("udp", "tcp", "ws"):
        with engine_process.client(transport) as client:
            status = client.status()
            assert status["version"] == __version__ and "available" in status["providers"]
            assert isinstance(client.jobs(5), list)
            with pytest.raises(BridgeError) as error:
                client.job("0123456789ab")
            assert error.value.code == "not_found"
            with pytest.raises(BridgeError) as error:
                client.submit("analyze", {"video": "/no/such/clip.mp4"})
            assert error.value.code == "bad_request"


def test_websocket_text_frames_carry_json_messages(engine_process):
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{engine_process.ws_port}/") as ws:
        ws.send(json.dumps({"address": "/cuesmith/ping", "args": ["t1", engine_process.token_option()]}))
        assert json.loads(ws.recv(timeout=10)) == {"address": "/cuesmith/pong", "args": ["t1", __version__]}
        ws.send("{broken")
        reply = json.loads(ws.recv(timeout=10))
        assert reply["address"] == "/cuesmith/error" and reply["args"][:2] == ["", "bad_json"]
        # binary frames on the same connection stay OSC
        ws.send(encode_message("/cuesmith/ping", ["b1", engine_process.token_option()]))
        assert decode_packet(ws.recv(timeout=10))[0].args == ["b1", __version__]


def test_a_job_submitted_in_text_frames_gets_its_events_as_text_frames(engine_process, clip):
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{engine_process.ws_port}/") as ws:
        ws.send(json.dumps({"address": "/cuesmith/analyze", "args": ["j1", json.dumps({"video": str(clip)}),
                                                                      engine_process.token_option()]}))
        replies = [json.loads(ws.recv(timeout=10))]
        while replies[-1]["address"] not in ("/cuesmith/result", "/cuesmith/failed"):
            replies.append(json.loads(ws.recv(timeout=120)))
    assert replies[0]["address"] == "/cuesmith/accepted" and replies[0]["args"][0] == "j1"
    job_id = replies[0]["args"][1]
    assert replies[-1] == {"address": "/cuesmith/result", "args": [job_id, "analyze", replies[-1]["args"][2]]}
    assert json.loads(open(replies[-1]["args"][2]).read())


def test_tcp_frames_split_across_writes_and_garbage_between(engine_process):
    with socket.create_connection(("127.0.0.1", engine_process.port), timeout=10) as sock:
        wire = slip.encode(encode_message("/cuesmith/ping", ["a"])) + slip.encode(b"junk") + \
            slip.encode(encode_message("/cuesmith/ping", ["b"]))
        for i in range(0, len(wire), 5):
            sock.sendall(wire[i:i + 5])
            time.sleep(0.001)
        stream, replies = SlipStream(), []
        while len(replies) < 3:
            replies += [decode_packet(p)[0] for p in stream.feed(sock.recv(4096))]
    assert [(m.address, m.args[0]) for m in replies] == [
        ("/cuesmith/pong", "a"), ("/cuesmith/error", ""), ("/cuesmith/pong", "b")]


def test_random_datagrams_do_not_stop_the_engine(engine_process):
    import random

    rng = random.Random(5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        for _ in range(200):
            sock.sendto(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))),
                        ("127.0.0.1", engine_process.port))
            assert decode_packet(sock.recv(70000))[0].address == "/cuesmith/error"
    with engine_process.client("udp") as client:
        assert client.ping() < 1.0


def test_token_required_when_the_engine_has_one(tmp_path):
    with running_engine(tmp_path, token="s3cret") as engine:
        assert any("token required" in line for line in engine.lines)
        assert engine.host == "127.0.0.1"  # loopback unless --host says otherwise
        for transport in ("udp", "tcp", "ws"):
            with engine.client(transport) as client:
                assert client.ping() < 1.0
            client = engine.client(transport)
            client.token = None
            with pytest.raises(BridgeError) as error:
                client.ping()
            client.close()
            assert error.value.code == "unauthorized"


def test_sigterm_stops_cleanly_and_other_hosts_are_told_of_the_token(tmp_path):
    with running_engine(tmp_path, extra=("--host", "0.0.0.0")) as engine:
        assert any("listening on 0.0.0.0: other machines must send the token" in line for line in engine.lines)
        assert engine.stop(signal.SIGTERM) == 0
        assert engine.lines[-1] == "cuesmith serve: stopped"


def test_a_client_without_an_engine_says_so(tmp_path):
    from bridge_helpers import free_udp_port
    from cuesmith.plugin_bridge.client import BridgeClient

    for transport in ("udp", "tcp", "ws"):
        with BridgeClient(port=free_udp_port(), transport=transport, timeout=0.5) as client:
            with pytest.raises(EngineUnavailable):
                client.ping()
    with pytest.raises(CuesmithError):
        BridgeClient(transport="carrier-pigeon")


def send(engine, *args, timeout=240):
    """`cuesmith send ...` against the engine: (exit code, the JSON lines it printed)."""
    from bridge_helpers import CLI

    run = subprocess.run([str(CLI), "send", *args, "--port", str(engine.port)], capture_output=True, text=True,
                         timeout=timeout)
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines()]


def test_cuesmith_send_prints_json_lines_and_exits_by_outcome(engine_process, clip, tmp_path):
    code, lines = send(engine_process, "ping")
    assert code == 0 and lines[0]["reply"] == "pong" and lines[0]["version"] == __version__
    code, lines = send(engine_process, "analyze", json.dumps({"video": str(clip)}), "--transport", "tcp")
    assert code == 0 and lines[0]["reply"] == "accepted"
    assert lines[-1]["event"] == "result" and lines[-1]["job_id"] == lines[0]["job_id"]
    assert json.loads(open(lines[-1]["result"]).read())
    code, lines = send(engine_process, "status", lines[0]["job_id"])
    assert code == 0 and lines[0]["reply"] == "job" and lines[0]["state"] == "done"
    code, lines = send(engine_process, "list", "3")
    assert code == 0 and lines[-1]["reply"] == "list_end" and lines[-1]["count"] == len(lines) - 1 >= 1
    notes = tmp_path / "not-music.txt"
    notes.write_text("not audio")
    code, lines = send(engine_process, "critique", json.dumps({"video": str(clip), "music": str(notes)}))
    assert code == 1 and lines[-1]["event"] == "failed" and lines[-1]["message"]
    code, lines = send(engine_process, "analyze", '{"video": "/no/such/clip.mp4"}')
    assert code == 2 and lines == [{"reply": "error", "code": "bad_request",
                                    "message": "/no/such/clip.mp4: no such file"}]
    code, lines = send(engine_process, "analyze", json.dumps({"video": str(clip)}), "--no-wait")
    assert code == 0 and [line["reply"] for line in lines] == ["accepted"]


def test_cuesmith_send_without_an_engine_exits_2(tmp_path):
    from bridge_helpers import CLI, free_udp_port

    run = subprocess.run([str(CLI), "send", "ping", "--port", str(free_udp_port()), "--timeout", "0.5"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and json.loads(run.stdout)["code"] == "unavailable"


def test_cancel_a_job_over_tcp(engine_process, clip):
    events = []
    with engine_process.client("tcp", on_event=events.append) as client:
        job_id = client.submit("score", {"video": str(clip), "stems": False, "variations": 2})
        client.cancel(job_id)
        final = client.wait(job_id, timeout=120)
        assert final["event"] == "cancelled"
        assert client.job(job_id)["state"] == "cancelled"
        with pytest.raises(BridgeError) as error:
            client.cancel("0123456789ab")
        assert error.value.code == "not_found"
