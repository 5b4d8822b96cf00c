"""`weft-cli` reuses the user's shared engine: the first call starts it, later calls (and several at
once) find it warm, `weft-cli engine stop` stops it, `--private` keeps a call to itself. No Qt."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def cli_env(tmp_path):
    run = tempfile.mkdtemp(prefix="wr", dir="/tmp")  # short: a Unix socket path must stay under ~107 bytes
    env = dict(os.environ, XDG_RUNTIME_DIR=run, WEFT_ENGINE_PLUGINS="tests.fixtures.sessions",
               WEFT_LOG_DIR=str(tmp_path / "logs"), PYTHONPATH=ROOT, HF_HUB_OFFLINE="1")
    yield env
    subprocess.run([sys.executable, "-m", "app.cli", "engine", "stop"], env=env, cwd=ROOT, timeout=60,
                   capture_output=True)


def cli(env, *args, timeout=90):
    p = subprocess.run([sys.executable, "-m", "app.cli", "--device", "cpu", *args], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def status(env, *args):
    return json.loads(cli(env, *args, "status"))


@pytest.mark.timeout(240)
def test_cli_calls_share_one_engine_and_stop_it(cli_env):
    assert "no shared engine" in cli(cli_env, "engine", "status")
    first = status(cli_env)
    t0 = time.monotonic()
    second = status(cli_env)
    warm_s = time.monotonic() - t0
    assert second["pid"] == first["pid"]  # the same engine answered
    assert second["uptime_s"] >= first["uptime_s"]
    assert second["idle_exit_s"] == 900
    # two CLIs at once end up on that engine too
    procs = [subprocess.Popen([sys.executable, "-m", "app.cli", "status"], env=cli_env, cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    pids = {json.loads(p.communicate(timeout=60)[0])["pid"] for p in procs}
    assert pids == {first["pid"]}
    private = status(cli_env, "--private")
    assert private["pid"] != first["pid"]
    assert "stopped" in cli(cli_env, "engine", "stop")
    assert "no shared engine" in cli(cli_env, "engine", "status")
    assert warm_s < 10  # a warm call is a connect and one request (the bench times it properly)


@pytest.mark.timeout(240)
def test_two_cli_starts_at_once_make_one_engine(cli_env):
    procs = [subprocess.Popen([sys.executable, "-m", "app.cli", "status"], env=cli_env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    assert len({json.loads(o[0])["pid"] for o in outs}) == 1
