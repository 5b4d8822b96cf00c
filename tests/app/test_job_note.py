"""What the status bar says about a job's place in a shared engine's queue and its Ray worker."""
import pytest

pytest.importorskip("PySide6")

from app.panel import job_note  # noqa: E402
from engine.protocol import Event  # noqa: E402


def test_queue_position_and_worker_are_shown():
    assert job_note("Icon", Event("j", "queued", 0, {"position": 3})) == "Icon: queued, position 3"
    assert job_note("Icon", Event("j", "queued", 0, {"position": 1})) == ""  # next in line: nothing to say
    w = {"kind": "replica", "host": "gpu-box-2", "pid": 4242, "device": "cuda"}
    assert job_note("3D", Event("j", "started", 1, {"worker": w})) == "3D: running on gpu-box-2 (replica, pid 4242, cuda)"
    assert job_note("3D", Event("j", "started", 1, {"task": "shape"})) == ""  # the local engine names no worker
