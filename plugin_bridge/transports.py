"""The bridge's transports on asyncio: UDP and TCP (OSC 1.1 SLIP) on one port, WebSocket on another.

Each one turns what arrives into `Dispatcher.handle_packet` / `handle_text`
calls with a `Channel` that sends replies back the way the request came.
"""
from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable, Optional

from pythonosc import slip

from .protocol import MAX_PACKET, Channel, Dispatcher, ProtocolError, SlipStream, encode_json_frame, \
    encode_message

# Connection keys are unique across restarts, so a journaled reply_to never names a newer connection.
_RUN = secrets.token_hex(4)
_COUNTER = itertools.count(1)
REPLY_RATE = 1024.0  # UDP replies a second to one peer, after a burst of as many
INBOUND_RATE = 2048.0  # UDP datagrams a second read from one peer; more are dropped unread


def connection_key(kind: str) -> str:
    return f"{kind}:{_RUN}-{next(_COUNTER)}"


class PeerRate:
    """A token bucket per UDP peer (host, port): past a burst of `burst`, `allow` says yes `rate` times a
    second. For replies (no request flood becomes a reply flood towards one peer) and for datagrams in."""

    def __init__(self, rate: float, burst: float, peers: int = 4096):
        self.rate, self.burst, self.peers = rate, burst, peers
        self.buckets: OrderedDict[tuple, tuple[float, float]] = OrderedDict()  # peer -> (tokens, when)

    def allow(self, peer: tuple) -> bool:
        now = time.monotonic()
        tokens, last = self.buckets.pop(peer, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self.buckets[peer] = (tokens - 1.0 if allowed else tokens, now)
        if len(self.buckets) > self.peers:
            self.buckets.popitem(last=False)
        return allowed


class UdpChannel(Channel):
    kind = "udp"

    def __init__(self, transport: asyncio.DatagramTransport, host: str, port: int, rate: PeerRate):
        super().__init__(f"udp:{host}:{port}", host)
        self.transport = transport
        self.address = (host, port)
        self.rate = rate

    def send(self, address: str, args: list) -> None:
        packet = encode_message(address, args)  # first: what cannot be encoded raises, rate or not
        if self.rate.allow(self.address):
            self.transport.sendto(packet, self.address)


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher
        self.transport: Optional[asyncio.DatagramTransport] = None
        self.rate = PeerRate(REPLY_RATE, REPLY_RATE)
        self.inbound = PeerRate(INBOUND_RATE, INBOUND_RATE)

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.dispatcher.router.udp_factory = self.channel

    def channel(self, host: str, port: int) -> UdpChannel:
        return UdpChannel(self.transport, host, port, self.rate)

    def datagram_received(self, data: bytes, addr) -> None:
        if self.inbound.allow(addr[:2]):
            self.dispatcher.handle_packet(data, self.channel(addr[0], addr[1]))

    def error_received(self, exc) -> None:
        pass  # ICMP port unreachable from a peer that went away: nothing to do


class Connections:
    """The open TCP and WebSocket connections, least recently active first: at most `limit` (a new one
    closes the least recently active one) and none silent for more than `idle_timeout` seconds."""

    def __init__(self, limit: int = 256, idle_timeout: float = 300.0):
        self.limit, self.idle_timeout = limit, idle_timeout
        self.open: OrderedDict[Hashable, tuple[Callable[[], None], float]] = OrderedDict()  # key -> (abort, when)

    def add(self, key: Hashable, abort: Callable[[], None]) -> None:
        while len(self.open) >= self.limit:
            _, (oldest, _) = self.open.popitem(last=False)
            oldest()
        self.open[key] = (abort, time.monotonic())

    def touch(self, key: Hashable) -> None:
        if key in self.open:
            self.open[key] = (self.open[key][0], time.monotonic())
            self.open.move_to_end(key)

    def remove(self, key: Hashable) -> None:
        self.open.pop(key, None)

    def close_idle(self) -> None:
        deadline = time.monotonic() - self.idle_timeout
        while self.open:
            key, (abort, when) = next(iter(self.open.items()))
            if when > deadline:
                return
            del self.open[key]
            abort()

    async def sweep(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.idle_timeout / 4))
            self.close_idle()


class TcpChannel(Channel):
    kind = "tcp"

    def __init__(self, transport: asyncio.Transport, host: str, connections: Connections):
        super().__init__(connection_key("tcp"), host)
        self.transport = transport
        self.connections = connections

    def send(self, address: str, args: list) -> None:
        if not self.transport.is_closing():
            self.transport.write(slip.encode(encode_message(address, args)))
            self.connections.touch(self.key)


class SlipProtocol(asyncio.Protocol):
    """One TCP connection: SLIP frames in, SLIP frames out."""

    def __init__(self, dispatcher: Dispatcher, connections: Connections):
        self.dispatcher = dispatcher
        self.connections = connections
        self.stream = SlipStream()
        self.channel: Optional[TcpChannel] = None

    def connection_made(self, transport) -> None:
        peer = transport.get_extra_info("peername") or ("", 0)
        self.channel = TcpChannel(transport, peer[0], self.connections)
        self.connections.add(self.channel.key, transport.abort)
        self.dispatcher.router.register(self.channel)

    def data_received(self, data: bytes) -> None:
        self.connections.touch(self.channel.key)
        for packet in self.stream.feed(data):
            if isinstance(packet, ProtocolError):
                self.dispatcher.reply_error(self.channel, packet)
            else:
                self.dispatcher.handle_packet(packet, self.channel)

    def connection_lost(self, exc) -> None:
        self.connections.remove(self.channel.key)
        self.dispatcher.router.unregister(self.channel)


class WebSocketChannel(Channel):
    """Replies on a WebSocket: OSC in binary frames, or JSON in text frames (`as_json`)."""

    kind = "ws"

    def __init__(self, key: str, host: str, queue: asyncio.Queue, as_json: bool, touch: Callable[[], None]):
        super().__init__(key, host)
        self.queue = queue
        self.as_json = as_json
        self.touch = touch

    def send(self, address: str, args: list) -> None:
        frame = encode_json_frame(address, args) if self.as_json else encode_message(address, args)
        self.queue.put_nowait(frame)
        self.touch()


async def serve_websocket(connection, dispatcher: Dispatcher, connections: Connections) -> None:
    """One WebSocket connection: a writer task drains the reply queue in order."""
    peer = connection.remote_address or ("", 0)
    queue: asyncio.Queue = asyncio.Queue()
    key = connection_key("ws")
    touch = lambda: connections.touch(key)  # noqa: E731
    binary = WebSocketChannel(key, peer[0], queue, as_json=False, touch=touch)
    text = WebSocketChannel(key + "-json", peer[0], queue, as_json=True, touch=touch)
    connections.add(key, connection.transport.abort)
    for channel in (binary, text):
        dispatcher.router.register(channel)
    writer = asyncio.create_task(_write_frames(connection, queue))
    try:
        async for frame in connection:
            touch()
            if isinstance(frame, str):
                dispatcher.handle_text(frame, text)
            elif len(frame) > MAX_PACKET:
                dispatcher.reply_error(binary, ProtocolError("too_large", f"a packet of {len(frame)} bytes "
                                                                     f"(at most {MAX_PACKET})"))
            else:
                dispatcher.handle_packet(frame, binary)
    except Exception:
        pass  # the peer closed or broke the connection; its channels go below
    finally:
        connections.remove(key)
        for channel in (binary, text):
            dispatcher.router.unregister(channel)
        writer.cancel()


async def _write_frames(connection, queue: asyncio.Queue) -> None:
    while True:
        frame = await queue.get()
        try:
            await connection.send(frame)
        except Exception:
            return


@dataclass
class Listening:
    """What `start_transports` bound: the actual ports (0 asks the system for free ones)."""
    host: str
    port: int  # UDP and TCP
    ws_port: int
    servers: list
    sweeper: Optional[asyncio.Task] = None

    def close(self) -> None:
        for server in self.servers:
            server.close()
        if self.sweeper is not None:
            self.sweeper.cancel()


async def start_transports(dispatcher: Dispatcher, config) -> Listening:
    """Bind UDP, TCP and WebSocket as `config` (a ServeConfig) says. The WebSocket takes no Origin (a web
    page's) but those listed in config.origins; non-browser clients send none."""
    from websockets.asyncio.server import serve

    loop = asyncio.get_running_loop()
    connections = Connections(config.max_connections, config.idle_timeout)
    tcp, udp, port = await _bind_same_port(loop, dispatcher, connections, config.host, config.port)
    ws = await serve(lambda c: serve_websocket(c, dispatcher, connections), config.host, config.ws_port,
                     max_size=4 * MAX_PACKET, compression=None, origins=[None, *config.origins])
    ws_port = ws.sockets[0].getsockname()[1] if config.ws_port == 0 else config.ws_port
    return Listening(config.host, port, ws_port, [tcp, udp, ws], asyncio.create_task(connections.sweep()))


async def _bind_same_port(loop, dispatcher: Dispatcher, connections: Connections, host: str, port: int,
                          tries: int = 20):
    """TCP and UDP on one port number; with port 0, a free number for both."""
    for attempt in range(tries):
        tcp = await loop.create_server(lambda: SlipProtocol(dispatcher, connections), host, port)
        chosen = tcp.sockets[0].getsockname()[1]
        try:
            udp, _ = await loop.create_datagram_endpoint(lambda: UdpProtocol(dispatcher), local_addr=(host, chosen))
        except OSError:
            tcp.close()
            if port != 0 or attempt == tries - 1:
                raise
            continue
        _bigger_receive_buffer(udp.get_extra_info("socket"))
        return tcp, udp, chosen
    raise OSError("no free port for UDP and TCP")


def _bigger_receive_buffer(sock, size: int = 1 << 20) -> None:
    """Room for a burst while the loop is busy (the system may grant less): fewer datagrams lost in a flood."""
    import socket

    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError:
        pass
