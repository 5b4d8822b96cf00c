"""`weft-cli`: the studio's engine from the command line (scripting, machines with no display).

    weft-cli status
    weft-cli icon "a rocket" -n 4 -o out/

Each panel adds a subcommand module (app/cli/<panel>.py) exposing `add_parser(subparsers)` and
`run(args, client) -> int`; it is listed in COMMANDS. No Qt and no torch are imported here: jobs
run in an engine process:
- by default the user's shared engine (the studio's when it is open, else one started by the first
  call that stops itself after --keep-alive seconds unused), so the second call finds the models
  loaded: `weft-cli engine start|stop|status` manages it;
- `--private`: a fresh engine for this call only (closed when it ends);
- `--connect ENDPOINT [--token-file F]`: a running (remote) engine.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys

COMMANDS = ["app.cli.icon", "app.cli.shape", "app.cli.motion", "app.cli.speech", "app.cli.world"]


def _modules():
    for name in COMMANDS:
        if importlib.util.find_spec(name) is not None:
            yield importlib.import_module(name)


def progress_printer(label: str):
    """An on_event callback that prints a one-line progress indicator to stderr."""
    def show(ev):
        if ev.kind == "progress" and "done" in ev.data and "total" in ev.data:
            print(f"\r{label}: {ev.data['done']}/{ev.data['total']}", end="", file=sys.stderr, flush=True)
        elif ev.terminal:
            print(file=sys.stderr)
    return show


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="weft-cli", description="Weft Studio from the command line")
    p.add_argument("--connect", help="endpoint of a running engine (default: start a private one)")
    p.add_argument("--token-file", help="token for a remote engine")
    p.add_argument("--device", default="auto", help="device for an engine this call starts: auto, cpu, cuda")
    p.add_argument("--private", action="store_true", help="run in a fresh engine of this call's own (slower: loads the models)")
    p.add_argument("--keep-alive", type=float, default=900, metavar="S",
                   help="a shared engine this call starts stops after S seconds unused (default 900)")
    sub = p.add_subparsers(dest="cmd")
    sub.add_parser("status", help="start (or reach) the engine and print its status")
    eng = sub.add_parser("engine", help="manage the shared engine that CLI calls reuse")
    eng.add_argument("action", choices=["start", "stop", "status"])
    runners, validators = {}, {}
    for mod in _modules():
        name = mod.add_parser(sub)
        runners[name] = mod.run
        if hasattr(mod, "validate"):
            validators[name] = mod.validate
    args = p.parse_args(argv)
    if not args.cmd:
        p.print_help()
        return 0
    checker = validators.get(args.cmd)
    if checker is not None:  # bad arguments are refused before any engine starts
        err = checker(args)
        if err:
            print(f"weft-cli {args.cmd}: {err}", file=sys.stderr)
            return 2

    from engine.client import EngineClient, EngineError, default_endpoint, read_token
    from engine.launch import EngineProcess, endpoint_in_use, ensure_shared_engine, stop_shared_engine

    if args.cmd == "engine":
        if args.action == "stop":
            print("stopped the shared engine" if stop_shared_engine() else "no shared engine is running")
            return 0
        if args.action == "status" and not endpoint_in_use(default_endpoint()):
            print("no shared engine is running (the next weft-cli call starts one)")
            return 0
    proc = None
    try:
        if args.connect:
            endpoint, token = args.connect, read_token(args.token_file)
        elif args.private:
            proc = EngineProcess(device=args.device)
            endpoint, token = proc.endpoint, None
        else:
            endpoint, token = ensure_shared_engine(args.device, idle_exit_s=args.keep_alive), None
        client = EngineClient(endpoint, token)
        try:
            if args.cmd in ("status", "engine"):
                print(json.dumps(client.status(timeout=10), indent=2))
                return 0
            return runners[args.cmd](args, client)
        finally:
            client.close()
    except (EngineError, TimeoutError, RuntimeError, OSError, ValueError) as e:
        print(f"weft-cli: {e}", file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            proc.close()


if __name__ == "__main__":
    sys.exit(main())
