"""Fuzzing the decoder and the dispatcher: over 10,000 malformed packets, none escapes, hangs or submits a job."""
import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cuesmith.engine.service import JobService
from cuesmith.plugin_bridge.protocol import (ADDRESSES, ERROR_CODES, MAX_BUNDLE, CollectingChannel, Dispatcher,
                                             Router, SlipStream, encode_message)
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

TOKEN = "fuzz-token"  # the packets never carry it, so nothing they say can be accepted as a job
PACKETS = {"count": 0}
FUZZ = settings(deadline=1000, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


VALID = [encode_message(address, args) for address, args in [
    ("/cuesmith/ping", ["t"]),
    ("/cuesmith/score", ["t", '{"video": "/clips/a.mp4", "stems": false}', "priority=3"]),
    ("/cuesmith/critique", ["t", '{"video": "/clips/a.mp4", "music": "/m.wav"}']),
    ("/cuesmith/analyze", ["t", '{"video": "/clips/a.mp4"}', "reply=9000"]),
    ("/cuesmith/cancel", ["t", "0123456789ab"]),
    ("/cuesmith/status", ["t", "0123456789ab"]),
    ("/cuesmith/list", ["t", 5]),
]]


class Udp(CollectingChannel):
    kind = "udp"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    service = JobService(journal=root / "journal.sqlite", output_root=root / "jobs")
    service.start()
    sink = Udp("udp:127.0.0.1:9000")
    router = Router()
    router.udp_factory = lambda host, port: sink
    yield {"root": root, "service": service, "guarded": Dispatcher(service, router, token=TOKEN),
           "open": Dispatcher(service, router), "sink": sink}
    service.stop(wait=False)
    assert service.list(100) == [], "a fuzzed packet submitted a job"
    assert [p for p in (root / "jobs").rglob("*")] == [], "a fuzzed packet wrote under the output root"


def feed(world, packet: bytes, guarded: bool = True) -> list:
    """One packet through the dispatcher: every reply is a known, encodable reply; no exception escapes."""
    PACKETS["count"] += 1
    channel = Udp("udp:127.0.0.1:5000")
    world["sink"].replies.clear()
    world["guarded" if guarded else "open"].handle_packet(packet, channel)
    replies = channel.replies + world["sink"].replies
    assert len(replies) <= MAX_BUNDLE + 1
    if guarded:  # no token: never more bytes back than came in
        assert sum(len(encode_message(r.address, r.args)) for r in replies) <= len(packet)
    for reply in replies:
        assert reply.address.startswith("/cuesmith/")
        if reply.address == "/cuesmith/error":
            assert reply.args[1] in ERROR_CODES
        assert reply.address != "/cuesmith/accepted"
    return replies


def several(strategy):
    """Several packets per example: hypothesis's own overhead, not the dispatcher, is the cost of an example."""
    return st.lists(strategy, min_size=1, max_size=8)


@given(several(st.binary(max_size=2048)))
@fuzz(500)
def test_random_bytes(world, packets):
    for packet in packets:
        feed(world, packet)
        assert len(feed(world, packet, guarded=False)) >= 1  # garbage is answered, not ignored


@given(several(st.tuples(st.sampled_from(VALID), st.integers(min_value=0, max_value=200))))
@fuzz(250)
def test_truncated_valid_messages(world, cuts):
    for packet, cut in cuts:
        feed(world, packet[:cut % len(packet)])


MUTATION = st.tuples(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                                     min_size=1, max_size=8), st.booleans())


@given(several(MUTATION))
@fuzz(500)
def test_mutated_valid_messages(world, mutations):
    for packet, edits, insert in mutations:
        mutate_and_feed(world, packet, edits, insert)


def mutate_and_feed(world, packet, edits, insert):
    data = bytearray(packet)
    for position, value in edits:
        position %= len(data)
        if insert:
            data.insert(position, value)
        else:
            data[position] = value
    feed(world, bytes(data))


ARGUMENT = st.one_of(st.integers(-2**31, 2**31 - 1).map(lambda v: ("i", v)),
                     st.floats(allow_nan=True, width=32).map(lambda v: ("f", v)),
                     st.text(max_size=60).map(lambda v: ("s", v)),
                     st.binary(min_size=1, max_size=40).map(lambda v: ("b", v)),
                     st.booleans().map(lambda v: ("T" if v else "F", v)),
                     st.just(("N", None)),
                     st.integers(-2**63, 2**63 - 1).map(lambda v: ("h", v)),
                     st.floats(allow_nan=True).map(lambda v: ("d", v)))


def build(address: str, arguments: list):
    """The message's bytes; None where python-osc cannot build it (a NUL inside a string, say)."""
    builder = OscMessageBuilder(address)
    for kind, value in arguments:
        builder.add_arg(value, kind)
    try:
        return builder.build().dgram
    except Exception:
        return None


@given(several(st.tuples(st.sampled_from(sorted(ADDRESSES)), st.lists(ARGUMENT, max_size=6))))
@fuzz(400)
def test_wrong_type_tags_and_argument_counts(world, messages):
    for address, arguments in messages:
        packet = build(address, arguments)
        if packet is not None:
            feed(world, packet)


@given(several(st.tuples(st.sampled_from(["/cuesmith/score", "/cuesmith/critique", "/cuesmith/analyze"]),
       st.one_of(st.text(max_size=300), st.text(max_size=40).map(lambda t: "{" + t),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=4),
                              max_leaves=12).map(json.dumps)))))
@fuzz(400)
def test_bad_json_without_a_token(world, requests):
    """No token here: the request itself is what gets checked, and none of these names a real clip."""
    for address, request in requests:
        feed(world, encode_message(address, ["t", request]), guarded=False)


@given(st.integers(min_value=60_000, max_value=80_000), st.sampled_from(sorted(ADDRESSES)))
@fuzz(60)
def test_huge_strings(world, size, address):
    replies = feed(world, encode_message(address, ["t", "x" * size]), guarded=False)
    assert replies[0].args[1] in ("too_large", "bad_arguments", "bad_json", "not_found")


@given(several(st.tuples(st.text(max_size=80), st.lists(st.text(max_size=20), max_size=3))))
@fuzz(250)
def test_unknown_addresses(world, messages):
    for address, args in messages:
        try:
            packet = encode_message("/" + address.lstrip("/").replace("\x00", ""), args)
        except Exception:
            continue  # python-osc cannot encode it (e.g. a lone surrogate): nothing to send
        feed(world, packet)


@given(st.lists(st.one_of(st.sampled_from(VALID), st.binary(min_size=1, max_size=64)), min_size=1, max_size=80),
       st.integers(0, 3))
@fuzz(300)
def test_bundles(world, contents, depth):
    # a bundle of messages and garbage elements, nested `depth` times
    body = b"".join(struct.pack(">i", len(c)) + c for c in contents)
    packet = b"#bundle\x00" + b"\x00" * 8 + body
    for _ in range(depth):
        packet = b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", len(packet)) + packet
    feed(world, packet)


def bundle_of(elements: list[tuple[int, bytes]]) -> bytes:
    return b"#bundle\x00" + b"\x00" * 8 + b"".join(struct.pack(">i", size) + body for size, body in elements)


ELEMENT_SIZE = st.one_of(st.integers(-2**31, 2**31 - 1), st.integers(-64, 64), st.sampled_from([0, -4, -8, -16]))
HOSTILE_BUNDLE = st.recursive(
    st.one_of(st.sampled_from(VALID), st.binary(max_size=32)),
    lambda inner: st.lists(st.tuples(st.one_of(st.none(), ELEMENT_SIZE), inner), max_size=6).map(
        lambda elements: bundle_of([(len(body) if size is None else size, body) for size, body in elements])),
    max_leaves=20)


@given(several(HOSTILE_BUNDLE))
@fuzz(500)
def test_bundles_with_hostile_element_sizes_and_nesting(world, packets):
    """Element sizes negative, zero, unaligned or past the end, nested bundles: every packet is answered at
    once (python-osc's own bundle parser loops forever on a negative size)."""
    for packet in packets:
        feed(world, packet)


@given(st.integers(1, 40), st.sampled_from(VALID), st.integers(-64, 64))
@fuzz(200)
def test_deeply_nested_bundles_with_a_bad_size_anywhere(world, depth, message, bad_size):
    packet, level_sizes = message, []
    for _ in range(depth):
        level_sizes.append(len(packet))
        packet = bundle_of([(len(packet), packet)])
    corrupt = bytearray(packet)
    struct.pack_into(">i", corrupt, 16 + 20 * (bad_size % depth), bad_size)
    for data in (packet, bytes(corrupt)):
        assert len(feed(world, data, guarded=False)) == 1
        feed(world, data)


@given(st.one_of(st.text(max_size=200), st.dictionaries(st.sampled_from(["address", "args", "x"]),
                                                         st.one_of(st.text(max_size=20), st.lists(st.one_of(
                                                             st.text(max_size=20), st.integers(), st.floats(),
                                                             st.none(), st.booleans()), max_size=4)),
                                                         max_size=3).map(json.dumps)))
@fuzz(400)
def test_websocket_text_frames(world, text):
    PACKETS["count"] += 1
    channel = CollectingChannel()
    world["guarded"].handle_text(text, channel)
    assert all(r.address != "/cuesmith/accepted" for r in channel.replies)


@given(st.binary(max_size=4096))
@fuzz(200)
def test_slip_streams(world, wire):
    stream = SlipStream()
    for packet in stream.feed(wire) + stream.feed(b"\xc0"):
        if isinstance(packet, bytes):
            feed(world, packet)


def test_a_bundle_of_many_pings_is_capped(world):
    bundle = OscBundleBuilder(IMMEDIATELY)
    for _ in range(MAX_BUNDLE + 1):
        bundle.add_content(OscMessageBuilder("/cuesmith/ping").build())
    replies = feed(world, bundle.build().dgram)
    assert [r.args[1] for r in replies] == ["bad_packet"]


def test_at_least_ten_thousand_packets_were_fuzzed():
    print(f"fuzzed {PACKETS['count']} packets")
    assert PACKETS["count"] >= 10_000, PACKETS
