"""cuesmith's OSC protocol (docs/osc.md): the codec, the address table, and the dispatcher.

Transport-independent: a packet (bytes) or a WebSocket text frame and a
`Channel` (where replies go) come in; replies leave through the channel.
Job events from the `JobService` (any thread) reach the submitter's
`reply_to` through the `Router`. python-osc encodes and decodes OSC.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import math
import os
import stat
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from pythonosc import slip
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from cuesmith.engine import __version__
from cuesmith.engine.errors import CuesmithError

PREFIX = "/cuesmith/"
MAX_PACKET = 64 * 1024  # bytes of one OSC packet (any transport)
MAX_JSON = 1400  # bytes of request JSON sent inline; bigger requests go in a .json file
MAX_REQUEST_FILE = 1 << 20  # bytes of a request .json file
MAX_BUNDLE = 64  # messages handled from one bundle
MAX_BUNDLE_DEPTH = 4  # bundles inside bundles
MAX_BUNDLE_ELEMENTS = 4 * MAX_BUNDLE  # messages and bundles, all levels together
MAX_TIMELINE_FILE = 16 << 20  # bytes of a timeline named by a request
BUNDLE_HEAD = b"#bundle\x00"
MAX_LIST = 100
PROGRESS_INTERVAL = 0.1  # seconds between progress events of one job (~10 per second)
JOB_KINDS = ("score", "critique", "analyze", "describe")
OPTIONS = ("reply", "token", "priority")
ERROR_CODES = ("bad_packet", "unknown_address", "bad_arguments", "too_large", "bad_json", "bad_request",
               "unauthorized", "not_found", "internal")


class ProtocolError(CuesmithError):
    """A request that cannot be carried out: answered with `/cuesmith/error tag code message`."""

    def __init__(self, code: str, message: str, tag: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.tag = tag


@dataclass
class Message:
    address: str
    args: list = field(default_factory=list)


# --- the codec -------------------------------------------------------------------------------------------

def encode_message(address: str, args: list) -> bytes:
    """One OSC message: str -> s, int -> i (h beyond 32 bits), float -> f."""
    builder = OscMessageBuilder(address)
    for value in args:
        builder.add_arg(value, _osc_type(value))
    return builder.build().dgram


def _osc_type(value: Any) -> str:
    if isinstance(value, bool):
        raise TypeError("booleans are not part of cuesmith's protocol")
    if isinstance(value, int):
        return "i" if -2**31 <= value < 2**31 else "h"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    raise TypeError(f"cannot send {type(value).__name__} over OSC")


def decode_packet(data: bytes) -> list[Message]:
    """The messages of one OSC packet (a bundle's in their order; time tags are ignored); ProtocolError if it
    is not one. Bundles are split here, not by python-osc, whose bundle parser loops forever on an element
    of negative size."""
    if len(data) > MAX_PACKET:
        raise ProtocolError("too_large", f"a packet of {len(data)} bytes (at most {MAX_PACKET})")
    elements: list[bytes] = []
    split_bundle(bytes(data), 0, elements)
    messages = [m for m in elements if m]
    if len(messages) > MAX_BUNDLE:
        raise ProtocolError("bad_packet", f"a bundle of {len(messages)} messages (at most {MAX_BUNDLE})")
    return [_decode_message(m) for m in messages]


def split_bundle(data: bytes, depth: int, out: list[bytes]) -> None:
    """Append the messages of `data` (a message or a bundle) to `out`; b"" marks each bundle (for the count).
    Every element size is checked against the bytes left, so a walk always moves forward and ends."""
    if len(out) >= MAX_BUNDLE_ELEMENTS:
        raise ProtocolError("bad_packet", f"a bundle of more than {MAX_BUNDLE_ELEMENTS} elements")
    if not data.startswith(BUNDLE_HEAD):
        if not data.startswith(b"/"):
            raise ProtocolError("bad_packet", "not an OSC packet (neither a message nor a bundle)")
        out.append(data)
        return
    if depth >= MAX_BUNDLE_DEPTH:
        raise ProtocolError("bad_packet", f"bundles nested more than {MAX_BUNDLE_DEPTH} deep")
    if len(data) < 16:
        raise ProtocolError("bad_packet", "a bundle without its time tag")
    out.append(b"")
    index = 16
    while index < len(data):
        if len(data) - index < 4:
            raise ProtocolError("bad_packet", "a bundle element without its size")
        (size,) = struct.unpack_from(">i", data, index)
        index += 4
        if size <= 0 or size % 4 or size > len(data) - index:
            raise ProtocolError("bad_packet", f"a bundle element of {size} bytes where {len(data) - index} "
                                              "remain (sizes are positive multiples of 4)")
        split_bundle(data[index:index + size], depth + 1, out)
        index += size


def _decode_message(data: bytes) -> Message:
    try:
        parsed = OscMessage(data)
        return Message(parsed.address, list(parsed.params))
    except Exception as error:  # python-osc raises several types on garbage
        raise ProtocolError("bad_packet", f"not an OSC packet ({type(error).__name__})") from None


def decode_json_frame(text: str) -> Message:
    """A WebSocket text frame {"address": "/cuesmith/...", "args": [...]} as a Message."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PACKET:
        raise ProtocolError("too_large", f"a text frame over {MAX_PACKET} bytes")
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "a text frame must be JSON: {\"address\": ..., \"args\": [...]}") from None
    args = frame.get("args", []) if isinstance(frame, dict) else None
    if not isinstance(frame, dict) or not isinstance(frame.get("address"), str) or not isinstance(args, list):
        raise ProtocolError("bad_packet", 'a text frame must be {"address": "/cuesmith/...", "args": [...]}')
    tag = args[0] if args and isinstance(args[0], str) else ""
    for value in args:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or \
                (isinstance(value, float) and not math.isfinite(value)):
            raise ProtocolError("bad_arguments", "text frame arguments must be strings or numbers", tag)
    return Message(frame["address"], args)


def encode_json_frame(address: str, args: list) -> str:
    return json.dumps({"address": address, "args": list(args)}, allow_nan=False)


class SlipStream:
    """Splits a TCP byte stream into OSC 1.1 SLIP frames (python-osc's slip module decodes each)."""

    def __init__(self, limit: int = 2 * MAX_PACKET + 2):
        self.buffer = bytearray()
        self.limit = limit
        self.overflow = False  # dropping the rest of an oversized frame

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        """Complete packets (or the error for a bad frame) found so far."""
        self.buffer += data
        out: list[bytes | ProtocolError] = []
        while True:
            end = self.buffer.find(slip.END)
            if end < 0:
                break
            frame, self.buffer = bytes(self.buffer[:end]), self.buffer[end + 1:]
            if self.overflow:
                self.overflow = False
                continue
            if frame:
                out.append(self._decode(frame))
        if len(self.buffer) > self.limit and not self.overflow:
            self.overflow = True
            self.buffer.clear()
            out.append(ProtocolError("too_large", f"a SLIP frame over {MAX_PACKET} bytes"))
        elif self.overflow:
            self.buffer.clear()
        return out

    @staticmethod
    def _decode(frame: bytes) -> bytes | ProtocolError:
        try:
            return slip.decode(frame)
        except slip.ProtocolError:
            return ProtocolError("bad_packet", "not a SLIP frame (a stray escape byte)")


# --- requests --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Address:
    name: str
    required: tuple = ()  # argument types after the tag
    optional: tuple = ()


ADDRESSES = {PREFIX + a.name: a for a in (
    Address("ping"),
    Address("score", (str,)),
    Address("critique", (str,)),
    Address("analyze", (str,)),
    Address("describe", (str,)),
    Address("cancel", (str,)),
    Address("status", (), (str,)),
    Address("list", (), (int,)),
)}


@dataclass
class Request:
    name: str
    tag: str
    args: list
    options: dict[str, str]


def parse_request(message: Message) -> Request:
    """Check the address, the tag, the argument types and the `key=value` options."""
    spec = ADDRESSES.get(message.address)
    args = list(message.args)
    tag = args[0] if args and isinstance(args[0], str) else ""
    if spec is None:
        raise ProtocolError("unknown_address", f"this engine does not answer {message.address[:80]!r}", tag)
    if not args or not isinstance(args[0], str):
        raise ProtocolError("bad_arguments", f"{message.address} starts with a tag (a string)", tag)
    rest = args[1:]
    own = []
    for i, kind in enumerate(spec.required):
        if i >= len(rest) or not _is(rest[i], kind) or _is_option(rest[i]):
            raise ProtocolError("bad_arguments", f"{message.address} needs {_signature(spec)}", tag)
        own.append(rest[i])
    rest = rest[len(spec.required):]
    for kind in spec.optional:
        if rest and _is(rest[0], kind) and not _is_option(rest[0]):
            own.append(rest.pop(0))
    return Request(spec.name, tag, own, parse_options(rest, message.address, tag))


def _is(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _is_option(value: Any) -> bool:
    return isinstance(value, str) and value.split("=", 1)[0] in OPTIONS and "=" in value


def _signature(spec: Address) -> str:
    names = {str: "s", int: "i"}
    own = "".join(names[t] for t in spec.required) + "".join(f"[{names[t]}]" for t in spec.optional)
    return f"a tag then {own or 'nothing'} (then key=value options)"


def parse_options(values: list, address: str, tag: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for value in values:
        if not isinstance(value, str) or "=" not in value:
            raise ProtocolError("bad_arguments", f"{address}: unexpected argument {str(value)[:40]!r}", tag)
        key, text = value.split("=", 1)
        if key not in OPTIONS:
            raise ProtocolError("bad_arguments", f"unknown option {key[:40]!r} (known: {', '.join(OPTIONS)})", tag)
        options[key] = text
    if "priority" in options:
        options["priority"] = str(_int_option(options["priority"], "priority", -1000, 1000, tag))
    if "reply" in options:
        parse_reply(options["reply"], "127.0.0.1", tag)
    return options


def _int_option(text: str, name: str, low: int, high: int, tag: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise ProtocolError("bad_arguments", f"{name}= must be an integer {low}..{high}, got {text[:20]!r}", tag)
    return number


def parse_reply(text: str, sender_host: str, tag: str = "") -> tuple[str, int]:
    """`reply=PORT` (the sender's host) or `reply=HOST:PORT`, HOST an IP address or localhost (a name would
    need a DNS lookup on the network thread)."""
    host, _, port = text.rpartition(":")
    host = host or sender_host
    host = "127.0.0.1" if host == "localhost" else host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ProtocolError("bad_arguments", f"reply= needs PORT or IP:PORT, got {text[:40]!r}", tag) from None
    return host, _int_option(port, "reply port", 1, 65535, tag)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or bool(getattr(address, "ipv4_mapped", None) and address.ipv4_mapped.is_loopback)


def load_request(text: str, tag: str) -> dict:
    """The request JSON inline (at most MAX_JSON bytes) or from an absolute .json path."""
    if text.lstrip().startswith("{"):
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_JSON:
            raise ProtocolError("too_large", f"request JSON of {size} bytes (at most {MAX_JSON}; "
                                             "put a bigger request in a .json file and send its path)", tag)
        source = "the request"
    else:
        text, source = _read_request_file(text, tag), text
    try:
        request = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", f"{source[:200]} is not valid JSON", tag) from None
    if not isinstance(request, dict):
        raise ProtocolError("bad_request", "the request must be a JSON object", tag)
    return request


def _read_request_file(text: str, tag: str) -> str:
    path = Path(text) if "\x00" not in text else None
    if path is None or not path.is_absolute() or path.suffix.lower() != ".json":
        raise ProtocolError("bad_json", "the request must be JSON or the absolute path of a .json file", tag)
    try:
        return read_regular_file(path, MAX_REQUEST_FILE, "request file", tag).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ProtocolError("bad_json", f"cannot read the request file {path} ({error.__class__.__name__})",
                            tag) from None


def read_regular_file(path: Path, limit: int, what: str, tag: str) -> bytes:
    """At most `limit` bytes of a regular file. A FIFO, device or folder is refused without blocking on it
    (O_NONBLOCK, then fstat on what was opened: a link swapped in between changes nothing)."""
    check_regular_file(os.stat(path), path, limit, what, tag)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        check_regular_file(os.fstat(fd), path, limit, what, tag)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise ProtocolError("too_large", f"{path}: a {what} over {limit} bytes", tag)
    return b"".join(chunks)


def check_regular_file(info: os.stat_result, path: Path, limit: int, what: str, tag: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ProtocolError("bad_json" if what == "request file" else "bad_request",
                            f"{path} is not a regular file (a FIFO, device or folder); give a {what}", tag)
    if info.st_size > limit:
        raise ProtocolError("too_large", f"{path}: a {what} over {limit} bytes", tag)


def resolve_timeline(request: dict, tag: str) -> dict:
    """A score request naming only a timeline gets its clips from plugin_bridge.timeline."""
    if not request.get("timeline") or request.get("clips") or request.get("video"):
        return request
    try:
        from cuesmith.plugin_bridge.timeline import clips_for_timeline
    except ImportError:
        raise ProtocolError("bad_request", "timelines are not supported by this engine", tag) from None
    if not isinstance(request["timeline"], str):
        raise ProtocolError("bad_request", '"timeline" must be a file path', tag)
    path = Path(request["timeline"])
    if path.exists():  # a missing one is the timeline reader's to explain
        check_regular_file(os.stat(path), path, MAX_TIMELINE_FILE, "timeline file", tag)
    return {**request, "clips": clips_for_timeline(request["timeline"])}


# --- where replies go ------------------------------------------------------------------------------------

class Channel:
    """Where replies to one request go. `key` is the `reply_to` stored with a submitted job."""

    kind = ""

    def __init__(self, key: str, host: str = ""):
        self.key = key
        self.host = host  # the peer's host (UDP: for reply=PORT)

    def send(self, address: str, args: list) -> None:  # called on the event loop's thread
        raise NotImplementedError


class CollectingChannel(Channel):
    """Keeps the replies: for tests and for callers without a transport."""

    kind = "memory"

    def __init__(self, key: str = "memory:0", host: str = "127.0.0.1"):
        super().__init__(key, host)
        self.replies: list[Message] = []

    def send(self, address: str, args: list) -> None:
        encode_message(address, args)  # what could not be encoded could not be sent
        self.replies.append(Message(address, list(args)))


class Router:
    """reply_to keys -> channels; job events from the service's threads to the submitter."""

    def __init__(self, call_soon: Callable[[Callable[[], None]], None] = lambda fn: fn()):
        self.call_soon = call_soon  # runs fn on the event loop's thread (loop.call_soon_threadsafe)
        self.channels: dict[str, Channel] = {}
        self.udp_factory: Optional[Callable[[str, int], Channel]] = None
        self._last_progress: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def register(self, channel: Channel) -> None:
        self.channels[channel.key] = channel

    def unregister(self, channel: Channel) -> None:
        self.channels.pop(channel.key, None)

    def udp(self, host: str, port: int) -> Optional[Channel]:
        return self.udp_factory(host, port) if self.udp_factory else None

    def lookup(self, key: str) -> Optional[Channel]:
        if key.startswith("udp:"):
            host, _, port = key[4:].rpartition(":")
            return self.udp(host, int(port)) if port.isdigit() else None
        return self.channels.get(key)

    def deliver(self, event) -> None:
        """A JobEvent (from any thread): to its reply_to, progress at most ~10 per second per job."""
        message = event_message(event)
        if message is None or not event.reply_to or not self._due(event):
            return
        self.call_soon(lambda: self._send(event.reply_to, message))

    def _due(self, event) -> bool:
        with self._lock:
            if event.event != "progress":
                self._last_progress.pop(event.job_id, None)
                return True
            now = time.monotonic()
            last, stage = self._last_progress.get(event.job_id, (-1.0, ""))
            if stage == event.stage and now - last < PROGRESS_INTERVAL and event.fraction < 1.0:
                return False
            self._last_progress[event.job_id] = (now, event.stage or "")
            return True

    def _send(self, key: str, message: Message) -> None:
        channel = self.lookup(key)
        if channel is None:
            return  # the connection it came from is gone (restart or disconnect): the journal keeps the state
        try:
            channel.send(message.address, message.args)
        except Exception as error:  # a dead peer must not stop the others' events
            print(f"cuesmith serve: could not send {message.address} to {key}: {error}", file=sys.stderr)


def event_message(event) -> Optional[Message]:
    """The OSC message for a JobEvent; None for the ones the dispatcher already answered (accepted)."""
    job = str(event.job_id)
    if event.event in ("progress", "started"):
        return Message(PREFIX + "progress", [job, event.stage or event.event, float(event.fraction or 0.0)])
    if event.event == "result":
        return Message(PREFIX + "result", [job, event.kind or "", result_path(event.result)])
    if event.event == "failed":
        return Message(PREFIX + "failed", [job, event.message or "failed"])
    if event.event == "cancelled":
        return Message(PREFIX + "cancelled", [job])
    return None


def result_path(result: Any) -> str:
    if isinstance(result, dict):
        result = result.get("path") or result.get("result") or ""
    return "" if result is None else str(result)


# --- the dispatcher --------------------------------------------------------------------------------------

class ReplyBudget:
    """What an unauthenticated UDP sender may get back for one datagram: no more bytes than it sent, so no
    reply path amplifies a spoofed sender's packets."""

    def __init__(self, size: int):
        self.left = size


class BudgetedChannel(Channel):
    """A channel that sends only what fits its budget; an error's message is shortened to fit."""

    def __init__(self, channel: Channel, budget: ReplyBudget):
        super().__init__(channel.key, channel.host)
        self.kind = channel.kind
        self.channel = channel
        self.budget = budget

    def send(self, address: str, args: list) -> None:
        size = len(encode_message(address, args))
        while address == PREFIX + "error" and size > self.budget.left and args[2]:
            excess = size - self.budget.left
            args = [args[0], args[1], args[2][:max(0, len(args[2]) - max(excess, 1))]]
            size = len(encode_message(address, args))
        if size <= self.budget.left:
            self.budget.left -= size
            self.channel.send(address, args)


@dataclass(frozen=True)
class Access:
    """Who must send the token, and where `reply=` may point.

    `token`: the engine's token (None: no token at all). `loopback_open`: UDP and TCP requests from this
    machine need no token (WebSocket ones always do: a web page can open a WebSocket). `reply_hosts`: hosts
    besides this machine and the sender's own address that `reply=` may name."""
    token: Optional[str] = None
    loopback_open: bool = False
    reply_hosts: tuple[str, ...] = ()

    def needs_token(self, channel: Channel) -> bool:
        if self.token is None:
            return False
        return not (self.loopback_open and channel.kind != "ws" and is_loopback(channel.host))

    def reply_allowed(self, host: str, channel: Channel) -> bool:
        return is_loopback(host) or host == channel.host or host in self.reply_hosts


class Dispatcher:
    """Requests in, replies out; jobs go to the JobService with the reply channel as reply_to.

    `offload(work, done)`, when given, runs `work` (reading request files and timelines) on another thread
    and then `done(future)` on the event loop's; without it the work runs inline."""

    def __init__(self, service, router: Optional[Router] = None, token: Optional[str] = None,
                 version: str = __version__, access: Optional[Access] = None,
                 offload: Optional[Callable[[Callable[[], Any], Callable[[Any], None]], None]] = None):
        self.service = service
        self.router = router or Router()
        self.access = access or Access(token or None)
        self.version = version
        self.offload = offload

    @property
    def token(self) -> Optional[str]:
        return self.access.token

    def handle_packet(self, data: bytes, channel: Channel) -> None:
        budget = ReplyBudget(len(data)) if channel.kind == "udp" else None
        trusted = not self.access.needs_token(channel)
        try:
            messages = decode_packet(data)
        except ProtocolError as error:
            self.reply_error(self._within(channel, channel, budget, trusted), error)
            return
        for message in messages:
            self.handle_message(message, channel, budget)

    def handle_text(self, text: str, channel: Channel) -> None:
        try:
            message = decode_json_frame(text)
        except ProtocolError as error:
            self.reply_error(channel, error)
            return
        self.handle_message(message, channel)

    def handle_message(self, message: Message, channel: Channel, budget: Optional[ReplyBudget] = None) -> None:
        """Until the token is checked, replies (errors) go only to the sender (a sender that needs no token:
        to an allowed `reply=` instead, for oscsend); after it, to `reply=` if the request names one. UDP replies
        stay within `budget` unless the request carries the token or they go back to a sender that needs none."""
        tag = message.args[0] if message.args and isinstance(message.args[0], str) else ""
        trusted = not self.access.needs_token(channel)
        sender = self._stated_reply_channel(message, channel) if trusted else channel

        def answer() -> None:
            request = parse_request(message)
            self._check_token(request, channel)
            reply = self._reply_channel(request, channel)
            if not self._token_matches(request):
                reply = self._within(reply, channel, budget, trusted)
            self._answer(tag, reply, message.address, lambda: getattr(self, f"_{request.name}")(request, reply))

        self._answer(tag, self._within(sender, channel, budget, trusted), message.address, answer)

    @staticmethod
    def _within(out: Channel, channel: Channel, budget: Optional[ReplyBudget], trusted: bool) -> Channel:
        """`out`, held to the datagram's reply budget unless it is a trusted sender's own address."""
        if budget is None or (trusted and out.key == channel.key):
            return out
        return BudgetedChannel(out, budget)

    def _answer(self, tag: str, reply: Channel, address: str, work: Callable[[], None]) -> None:
        """Run `work`; whatever it raises becomes one error reply on `reply`."""
        try:
            work()
        except ProtocolError as error:
            self.reply_error(reply, error)
        except CuesmithError as error:
            self.reply_error(reply, ProtocolError("bad_request", str(error), tag))
        except Exception as error:  # a bug must cost one error reply, not the server
            print(f"cuesmith serve: {address[:80]}: {type(error).__name__}: {error}", file=sys.stderr)
            self.reply_error(reply, ProtocolError("internal", f"the engine failed on this request: {error}"[:300], tag))

    def _reply_channel(self, request: Request, channel: Channel) -> Channel:
        if "reply" not in request.options:
            return channel
        if channel.kind != "udp":
            raise ProtocolError("bad_arguments", "reply= is for UDP requests; replies to TCP and WebSocket "
                                                 "go back on the same connection", request.tag)
        host, port = parse_reply(request.options["reply"], channel.host, request.tag)
        if not self.access.reply_allowed(host, channel):
            raise ProtocolError("bad_arguments", f"reply= may name this machine or the sender's own address, not "
                                                 f"{host} (add it to the engine's reply_hosts setting)", request.tag)
        return self.router.udp(host, port) or channel

    def _stated_reply_channel(self, message: Message, channel: Channel) -> Channel:
        """The allowed reply= address of a message that may not parse, if it names one; else the sender."""
        stated = [a for a in message.args[1:] if isinstance(a, str) and a.startswith("reply=")]
        if channel.kind != "udp" or not stated:
            return channel
        try:
            host, port = parse_reply(stated[-1][len("reply="):], channel.host)
        except ProtocolError:
            return channel
        allowed = self.access.reply_allowed(host, channel) and self.router.udp(host, port)
        return allowed or channel

    def _check_token(self, request: Request, channel: Channel) -> None:
        if self.access.needs_token(channel) and not self._token_matches(request):
            raise ProtocolError("unauthorized", "missing or wrong token=", request.tag)

    def _token_matches(self, request: Request) -> bool:
        given = request.options.get("token")
        return self.token is not None and given is not None and \
            hmac.compare_digest(given.encode("utf-8", "surrogatepass"), self.token.encode("utf-8"))

    def reply_error(self, channel: Channel, error: ProtocolError) -> None:
        tag = error.tag if isinstance(error.tag, str) else ""
        try:
            channel.send(PREFIX + "error", [tag, error.code, error.message[:400]])
        except Exception as failure:  # e.g. a tag that cannot be encoded back
            try:
                channel.send(PREFIX + "error", ["", error.code, error.message[:400]])
            except Exception:
                print(f"cuesmith serve: could not send an error reply: {failure}", file=sys.stderr)

    def _off_thread(self, work: Callable[[], Any], then: Callable[[Any], None], request: Request,
                    reply: Channel) -> None:
        """`then(work())`, with `work` on the offload thread when there is one (file reads may be slow)."""
        if self.offload is None:
            then(work())
            return
        self.offload(work, lambda done: self._answer(request.tag, reply, PREFIX + request.name,
                                                     lambda: then(done.result())))

    # one method per address

    def _ping(self, request: Request, reply: Channel) -> None:
        reply.send(PREFIX + "pong", [request.tag, self.version])

    def _submit(self, request: Request, reply: Channel) -> None:
        def read() -> dict:
            body = load_request(request.args[0], request.tag)
            return resolve_timeline(body, request.tag) if request.name == "score" else body

        def accept(body: dict) -> None:
            priority = int(request.options.get("priority", 0))
            record = self.service.submit(request.name, body, priority=priority, reply_to=reply.key)
            reply.send(PREFIX + "accepted", [request.tag, str(record.id)])

        self._off_thread(read, accept, request, reply)

    _score = _critique = _analyze = _describe = _submit

    def _cancel(self, request: Request, reply: Channel) -> None:
        job_id = request.args[0]
        record = self.service.get(job_id)
        if record is None:
            raise ProtocolError("not_found", f"no job {job_id[:80]!r}", request.tag)
        if record.state in ("done", "failed"):
            raise ProtocolError("bad_request", f"job {job_id} has already ended: {record.state}", request.tag)
        self.service.cancel(job_id)  # a running job stops at its next progress report
        reply.send(PREFIX + "cancelled", [job_id])

    def _status(self, request: Request, reply: Channel) -> None:
        if request.args:
            record = self.service.get(request.args[0])
            if record is None:
                raise ProtocolError("not_found", f"no job {request.args[0][:80]!r}", request.tag)
            reply.send(PREFIX + "job", job_args(request.tag, record))
            return
        counts = self.service.counts()
        reply.send(PREFIX + "engine", [request.tag, self.version, json.dumps(self.service.providers(), default=str),
                                       json.dumps(self.service.models(), default=str), int(counts.get("queued", 0)),
                                       int(counts.get("running", 0))])

    def _list(self, request: Request, reply: Channel) -> None:
        limit = request.args[0] if request.args else 20
        if not 1 <= limit <= MAX_LIST:
            raise ProtocolError("bad_arguments", f"list limit must be 1..{MAX_LIST}, got {limit}", request.tag)
        records = self.service.list(limit)
        for record in records:
            reply.send(PREFIX + "job", job_args(request.tag, record))
        reply.send(PREFIX + "list/end", [request.tag, len(records)])


def job_args(tag: str, record) -> list:
    return [tag, str(record.id), record.kind or "", record.state or "", record.stage or "",
            float(record.fraction or 0.0), result_path(record.result)]
