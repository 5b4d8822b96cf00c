"""Run a request's parsing work (an imported SVG, BVH or sketch) in a child process with limits.

Parsing a user's file is not a model step: a 1.3 KB SVG of nested <use> elements or a 24 MB BVH
can take minutes and gigabytes. The scheduler must keep stepping real-time sessions and answer
`status` meanwhile, and a runaway parse must be stoppable, which a thread is not. So each parse
runs in a process forked from a small forkserver (started once, without torch; the modules named
in PRELOAD are imported there so a fork starts in milliseconds) under a CPU-time, wall-time and
address-space limit, and sends its result back through a pipe. The scheduler polls it between
steps (`done()`), never blocking on it.

    call = ParseCall(models.icon.svg.import_wire, svg_text)   # a module-level function and one argument
    ... later, between steps ...
    if call.done(): params["parsed"] = call.result()           # raises ParseError with a plain sentence
"""
from __future__ import annotations

import multiprocessing as mp
import os
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

TIME_LIMIT_S = 10.0  # wall clock for one parse
MEMORY_LIMIT_MB = 1024  # address space a parse may add to the (preloaded) parsing process
# imported once in the forkserver, so each forked parser starts warm (no torch here)
PRELOAD = ["numpy", "scipy.ndimage", "svgelements", "models.common.file_readers"]

_ctx: mp.context.BaseContext | None = None


class ParseError(ValueError):
    """The parse failed or went past a limit; the message is a plain sentence for the user."""


def _context():
    global _ctx
    if _ctx is None:
        _ctx = mp.get_context("forkserver")
        _ctx.set_forkserver_preload([m for m in PRELOAD if _importable(m)])
    return _ctx


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(conn, fn: Callable[[Any], Any], arg: Any, memory_mb: int, cpu_s: float) -> None:
    try:
        limit = _address_space() + memory_mb * 2**20  # what the forkserver mapped (numpy, torch) + the budget
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        cpu = int(cpu_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    except (ValueError, OSError):  # a platform without these limits still gets the wall-clock one
        pass
    try:
        conn.send(("ok", fn(arg)))
    except MemoryError:
        conn.send(("limit", f"it needs more than {memory_mb} MB of memory to read"))
    except RecursionError:
        conn.send(("limit", "it is nested too deeply to read"))
    except ValueError as e:  # the importers' own errors (IconError, BVHError, ...) are ValueErrors
        conn.send(("error", str(e) or f"it could not be read ({type(e).__name__})"))
    except Exception as e:  # noqa: BLE001 - anything else is a bug in an importer: say so plainly
        conn.send(("error", f"it could not be read (internal error: {type(e).__name__})"))
    finally:
        conn.close()


class ParseCall:
    """One parse running in its own process. Poll `done()`; then `result()` (or `cancel()`)."""

    def __init__(self, fn: Callable[[Any], Any], arg: Any, *, what: str = "the file",
                 time_limit_s: float = TIME_LIMIT_S, memory_mb: int = MEMORY_LIMIT_MB):
        ctx = _context()
        self.what, self.time_limit_s = what, time_limit_s
        self._rx, tx = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_child, args=(tx, fn, arg, memory_mb, time_limit_s), daemon=True,
                                name="weft-parse")
        self.t0 = time.monotonic()
        self._outcome: tuple[str, Any] | None = None
        # starting pickles the argument and writes it into the child's pipe: tens of ms for a 24 MB
        # file, so it happens on a short-lived thread, not on the caller's (the scheduler's)
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        threading.Thread(target=self._start, args=(tx,), daemon=True, name="weft-parse-start").start()

    def _start(self, tx) -> None:
        try:
            self.proc.start()
        except BaseException as e:  # noqa: BLE001 - reported by done()
            self._start_error = e
        finally:
            tx.close()
            self._started.set()

    def done(self) -> bool:
        if self._outcome is not None:
            return True
        if not self._started.is_set():
            if time.monotonic() - self.t0 > self.time_limit_s:
                self._outcome = ("limit", "it could not even be handed to the reader in time")
            return self._outcome is not None
        if self._start_error is not None:
            self._outcome = ("error", f"the reader could not start ({type(self._start_error).__name__})")
            self._rx.close()
            return True
        if self._rx.poll():
            try:
                self._outcome = self._rx.recv()
            except (EOFError, OSError):  # died without a word: killed by a limit or a crash
                self._outcome = ("limit", self._death())
            self._reap()
        elif not self.proc.is_alive():
            if self._rx.poll():  # it wrote and exited between the two checks
                return self.done()
            self._outcome = ("limit", self._death())
            self._reap()
        elif time.monotonic() - self.t0 > self.time_limit_s:
            self._outcome = ("limit", f"reading it took longer than {self.time_limit_s:g} s and was stopped "
                                      "(the file is too large or too complex)")
            self.cancel()
        return self._outcome is not None

    def result(self) -> Any:
        """The parsed value, or ParseError("Cannot import <what>: <reason>")."""
        if not self.done():
            raise RuntimeError("result() before done()")
        kind, value = self._outcome
        if kind == "ok":
            return value
        raise ParseError(f"Cannot import {self.what}: {value}")

    def wait(self, timeout: float | None = None) -> Any:
        """Block until done (for callers outside the scheduler, e.g. the CLI or tests)."""
        end = time.monotonic() + (self.time_limit_s + 5 if timeout is None else timeout)
        while not self.done():
            if time.monotonic() > end:
                self.cancel()
                raise ParseError(f"Cannot import {self.what}: it took too long")
            self._rx.poll(0.01)
        return self.result()

    def cancel(self) -> None:
        if not self._started.wait(5) or self._start_error is not None:
            return
        if self.proc.is_alive():
            self.proc.kill()
        self._reap()

    def _death(self) -> str:
        self.proc.join(1)
        code = self.proc.exitcode
        if code in (-9, -24):  # SIGKILL from RLIMIT_CPU's hard limit, SIGXCPU from its soft one
            return f"reading it took longer than {self.time_limit_s:g} s and was stopped"
        return "the reader stopped unexpectedly (the file is too large or damaged)"

    def _reap(self) -> None:
        self.proc.join(0.5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(0.5)
        self._rx.close()


def run_limited(fn: Callable[[Any], Any], arg: Any, **kw) -> Any:
    """Parse in a limited child process and wait for it: ParseCall(...).wait()."""
    return ParseCall(fn, arg, **kw).wait()


def warm() -> None:
    """Start the forkserver now (about a second, once), so the first import is not slower than the rest."""
    if os.name == "posix":
        ParseCall(len, "").wait(30)
