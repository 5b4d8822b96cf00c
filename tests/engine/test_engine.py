"""The engine over real sockets (in-process server thread, so the tests stay fast)."""
import os
import threading
import time

import pytest

from engine.client import EngineClient, EngineError
from engine.server import Engine


@pytest.fixture
def serve(monkeypatch, tmp_path):
    monkeypatch.setenv("WEFT_ENGINE_PLUGINS", "tests.fixtures.sessions")
    engines = []

    def start(endpoint=None, token=None):
        endpoint = endpoint or f"ipc://{tmp_path}/e.sock"
        eng = Engine(endpoint, token=token, device="cpu")
        t = threading.Thread(target=eng.serve, kwargs={"ready_line": False}, daemon=True)
        t.start()
        engines.append((eng, t))
        return eng

    yield start
    for eng, t in engines:
        eng.running = False
        t.join(5)


class Recorder:
    def __init__(self):
        self.events, self.cv = [], threading.Condition()

    def __call__(self, ev):
        with self.cv:
            self.events.append(ev)
            self.cv.notify_all()

    def of(self, job):
        return [e for e in self.events if e.job == job]

    def wait(self, pred, timeout=20.0):
        end = time.monotonic() + timeout
        with self.cv:
            while not pred():
                left = end - time.monotonic()
                assert left > 0, f"timed out; events: {[(e.job, e.kind) for e in self.events][-10:]}"
                self.cv.wait(left)

    def wait_end(self, job, timeout=20.0):
        self.wait(lambda: any(e.terminal for e in self.of(job)), timeout)
        return self.of(job)


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_round_trip_and_sequence_order(serve, tmp_path, transport):
    if transport == "tcp":
        eng = serve("tcp://127.0.0.1:0", token="s3cret")
        client_token = "s3cret"
    else:
        eng = serve()
        client_token = None
    rec = Recorder()
    c = EngineClient(eng.endpoint, client_token, on_event=rec)
    try:
        st = c.status()
        assert st["device"] == "cpu" and "tiny_lm" in st["tasks"]
        job = c.submit("tiny_lm", {"n": 30, "seed": 1})
        evs = rec.wait_end(job)
        kinds = [e.kind for e in evs]
        assert kinds[0] == "queued" and kinds[1] == "started" and kinds[-1] == "finished"
        assert [e.seq for e in evs] == list(range(len(evs)))
        partials = [e for e in evs if e.kind == "partial"]
        assert [p.data["i"] for p in partials] == list(range(30))
        # numpy payloads arrive as arrays
        assert partials[3].data["array"].shape == (3,)
        out = next(e for e in evs if e.kind == "output")
        assert out.data["tokens"].tolist() == [p.data["token"] for p in partials]
    finally:
        c.close()


def test_tcp_client_without_token_is_refused(serve):
    eng = serve("tcp://127.0.0.1:0", token="right")
    for token in (None, "wrong"):
        rec = Recorder()
        c = EngineClient(eng.endpoint, token, on_event=rec)
        try:
            with pytest.raises(EngineError, match="unauthorized"):
                c.status()
            job = c.submit("tiny_lm", {"n": 3})
            evs = rec.wait_end(job)
            assert evs[-1].kind == "error" and "unauthorized" in evs[-1].data["message"]
            assert not [e for e in evs if e.kind == "partial"]
        finally:
            c.close()


def test_tcp_without_token_does_not_start():
    with pytest.raises(ValueError, match="token"):
        Engine("tcp://127.0.0.1:0", token=None, device="cpu")


def test_cancel_stops_within_one_step(serve):
    eng = serve()
    rec = Recorder()
    c = EngineClient(eng.endpoint, on_event=rec)
    try:
        job = c.submit("tiny_lm", {"n": 400, "delay": 0.02})
        rec.wait(lambda: sum(e.kind == "partial" for e in rec.of(job)) >= 5)
        c.cancel(job).result(5)
        n_at_cancel = sum(e.kind == "partial" for e in rec.of(job))
        evs = rec.wait_end(job)
        assert evs[-1].kind == "cancelled"
        assert sum(e.kind == "partial" for e in evs) <= n_at_cancel + 1
        time.sleep(0.1)
        assert rec.of(job)[-1].kind == "cancelled"  # nothing after the end
    finally:
        c.close()


def test_steer_changes_running_session(serve):
    eng = serve()
    rec = Recorder()
    c = EngineClient(eng.endpoint, on_event=rec)
    try:
        job = c.submit("tiny_lm", {"n": 200, "delay": 0.01})
        rec.wait(lambda: sum(e.kind == "partial" for e in rec.of(job)) >= 3)
        c.steer(job, {"offset": 1000, "n": 60}).result(5)
        evs = rec.wait_end(job)
        toks = [e.data["token"] for e in evs if e.kind == "partial"]
        assert len(toks) == 60  # the new length took effect
        assert toks[0] < 1000 and all(t >= 1000 for t in toks[-10:])
    finally:
        c.close()


def test_failing_session_yields_error_while_other_job_completes(serve):
    eng = serve()
    rec = Recorder()
    c = EngineClient(eng.endpoint, on_event=rec)
    try:
        good = c.submit("tiny_lm", {"n": 40, "delay": 0.005})
        bad = c.submit("boom", {})
        strict = c.submit("strict", {})
        bad_evs, good_evs, strict_evs = rec.wait_end(bad), rec.wait_end(good), rec.wait_end(strict)
        assert bad_evs[-1].kind == "error" and "boom on purpose" in bad_evs[-1].data["message"]
        assert "Traceback" in bad_evs[-1].data["traceback"]
        assert strict_evs[-1].kind == "error" and strict_evs[-1].data["kind"] == "params"
        assert good_evs[-1].kind == "finished"
        assert sum(e.kind == "partial" for e in good_evs) == 40
        assert c.status()["state"] == "ready"  # still serving
    finally:
        c.close()


def test_bad_requests_get_plain_errors(serve):
    eng = serve()
    rec = Recorder()
    c = EngineClient(eng.endpoint, on_event=rec)
    try:
        job = c.submit("no_such_task", {})
        evs = rec.wait_end(job)
        assert evs[-1].kind == "error" and "unknown task" in evs[-1].data["message"]
        with pytest.raises(EngineError, match="no running job"):
            c.call("cancel", job="nope")
        job = c.submit("tiny_lm", {"n": 10_000})  # out of range
        assert "between" in rec.wait_end(job)[-1].data["message"]
    finally:
        c.close()


def test_pause_and_resume(serve):
    eng = serve()
    rec = Recorder()
    c = EngineClient(eng.endpoint, on_event=rec)
    try:
        job = c.submit("tiny_lm", {"n": 300, "delay": 0.01})
        rec.wait(lambda: sum(e.kind == "partial" for e in rec.of(job)) >= 3)
        c.pause(job).result(5)
        n = sum(e.kind == "partial" for e in rec.of(job))
        time.sleep(0.3)
        assert sum(e.kind == "partial" for e in rec.of(job)) <= n + 1
        c.resume(job).result(5)
        rec.wait(lambda: sum(e.kind == "partial" for e in rec.of(job)) >= n + 5)
        c.cancel(job)
        rec.wait_end(job)
    finally:
        c.close()


def test_engine_subprocess_cli_status(fixture_engine):
    c = EngineClient(fixture_engine.endpoint)
    try:
        st = c.status(timeout=10)
        assert st["pid"] == fixture_engine.proc.pid and st["pid"] != os.getpid()
    finally:
        c.close()


def test_warm_loads_a_task_ahead_of_its_first_job(serve):
    eng = serve()
    c = EngineClient(eng.endpoint)
    try:
        assert "slow_load" not in c.status()["loaded"]
        assert c.call("warm", task="slow_load") == {"queued": True}
        end = time.monotonic() + 10
        while "slow_load" not in c.status()["loaded"]:
            assert time.monotonic() < end, "the warmed task never loaded"
            time.sleep(0.02)
        assert c.call("warm", task="slow_load") == {"queued": False}  # already there: nothing to do
        with pytest.raises(EngineError, match="unknown task"):
            c.call("warm", task="no_such_task")
        rec = Recorder()
        c2 = EngineClient(eng.endpoint, on_event=rec)
        try:
            job = c2.submit("slow_load", {"n": 3})
            started = next(e for e in rec.wait_end(job) if e.kind == "started")
            assert started.data["load_s"] < 0.2  # loading takes 0.4 s: it was done before the job came
        finally:
            c2.close()
    finally:
        c.close()
