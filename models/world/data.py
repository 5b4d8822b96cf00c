"""Crafter trajectories for the World model: frames (64x64 RGB) and the key pressed before each.

    python -m models.world.data                    # record train + eval splits into the cache dir
    python -m models.world.data --episodes 20      # a smaller corpus

Crafter (PyPI `crafter`, MIT, Hafner 2021) renders a 9x9-tile view of an open 2D world, 7 px per
tile at 64x64 (63 px of content and a 1 px black edge): a 9x7 local view above a 9x2 inventory.
Episodes are played by a scripted explorer that presses every key in realistic runs (walk in one
direction for a while, turn, seek a tree / stone / water / cow in view and hit it, place and craft,
idle, sleep) mixed with stretches of uniform random play. Train and eval episodes use disjoint
world seeds, so the benchmarks judge worlds the model never saw.

Each split is stored as plain .npy files in cache_dir("world"):
    <split>_frames.npy   (N, 64, 64, 3) uint8
    <split>_actions.npy  (N,) int8: the action that produced frame i from frame i-1; START at an
                         episode's first frame
    <split>_episodes.npy (E + 1,) int64 episode boundaries into the frame arrays
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from models.common.paths import cache_dir

ACTIONS = ["noop", "move_left", "move_right", "move_up", "move_down", "do", "sleep", "place_stone",
           "place_table", "place_furnace", "place_plant", "make_wood_pickaxe", "make_stone_pickaxe",
           "make_iron_pickaxe", "make_wood_sword", "make_stone_sword", "make_iron_sword"]
N_ACTIONS = len(ACTIONS)  # 17 keyboard-like actions
START = N_ACTIONS  # pseudo-action of an episode's (or a reset's) first frame
A = {name: i for i, name in enumerate(ACTIONS)}
MOVES = {(-1, 0): A["move_left"], (1, 0): A["move_right"], (0, -1): A["move_up"], (0, 1): A["move_down"]}
# (dx, dy) of each move action, in tiles; x to the right, y downwards on screen
MOVE_DIR = {a: d for d, a in MOVES.items()}

TRAIN_SEEDS = range(0, 10_000)  # world seeds used for training episodes
EVAL_SEED0 = 1_000_000  # held-out world seeds start here
SIZE = 64  # frame side in pixels


ALWAYS_DAY = True  # record with Crafter's day-night cycle off (see `make_env`)


def make_env(seed: int, length: int = 100_000, always_day: bool | None = None):
    """A headless Crafter env. With `always_day` (the default) the day-night cycle is off: the
    world model only sees two frames of context, so it cannot know the time of day, and with the
    cycle on it learned night as a state it never leaves (dark, noisy frames, the player lost)."""
    import types

    import crafter

    env = crafter.Env(area=(64, 64), view=(9, 9), size=(SIZE, SIZE), reward=False, length=length, seed=seed)
    if ALWAYS_DAY if always_day is None else always_day:
        env._update_time = types.MethodType(lambda self: setattr(self._world, "daylight", 1.0), env)
    return env


class Explorer:
    """A scripted player: picks a behaviour, runs it for a while, then picks another.

    Behaviours (weights in `mix`): walk (hold a direction, sometimes turning), seek (walk to the nearest
    tree / stone / water / cow in view and hit it a few times), build (place and craft), idle (noop),
    sleep (rare, short) and random (uniform over all 17 keys).
    """

    mix = {"walk": 0.32, "seek": 0.26, "build": 0.10, "idle": 0.08, "random": 0.22, "sleep": 0.02}
    targets = ("tree", "stone", "water", "coal", "grass", "cow")

    def __init__(self, env, rng: np.random.Generator):
        self.env, self.rng = env, rng
        self.plan: list[int] = []
        self.mode = "idle"

    def _pick(self) -> None:
        names = list(self.mix)
        self.mode = names[self.rng.choice(len(names), p=np.array(list(self.mix.values())))]
        r = self.rng
        inv = self.env._player.inventory
        if min(inv["drink"], inv["food"]) < 6 and r.random() < 0.7:
            self.mode = "seek"  # thirsty or hungry: go for water or a cow
        if self.mode == "walk":
            plan = []
            for _ in range(r.integers(1, 4)):
                plan += [int(r.choice(list(MOVES.values())))] * int(r.integers(2, 12))
            self.plan = plan
        elif self.mode == "idle":
            self.plan = [A["noop"]] * int(r.integers(2, 10))
        elif self.mode == "random":
            self.plan = [int(a) for a in r.integers(0, N_ACTIONS, size=int(r.integers(4, 20)))]
        elif self.mode == "sleep":
            self.plan = [A["sleep"]] * int(r.integers(2, 8)) + [A["noop"]] * 2
        elif self.mode == "build":
            opts = ["place_table", "make_wood_pickaxe", "make_wood_sword", "place_stone", "place_plant",
                    "make_stone_pickaxe", "place_furnace", "make_stone_sword", "make_iron_pickaxe", "make_iron_sword"]
            picks = r.choice(opts, size=int(r.integers(1, 4)))
            plan = []
            for name in picks:
                plan += [int(r.choice(list(MOVES.values())))]  # turn to a free tile first, often
                plan += [A[str(name)]] * int(r.integers(1, 3))
            self.plan = plan
        else:  # seek
            self.plan = self._seek_plan()

    def _seek_plan(self) -> list[int]:
        world, player = self.env._world, self.env._player
        px, py = (int(v) for v in player.pos)
        inv = self.env._player.inventory
        want = ("water" if inv["drink"] < 6 and inv["drink"] <= inv["food"] else
                "cow" if inv["food"] < 6 else self.rng.choice(self.targets))
        best = None
        for dx in range(-4, 5):
            for dy in range(-3, 4):
                if (dx, dy) == (0, 0):
                    continue
                x, y = px + dx, py + dy
                if not (0 <= x < world.area[0] and 0 <= y < world.area[1]):
                    continue
                mat, obj = world[(x, y)]
                hit = (type(obj).__name__ == "Cow") if want == "cow" else mat == want
                if hit and (best is None or abs(dx) + abs(dy) < abs(best[0]) + abs(best[1])):
                    best = (dx, dy)
        if best is None:
            return [int(self.rng.choice(list(MOVES.values())))] * int(self.rng.integers(3, 8))
        dx, dy = best
        plan = []
        # walk along x then y, stopping next to the target, then face it and hit it
        sx, sy = int(np.sign(dx)), int(np.sign(dy))
        steps_x = abs(dx) - (1 if dy == 0 else 0)
        plan += [MOVES[(sx, 0)]] * steps_x if sx else []
        steps_y = abs(dy) - 1 if dy else 0
        plan += [MOVES[(0, sy)]] * steps_y if sy else []
        face = (0, sy) if dy else (sx, 0)
        plan += [MOVES[face]]
        plan += [A["do"]] * int(self.rng.integers(2, 7) if want not in ("water", "cow") else self.rng.integers(5, 10))
        return plan

    def _threat(self) -> int | None:
        """The move that faces an adjacent zombie, if one is next to the player."""
        px, py = (int(v) for v in self.env._player.pos)
        for (dx, dy), move in MOVES.items():
            obj = self.env._world[(px + dx, py + dy)][1]
            if obj is not None and type(obj).__name__ == "Zombie":
                return move
        return None

    def act(self) -> int:
        face = self._threat()
        if face is not None and self.env._player.health < 6:  # wounded: run the other way
            dx, dy = MOVE_DIR[face]
            return MOVES[(-dx, -dy)]
        if face is not None and self.rng.random() < 0.9:  # fight back: turn to the zombie, hit it
            facing = tuple(int(v) for v in self.env._player.facing)
            return A["do"] if MOVES.get(facing) == face else face
        if not self.plan:
            self._pick()
        a = self.plan.pop(0)
        if a in MOVE_DIR:  # never walk into lava: turn to another direction instead
            (dx, dy), (px, py) = MOVE_DIR[a], self.env._player.pos
            if self.env._world[(int(px) + dx, int(py) + dy)][0] == "lava":
                a = int(self.rng.choice([m for m in MOVES.values() if m != a]))
        return a


def record_episode(seed: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Play one episode of at most `length` steps. Returns frames (T, 64, 64, 3) uint8, actions (T,) int8."""
    env = make_env(seed)
    obs = env.reset()
    policy = Explorer(env, rng)
    frames, actions = [obs], [START]
    for _ in range(length - 1):
        a = policy.act()
        obs, _, done, _ = env.step(a)
        frames.append(obs)
        actions.append(a)
        if done:
            break
    return np.stack(frames), np.array(actions, dtype=np.int8)


def record_split(split: str, seeds: list[int], length: int, out: Path, rng_seed: int) -> dict:
    rng = np.random.default_rng(rng_seed)
    frames, actions, bounds = [], [], [0]
    t0 = time.time()
    for i, seed in enumerate(seeds):
        f, a = record_episode(seed, length, rng)
        frames.append(f)
        actions.append(a)
        bounds.append(bounds[-1] + len(f))
        if (i + 1) % 10 == 0 or i + 1 == len(seeds):
            print(f"{split}: {i + 1}/{len(seeds)} episodes, {bounds[-1]} frames, {time.time() - t0:.0f} s", flush=True)
    np.save(out / f"{split}_frames.npy", np.concatenate(frames))
    np.save(out / f"{split}_actions.npy", np.concatenate(actions))
    np.save(out / f"{split}_episodes.npy", np.array(bounds, dtype=np.int64))
    return {"episodes": len(seeds), "frames": bounds[-1]}


def load_split(split: str, root: Path | None = None, mmap: bool = True):
    """-> frames (N, 64, 64, 3) uint8, actions (N,) int8, episode bounds (E + 1,) int64."""
    root = Path(root or cache_dir("world"))
    path = root / f"{split}_frames.npy"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; record the data first: python -m models.world.data")
    mode = "r" if mmap else None
    return (np.load(path, mmap_mode=mode), np.load(root / f"{split}_actions.npy"),
            np.load(root / f"{split}_episodes.npy"))


def write_starts(path: Path, later: tuple[int, ...] = (60, 150)) -> Path:
    """Ship real start frames of held-out worlds for the panel's start picker: every eval episode's
    first frame, plus frames `later` steps into the first episodes (mid-play starts).
    -> path (.npz with frames (S, 64, 64, 3) uint8, seeds (S,), steps (S,))."""
    frames, _, bounds = load_split("eval", mmap=False)
    picks = [(int(a), EVAL_SEED0 + e, 0) for e, a in enumerate(bounds[:-1])]
    for e, (a, b) in enumerate(zip(bounds[:3], bounds[1:4])):
        picks += [(int(a) + t, EVAL_SEED0 + e, t) for t in later if a + t < b]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, frames=frames[[i for i, _, _ in picks]], seeds=np.array([s for _, s, _ in picks]),
                        steps=np.array([t for _, _, t in picks]))
    return path


def eval_seeds(n: int) -> list[int]:
    return [EVAL_SEED0 + i for i in range(n)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=160, help="training episodes (one world seed each)")
    p.add_argument("--eval-episodes", type=int, default=12, help="held-out evaluation episodes")
    p.add_argument("--length", type=int, default=500, help="steps per episode at most")
    p.add_argument("--eval-length", type=int, default=3000, help="steps per evaluation episode at most (drift needs 3 min)")
    p.add_argument("--splits", default="eval,train", help="which splits to record")
    p.add_argument("--part", type=str, default=None,
                   help="K/P: record only every P-th training episode starting at K (run P of these at once, then --merge P)")
    p.add_argument("--merge", type=int, default=0, help="join P recorded parts into the train split")
    p.add_argument("--seeds", default=None, help="A:B[:STEP]: record these training world seeds as split --name")
    p.add_argument("--name", default="train.more", help="split name for --seeds")
    p.add_argument("--rng", type=int, default=200, help="policy RNG seed for --seeds")
    p.add_argument("--merge-names", default=None,
                   help="comma-separated recorded splits to join, in order, into the train split")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    out = args.out or cache_dir("world")
    out.mkdir(parents=True, exist_ok=True)
    splits = args.splits.split(",")
    if args.seeds:
        a, b, *step = (int(v) for v in args.seeds.split(":"))
        print(record_split(args.name, list(range(a, b, step[0] if step else 1)), args.length, out, rng_seed=args.rng))
        return 0
    if args.merge or args.merge_names:
        names = args.merge_names.split(",") if args.merge_names else [f"train.part{k}" for k in range(args.merge)]
        parts = [load_split(n, out, mmap=False) for n in names]
        offs = np.cumsum([0] + [len(f) for f, _, _ in parts])
        np.save(out / "train_frames.npy", np.concatenate([f for f, _, _ in parts]))
        np.save(out / "train_actions.npy", np.concatenate([a for _, a, _ in parts]))
        np.save(out / "train_episodes.npy", np.concatenate([[0]] + [b[1:] + o for (_, _, b), o in zip(parts, offs)]))
        print(f"merged {len(names)} parts: {offs[-1]} frames")
        return 0
    if args.part:
        k, n = (int(v) for v in args.part.split("/"))
        seeds = list(TRAIN_SEEDS)[: args.episodes][k::n]
        print(record_split(f"train.part{k}", seeds, args.length, out, rng_seed=100 + k))
        return 0
    if "eval" in splits:
        print(record_split("eval", eval_seeds(args.eval_episodes), args.eval_length, out, rng_seed=1))
    if "train" in splits:
        print(record_split("train", list(TRAIN_SEEDS)[: args.episodes], args.length, out, rng_seed=0))
    print(f"data in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
