"""Real external peers (liblo's oscsend/oscdump) and an engine killed mid-job, then restarted."""
import json
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import time

import pytest

from bridge_helpers import (UdpInbox, engine_process, free_udp_port, running_engine, short_clip,  # noqa: F401
                            wait_for_line)
from cuesmith.engine import __version__
from cuesmith.plugin_bridge.protocol import encode_message

needs_liblo = pytest.mark.skipif(not (shutil.which("oscsend") and shutil.which("oscdump")),
                                 reason="liblo-tools (oscsend, oscdump) not installed")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return short_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=2.4)


class OscDump:
    """`oscdump -L PORT` as a subprocess; its lines gathered by a thread so a read never blocks a test."""

    def __init__(self, port: int):
        self.proc = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(line.rstrip() for line in self.proc.stdout),
                         daemon=True).start()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        return wait_for_line(self.lines, pattern, timeout, self.proc, "oscdump")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@needs_liblo
def test_oscsend_and_oscdump_talk_to_the_engine(engine_process, clip):
    port = free_udp_port()
    dump = OscDump(port)
    try:
        time.sleep(0.3)  # oscdump binds its port
        send = ["oscsend", "127.0.0.1", str(engine_process.port)]
        subprocess.run([*send, "/cuesmith/ping", "ss", "p1", f"reply={port}"], check=True, timeout=10)
        dump.wait_for(rf'/cuesmith/pong ss "p1" "{re.escape(__version__)}"', 20)
        request = json.dumps({"video": str(clip), "stems": False})
        subprocess.run([*send, "/cuesmith/score", "sss", "s1", request, f"reply={port}"], check=True, timeout=10)
        job_id = dump.wait_for(r'/cuesmith/accepted ss "s1" "([0-9a-f]+)"', 20).group(1)
        result = dump.wait_for(rf'/cuesmith/(result|failed) ss+ "{job_id}" (.*)', 180)
        assert result.group(1) == "result", dump.lines
        assert any(f'/cuesmith/progress ssf "{job_id}"' in line for line in dump.lines)
        path = re.search(r'"score" "(.+)"', result.group(2)).group(1)
        assert json.loads(open(path).read())["variations"]
        subprocess.run([*send, "/cuesmith/nothing", "sss", "e1", "room for the error" * 3, f"reply={port}"],
                       check=True, timeout=10)
        subprocess.run([*send, "/cuesmith/ping", "s", "e1"], check=True, timeout=10)  # no reply=: to oscsend's port
        # a reply bigger than the request goes to another port only with the token
        subprocess.run([*send, "/cuesmith/status", "ss", "e3", f"reply={port}"], check=True, timeout=10)
        subprocess.run([*send, "/cuesmith/status", "sss", "e2", f"reply={port}", engine_process.token_option()],
                       check=True, timeout=10)
        dump.wait_for(r'/cuesmith/error sss "e1" "unknown_address"', 20)
        dump.wait_for(r'/cuesmith/engine ssssii "e2"', 20)
        assert not any('"e3"' in line for line in dump.lines)
    finally:
        dump.close()


def journal_states(path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT id, state FROM jobs"))


def test_killed_mid_job_then_restarted_every_accepted_job_is_answered(tmp_path, clip):
    inbox = UdpInbox()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    request = json.dumps({"video": str(clip), "stems": False})
    try:
        with running_engine(tmp_path / "first") as first:
            accepted = []
            for i in range(3):
                sender.sendto(encode_message("/cuesmith/score", [f"k{i}", request, f"reply={inbox.port}"]),
                              ("127.0.0.1", first.port))
                accepted.append(inbox.until("/cuesmith/accepted").args[1])
            inbox.until("/cuesmith/progress", timeout=120)  # the first job is running
            first.kill()
        journal = tmp_path / "first" / "journal.sqlite"
        before = journal_states(journal)
        assert set(accepted) <= set(before) and before[accepted[0]] == "running"
        assert all(before[job] == "queued" for job in accepted[1:])

        with running_engine(tmp_path / "second", journal=journal) as second:
            assert any("resumed 3 job(s)" in line for line in second.lines)
            finals = {}
            while len(finals) < 3:
                message = inbox.until_any(("/cuesmith/result", "/cuesmith/failed"), timeout=240)
                finals[message.args[0]] = message.address
            assert set(finals) == set(accepted)
            assert finals[accepted[1]] == finals[accepted[2]] == "/cuesmith/result"
            assert finals[accepted[0]] in ("/cuesmith/result", "/cuesmith/failed")
            after = journal_states(journal)
            assert {job: after[job] for job in accepted} == {
                job: "done" if finals[job] == "/cuesmith/result" else "failed" for job in accepted}
    finally:
        sender.close()
        inbox.close()
