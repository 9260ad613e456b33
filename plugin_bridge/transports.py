"""The bridge's transports on asyncio: UDP and TCP (OSC 1.1 SLIP) on one port, WebSocket on another.

Each one turns what arrives into `Dispatcher.handle_packet` / `handle_text`
calls with a `Channel` that sends replies back the way the request came.
"""
from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import dataclass
from typing import Optional

from pythonosc import slip

from .protocol import MAX_PACKET, Channel, Dispatcher, ProtocolError, SlipStream, encode_json_frame, \
    encode_message

# Connection keys are unique across restarts, so a journaled reply_to never names a newer connection.
_RUN = secrets.token_hex(4)
_COUNTER = itertools.count(1)


def connection_key(kind: str) -> str:
    return f"{kind}:{_RUN}-{next(_COUNTER)}"


class UdpChannel(Channel):
    kind = "udp"

    def __init__(self, transport: asyncio.DatagramTransport, host: str, port: int):
        super().__init__(f"udp:{host}:{port}", host)
        self.transport = transport
        self.address = (host, port)

    def send(self, address: str, args: list) -> None:
        self.transport.sendto(encode_message(address, args), self.address)


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher
        self.transport: Optional[asyncio.DatagramTransport] = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.dispatcher.router.udp_factory = self.channel

    def channel(self, host: str, port: int) -> UdpChannel:
        return UdpChannel(self.transport, host, port)

    def datagram_received(self, data: bytes, addr) -> None:
        self.dispatcher.handle_packet(data, self.channel(addr[0], addr[1]))

    def error_received(self, exc) -> None:
        pass  # ICMP port unreachable from a peer that went away: nothing to do


class TcpChannel(Channel):
    kind = "tcp"

    def __init__(self, transport: asyncio.Transport, host: str):
        super().__init__(connection_key("tcp"), host)
        self.transport = transport

    def send(self, address: str, args: list) -> None:
        if not self.transport.is_closing():
            self.transport.write(slip.encode(encode_message(address, args)))


class SlipProtocol(asyncio.Protocol):
    """One TCP connection: SLIP frames in, SLIP frames out."""

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher
        self.stream = SlipStream()
        self.channel: Optional[TcpChannel] = None

    def connection_made(self, transport) -> None:
        peer = transport.get_extra_info("peername") or ("", 0)
        self.channel = TcpChannel(transport, peer[0])
        self.dispatcher.router.register(self.channel)

    def data_received(self, data: bytes) -> None:
        for packet in self.stream.feed(data):
            if isinstance(packet, ProtocolError):
                self.dispatcher.reply_error(self.channel, packet)
            else:
                self.dispatcher.handle_packet(packet, self.channel)

    def connection_lost(self, exc) -> None:
        self.dispatcher.router.unregister(self.channel)


class WebSocketChannel(Channel):
    """Replies on a WebSocket: OSC in binary frames, or JSON in text frames (`as_json`)."""

    kind = "ws"

    def __init__(self, key: str, host: str, queue: asyncio.Queue, as_json: bool):
        super().__init__(key, host)
        self.queue = queue
        self.as_json = as_json

    def send(self, address: str, args: list) -> None:
        frame = encode_json_frame(address, args) if self.as_json else encode_message(address, args)
        self.queue.put_nowait(frame)


async def serve_websocket(connection, dispatcher: Dispatcher) -> None:
    """One WebSocket connection: a writer task drains the reply queue in order."""
    peer = connection.remote_address or ("", 0)
    queue: asyncio.Queue = asyncio.Queue()
    key = connection_key("ws")
    binary = WebSocketChannel(key, peer[0], queue, as_json=False)
    text = WebSocketChannel(key + "-json", peer[0], queue, as_json=True)
    for channel in (binary, text):
        dispatcher.router.register(channel)
    writer = asyncio.create_task(_write_frames(connection, queue))
    try:
        async for frame in connection:
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

    def close(self) -> None:
        for server in self.servers:
            server.close()


async def start_transports(dispatcher: Dispatcher, host: str, port: int, ws_port: int) -> Listening:
    from websockets.asyncio.server import serve

    loop = asyncio.get_running_loop()
    tcp, udp, port = await _bind_same_port(loop, dispatcher, host, port)
    ws = await serve(lambda c: serve_websocket(c, dispatcher), host, ws_port, max_size=4 * MAX_PACKET,
                     compression=None)
    ws_port = ws.sockets[0].getsockname()[1] if ws_port == 0 else ws_port
    return Listening(host, port, ws_port, [tcp, udp, ws])


async def _bind_same_port(loop, dispatcher: Dispatcher, host: str, port: int, tries: int = 20):
    """TCP and UDP on one port number; with port 0, a free number for both."""
    for attempt in range(tries):
        tcp = await loop.create_server(lambda: SlipProtocol(dispatcher), host, port)
        chosen = tcp.sockets[0].getsockname()[1]
        try:
            udp, _ = await loop.create_datagram_endpoint(lambda: UdpProtocol(dispatcher), local_addr=(host, chosen))
        except OSError:
            tcp.close()
            if port != 0 or attempt == tries - 1:
                raise
            continue
        return tcp, udp, chosen
    raise OSError("no free port for UDP and TCP")
