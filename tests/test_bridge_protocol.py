"""The OSC protocol (docs/osc.md) through the dispatcher and a real JobService, no sockets."""
import json
import os
import struct
import sys
import time

import pytest

from bridge_helpers import short_clip
from cuesmith.engine import __version__
from cuesmith.engine.service import JobService
from cuesmith.plugin_bridge.protocol import (MAX_BUNDLE_DEPTH, MAX_JSON, MAX_PACKET, MAX_REQUEST_FILE, Access,
                                             CollectingChannel, Dispatcher, Message, ProtocolError, Router,
                                             SlipStream, decode_json_frame, decode_packet, encode_json_frame,
                                             encode_message)
from pythonosc import slip
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder


class UdpCollector(CollectingChannel):
    kind = "udp"


@pytest.fixture
def service(tmp_path):
    svc = JobService(journal=tmp_path / "journal.sqlite", output_root=tmp_path / "jobs")
    yield svc
    svc.stop(wait=False)


@pytest.fixture
def clip(tmp_path_factory):
    return short_clip(tmp_path_factory.getbasetemp() / "protocol-clip.mp4")


def ask(dispatcher, address, *args, channel=None):
    channel = channel or UdpCollector("udp:127.0.0.1:5000")
    dispatcher.handle_packet(encode_message(address, list(args)), channel)
    return channel.replies


def error_code(replies):
    assert len(replies) == 1 and replies[0].address == "/cuesmith/error", replies
    return replies[0].args[1]


def test_ping_answers_pong_with_the_tag_and_version(service):
    replies = ask(Dispatcher(service), "/cuesmith/ping", "t1")
    assert replies == [Message("/cuesmith/pong", ["t1", __version__])]


@pytest.mark.parametrize("address,args,code", [
    ("/cuesmith/nope", ["t"], "unknown_address"),
    ("/other/ping", ["t"], "unknown_address"),
    ("/cuesmith/ping", [], "bad_arguments"),
    ("/cuesmith/ping", [5], "bad_arguments"),
    ("/cuesmith/ping", ["t", "extra"], "bad_arguments"),
    ("/cuesmith/ping", ["t", "colour=red"], "bad_arguments"),
    ("/cuesmith/score", ["t"], "bad_arguments"),
    ("/cuesmith/score", ["t", 3], "bad_arguments"),
    ("/cuesmith/score", ["t", "{}", "priority=high"], "bad_arguments"),
    ("/cuesmith/score", ["t", "{not json"], "bad_json"),
    ("/cuesmith/score", ["t", "relative/request.json"], "bad_json"),
    ("/cuesmith/score", ["t", "/no/such/request.json"], "bad_json"),
    ("/cuesmith/score", ["t", "[1, 2]"], "bad_json"),
    ("/cuesmith/score", ["t", "{}"], "bad_request"),
    ("/cuesmith/score", ["t", json.dumps({"video": "/clips/a.mp4", "describe": 5})], "bad_request"),
    ("/cuesmith/analyze", ["t", '{"video": "/no/such/clip.mp4"}'], "bad_request"),
    ("/cuesmith/score", ["t", json.dumps({"video": "x", "notes": "a" * MAX_JSON})], "too_large"),
    ("/cuesmith/cancel", ["t", "0123456789ab"], "not_found"),
    ("/cuesmith/status", ["t", "0123456789ab"], "not_found"),
    ("/cuesmith/list", ["t", 0], "bad_arguments"),
    ("/cuesmith/list", ["t", 101], "bad_arguments"),
    ("/cuesmith/ping", ["t", "reply=notaport"], "bad_arguments"),
])
def test_bad_requests_get_an_error_with_the_tag_and_change_nothing(service, address, args, code):
    replies = ask(Dispatcher(service), address, *args)
    assert error_code(replies) == code
    assert replies[0].args[0] == (args[0] if args and isinstance(args[0], str) else "")
    assert service.list(10) == []


def test_a_packet_that_is_not_osc_is_bad_packet_with_an_empty_tag(service):
    channel = UdpCollector("udp:127.0.0.1:5000")
    Dispatcher(service).handle_packet(b"hello, not OSC", channel)
    assert channel.replies == [Message("/cuesmith/error", ["", "bad_packet", channel.replies[0].args[2]])]


def test_an_oversized_packet_is_too_large(service):
    channel = UdpCollector("udp:127.0.0.1:5000")
    Dispatcher(service).handle_packet(encode_message("/cuesmith/ping", ["t", "x" * MAX_PACKET]), channel)
    assert error_code(channel.replies) == "too_large"


def test_a_score_outside_the_output_root_is_refused(service, clip, tmp_path):
    request = json.dumps({"video": str(clip), "out_dir": str(tmp_path.parent / "elsewhere")})
    replies = ask(Dispatcher(service), "/cuesmith/score", "t", request)
    assert error_code(replies) == "bad_request" and "output root" in replies[0].args[2]
    assert not (tmp_path.parent / "elsewhere").exists()


def test_a_job_is_accepted_journaled_and_reported(service, clip):
    dispatcher = Dispatcher(service)
    replies = ask(dispatcher, "/cuesmith/analyze", "a1", json.dumps({"video": str(clip)}), "priority=5")
    assert [m.address for m in replies] == ["/cuesmith/accepted"] and replies[0].args[0] == "a1"
    job_id = replies[0].args[1]
    record = service.get(job_id)
    assert (record.kind, record.state, record.priority, record.reply_to) == ("analyze", "queued", 5,
                                                                              "udp:127.0.0.1:5000")
    status = ask(dispatcher, "/cuesmith/status", "s1", job_id)
    assert status == [Message("/cuesmith/job", ["s1", job_id, "analyze", "queued", "", 0.0, ""])]
    listing = ask(dispatcher, "/cuesmith/list", "l1", 5)
    assert [m.address for m in listing] == ["/cuesmith/job", "/cuesmith/list/end"]
    assert listing[-1].args == ["l1", 1]
    assert ask(dispatcher, "/cuesmith/cancel", "c1", job_id) == [Message("/cuesmith/cancelled", [job_id])]
    assert service.get(job_id).state == "cancelled"


def test_a_request_file_holds_a_request_too_big_for_a_packet(service, clip, tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"video": str(clip), "pad": "x" * 5000}))
    replies = ask(Dispatcher(service), "/cuesmith/analyze", "f1", str(path))
    assert replies[0].address == "/cuesmith/accepted"


def test_engine_status_names_version_providers_models_and_counts(service):
    (reply,) = ask(Dispatcher(service), "/cuesmith/status", "s")
    assert reply.address == "/cuesmith/engine"
    tag, version, providers, models, queued, running = reply.args
    assert (tag, version, queued, running) == ("s", __version__, 0, 0)
    assert "CPUExecutionProvider" in json.loads(providers)["available"]
    assert isinstance(json.loads(models), list)


def test_a_token_is_required_when_set(service):
    dispatcher = Dispatcher(service, token="s3cret")
    tcp = CollectingChannel("tcp:x-1")
    tcp.kind = "tcp"
    assert error_code(ask(dispatcher, "/cuesmith/ping", "t", channel=tcp)) == "unauthorized"
    tcp.replies.clear()
    assert error_code(ask(dispatcher, "/cuesmith/ping", "t", "token=wrong", channel=tcp)) == "unauthorized"
    assert ask(dispatcher, "/cuesmith/ping", "t", "token=s3cret")[0].address == "/cuesmith/pong"


def test_the_users_token_is_asked_of_websockets_and_other_machines_not_of_local_udp_and_tcp(service):
    dispatcher = Dispatcher(service, access=Access("s3cret", loopback_open=True))
    local_tcp, websocket = CollectingChannel("tcp:x-1", "127.0.0.1"), CollectingChannel("ws:x-2", "127.0.0.1")
    local_tcp.kind, websocket.kind = "tcp", "ws"
    assert ask(dispatcher, "/cuesmith/ping", "t")[0].address == "/cuesmith/pong"
    assert ask(dispatcher, "/cuesmith/ping", "t", channel=local_tcp)[0].address == "/cuesmith/pong"
    assert error_code(ask(dispatcher, "/cuesmith/ping", "t", channel=websocket)) == "unauthorized"
    remote = UdpCollector("udp:192.0.2.7:5000", "192.0.2.7")
    assert error_code(ask(dispatcher, "/cuesmith/ping", "t", WRONG_TOKEN, channel=remote)) == "unauthorized"
    remote.replies.clear()
    assert ask(dispatcher, "/cuesmith/ping", "t", "token=s3cret", channel=remote)[0].address == "/cuesmith/pong"


WRONG_TOKEN = "token=" + "x" * 100  # room for the error in the reply budget


def sent_bytes(replies) -> int:
    return sum(len(encode_message(m.address, m.args)) for m in replies)


def test_no_more_bytes_go_back_to_an_unauthenticated_udp_sender_than_it_sent(service):
    """The issue's case: a bundle of 64 `list` requests (with reply=) answered ×143 to another address."""
    dispatcher = Dispatcher(service, token="s3cret")
    bundle = OscBundleBuilder(IMMEDIATELY)
    for i in range(64):
        bundle.add_content(OscMessageBuilder("/cuesmith/list").build() if i % 2 else
                           build("/cuesmith/list", [f"l{i}", 100, "reply=9000"]))
    packet = bundle.build().dgram
    for sender in ("127.0.0.1", "192.0.2.7"):
        channel = UdpCollector(f"udp:{sender}:5000", sender)
        dispatcher.handle_packet(packet, channel)
        assert 0 < sent_bytes(channel.replies) <= len(packet)
        assert {m.args[1] for m in channel.replies} <= {"unauthorized", "bad_arguments"}
    channel = UdpCollector("udp:127.0.0.1:5000")
    dispatcher.handle_packet(b"\x00" * 8, channel)
    assert channel.replies == []  # the smallest error would be bigger than the packet


def build(address, args):
    builder = OscMessageBuilder(address)
    for value in args:
        builder.add_arg(value)
    return builder.build()


def test_reply_may_name_this_machine_the_senders_own_address_or_a_configured_host(service):
    elsewhere = UdpCollector("udp:x")
    router = Router()
    router.udp_factory = lambda host, port: elsewhere
    dispatcher = Dispatcher(service, router, access=Access(reply_hosts=("198.51.100.9",)))
    remote = UdpCollector("udp:192.0.2.7:5000", "192.0.2.7")
    for target, allowed in (("127.0.0.1:9000", True), ("9000", True), ("192.0.2.7:9000", True),
                            ("198.51.100.9:9000", True), ("203.0.113.5:9000", False),
                            ("example.com:9000", False)):
        elsewhere.replies.clear()
        remote.replies.clear()
        ask(dispatcher, "/cuesmith/ping", "t", f"reply={target}", channel=remote)
        assert bool(elsewhere.replies) == allowed and bool(remote.replies) != allowed, target
        if not allowed:
            assert error_code(remote.replies) == "bad_arguments"


def test_replies_elsewhere_without_the_token_are_no_bigger_than_the_request(service):
    """From this machine no token is needed, but reply= to another port gets no more bytes than were sent."""
    elsewhere = UdpCollector("udp:127.0.0.1:9000")
    router = Router()
    router.udp_factory = lambda host, port: elsewhere
    dispatcher = Dispatcher(service, router, access=Access("s3cret", loopback_open=True))
    for i in range(5):
        service.submit("analyze", {"video": __file__})
    bundle = OscBundleBuilder(IMMEDIATELY)
    for i in range(64):
        bundle.add_content(build("/cuesmith/list", [f"l{i}", 100, "reply=9000"]))
    packet = bundle.build().dgram
    sender = UdpCollector("udp:127.0.0.1:5000")
    dispatcher.handle_packet(packet, sender)
    assert sender.replies == [] and 0 < sent_bytes(elsewhere.replies) <= len(packet)
    elsewhere.replies.clear()
    ask(dispatcher, "/cuesmith/list", "t", 100, "reply=9000", "token=s3cret")
    assert [m.address for m in elsewhere.replies] == ["/cuesmith/job"] * 5 + ["/cuesmith/list/end"]
    assert sent_bytes(ask(dispatcher, "/cuesmith/list", "t", 100)) > 10 * len(encode_message("/cuesmith/list",
                                                                                              ["t", 100]))


def test_errors_before_the_token_check_go_to_the_sender_only(service):
    elsewhere = UdpCollector("udp:127.0.0.1:9000")
    router = Router()
    router.udp_factory = lambda host, port: elsewhere
    guarded = Dispatcher(service, router, token="s3cret")
    sender = ask(guarded, "/cuesmith/nothing", "t", "reply=9000", WRONG_TOKEN)
    assert error_code(sender) == "unknown_address" and elsewhere.replies == []
    sender = ask(guarded, "/cuesmith/list", "t", "reply=9000", WRONG_TOKEN)
    assert error_code(sender) == "unauthorized" and elsewhere.replies == []


def test_a_sender_that_needs_no_token_gets_its_errors_at_reply_too(service):
    """oscsend closes its socket at once: without this it would never see an error."""
    elsewhere = UdpCollector("udp:127.0.0.1:9000")
    router = Router()
    router.udp_factory = lambda host, port: elsewhere
    dispatcher = Dispatcher(service, router, access=Access("s3cret", loopback_open=True))
    sender = ask(dispatcher, "/cuesmith/nothing", "t", "a request long enough for its error", "reply=9000")
    assert sender == [] and error_code(elsewhere.replies) == "unknown_address"
    remote = UdpCollector("udp:192.0.2.7:5000", "192.0.2.7")
    ask(dispatcher, "/cuesmith/nothing", "t", "reply=127.0.0.1:9000", WRONG_TOKEN, channel=remote)
    assert error_code(remote.replies) == "unknown_address" and len(elsewhere.replies) == 1


def test_a_bundle_element_of_negative_size_is_a_bad_packet_not_a_hang():
    for packet in (b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", -8),
                   b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", -16) + b"/cuesmith/ping\x00\x00",
                   b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", 1 << 30),
                   b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", 6) + b"/a\x00\x00,\x00"):
        with pytest.raises(ProtocolError) as error:
            decode_packet(packet)
        assert error.value.code == "bad_packet"
    nested = encode_message("/cuesmith/ping", ["t"])
    for _ in range(MAX_BUNDLE_DEPTH + 1):
        nested = b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", len(nested)) + nested
    with pytest.raises(ProtocolError, match="nested"):
        decode_packet(nested)
    assert decode_packet(nested[20:]) == [Message("/cuesmith/ping", ["t"])]


def test_request_files_that_are_fifos_or_devices_are_refused_without_blocking(service, tmp_path):
    fifo, zero, big = tmp_path / "fifo.json", tmp_path / "zero.json", tmp_path / "big.json"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    big.write_text('{"video": "' + "x" * MAX_REQUEST_FILE + '"}')
    for path, code in ((fifo, "bad_json"), (zero, "bad_json"), (big, "too_large")):
        replies = ask(Dispatcher(service), "/cuesmith/analyze", "f", str(path))
        assert error_code(replies) == code, path
        assert "not a regular file" in replies[0].args[2] or code == "too_large"


def test_reply_option_sends_udp_replies_elsewhere(service):
    elsewhere = UdpCollector("udp:127.0.0.1:9000")
    router = Router()
    router.udp_factory = lambda host, port: elsewhere if (host, port) == ("127.0.0.1", 9000) else None
    sender = ask(Dispatcher(service, router), "/cuesmith/ping", "t", "reply=9000")
    assert sender == [] and elsewhere.replies[0].address == "/cuesmith/pong"


def test_reply_option_is_for_udp_only(service):
    tcp = CollectingChannel("tcp:x-1")
    tcp.kind = "tcp"
    assert error_code(ask(Dispatcher(service), "/cuesmith/ping", "t", "reply=9000", channel=tcp)) == "bad_arguments"


def test_bundles_are_answered_message_by_message(service):
    bundle = OscBundleBuilder(IMMEDIATELY)
    for tag in ("b1", "b2"):
        builder = OscMessageBuilder("/cuesmith/ping")
        builder.add_arg(tag)
        bundle.add_content(builder.build())
    channel = UdpCollector("udp:127.0.0.1:5000")
    Dispatcher(service).handle_packet(bundle.build().dgram, channel)
    assert [m.args[0] for m in channel.replies] == ["b1", "b2"]


def test_timelines_need_the_timeline_module(service, monkeypatch):
    monkeypatch.setitem(sys.modules, "cuesmith.plugin_bridge.timeline", None)  # as if it were not installed
    replies = ask(Dispatcher(service), "/cuesmith/score", "t", '{"timeline": "/cuts/reel1.edl"}')
    assert error_code(replies) == "bad_request"
    assert replies[0].args[2] == "timelines are not supported by this engine"


def test_a_timeline_request_is_submitted_with_its_clips(service, clip):
    edl = clip.parent / "protocol-edit.edl"
    edl.write_text("TITLE: bridge\nFCM: NON-DROP FRAME\n\n"
                   "001  A        V     C        00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00\n"
                   f"* FROM CLIP NAME:  {clip.name}\n"
                   "002  A        V     C        00:00:01:15 00:00:02:15 01:00:01:00 01:00:02:00\n"
                   f"* FROM CLIP NAME:  {clip.name}\n")
    replies = ask(Dispatcher(service), "/cuesmith/score", "t", json.dumps({"timeline": str(edl), "stems": False}))
    assert replies[0].address == "/cuesmith/accepted", replies
    request = service.get(replies[0].args[1]).request
    assert request["timeline"] == str(edl) and [c["video"] for c in request["clips"]] == [str(clip)] * 2
    assert [round(c["start"], 2) for c in request["clips"]] == [0.0, 1.5]


def test_a_score_request_carries_its_description(service, clip):
    request = json.dumps({"video": str(clip), "family": "mtm", "describe": "slow sad piano", "stems": False})
    replies = ask(Dispatcher(service), "/cuesmith/score", "t", request)
    assert replies[0].address == "/cuesmith/accepted", replies
    assert service.get(replies[0].args[1]).request["describe"] == "slow sad piano"


def test_json_text_frames_map_to_osc_messages(service):
    assert decode_json_frame('{"address": "/cuesmith/ping", "args": ["t1"]}') == Message("/cuesmith/ping", ["t1"])
    assert json.loads(encode_json_frame("/cuesmith/pong", ["t1", "0.1.0"])) == {
        "address": "/cuesmith/pong", "args": ["t1", "0.1.0"]}
    channel = CollectingChannel()
    dispatcher = Dispatcher(service)
    for text, code in (("{not json", "bad_json"), ('{"args": []}', "bad_packet"),
                       ('{"address": "/cuesmith/ping", "args": ["t", true]}', "bad_arguments"),
                       ('{"address": "/cuesmith/ping", "args": ["t", null]}', "bad_arguments")):
        channel.replies.clear()
        dispatcher.handle_text(text, channel)
        assert error_code(channel.replies) == code, text


def test_slip_stream_reassembles_frames_split_anywhere():
    packets = [encode_message("/cuesmith/ping", [f"t{i}", "\xc0\xdb"]) for i in range(3)]
    stream = SlipStream()
    wire = b"".join(slip.encode(p) for p in packets)
    got = []
    for i in range(0, len(wire), 7):
        got += stream.feed(wire[i:i + 7])
    assert got == packets
    assert [decode_packet(p)[0].args[0] for p in got] == ["t0", "t1", "t2"]


def test_slip_stream_refuses_an_oversized_frame_then_recovers():
    stream = SlipStream()
    got = stream.feed(b"\xc0" + b"a" * (3 * MAX_PACKET))
    assert len(got) == 1 and got[0].code == "too_large"
    assert stream.feed(b"rest of it\xc0" + slip.encode(encode_message("/cuesmith/ping", ["t"]))) == [
        encode_message("/cuesmith/ping", ["t"])]


def test_job_events_reach_the_submitters_channel(service, clip):
    router = Router()
    submitter = CollectingChannel("tcp:test-1")
    router.register(submitter)
    service.subscribe(router.deliver)
    service.start()
    dispatcher = Dispatcher(service, router)
    dispatcher.handle_packet(encode_message("/cuesmith/analyze", ["a", json.dumps({"video": str(clip)})]), submitter)
    job_id = submitter.replies[0].args[1]
    service.wait(job_id, timeout=60)
    addresses = [m.address for m in submitter.replies]
    assert addresses[0] == "/cuesmith/accepted" and "/cuesmith/progress" in addresses
    assert addresses[-1] == "/cuesmith/result"
    result = submitter.replies[-1].args
    assert result[:2] == [job_id, "analyze"] and json.loads(open(result[2]).read())


def test_progress_is_at_most_about_ten_per_second_per_job():
    from cuesmith.engine.service import JobEvent

    router = Router()
    channel = CollectingChannel("tcp:x")
    router.register(channel)
    start = time.monotonic()
    for i in range(1000):
        router.deliver(JobEvent("j1", "progress", "score", stage="decode", fraction=i / 1000, reply_to="tcp:x"))
    elapsed = time.monotonic() - start
    assert 1 <= len(channel.replies) <= 1 + 10 * elapsed + 1
