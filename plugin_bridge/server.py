"""`cuesmith serve`: the job service behind OSC over UDP and TCP (SLIP) and WebSocket (docs/osc.md)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cuesmith.engine.errors import CuesmithError

DEFAULT_PORT = 9470
DEFAULT_WS_PORT = 9471
STATUS_INTERVAL = 3.0  # seconds between printed progress lines of one job


def data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("cuesmith"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP and TCP port (default 9470; 0: any)")
    parser.add_argument("--ws-port", type=int, default=DEFAULT_WS_PORT, help="WebSocket port (default 9471; 0: any)")
    parser.add_argument("--token", help="a shared secret every request must carry as token=SECRET (default: the "
                                        "token in the user config, generated at the first start, required on "
                                        "WebSocket and from other machines)")
    parser.add_argument("--origin", action="append", default=[], metavar="ORIGIN",
                        help="a web page origin (e.g. https://panel.example) allowed to open the WebSocket; "
                             "repeatable, added to the config's \"origins\" (default: none)")
    parser.add_argument("--reply-host", action="append", default=[], metavar="IP",
                        help="an address besides this machine and the sender's own that reply= may name; "
                             "repeatable, added to the config's \"reply_hosts\"")
    parser.add_argument("--max-connections", type=int, default=256, metavar="N",
                        help="TCP and WebSocket connections at once; the least recently active is closed "
                             "to let a new one in (default 256)")
    parser.add_argument("--idle-timeout", type=float, default=300.0, metavar="S",
                        help="close a TCP or WebSocket connection silent for this long (default 300 s)")
    parser.add_argument("--output-root", type=Path, metavar="DIR",
                        help="jobs write only under this folder (default <user data dir>/cuesmith/jobs)")
    parser.add_argument("--journal", type=Path, metavar="FILE",
                        help="the SQLite job journal (default <user data dir>/cuesmith/journal.sqlite)")
    parser.add_argument("--max-running", type=int, default=1, metavar="N", help="jobs run at once (default 1)")


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    ws_port: int = DEFAULT_WS_PORT
    token: Optional[str] = None  # --token: required on every request; None: the user config's, see check()
    output_root: Optional[Path] = None
    journal: Optional[Path] = None
    max_running: int = 1
    origins: tuple[str, ...] = ()
    reply_hosts: tuple[str, ...] = ()
    max_connections: int = 256
    idle_timeout: float = 300.0
    loopback_open: bool = False  # UDP and TCP from this machine need no token (set by check())

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ServeConfig":
        return cls(args.host, args.port, args.ws_port, args.token, args.output_root, args.journal, args.max_running,
                   tuple(args.origin), tuple(args.reply_host), args.max_connections, args.idle_timeout)

    def check(self) -> "ServeConfig":
        from cuesmith.engine.config import user_list, user_token

        for name, port in (("--port", self.port), ("--ws-port", self.ws_port)):
            if not 0 <= port <= 65535:
                raise CuesmithError(f"{name} must be 0..65535, got {port}")
        if self.max_running < 1:
            raise CuesmithError(f"--max-running must be at least 1, got {self.max_running}")
        if self.max_connections < 1 or not self.idle_timeout > 0:
            raise CuesmithError("--max-connections must be at least 1 and --idle-timeout above 0")
        if self.token is not None and not self.token:
            raise CuesmithError("--token must not be empty")
        if self.token is None:
            self.token, self.loopback_open = user_token(create=True), True
        self.origins = tuple(dict.fromkeys([*user_list("origins"), *self.origins]))
        self.reply_hosts = tuple(dict.fromkeys([*user_list("reply_hosts"), *self.reply_hosts]))
        self.output_root = (self.output_root or data_dir() / "jobs").expanduser().absolute()
        self.journal = (self.journal or data_dir() / "journal.sqlite").expanduser().absolute()
        return self

    def token_line(self) -> str:
        from cuesmith.engine.config import config_path

        if not self.loopback_open:
            return "; token required"
        return f"; token (WebSocket and other machines) in {config_path()}"


def main(args: argparse.Namespace) -> int:
    from .protocol import is_loopback

    config = ServeConfig.from_args(args).check()
    if not is_loopback(config.host) and config.loopback_open:
        print(f"cuesmith serve: listening on {config.host}: other machines must send the token stored in the "
              "user config (or start with --token)", file=sys.stderr)
    raise_file_limit()
    try:
        asyncio.run(serve(config))
    except OSError as error:
        raise CuesmithError(f"cannot listen on {config.host}: {error.strerror or error}",
                            hint="another engine may be running; pick other ports with --port/--ws-port") from None
    return 0


def raise_file_limit() -> None:
    """Up to the hard limit: idle connections must not leave jobs without file descriptors."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 65536
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ImportError, ValueError, OSError):
        pass  # Windows, or a limit we may not raise: the connection cap still applies


async def serve(config: ServeConfig, ready: Optional[asyncio.Event] = None) -> None:
    """Run until SIGINT/SIGTERM: bind, subscribe, resume the journal's unfinished jobs, answer."""
    from concurrent.futures import ThreadPoolExecutor

    from cuesmith.engine.service import JobService

    from .protocol import Access, Dispatcher, Router
    from .transports import start_transports

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, stop)
    service = JobService(journal=config.journal, output_root=config.output_root, max_running=config.max_running)
    router = Router(call_soon=loop.call_soon_threadsafe)
    readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cuesmith-read")  # request files, timelines

    def offload(work, done) -> None:
        readers.submit(work).add_done_callback(lambda future: loop.call_soon_threadsafe(done, future))

    access = Access(config.token, config.loopback_open, config.reply_hosts)
    dispatcher = Dispatcher(service, router, access=access, offload=offload)
    listening = await start_transports(dispatcher, config)
    log = StatusLog()
    # the scored timeline is written before the result reaches the client, so the client finds it there
    unsubscribe = [service.subscribe(log), service.subscribe(ScoredTimelineWriter(service)),
                   service.subscribe(router.deliver)]
    resumed = service.start()
    print(f"cuesmith serve: listening udp+tcp {listening.host}:{listening.port}, "
          f"ws ws://{listening.host}:{listening.ws_port}/; output root {config.output_root}; "
          f"journal {config.journal}; providers {json.dumps(service.providers(), default=str)}; "
          f"resumed {len(resumed)} job(s)" + config.token_line(), flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        listening.close()
        readers.shutdown(wait=False, cancel_futures=True)
        for cancel in unsubscribe:
            cancel()
        await loop.run_in_executor(None, lambda: service.stop(wait=True))
        print("cuesmith serve: stopped", flush=True)


def on_signal(stop: asyncio.Event) -> None:
    """The first signal finishes the running jobs (queued ones stay in the journal); a second stops now,
    leaving the running jobs to run again at the next start."""
    if stop.is_set():
        print("cuesmith serve: stopped without finishing the running jobs", flush=True)
        os._exit(130)
    print("cuesmith serve: stopping after the running jobs (signal again to stop now)", flush=True)
    stop.set()


class ScoredTimelineWriter:
    """After a timeline's score job: the timeline with the score and its markers, beside result.json
    (what `cuesmith score --timeline` writes too)."""

    def __init__(self, service):
        self.service = service

    def __call__(self, event) -> None:
        if event.event != "result" or event.kind != "score":
            return
        record = self.service.get(event.job_id)
        timeline = record.request.get("timeline") if record else None
        if not timeline:
            return
        from cuesmith.engine.schema import ScoreResult

        from .timeline import write_scored_timeline

        try:
            result = ScoreResult.from_dict(json.loads(Path(event.result).read_text()))
            written = write_scored_timeline(timeline, result, Path(event.result).parent)
            print(f"cuesmith serve: job {event.job_id} wrote {written}", flush=True)
        except (CuesmithError, OSError, ValueError) as error:  # the score itself is done and stays done
            print(f"cuesmith serve: job {event.job_id} could not write the scored timeline: {error}", flush=True)


class StatusLog:
    """One line per job event that matters; progress at most every few seconds per job."""

    def __init__(self, interval: float = STATUS_INTERVAL):
        self.interval = interval
        self.last_progress: dict[str, float] = {}

    def __call__(self, event) -> None:
        line = self.line(event)
        if line:
            print(f"cuesmith serve: job {event.job_id} ({event.kind}) {line}", flush=True)

    def line(self, event) -> str:
        if event.event == "progress":
            now = time.monotonic()
            if now - self.last_progress.get(event.job_id, -1e9) < self.interval:
                return ""
            self.last_progress[event.job_id] = now
            return f"{event.stage} {100 * (event.fraction or 0):.0f}%"
        self.last_progress.pop(event.job_id, None)
        return {"accepted": f"accepted, replies to {event.reply_to}",
                "started": "started",
                "result": f"done: {event.result}",
                "failed": f"failed: {event.message}",
                "cancelled": "cancelled"}.get(event.event, "")
