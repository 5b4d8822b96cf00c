"""The engine survives whatever it is sent: mistyped requests, garbage, a client that never reads,
an unauthenticated flood, a file that takes forever or eats memory to read."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from engine.client import EngineClient, EngineError
from engine.protocol import OPS, unpack
from tests.engine.test_engine import Recorder, serve  # noqa: F401 - the fixture

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
       '<path d="M2 2h20v20H2z M8 8v8h8V8z" fill="#000" fill-rule="nonzero"/></svg>')


def _storm_message(rng: random.Random, live_job: str) -> list[bytes]:
    """One request, mostly well-formed on the outside and wrong inside."""
    junk = [None, 5, -1, 3.5, "x", "", "a" * 500, [1, 2], {"a": 1}, b"\x00\xff", True, live_job, "abc",
            {"n": "zz"}, {"offset": "abc"}, {"offset": [1]}, {"n": -1}, {"n": 1e308}, {"parsed": "sneaky"},
            {"delay": "slow"}, {"temperature": "hot"}, {"seed": [0]}, {"n": {"deep": {"er": [1]}}}]
    kind = rng.random()
    if kind < 0.05:
        return [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))]  # not msgpack at all
    if kind < 0.1:
        return [msgpack.packb(rng.choice([[1, 2], "req", 7, None, {"op": "status"}]))]
    op = rng.choice([o for o in OPS if o != "shutdown"] + ["nope", "", "op_status", "__init__"])
    head = {"type": rng.choice(["req"] * 8 + ["event", None, 3]), "op": op, "rid": rng.choice([rng.randint(0, 9999), None, "r"])}
    for name in ("job", "task", "params"):
        if rng.random() < 0.7:
            head[name] = rng.choice(junk + (["tiny_lm", "parse_probe"] if name == "task" else []))
    frames = [msgpack.packb(head, use_bin_type=True)]
    if rng.random() < 0.05:  # a dangling array reference
        head["params"] = {"sketch": {"__nd__": rng.choice([0, 3, "x"]), "dtype": rng.choice(["<f4", "|O", "zz"]), "shape": [2, 2]}}
        frames = [msgpack.packb(head, use_bin_type=True)] + ([b"\x00" * 7] if rng.random() < 0.5 else [])
    return frames


@pytest.mark.timeout(180)
def test_a_storm_of_mistyped_requests_leaves_the_engine_alive_and_correct(serve):
    eng = serve()
    rec = Recorder()
    good = EngineClient(eng.endpoint, on_event=rec)
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(eng.endpoint)
    try:
        live = good.submit("tiny_lm", {"n": 400, "delay": 0.005})
        rng = random.Random(1234)
        n = 3000
        for _ in range(n):
            raw.send_multipart(_storm_message(rng, live))
        replies, errors = 0, []
        deadline = time.monotonic() + 120
        while replies < n and time.monotonic() < deadline:
            if raw.poll(1000):
                msg = unpack(raw.recv_multipart())
                if msg["type"] == "reply":
                    replies += 1
                    if not msg["ok"]:
                        errors.append(msg["error"])
        assert replies == n, f"{n - replies} requests got no answer"
        assert errors and all(isinstance(e, str) and e.strip() and "\n" not in e for e in errors)
        assert not any("could not do that" in e for e in errors), [e for e in errors if "could not" in e][:3]
        # still alive, still correct
        assert good.status()["state"] in ("ready", "busy")
        job = good.submit("tiny_lm", {"n": 40, "seed": 3})
        evs = rec.wait_end(job, timeout=60)
        assert evs[-1].kind == "finished"
        assert [e.seq for e in evs] == list(range(len(evs)))
        assert sum(e.kind == "partial" for e in evs) == 40
    finally:
        raw.close(0)
        good.close()


@pytest.mark.timeout(60)
def test_steer_with_wrong_types_is_refused_and_the_job_runs_on(serve):
    eng = serve()
    rec = Recorder()
    c = EngineClient(eng.endpoint, on_event=rec)
    try:
        job = c.submit("tiny_lm", {"n": 200, "delay": 0.005})
        rec.wait(lambda: any(e.kind == "partial" for e in rec.of(job)))
        for bad in ("abc", [1, 2], 5, {"offset": "abc"}, {"offset": [1]}):
            with pytest.raises(EngineError) as err:
                c.request("steer", job=job, params=bad).result(5)
            assert str(err.value).strip() and "\n" not in str(err.value)
        c.steer(job, {"offset": 1000}).result(5)
        evs = rec.wait_end(job)
        assert evs[-1].kind == "finished"
        assert any(e.kind == "partial" and e.data["token"] >= 1000 for e in evs)
    finally:
        c.close()


@pytest.mark.timeout(30)
def test_close_never_blocks_even_when_the_io_thread_is_stuck(serve):
    eng = serve()
    c = EngineClient(eng.endpoint)
    # the I/O thread stops reading its wake-up pipe (as under heavy load): requests pile up
    c._stop.set()
    c._thread.join(2)
    c._stop.clear()
    t0 = time.monotonic()
    futs = [c.request("ping") for _ in range(5000)]  # far past the wake pipe's high-water mark
    c.close()
    assert time.monotonic() - t0 < 5
    assert all(f.done() for f in futs)
    with pytest.raises(EngineError, match="closed"):
        c.request("status").result(1)


@pytest.mark.timeout(30)
def test_close_with_no_engine_at_the_other_end_returns_at_once(tmp_path):
    c = EngineClient(f"ipc://{tmp_path}/nobody.sock")
    for _ in range(100):
        c.request("ping")
    t0 = time.monotonic()
    c.close()
    assert time.monotonic() - t0 < 2.5


def _engine_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.timeout(90)
def test_a_client_without_the_token_cannot_make_the_engine_read_a_big_message(tmp_path, monkeypatch):
    from engine.launch import engine_command, engine_env
    from engine.protocol import READY_LINE

    monkeypatch.setenv("WEFT_ENGINE_PLUGINS", "tests.fixtures.sessions")
    (tmp_path / "token").write_text("s3cret\n")
    cmd = engine_command("tcp://127.0.0.1:0", "cpu") + ["--token-file", str(tmp_path / "token")]
    proc = subprocess.Popen(cmd, env=engine_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(READY_LINE), line
        endpoint = line.split()[2]
        good = EngineClient(endpoint, "s3cret")
        assert good.status(timeout=20)["state"] == "ready"
        before = _engine_rss_mb(proc.pid)
        raw = zmq.Context.instance().socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(endpoint)
        payload = np.ones(200 * 2**20, np.uint8)  # 200 MB, no token
        try:  # once the engine has refused its handshake the socket has no peer and would block forever
            raw.send_multipart([msgpack.packb({"type": "req", "op": "status", "rid": 1}), payload],
                               flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass  # refused before a byte was queued: the engine read nothing, which the checks below confirm
        time.sleep(2.0)
        after = _engine_rss_mb(proc.pid)
        assert after - before < 50, f"the engine grew by {after - before:.0f} MB for an unauthenticated peer"
        assert not raw.poll(200)  # and it never answered that peer
        assert good.status(timeout=10)["state"] == "ready"
        bad = EngineClient(endpoint, "wrong")
        with pytest.raises(EngineError, match="unauthorized"):
            bad.status(timeout=10)
        bad.close()
        raw.close(0)
        good.close()
    finally:
        proc.terminate()
        proc.wait(10)


# ---- file reading off the scheduler thread ---------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_parse_past_its_time_limit_is_stopped_while_others_stream_and_status_answers(serve):
    eng = serve()
    rec = Recorder()
    c = EngineClient(eng.endpoint, on_event=rec)
    try:
        c.status()
        stuck = c.submit("parse_probe", {"reader": "spin", "arg": 600, "limit_s": 1.5})
        t0 = time.monotonic()
        lm = c.submit("tiny_lm", {"n": 100})
        worst = 0.0
        while not any(e.terminal for e in rec.of(stuck)):
            t = time.monotonic()
            c.status(timeout=5)
            worst = max(worst, time.monotonic() - t)
            assert time.monotonic() - t0 < 20
        # the tiny model kept decoding while the file was being read (tens of tokens even on a loaded machine)
        assert sum(e.kind == "partial" for e in rec.of(lm)) >= 10
        assert worst < 0.25, f"status took {worst * 1000:.0f} ms while a file was being read"
        end = rec.of(stuck)[-1]
        assert end.kind == "error" and "longer than 1.5 s" in end.data["message"]
        assert time.monotonic() - t0 < 6
    finally:
        c.close()


@pytest.mark.timeout(60)
def test_a_parse_that_eats_memory_is_stopped_with_a_plain_message(serve):
    eng = serve()
    rec = Recorder()
    c = EngineClient(eng.endpoint, on_event=rec)
    try:
        job = c.submit("parse_probe", {"reader": "balloon", "arg": 4000})
        end = rec.wait_end(job, timeout=30)[-1]
        assert end.kind == "error" and "memory" in end.data["message"] and "\n" not in end.data["message"]
        ok = c.submit("parse_probe", {"reader": "echo", "arg": [1, "two"], "parsed": "ignored"})
        out = [e for e in rec.wait_end(ok) if e.kind == "output"]
        assert out and out[0].data["parsed"] == [1, "two"]  # the client's own "parsed" never gets through
    finally:
        c.close()


@pytest.mark.timeout(60)
def test_icon_import_is_read_off_thread_and_loads_no_weights(serve):
    eng = serve()
    rec = Recorder()
    c = EngineClient(eng.endpoint, on_event=rec)
    try:
        job = c.submit("icon", {"mode": "import", "svg": SVG})
        evs = rec.wait_end(job, timeout=30)
        out = next(e for e in evs if e.kind == "output").data
        assert evs[-1].kind == "finished" and out["paths"] and "<svg" in out["svg"]
        assert "icon" not in c.status()["loaded"]  # an import needs no model
        bad = c.submit("icon", {"mode": "import", "svg": "<svg><path d='M 0 0 L"})
        end = rec.wait_end(bad, timeout=30)[-1]
        assert end.kind == "error" and end.data["message"].startswith("Cannot import this SVG")
    finally:
        c.close()


def test_the_file_reader_works_without_an_engine():
    from engine.sandbox import ParseError, run_limited
    from tests.fixtures import readers

    assert run_limited(readers.echo, {"a": 1}) == {"a": 1}
    with pytest.raises(ParseError, match="longer than 0.5 s"):
        run_limited(readers.spin, 30, time_limit_s=0.5)
