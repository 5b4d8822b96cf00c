"""`weft-cli`: the studio's engine from the command line (scripting, machines with no display).

    weft-cli status
    weft-cli icon "a rocket" -n 4 -o out/

Each panel adds a subcommand module (app/cli_<panel>.py) exposing `add_parser(subparsers)` and
`run(args, client) -> int`; it is listed in COMMANDS. No Qt and no torch are imported here: jobs
run in an engine process (a private one, or `--connect ENDPOINT` to a running one).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys

COMMANDS = ["app.cli_icon", "app.cli_shape", "app.cli_motion", "app.cli_speech", "app.cli_world"]


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
    p.add_argument("--device", default="auto", help="device for a private engine: auto, cpu, cuda")
    sub = p.add_subparsers(dest="cmd")
    sub.add_parser("status", help="start (or reach) the engine and print its status")
    runners = {}
    for mod in _modules():
        name = mod.add_parser(sub)
        runners[name] = mod.run
    args = p.parse_args(argv)
    if not args.cmd:
        p.print_help()
        return 0

    from engine.client import EngineClient, EngineError, read_token
    from engine.launch import EngineProcess

    proc = None
    try:
        if args.connect:
            endpoint, token = args.connect, read_token(args.token_file)
        else:
            proc = EngineProcess(device=args.device)
            endpoint, token = proc.endpoint, None
        client = EngineClient(endpoint, token)
        try:
            if args.cmd == "status":
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
