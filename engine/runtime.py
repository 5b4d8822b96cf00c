"""Where models run: device choice, the loaded-model store, memory figures, out-of-memory relief."""
from __future__ import annotations

import gc
import logging
import os
import resource
import threading
import time

import torch

from engine.registry import all_tasks, session_class


def pick_device(requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(0)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: peak RSS is the best portable figure
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()


class Runtime:
    """Loads each task's weights once (`Session.load`) and hands them to new sessions."""

    def __init__(self, device: str = "auto"):
        self.device = pick_device(device)
        self.tasks = all_tasks()
        self.bundles: dict[str, object] = {}
        self.last_used: dict[str, float] = {}
        self.load_s: dict[str, float] = {}  # seconds each task's weights took to load (and warm up)
        self._lock = threading.Lock()  # the scheduler's loader thread and the scheduler both load

    def session_for(self, task: str, weights: bool = True):
        """A new session of `task`; weights=False (a request that never touches the model) does not
        load them and hands the session what is loaded, or None."""
        if task not in self.tasks:
            raise KeyError(f"unknown task '{task}'; this engine serves: {', '.join(sorted(self.tasks)) or 'nothing'}")
        cls = session_class(self.tasks[task])
        if weights and task not in self.bundles:
            self.preload(task)
        self.last_used[task] = time.monotonic()
        return cls(self.bundles.get(task), self.device)

    def preload(self, task: str) -> bool:
        """Load `task`'s weights now (they are loaded on the first job otherwise). False: already loaded."""
        with self._lock:
            if task in self.bundles:
                return False
            t0 = time.perf_counter()
            self.bundles[task] = session_class(self.tasks[task]).load(self.device)
            self.load_s[task] = round(time.perf_counter() - t0, 3)
            self.last_used[task] = time.monotonic()
        logging.getLogger("weft.engine").info("loaded %s in %.2f s", task, self.load_s[task])
        return True

    def unload_idle(self, busy: set[str]) -> list[str]:
        """Drop the weights of every task with no running job; returns what was unloaded."""
        gone = [t for t in self.bundles if t not in busy]
        for t in gone:
            del self.bundles[t]
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return gone

    def memory(self) -> dict:
        m = {"rss_mb": round(rss_mb(), 1)}
        if self.device.startswith("cuda") and torch.cuda.is_available():
            m["cuda_mb"] = round(torch.cuda.memory_allocated() / 2**20, 1)
        return m
