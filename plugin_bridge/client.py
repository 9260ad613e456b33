"""`BridgeClient`: cuesmith's own OSC client (UDP, TCP/SLIP or WebSocket), and `cuesmith send`.

    client = BridgeClient()                      # udp 127.0.0.1:9470
    job = client.submit("score", {"video": "/clips/a.mp4", "stems": False})
    final = client.wait(job)                     # {"event": "result", "result": ".../result.json", ...}

Job events arrive on a receiver thread as dicts (`on_event`): {"event":
"progress"|"result"|"failed"|"cancelled", "job_id", "kind", "stage",
"fraction", "result" (a path), "message"}.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import secrets
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from cuesmith.engine.errors import CuesmithError

from .protocol import MAX_JSON, MAX_PACKET, PREFIX, Message, ProtocolError, SlipStream, decode_packet, \
    encode_message

DEFAULT_PORT = 9470
DEFAULT_WS_PORT = 9471
TRANSPORTS = ("udp", "tcp", "ws")
FINAL_EVENTS = ("result", "failed", "cancelled")
TAGGED_REPLIES = {PREFIX + name for name in ("pong", "accepted", "engine", "job", "list/end", "error")}
POLL_INTERVAL = 2.0  # seconds: wait() asks for the job's state when no event came (UDP can lose one)


class EngineUnavailable(CuesmithError):
    """No engine answered at the address (not running, another port, or a firewall)."""


class BridgeError(CuesmithError):
    """The engine answered `/cuesmith/error tag code message`."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


def empty_event(job_id: str, event: str) -> dict:
    return {"event": event, "job_id": job_id, "kind": "", "stage": "", "fraction": 0.0, "result": "", "message": ""}


def job_dict(args: list) -> dict:
    """The arguments of `/cuesmith/job tag job_id kind state stage fraction result` as a dict."""
    keys = ("job_id", "kind", "state", "stage", "fraction", "result")
    return dict(zip(keys, args[1:]))


class BridgeClient:
    def __init__(self, host: str = "127.0.0.1", port: Optional[int] = None, transport: str = "udp",
                 token: Optional[str] = None, timeout: float = 5.0,
                 on_event: Optional[Callable[[dict], None]] = None):
        if transport not in TRANSPORTS:
            raise CuesmithError(f"unknown transport {transport!r} (expected {', '.join(TRANSPORTS)})")
        self.host, self.transport, self.token, self.timeout = host, transport, token, timeout
        self.port = port or (DEFAULT_WS_PORT if transport == "ws" else DEFAULT_PORT)
        self.on_event = on_event
        self.version = ""  # the engine's, from the last pong
        self._link = None
        self._link_lock = threading.Lock()
        self._waiting: dict[str, queue.Queue] = {}
        self._kinds: dict[str, str] = {}
        self._finals: dict[str, dict] = {}
        self._finished = threading.Condition()
        self._tags = itertools.count(1)
        self._tag_prefix = secrets.token_hex(3)

    def current_token(self) -> Optional[str]:
        """The token given, or (None given) the one in the user config, read at each request: an engine
        started after this client may have just generated it. "" sends none."""
        if self.token is not None:
            return self.token
        from cuesmith.engine.config import user_token

        return user_token()

    @property
    def where(self) -> str:
        return f"{self.transport} {self.host}:{self.port}"

    # --- requests ---

    def ping(self) -> float:
        start = time.perf_counter()
        reply = self._request("ping", [], PREFIX + "pong")[-1]
        seconds = time.perf_counter() - start
        self.version = reply.args[1]
        return seconds

    def status(self) -> dict:
        reply = self._request("status", [], PREFIX + "engine")[-1].args
        return {"version": reply[1], "providers": json.loads(reply[2]), "models": json.loads(reply[3]),
                "queued": reply[4], "running": reply[5]}

    def submit(self, kind: str, request: dict | str, priority: int = 0) -> str:
        options = [f"priority={int(priority)}"] if priority else []
        text, spill = request_text(request)
        try:
            reply = self._request(kind, [text], PREFIX + "accepted", options)[-1]
        finally:
            if spill:
                spill.unlink(missing_ok=True)  # the engine read it before it answered
        job_id = reply.args[1]
        self._kinds[job_id] = kind
        return job_id

    def cancel(self, job_id: str) -> None:
        self._request("cancel", [job_id], PREFIX + "cancelled", match=lambda m: m.args[:1] == [job_id])

    def job(self, job_id: str) -> dict:
        return job_dict(self._request("status", [job_id], PREFIX + "job")[-1].args)

    def jobs(self, limit: int = 20) -> list[dict]:
        replies = self._request("list", [int(limit)], PREFIX + "list/end")
        return [job_dict(m.args) for m in replies if m.address == PREFIX + "job"]

    def wait(self, job_id: str, timeout: Optional[float] = None) -> dict:
        """The job's final event; when none arrives for a while, its state is asked for instead."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._finished:
                remaining = POLL_INTERVAL if deadline is None else min(POLL_INTERVAL, deadline - time.monotonic())
                if job_id not in self._finals and remaining > 0:
                    self._finished.wait(remaining)
                if job_id in self._finals:
                    return self._finals[job_id]
            if deadline is not None and time.monotonic() >= deadline:
                raise CuesmithError(f"job {job_id} did not finish within {timeout} s")
            self._poll_final(job_id)

    def _poll_final(self, job_id: str) -> None:
        try:
            state = self.job(job_id)
        except EngineUnavailable:
            return  # the engine may be restarting; its journal still has the job
        final = final_from_state(state)
        if final is not None:
            self._record_final(final)

    def close(self) -> None:
        with self._link_lock:
            link, self._link = self._link, None
        if link is not None:
            link.close()

    def __enter__(self) -> "BridgeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- sending and receiving ---

    def _request(self, name: str, args: list, last: str, options: list | None = None,
                 match: Callable[[Message], bool] = lambda m: True) -> list[Message]:
        """Send `/cuesmith/<name> tag args... options...`; the replies up to the one at `last`."""
        tag = f"{self._tag_prefix}-{next(self._tags)}"
        key = args[0] if name == "cancel" else tag  # the cancel reply carries the job id, not the tag
        replies: queue.Queue = queue.Queue()
        self._waiting[tag] = replies
        self._waiting[f"cancel:{key}"] = replies
        try:
            token = self.current_token()
            options = list(options or []) + ([f"token={token}"] if token else [])
            self._send(encode_message(PREFIX + name, [tag, *args, *options]))
            return self._collect(replies, last, match)
        finally:
            self._waiting.pop(tag, None)
            self._waiting.pop(f"cancel:{key}", None)

    def _collect(self, replies: queue.Queue, last: str, match) -> list[Message]:
        deadline = time.monotonic() + self.timeout
        got: list[Message] = []
        while True:
            try:
                message = replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise EngineUnavailable(f"no answer from the engine at {self.where} within {self.timeout} s",
                                        hint="is `cuesmith serve` running on that port?") from None
            if message.address == PREFIX + "error":
                raise BridgeError(str(message.args[1]), str(message.args[2]))
            got.append(message)
            if message.address == last and match(message):
                return got

    def _send(self, packet: bytes) -> None:
        with self._link_lock:
            if self._link is None or self._link.closed:
                self._link = self._connect()
            link = self._link
        try:
            link.send(packet)
        except OSError as error:
            link.close()
            raise EngineUnavailable(f"lost the connection to the engine at {self.where} ({error})") from None

    def _connect(self):
        links = {"udp": UdpLink, "tcp": TcpLink, "ws": WebSocketLink}
        try:
            return links[self.transport](self.host, self.port, self.timeout, self._on_packet)
        except (OSError, TimeoutError) as error:
            raise EngineUnavailable(f"cannot reach the engine at {self.where} ({error})",
                                    hint="start it with `cuesmith serve`") from None

    def _on_packet(self, data: bytes) -> None:
        try:
            messages = decode_packet(data)
        except ProtocolError:
            return
        for message in messages:
            self._on_message(message)

    def _on_message(self, message: Message) -> None:
        args = message.args
        if message.address in TAGGED_REPLIES and args and args[0] in self._waiting:
            self._waiting[args[0]].put(message)
            return
        if message.address == PREFIX + "cancelled" and args and isinstance(args[0], str):
            waiter = self._waiting.pop(f"cancel:{args[0]}", None)
            if waiter is not None:  # the reply to our cancel; the job's own event comes after it
                waiter.put(message)
                return
        event = self._event(message)
        if event is not None:
            self._deliver(event)

    def _event(self, message: Message) -> Optional[dict]:
        name, args = message.address[len(PREFIX):], message.args
        if not message.address.startswith(PREFIX) or not args or not isinstance(args[0], str):
            return None
        event = empty_event(args[0], name)
        event["kind"] = self._kinds.get(args[0], "")
        if name == "progress" and len(args) >= 3:
            event.update(stage=args[1], fraction=float(args[2]))
        elif name == "result" and len(args) >= 3:
            event.update(kind=args[1], result=args[2])
        elif name == "failed" and len(args) >= 2:
            event.update(message=args[1])
        elif name != "cancelled":
            return None
        return event

    def _deliver(self, event: dict) -> None:
        if event["event"] in FINAL_EVENTS:
            self._record_final(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception as error:  # the caller's bug must not stop the receiver
                print(f"cuesmith client: on_event failed: {error}", file=sys.stderr)

    def _record_final(self, event: dict) -> None:
        with self._finished:
            self._finals.setdefault(event["job_id"], event)
            self._finished.notify_all()


def final_from_state(job: dict) -> Optional[dict]:
    """A final event made from a job's journaled state (when the event itself was lost)."""
    state = job.get("state")
    if state not in ("done", "failed", "cancelled"):
        return None
    event = empty_event(job["job_id"], "result" if state == "done" else state)
    event.update(kind=job.get("kind", ""), stage=job.get("stage", ""), fraction=job.get("fraction", 0.0),
                 result=job.get("result", ""))
    if state == "failed":
        event["message"] = f"failed (the event was lost; `cuesmith send status {job['job_id']}`)"
    return event


def request_text(request: dict | str) -> tuple[str, Optional[Path]]:
    """The request as sent: JSON inline, or (over MAX_JSON bytes) a temporary .json file's path."""
    if isinstance(request, str):
        return request, None
    text = json.dumps(request, allow_nan=False)
    if len(text.encode("utf-8")) <= MAX_JSON:
        return text, None
    fd, name = tempfile.mkstemp(prefix="cuesmith-request-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    return name, Path(name)


# --- links: one per transport, each with a receiver thread ---

class UdpLink:
    def __init__(self, host: str, port: int, timeout: float, on_packet: Callable[[bytes], None]):
        self.address = (socket.gethostbyname(host), port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1" if self.address[0].startswith("127.") else "", 0))
        self.closed = False
        self.on_packet = on_packet
        threading.Thread(target=self._receive, name="cuesmith-udp", daemon=True).start()

    def send(self, packet: bytes) -> None:
        self.sock.sendto(packet, self.address)

    def _receive(self) -> None:
        while not self.closed:
            try:
                data, _ = self.sock.recvfrom(MAX_PACKET + 1024)
            except ConnectionRefusedError:
                continue  # an earlier datagram found no engine (ICMP); keep listening
            except OSError:
                return
            self.on_packet(data)

    def close(self) -> None:
        self.closed = True
        close_socket(self.sock)


def close_socket(sock: socket.socket) -> None:
    """Shut down first, so the receiver thread blocked in recv wakes up and ends."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class TcpLink:
    def __init__(self, host: str, port: int, timeout: float, on_packet: Callable[[bytes], None]):
        from pythonosc import slip

        self.encode = slip.encode
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.closed = False
        self.on_packet = on_packet
        threading.Thread(target=self._receive, name="cuesmith-tcp", daemon=True).start()

    def send(self, packet: bytes) -> None:
        self.sock.sendall(self.encode(packet))

    def _receive(self) -> None:
        stream = SlipStream()
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return
            for packet in stream.feed(data):
                if isinstance(packet, bytes):
                    self.on_packet(packet)

    def close(self) -> None:
        self.closed = True
        close_socket(self.sock)


class WebSocketLink:
    def __init__(self, host: str, port: int, timeout: float, on_packet: Callable[[bytes], None]):
        from websockets.sync.client import connect

        # entered like `with connect(...)` (websockets >= 16 warns on a bare connect); closed by close()
        self.ws = connect(f"ws://{host}:{port}/", open_timeout=timeout, max_size=4 * MAX_PACKET,
                          compression=None).__enter__()
        self.closed = False
        self.on_packet = on_packet
        threading.Thread(target=self._receive, name="cuesmith-ws", daemon=True).start()

    def send(self, packet: bytes) -> None:
        try:
            self.ws.send(packet)
        except Exception as error:  # websockets' ConnectionClosed is not an OSError
            raise OSError(str(error)) from None

    def _receive(self) -> None:
        try:
            for frame in self.ws:
                if isinstance(frame, bytes):
                    self.on_packet(frame)
        except Exception:
            pass
        self.closed = True

    def close(self) -> None:
        self.closed = True
        self.ws.close()


# --- `cuesmith send` ---

REQUESTS = ("ping", "score", "critique", "analyze", "describe", "cancel", "status", "list")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("send one request to a running engine; prints one JSON line per reply and event; "
                          "exit 0 on success, 1 when the job failed or was cancelled, 2 on an error")
    parser.add_argument("what", choices=REQUESTS)
    parser.add_argument("arg", nargs="?",
                        help="score/critique/analyze/describe: the request JSON or the path of a .json file; "
                             "cancel/status: a job id; list: how many jobs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default 9470 (UDP, TCP) or 9471 (ws)")
    parser.add_argument("--transport", choices=TRANSPORTS, default="udp")
    parser.add_argument("--token", default=os.environ.get("CUESMITH_TOKEN"),
                        help="the engine's --token (default $CUESMITH_TOKEN, else the token in the user config)")
    parser.add_argument("--priority", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply (default 5)")
    parser.add_argument("--no-wait", action="store_true", help="print the job id and exit; do not wait for it")


def main(args: argparse.Namespace) -> int:
    client = BridgeClient(args.host, args.port, args.transport, args.token, args.timeout)
    try:
        return run_send(client, args)
    except BridgeError as error:
        emit({"reply": "error", "code": error.code, "message": error.message})
    except EngineUnavailable as error:
        emit({"reply": "error", "code": "unavailable", "message": str(error)})
    finally:
        client.close()
    return 2


def emit(line: dict) -> None:
    print(json.dumps(line, ensure_ascii=False), flush=True)


def run_send(client: BridgeClient, args: argparse.Namespace) -> int:
    what = args.what
    if what in ("score", "critique", "analyze", "describe", "cancel") and not args.arg:
        raise CuesmithError(f"send {what} needs " + ("a job id" if what == "cancel" else "the request JSON"))
    if what == "ping":
        seconds = client.ping()
        emit({"reply": "pong", "version": client.version, "seconds": round(seconds, 6)})
    elif what == "status" and args.arg:
        emit({"reply": "job", **client.job(args.arg)})
    elif what == "status":
        emit({"reply": "engine", **client.status()})
    elif what == "list":
        jobs = client.jobs(int(args.arg) if args.arg else 20)
        for job in jobs:
            emit({"reply": "job", **job})
        emit({"reply": "list_end", "count": len(jobs)})
    elif what == "cancel":
        client.cancel(args.arg)
        emit({"reply": "cancelled", "job_id": args.arg})
    else:
        return send_job(client, what, args)
    return 0


def send_job(client: BridgeClient, kind: str, args: argparse.Namespace) -> int:
    events: queue.Queue = queue.Queue()
    client.on_event = events.put
    job_id = client.submit(kind, cli_request(args.arg), priority=args.priority)
    emit({"reply": "accepted", "job_id": job_id})
    if args.no_wait:
        return 0
    while True:
        try:
            event = events.get(timeout=POLL_INTERVAL)
        except queue.Empty:
            state = client.job(job_id)
            event = final_from_state(state)
            if event is None:
                continue
        if event["job_id"] != job_id:
            continue
        emit(event)
        if event["event"] in FINAL_EVENTS:
            return 0 if event["event"] == "result" else 1


def cli_request(text: str) -> dict | str:
    """Inline JSON gets its relative input paths made absolute (the engine runs elsewhere); a path is sent as is."""
    if not text.lstrip().startswith("{"):
        return str(Path(text).expanduser().absolute())
    try:
        request = json.loads(text)
    except ValueError as error:
        raise CuesmithError(f"the request is not valid JSON: {error}") from None
    if not isinstance(request, dict):
        return text
    for key in ("video", "music", "timeline"):
        if isinstance(request.get(key), str) and request[key]:
            request[key] = str(Path(request[key]).expanduser().absolute())
    for clip in request.get("clips") or []:
        if isinstance(clip, dict) and isinstance(clip.get("video"), str):
            clip["video"] = str(Path(clip["video"]).expanduser().absolute())
    return request
