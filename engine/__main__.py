"""`python -m engine` / `weft-engine`: serve, status, bench."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path


def setup_logging(log_file: str | None, verbose: bool = False) -> None:
    from platformdirs import user_log_dir

    folder = os.environ.get("WEFT_LOG_DIR") or user_log_dir("weft")
    path = Path(log_file) if log_file else Path(folder) / "engine.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3)]
    handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def die_with_parent(parent_pid: int) -> None:
    """Exit when the studio that started us goes away (PR_SET_PDEATHSIG on Linux, polling elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass

    def watch():
        while True:
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def cmd_serve(args) -> int:
    from engine.client import default_endpoint, read_token
    from engine.server import Engine

    setup_logging(args.log_file, args.verbose)
    if args.parent_pid:
        die_with_parent(args.parent_pid)
    endpoint = args.listen or default_endpoint()
    if endpoint.startswith("ipc://"):
        from engine.launch import hold_endpoint

        if not hold_endpoint(endpoint):  # held for this process's life, released by the OS at exit
            print(f"weft-engine: another engine already serves {endpoint}", file=sys.stderr)
            return 3
        Path(endpoint[6:]).unlink(missing_ok=True)  # a stale socket from a crashed engine
    if args.backend == "local" and (args.ray_address or args.ray_config):
        print("weft-engine: --ray-address and --ray-config need --backend ray", file=sys.stderr)
        return 2
    try:
        token = read_token(args.token_file)
        if args.backend == "ray":
            try:
                from engine.ray_backend import RayEngine
            except ImportError as e:
                print(f"weft-engine: the Ray backend needs Ray: pip install 'weft-studio[ray]' ({e})", file=sys.stderr)
                return 2
            engine = RayEngine(endpoint, token=token, device=args.device, idle_exit_s=args.idle_exit or None,
                               ray_address=args.ray_address, ray_config=args.ray_config)
        else:
            engine = Engine(endpoint, token=token, device=args.device, idle_exit_s=args.idle_exit or None)
    except (ValueError, OSError) as e:
        print(f"weft-engine: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *a: setattr(engine, "running", False))
    engine.serve()
    return 0


def cmd_status(args) -> int:
    from engine.client import EngineClient, default_endpoint, read_token

    client = EngineClient(args.connect or default_endpoint(), read_token(args.token_file))
    try:
        print(json.dumps(client.status(timeout=args.timeout), indent=2))
        return 0
    except Exception as e:
        print(f"weft-engine: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()


def cmd_bench(args) -> int:
    """Run each task once in-process with its session's `demo` request and print its stats."""
    from engine.protocol import Event
    from engine.runtime import Runtime
    from engine.scheduler import Scheduler

    runtime = Runtime(args.device)
    tasks = args.tasks or sorted(runtime.tasks)
    if not tasks:
        print("no tasks registered")
        return 0
    for task in tasks:
        events: list[Event] = []
        sched = Scheduler(runtime, lambda c, ev: events.append(ev))
        t0 = time.perf_counter()
        from engine.registry import session_class

        try:
            demo = dict(getattr(session_class(runtime.tasks[task]), "demo", {}))
        except Exception:  # noqa: BLE001 - an unloadable task reports its own error below
            demo = {}
        sched.submit("bench", task, demo)
        first_partial = None
        while sched.busy():
            sched.step()
            if first_partial is None and any(e.kind == "partial" for e in events):
                first_partial = time.perf_counter() - t0
        last = events[-1]
        figures = {"task": task, "outcome": last.kind, "total_s": round(time.perf_counter() - t0, 3),
                   "first_partial_s": round(first_partial, 3) if first_partial else None}
        if last.kind == "finished":
            figures.update(last.data)
        else:
            figures["message"] = last.data.get("message")
        print(json.dumps(figures))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="weft-engine", description="Weft Studio's model engine")
    sub = p.add_subparsers(dest="cmd")
    s = sub.add_parser("serve", help="serve models to studios and CLIs")
    s.add_argument("--listen", help="endpoint, e.g. ipc:///tmp/weft.sock or tcp://0.0.0.0:5555 (default: ipc in the user runtime dir)")
    s.add_argument("--token-file", help="file holding the shared secret clients must send (required for tcp)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    s.add_argument("--parent-pid", type=int, default=0, help="exit when this process exits")
    s.add_argument("--idle-exit", type=float, default=0, metavar="S",
                   help="stop after S seconds with no request and no job (the CLI's shared engine)")
    s.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="where jobs run: this process (default) or a Ray cluster (needs the 'ray' extra)")
    s.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to join, e.g. 10.0.0.5:6379 or auto (default: start a local Ray sized to this machine)")
    s.add_argument("--ray-config", metavar="FILE",
                   help="per-task replicas, autoscaling and actor pools (default: engine/ray_config.toml)")
    s.add_argument("--log-file")
    s.add_argument("-v", "--verbose", action="store_true")
    st = sub.add_parser("status", help="ask a running engine for its status")
    st.add_argument("--connect")
    st.add_argument("--token-file")
    st.add_argument("--timeout", type=float, default=5.0)
    b = sub.add_parser("bench", help="run each task once and print its stats")
    b.add_argument("tasks", nargs="*")
    b.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    if args.cmd == "serve":
        return cmd_serve(args)
    if args.cmd == "status":
        return cmd_status(args)
    if args.cmd == "bench":
        return cmd_bench(args)
    p.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
