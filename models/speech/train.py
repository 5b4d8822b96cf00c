"""Train the acoustic model: `python -m models.speech.train [--minutes 60]` (CPU or CUDA; torchrun ok).

Reads cache_dir("speech")/train.npz (built by `python -m models.speech.data`). Every sample gets a
random voice and a random emotion vector applied on the fly (prosody.py), so labels and targets
always agree. Batches are length-bucketed up to a budget of decoder steps. Resumable: the training
state lives in runs/speech/state.pt; the fp16 weights go to assets/speech/acoustic.safetensors with
their config and training figures in the JSON beside them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from models.common.paths import REPO, asset, cache_dir
from models.common.weights import save_weights
from models.speech import frontend, prosody, vocoder
from models.speech.data import load
from models.speech.model import PLANNER, SpeechConfig, SpeechModel, char_positions, position_features

RUNS = REPO / "runs" / "speech"
WEIGHTS = asset("speech", "acoustic.safetensors")


class Corpus:
    """Utterances from a built split, sampled into augmented, padded batches."""

    def __init__(self, z: dict, seed: int = 0, step: int = 2, align: np.ndarray | None = None):
        self.z, self.step = z, step
        self.align = align  # frames per character (models/speech/align.py), aligned with z["ids"]
        self.n = len(z["texts"])
        self.rng = np.random.default_rng(seed)
        self.n_frames = np.diff(z["frame_off"])

    def item(self, i: int, v: np.ndarray | None = None, voice: int | None = None) -> dict:
        z = self.z
        frames = z["frames"][z["frame_off"][i]:z["frame_off"][i + 1]].astype(np.float32)
        wf = z["word_frames"][z["word_off"][i]:z["word_off"][i + 1]].astype(np.int64)
        pf = z["pause_frames"][z["word_off"][i]:z["word_off"][i + 1]].astype(np.int64)
        spans = z["spans"][z["word_off"][i]:z["word_off"][i + 1]].astype(np.int64)
        ids = z["ids"][z["id_off"][i]:z["id_off"][i + 1]].astype(np.int64)
        if v is None:
            v = prosody.random_vector(self.rng)
        if voice is None:
            voice = int(self.rng.random() < 0.3)
        wf0 = wf
        frames, wf = prosody.apply(frames, wf, pf, v, prosody.VOICE_NAMES[voice], self.step)
        widx, prog, feats = position_features(wf, self.step)
        shares = None
        if self.align is not None:  # each character's share of its (retimed) word
            mx = prosody.mix(v)
            cf = prosody.retime_chars(self.align[z["id_off"][i]:z["id_off"][i + 1]], spans,
                                      prosody.retime_lengths(wf0, pf, mx["tempo"], mx["pause"], self.step))
            tot = np.zeros(len(cf))
            for a, b in spans.tolist():
                tot[a:b] = max(cf[a:b].sum(), 1e-6)
            shares = (cf / np.maximum(tot, 1e-6)).astype(np.float32)
        item = dict(ids=ids, spans=spans, frames=frames, word_frames=wf, char_pos=char_positions(spans, widx, prog, shares),
                    pos_feats=feats, emotion=v.astype(np.float32), voice=voice)
        if shares is not None:
            item["char_share"] = shares
        return item

    def batch_indices(self, max_steps: int) -> list[int]:
        """A random length bucket: indices whose padded size stays within `max_steps` decoder steps."""
        i = int(self.rng.integers(self.n))
        near = np.argsort(np.abs(self.n_frames - self.n_frames[i]))[:64]
        k = max(1, int(max_steps // (self.n_frames[i] / self.step * 1.25)))
        return self.rng.choice(near, size=min(k, len(near)), replace=False).tolist()


def collate(items: list[dict], step: int = 2) -> dict:
    B = len(items)
    L = max(len(it["ids"]) for it in items)
    W = max(len(it["word_frames"]) for it in items)
    S = max(len(it["char_pos"]) for it in items)
    nf = items[0]["frames"].shape[1]
    out = dict(ids=np.zeros((B, L), np.int64), n_chars=np.zeros(B, np.int64), spans=np.zeros((B, W, 2), np.int64),
               word_frames=np.ones((B, W), np.int64), word_mask=np.zeros((B, W), np.float32),
               frames=np.zeros((B, S * step, nf), np.float32), frame_mask=np.zeros((B, S * step), np.float32),
               char_pos=np.zeros((B, S), np.float32), pos_feats=np.zeros((B, S, 6), np.float32),
               emotion=np.stack([it["emotion"] for it in items]), voice=np.array([it["voice"] for it in items]))
    if "char_share" in items[0]:
        out["char_share"] = np.zeros((B, L), np.float32)
        for b, it in enumerate(items):
            out["char_share"][b, :len(it["char_share"])] = it["char_share"]
    for b, it in enumerate(items):
        n, w, s = len(it["ids"]), len(it["word_frames"]), len(it["char_pos"])
        out["ids"][b, :n], out["n_chars"][b] = it["ids"], n
        out["spans"][b, :w], out["word_frames"][b, :w], out["word_mask"][b, :w] = it["spans"], it["word_frames"], 1
        t = min(len(it["frames"]), s * step)
        out["frames"][b, :t], out["frame_mask"][b, :t] = it["frames"][:t], 1
        out["char_pos"][b, :s], out["pos_feats"][b, :s] = it["char_pos"], it["pos_feats"]
    return {k: torch.from_numpy(v) for k, v in out.items()}


def feature_stats(z: dict) -> tuple[np.ndarray, np.ndarray]:
    f = z["frames"][:: 7].astype(np.float32)
    mean, std = f.mean(0), f.std(0) + 1e-3
    mean[1], std[1] = 0.0, 1.0  # the voicing flag stays 0/1 (it is a logit target)
    return mean, std


def lr_at(step: int, total: int, peak: float, warmup: int = 200) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def evaluate(model, corpus: Corpus, device: str, n: int = 48) -> dict:
    """Teacher-forced losses on held-out sentences, fixed emotions and voices (comparable over time)."""
    model.eval()
    rng = np.random.default_rng(123)
    items = [corpus.item(i, prosody.random_vector(rng), int(rng.random() < 0.3)) for i in range(min(n, corpus.n))]
    tot: dict[str, float] = {}
    for k in range(0, len(items), 8):
        b = {key: v.to(device) for key, v in collate(items[k:k + 8]).items()}
        for key, v in model(b).items():
            tot[key] = tot.get(key, 0.0) + float(v) * len(items[k:k + 8])
    model.train()
    return {k: round(v / len(items), 4) for k, v in tot.items()}


# the letter each phoneme starts from when a character model is widened to phonemes (a warm start:
# the encoder already knows roughly what that letter sounds like)
_PHONE_LETTER = {"AA": "o", "AE": "a", "AH": "u", "AO": "o", "AW": "w", "AY": "i", "EH": "e", "ER": "r", "EY": "a",
                 "IH": "i", "IY": "e", "OW": "o", "OY": "y", "UH": "u", "UW": "u", "CH": "c", "DH": "t", "HH": "h",
                 "JH": "j", "NG": "n", "SH": "s", "TH": "t", "ZH": "z"}


def widen_symbols(state: dict, model: SpeechModel) -> bool:
    """A character checkpoint's symbol table (33 rows) -> this model's (characters + phonemes)."""
    w = state.get("char_emb.weight")
    n = model.char_emb.weight.shape[0]
    if w is None or w.shape[0] >= n:
        return False
    new = torch.empty(n, w.shape[1])
    new[: w.shape[0]] = w
    for p, i in frontend.PHONE_ID.items():
        base = p.rstrip("012")
        letter = _PHONE_LETTER.get(base, base[0].lower())
        new[i] = w[frontend.CHAR_ID[letter]] + 0.02 * torch.randn(w.shape[1])
    state["char_emb.weight"] = new
    return True


def widen_frames(state: dict, model: SpeechModel) -> bool:
    """A checkpoint for frames with fewer envelopes each (vocoder.n_sub: 10 ms frames, K = 1, or v5's
    mid-frames, K = 2) -> this model's frames with more (K = 2 or 4): rows of envelopes the old
    model had keep their meaning (decoder outputs and prenet inputs move to their new columns); a new
    sub-frame's output rows start as the old envelope rows at its time, or the mean of the two around
    it (the next frame's inside the step; the step's last frame: its own); the prenet ignores the new
    inputs at first (zero columns). The old normalisation statistics are dropped (the data's are used)."""
    cfg = model.cfg
    head = state.get("decoder.head.weight")
    new = cfg.n_feat
    if head is None or head.shape[0] % cfg.step or head.shape[0] // cfg.step >= new:
        return False
    old = head.shape[0] // cfg.step
    k_old, k_new = vocoder.n_sub(np.zeros((1, old))), vocoder.n_sub(np.zeros((1, new)))
    if k_new % k_old:
        raise ValueError(f"cannot widen {k_old} envelopes per frame to {k_new}")
    d = head.shape[1]
    h0 = head.view(cfg.step, old, d)

    def cols(K, q):  # columns of envelope q (0 = the frame's own) in frames with K envelopes
        a = vocoder.envelope_starts(K)[q]
        return slice(a, a + vocoder.N_MID)

    def env_rows(s, q):  # the old model's envelope rows at old-grid position q of frame s (q = k_old: the next frame)
        if q == k_old:
            s, q = min(s + 1, cfg.step - 1), (0 if s + 1 < cfg.step else k_old - 1)
        return h0[s, cols(k_old, q)]
    h = torch.zeros(cfg.step, new, d)
    h[:, :vocoder.N_FEAT] = h0[:, :vocoder.N_FEAT]
    r = k_new // k_old
    for s in range(cfg.step):
        for j in range(1, k_new):
            q, frac = divmod(j, r)
            h[s, cols(k_new, j)] = env_rows(s, q) if frac == 0 else (1 - frac / r) * env_rows(s, q) + (frac / r) * env_rows(s, q + 1)
    state["decoder.head.weight"] = h.reshape(cfg.step * new, d)
    w = state["prenet.0.weight"]
    w0 = w.view(w.shape[0], cfg.step, old)
    pw = torch.zeros(w.shape[0], cfg.step, new)
    pw[:, :, :vocoder.N_FEAT] = w0[:, :, :vocoder.N_FEAT]
    for q in range(1, k_old):
        pw[:, :, cols(k_new, q * r)] = w0[:, :, cols(k_old, q)]
    state["prenet.0.weight"] = pw.reshape(w.shape[0], cfg.step * new)
    for k in ("feat_mean", "feat_std"):
        state[k] = getattr(model, k).detach().clone()
    return True


def average_weights(paths: list[Path]) -> dict:
    """The mean of .safetensors snapshots (float32); one path: its weights."""
    from safetensors.torch import load_file  # noqa: PLC0415

    states = [load_file(str(p)) for p in paths]
    return {k: sum(st[k].float() for st in states) / len(states) for k in states[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget")
    p.add_argument("--steps", type=int, default=6000, help="schedule length (optimizer steps)")
    p.add_argument("--batch-steps", type=int, default=2400, help="decoder steps per batch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fresh", action="store_true")
    p.add_argument("--data", type=Path, default=None, help="folder with train.npz / test.npz")
    p.add_argument("--out", type=Path, default=WEIGHTS)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--ss", type=float, default=0.0, help="scheduled sampling: share of fed-back steps taken from the model's own predictions")
    p.add_argument("--ss-passes", type=int, default=2, help="prediction passes behind each scheduled-sampling batch")
    p.add_argument("--run-dir", type=Path, default=RUNS, help="training state (resume) folder")
    p.add_argument("--restart-schedule", action="store_true",
                   help="resume the weights and optimizer but start a new warm-up + cosine (a fine-tune leg)")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--char-align", action="store_true",
                   help="train on character alignments (align_<split>.npz from models.speech.align) with a share head")
    p.add_argument("--init", type=Path, nargs="+", default=None,
                   help="training state (.pt: weights + optimizer) or weights (.safetensors) to start this leg from; "
                        "several .safetensors snapshots are averaged")
    p.add_argument("--planner-from", type=Path, default=None,
                   help="weights (.safetensors) whose voicing planner replaces the --init one (e.g. its best held-out snapshot)")
    p.add_argument("--phonemes", action="store_true",
                   help="phoneme input (data: `python -m models.speech.data --phonemes`, then align --onehot); a "
                        "character model given to --init is widened, each phoneme starting from a letter that spells it")
    p.add_argument("--vuv-dropout", type=float, default=0.0, help="dropout inside the voicing planner (and on its text input)")
    p.add_argument("--delta", type=float, default=0.0,
                   help="weight of the L1 loss on the envelope's 5 ms changes (sharper consonant edges)")
    p.add_argument("--freeze-planner", action="store_true",
                   help="keep the voicing planner as initialised (it overfits: start from its best held-out snapshot)")
    p.add_argument("--snapshot-minutes", type=float, default=0.0,
                   help="also keep a copy of the weights every N minutes (run-dir/acoustic-<step>.safetensors)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rank, world_size = 0, 1
    if "RANK" in os.environ:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, world_size = dist.get_rank(), dist.get_world_size()
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    train_z, test_z = load("train", args.data), load("test", args.data)
    align = {}
    if args.char_align:
        root = Path(args.data or cache_dir("speech"))
        for split in ("train", "test"):
            with np.load(root / f"align_{split}.npz") as za:
                align[split] = za["char_frames"].astype(np.int64)
    corpus, held = Corpus(train_z, seed=rank, align=align.get("train")), Corpus(test_z, seed=999, align=align.get("test"))
    cfg = SpeechConfig(d_model=args.d_model, n_layer=args.layers, char_align=args.char_align, phonemes=args.phonemes,
                       n_chars=frontend.N_SYMBOLS if args.phonemes else len(frontend.SYMBOLS),
                       n_feat=int(train_z["frames"].shape[1]),  # with mid-frames when the corpus has them
                       vuv_dropout=args.vuv_dropout)
    model = SpeechModel(cfg)
    mean, std = feature_stats(train_z)
    model.feat_mean.copy_(torch.from_numpy(mean))
    model.feat_std.copy_(torch.from_numpy(std))
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    ckpt = args.run_dir / "state.pt"
    if args.init is not None and not ckpt.exists():
        ckpt_in = args.init[0]
    elif not ckpt.exists() and (RUNS / "state.pt").exists() and args.run_dir != RUNS and not args.fresh:
        ckpt_in = RUNS / "state.pt"  # a new leg in its own folder starts from the main run's state
    else:
        ckpt_in = ckpt
    step = 0
    if ckpt_in.exists() and not args.fresh:
        if ckpt_in.suffix == ".safetensors":
            state = {"model": average_weights(args.init), "step": 0}
            if args.planner_from is not None:
                state["model"].update({k: v for k, v in average_weights([args.planner_from]).items() if k.startswith(PLANNER)})
        else:
            state = torch.load(ckpt_in, map_location="cpu", weights_only=True)
        widened = widen_symbols(state["model"], model)
        widened |= widen_frames(state["model"], model)
        missing, unexpected = model.load_state_dict(state["model"], strict=False)
        if unexpected:
            raise RuntimeError(f"checkpoint has parameters this model lacks: {unexpected[:5]}")
        if missing:  # a model grown by new modules: warm start, fresh optimizer, same schedule position
            print(json.dumps({"warm_start": "new parameters", "missing": missing}), flush=True)
        elif widened or "opt" not in state:
            print(json.dumps({"warm_start": "fresh optimizer", "widened": widened}), flush=True)
        else:
            opt.load_state_dict(state["opt"])
        step = int(state["step"])
        if args.restart_schedule and ckpt_in != ckpt:
            step = 0
    if args.freeze_planner:
        for name, prm in model.named_parameters():
            prm.requires_grad_(not name.startswith(PLANNER))
    net = model
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: PLC0415
        net = DDP(model, device_ids=[int(os.environ.get("LOCAL_RANK", 0))] if device.startswith("cuda") else None)
    if rank == 0:
        print(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "params": model.num_params(),
                          "train": corpus.n, "test": held.n, "resume_step": step}), flush=True)
    t0, last_save, ema, frames_seen = time.time(), time.time(), None, 0

    def save(final=False):
        args.run_dir.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)
        metrics = evaluate(model, held, device)
        save_weights(model.eval(), args.out, cfg, {"steps": step, "train_minutes": round((time.time() - t0) / 60, 1),
                                                   "frames_seen": frames_seen, "loss_ema": ema, "heldout": metrics,
                                                   "device": device, "threads": args.threads})
        model.train()
        print(json.dumps({"saved": str(args.out), "step": step, "heldout": metrics, "final": final}), flush=True)
        if args.snapshot_minutes:
            import shutil  # noqa: PLC0415
            shutil.copy(args.out, args.run_dir / f"acoustic-{step}.safetensors")
            shutil.copy(args.out.with_suffix(".json"), args.run_dir / f"acoustic-{step}.json")

    model.train()
    while step < args.steps and (time.time() - t0) < args.minutes * 60:
        items = [corpus.item(i) for i in corpus.batch_indices(args.batch_steps)]
        b = {k: v.to(device) for k, v in collate(items, cfg.step).items()}
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        losses = net(b, ss=args.ss, ss_passes=args.ss_passes, delta=args.delta)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        frames_seen += int(b["frame_mask"].sum())
        lv = float(losses["loss"].detach())
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        if rank == 0 and step % 25 == 0:
            parts = {k: round(float(torch.as_tensor(v).detach()), 4) for k, v in losses.items() if k != "loss"}
            print(json.dumps({"step": step, "loss": round(ema, 4), **parts,
                              "lr": round(lr_at(step, args.steps, args.lr, args.warmup), 6), "min": round((time.time() - t0) / 60, 1)}), flush=True)
        if rank == 0 and time.time() - last_save > 60 * (args.snapshot_minutes or 10):
            save()
            last_save = time.time()
    if rank == 0:
        save(final=True)
    if world_size > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
