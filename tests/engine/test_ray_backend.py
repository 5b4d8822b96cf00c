"""The engine's Ray backend (`weft-engine serve --backend ray`) over real sockets and a local Ray.

One local Ray (2 CPUs) and one gateway serve the whole module (starting Ray takes seconds); each
test drives it through the project's own EngineClient, as the studio and the CLI do. The test
sessions come from tests/fixtures/sessions.py: tiny_lm and strict run as one-shot jobs on Ray Serve,
tiny_live (real-time, steerable), boom (raises) and crash (its process dies) as Ray actors.
"""
import os
import threading
import time

import pytest

pytest.importorskip("ray", reason="the Ray backend needs Ray (pip install 'weft-studio[ray]')")
pytest.importorskip("ray.serve", reason="the Ray backend needs Ray Serve (pip install 'ray[serve]')")

from engine.client import EngineClient, EngineError  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CONFIG = """
[ray]
num_cpus = 2
object_store_mb = 256

[defaults]
num_cpus = 0.1           # logical: every worker fits on this 2-core machine
threads = 1
warm_actors = 0

[tasks.tiny_lm]
mode = "serve"
max_replicas = 1
max_ongoing_requests = 2  # so a third job waits at the gateway

[tasks.strict]
mode = "serve"

[tasks.tiny_live]
mode = "actor"
warm_actors = 1

[tasks.boom]
mode = "actor"

[tasks.crash]
mode = "actor"
"""


class Recorder:
    def __init__(self):
        self.events, self.cv = [], threading.Condition()

    def __call__(self, ev):
        with self.cv:
            self.events.append(ev)
            self.cv.notify_all()

    def of(self, job):
        with self.cv:
            return [e for e in self.events if e.job == job]

    def wait(self, pred, timeout=60.0):
        end = time.monotonic() + timeout
        with self.cv:
            while not pred():
                left = end - time.monotonic()
                assert left > 0, f"timed out; events: {[(e.job, e.kind) for e in self.events][-10:]}"
                self.cv.wait(left)

    def wait_end(self, job, timeout=60.0):
        self.wait(lambda: any(e.terminal for e in self.events if e.job == job), timeout)
        return self.of(job)

    def partials(self, job):
        return sum(e.kind == "partial" for e in self.of(job))


def assert_in_order(evs):
    assert [e.seq for e in evs] == list(range(len(evs))), [(e.seq, e.kind) for e in evs]
    assert sum(e.terminal for e in evs) == 1 and evs[-1].terminal


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from engine.ray_backend import RayEngine

    d = tmp_path_factory.mktemp("ray")
    (d / "ray.toml").write_text(CONFIG)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WEFT_ENGINE_PLUGINS", "tests.fixtures.sessions")
        eng = RayEngine(f"ipc://{d}/gw.sock", device="cpu", ray_config=d / "ray.toml")
        t = threading.Thread(target=eng.serve, kwargs={"ready_line": False}, daemon=True)
        t.start()
        try:
            yield eng
        finally:
            eng.running = False
            t.join(60)


@pytest.fixture
def client(gateway):
    rec = Recorder()
    c = EngineClient(gateway.endpoint, on_event=rec)
    c.rec = rec
    yield c
    c.close()


def test_one_shot_job_streams_from_a_serve_replica(client):
    rec = client.rec
    st = client.status(timeout=10)
    assert st["backend"] == "ray" and st["ray"]["cpus"] == 2 and "tiny_lm" in st["tasks"]
    job = client.submit("tiny_lm", {"n": 30, "seed": 1})
    evs = rec.wait_end(job)
    assert_in_order(evs)
    kinds = [e.kind for e in evs]
    assert kinds[0] == "queued" and evs[0].data["position"] == 1 and evs[0].data["mode"] == "serve"
    started = next(e for e in evs if e.kind == "started")
    assert started.data["worker"]["kind"] == "replica" and started.data["worker"]["node"]
    assert started.data["worker"]["pid"] != os.getpid()  # it ran in a Ray worker, not here
    assert kinds[-1] == "finished" and evs[-1].data["tokens"] == 30
    partials = [e for e in evs if e.kind == "partial"]
    assert [p.data["i"] for p in partials] == list(range(30))
    assert partials[3].data["array"].shape == (3,)  # numpy payloads still arrive as arrays
    out = next(e for e in evs if e.kind == "output")
    assert out.data["tokens"].tolist() == [p.data["token"] for p in partials]
    # the same request gives the same tokens as the local engine's session would (seeded)
    from tests.fixtures.sessions import TinyLMSession

    s = TinyLMSession(TinyLMSession.load("cpu"), "cpu")
    s.start({"n": 30, "seed": 1})
    local = [s.step()[0][1]["token"] for _ in range(30)]
    assert out.data["tokens"].tolist() == local
    assert "tiny_lm" in client.status(timeout=10)["loaded"]


def test_steered_live_session_on_an_actor_then_cancel(client):
    rec = client.rec
    job = client.submit("tiny_live", {"n": 200, "pace": 0.01})
    rec.wait(lambda: rec.partials(job) >= 3)
    assert client.steer(job, {"offset": 1000, "n": 60}).result(10) == {}
    evs = rec.wait_end(job)
    assert_in_order(evs)
    assert evs[-1].kind == "finished"
    started = next(e for e in evs if e.kind == "started")
    assert started.data["worker"]["kind"] == "actor" and started.data["worker"]["actor"]
    toks = [e.data["token"] for e in evs if e.kind == "partial"]
    assert len(toks) == 60  # the new length took effect
    assert toks[0] < 1000 and all(t >= 1000 for t in toks[-10:])  # and so did the new offset

    # pause / resume / cancel reach the actor too
    job = client.submit("tiny_live", {"n": 400, "pace": 0.02})
    rec.wait(lambda: rec.partials(job) >= 3)
    client.pause(job).result(10)
    time.sleep(0.2)
    n = rec.partials(job)
    time.sleep(0.4)
    assert rec.partials(job) <= n + 1
    client.resume(job).result(10)
    rec.wait(lambda: rec.partials(job) >= n + 3)
    client.cancel(job).result(10)
    n_at_cancel = rec.partials(job)
    evs = rec.wait_end(job)
    assert evs[-1].kind == "cancelled" and rec.partials(job) <= n_at_cancel + 1
    time.sleep(0.2)
    assert rec.of(job)[-1].kind == "cancelled"  # nothing after the end
    assert_in_order(rec.of(job))


def test_failing_and_dying_actors_end_only_their_own_job(client):
    rec = client.rec
    good = client.submit("tiny_lm", {"n": 40, "delay": 0.01})
    bad = client.submit("boom", {})
    dead = client.submit("crash", {})
    strict = client.submit("strict", {})
    bad_evs, dead_evs, strict_evs, good_evs = (rec.wait_end(j, 90) for j in (bad, dead, strict, good))
    for evs in (bad_evs, dead_evs, strict_evs, good_evs):
        assert_in_order(evs)
    assert bad_evs[-1].kind == "error" and "boom on purpose" in bad_evs[-1].data["message"]
    assert "Traceback" in bad_evs[-1].data["traceback"]
    assert dead_evs[-1].kind == "error" and dead_evs[-1].data["kind"] == "worker"
    assert "crash job stopped" in dead_evs[-1].data["message"]
    assert strict_evs[-1].kind == "error" and strict_evs[-1].data["kind"] == "params"
    assert good_evs[-1].kind == "finished" and sum(e.kind == "partial" for e in good_evs) == 40
    # the gateway serves on: a new live session after the crash
    job = client.submit("tiny_live", {"n": 5, "pace": 0})
    assert rec.wait_end(job)[-1].kind == "finished"
    assert client.status(timeout=10)["state"] == "ready"


def test_one_client_flood_does_not_starve_another(gateway, client):
    """tiny_lm holds 2 jobs at once; a 6-job flood from one client waits at the gateway, and a second
    client's single job goes next (position 1), not behind the whole flood."""
    flood = [client.submit("tiny_lm", {"n": 30, "delay": 0.02, "seed": i}) for i in range(6)]
    client.rec.wait(lambda: sum(e.kind == "queued" for j in flood for e in client.rec.of(j)) >= 6)
    other = Recorder()
    c2 = EngineClient(gateway.endpoint, on_event=other)
    try:
        time.sleep(0.1)
        mine = c2.submit("tiny_lm", {"n": 5})
        evs = other.wait_end(mine)
        assert_in_order(evs)
        assert evs[0].kind == "queued" and evs[0].data["position"] == 1
        assert evs[-1].kind == "finished"
        ended_before_mine = sum(any(e.terminal for e in client.rec.of(j)) for j in flood)
        assert ended_before_mine < 6  # it did not wait for the whole flood
        ends = [client.rec.wait_end(j, 90) for j in flood]
        assert all(e[-1].kind == "finished" for e in ends)
        for e in ends:
            assert_in_order(e)
        # positions only ever fall while a job waits, and the flood's last job still had others before it
        positions = [[e.data["position"] for e in evs if e.kind == "queued"] for evs in ends]
        assert all(p == sorted(p, reverse=True) for p in positions)
        assert max(p[0] for p in positions) >= 3
        # a one-shot job that runs on a replica cannot be steered; it says so and can still be cancelled
        job = client.submit("tiny_lm", {"n": 300, "delay": 0.01})
        client.rec.wait(lambda: client.rec.partials(job) >= 2)
        with pytest.raises(EngineError, match="cannot be steered"):
            client.steer(job, {"offset": 5}).result(10)
        client.cancel(job).result(10)
        assert client.rec.wait_end(job)[-1].kind == "cancelled"
    finally:
        c2.close()


SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
       '<path d="M2 2h20v20H2z M8 8v8h8V8z" fill="#000"/></svg>')


@pytest.mark.timeout(420)
def test_the_products_icon_shape_and_a_steered_motion_run_on_ray(client):
    """The product's own tasks through the gateway: an icon (import) and a 3D shape on Serve replicas,
    a motion session on an actor, steered to a new command mid-stream, then cancelled."""
    rec = client.rec
    icon = client.submit("icon", {"mode": "import", "svg": SVG})
    shape = client.submit("shape", {"prompt": "a chair", "steps": 1, "seed": 1})
    motion = client.submit("motion", {"text": "walk forward", "seed": 2})
    ev = rec.wait_end(icon, 240)
    assert ev[-1].kind == "finished" and next(e for e in ev if e.kind == "output").data["paths"]
    ev = rec.wait_end(shape, 240)
    assert ev[-1].kind == "finished", ev[-1].data
    out = next(e for e in ev if e.kind == "output").data
    assert out["vertices"].shape[1] == 3 and len(out["faces"]) > 0
    assert any(e.kind == "partial" for e in ev)  # the levels streamed before the mesh
    rec.wait(lambda: rec.partials(motion) >= 2, 240)
    client.steer(motion, {"text": "turn left"}).result(60)
    n = rec.partials(motion)
    rec.wait(lambda: rec.partials(motion) >= n + 2, 120)
    commands = [e.data.get("command") for e in rec.of(motion) if e.kind == "partial"]
    assert commands[0] == "walk forward" and "turn left" in commands
    client.cancel(motion)
    ev = rec.wait_end(motion, 120)
    assert ev[-1].kind == "cancelled"
    for job in (icon, shape, motion):
        assert_in_order(rec.of(job))
