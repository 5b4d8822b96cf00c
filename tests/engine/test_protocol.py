import numpy as np
import pytest

from engine.protocol import Event, ProtocolError, event_message, pack, to_event, unpack


def test_pack_unpack_keeps_arrays_and_nesting():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([1, 2, 3], dtype=np.int64)
    head = {"type": "event", "data": {"verts": a, "list": [b, {"x": np.float32(2.5)}], "s": "text"}}
    frames = pack(head)
    assert len(frames) == 3  # header + two raw buffers
    out = unpack([bytes(f) for f in frames])
    np.testing.assert_array_equal(out["data"]["verts"], a)
    assert out["data"]["verts"].dtype == np.float32
    np.testing.assert_array_equal(out["data"]["list"][0], b)
    assert out["data"]["list"][1]["x"] == 2.5
    assert out["data"]["s"] == "text"


def test_event_round_trip():
    ev = Event("j1", "partial", 7, {"a": np.ones((2, 2), np.uint8)})
    back = to_event(unpack([bytes(f) for f in event_message(ev)]))
    assert (back.job, back.kind, back.seq) == ("j1", "partial", 7)
    assert back.data["a"].shape == (2, 2)


@pytest.mark.parametrize("frames", [[], [b"\xc1garbage"], [pack({"type": "x", "a": {"__nd__": 5, "dtype": "<f4", "shape": [1]}})[0]]])
def test_malformed_messages_raise_protocol_error(frames):
    with pytest.raises(ProtocolError):
        unpack(frames)


def test_object_arrays_are_refused():
    head = pack({"type": "x", "a": np.zeros(2, np.float32)})
    import msgpack

    bad = msgpack.packb({"type": "x", "a": {"__nd__": 0, "dtype": "|O", "shape": [2]}})
    with pytest.raises(ProtocolError):
        unpack([bad, bytes(head[1])])
