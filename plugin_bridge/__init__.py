"""cuesmith's bridge to editors and DAWs: the OSC protocol (docs/osc.md), `cuesmith serve`, the client.

- protocol.py: codec (python-osc), address table, options, errors, the dispatcher and the event router
- transports.py: UDP and TCP (SLIP) on one port, WebSocket on another, on asyncio
- server.py: `cuesmith serve`; client.py: `BridgeClient` and `cuesmith send`
- timeline.py: timelines (EDL, XML, OTIO) to clips; hosts/: the editors' and DAWs' scripts
"""
