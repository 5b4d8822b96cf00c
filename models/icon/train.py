"""Train the Icon model: `python -m models.icon.train` (CPU or one GPU; `torchrun --nproc_per_node N
-m models.icon.train` for DDP, unchanged).

Reads cache_dir("icon")/corpus.npz (python -m models.icon.data). Each sample is either a whole icon
after its text (70%) or a fill-in-the-middle sample (30%: redraw path i with the paths before and
after it as context, or, half of those, suggest path i given only the paths before it). The text is
dropped for 10% of samples so classifier-free guidance works. Batches group icons of similar
length. Resumable: the checkpoint in --run-dir is picked up again; weights with the best
validation loss are exported to assets/icon/icon.safetensors (fp16) + icon.json.

Exemplar conditioning (--exemplar-share P, usually with --init from the shipped weights): a share P
of the whole-icon samples first show one or two *other* icons of the same concept (the same base
name, "home" for "home-outline") drawn by *other* icon sets, TXT EXM <exemplar> [EXM <exemplar>]
BOS <target> EOS, so the model learns to draw the concept anew in its own way (the target's set),
not to copy. Exemplars come from the same split as the target, so validation pairs are unseen.
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

from models.common.paths import asset, cache_dir
from models.common.weights import save_weights
from models.icon.model import IconConfig, IconModel
from models.icon.tokenizer import BOS, EOS, EXM, FIM_MID, FIM_PRE, FIM_SUF, PATH, TXT

P_FIM, P_SUGGEST, P_DROP_TEXT, P_RICH_TEXT = 0.3, 0.5, 0.1, 0.5
P_TWO_EXEMPLARS = 0.35  # of exemplar samples: two exemplars instead of one
MAX_EXEMPLAR_TOKENS = 320  # longer library icons are not used as exemplars (context and CPU time)


def concept_groups(names: list[str], set_id: np.ndarray, members: np.ndarray, lengths: np.ndarray,
                   max_exemplar: int = MAX_EXEMPLAR_TOKENS, same_set: bool = False) -> dict[int, np.ndarray]:
    """icon index -> the other icons of its concept (same base name) from other sets, short enough to
    show as exemplars. names: "set:name" per corpus icon; members: the icons to group (one split).
    same_set: also the set's own style variants ("home-outline" for "home"), whose geometry is much
    closer: an easier signal that teaches the model to look at its exemplars at all."""
    from models.icon.data import base_name

    by_base: dict[str, list[int]] = {}
    for i in members:
        by_base.setdefault(base_name(names[i].split(":", 1)[1]), []).append(int(i))
    out: dict[int, np.ndarray] = {}
    for group in by_base.values():
        if len(group) < 2:
            continue
        g = np.array(group)
        for i in group:
            other = g[((set_id[g] != set_id[i]) | (same_set & (g != i))) & (lengths[g] <= max_exemplar)]
            if len(other):
                out[i] = other
    return out


class Corpus:
    """Token arrays of one split, with their label embeddings, for sampling training sequences."""

    def __init__(self, path: Path, split: int, max_len: int, exemplar_share: float = 0.0,
                 max_exemplar: int = MAX_EXEMPLAR_TOKENS, same_set: bool = False):
        z = np.load(path)
        keep = np.nonzero(z["split"] == split)[0]
        off = z["offsets"]
        self.tokens, self.off = z["tokens"].astype(np.int64), off
        self.idx = keep[(off[keep + 1] - off[keep]) + 1 <= max_len]  # + the TXT slot
        self.lengths = off[self.idx + 1] - off[self.idx]
        self.text_a, self.text_b = z["text_a"], z["text_b"]
        self.emb = z["text_emb"].astype(np.float32) / 127.0
        self.max_len = max_len
        self.exemplar_share = exemplar_share
        self.partners: dict[int, np.ndarray] = {}
        if exemplar_share > 0:
            names = json.loads(Path(path).with_suffix(".json").read_text())["names"]
            all_len = off[1:] - off[:-1]
            self.partners = concept_groups(names, z["set_id"], keep, all_len, max_exemplar, same_set)

    def __len__(self):
        return len(self.idx)

    def icon(self, i: int) -> np.ndarray:
        return self.tokens[self.off[i]:self.off[i + 1]]

    def sample(self, i: int, rng: np.random.Generator, fim: bool | None = None,
               drop_text: float = P_DROP_TEXT) -> tuple[list[int], int, np.ndarray]:
        """-> (sequence starting with TXT, index of the first position whose next token is trained, text vector)."""
        toks = self.icon(i)
        if rng.random() < drop_text:
            text = np.zeros(self.emb.shape[1], np.float32)
        else:
            b = self.text_b[i]
            text = self.emb[b if b >= 0 and rng.random() < P_RICH_TEXT else self.text_a[i]]
        body = toks[1:-1]  # without BOS / EOS
        starts = np.nonzero(body == PATH)[0].tolist() + [len(body)]
        if fim is None:
            fim = rng.random() < P_FIM
        if not fim:
            partners = self.partners.get(int(i))
            if partners is not None and rng.random() < self.exemplar_share:
                k = 2 if len(partners) > 1 and rng.random() < P_TWO_EXEMPLARS else 1
                seq = [TXT]
                for e in rng.choice(partners, size=k, replace=False):
                    ex = self.icon(int(e))[1:-1]
                    if len(seq) + len(ex) + 1 + len(toks) > self.max_len:
                        break
                    seq += [EXM] + ex.tolist()
                first = len(seq)  # BOS predicts the first token of the new icon
                return seq + toks.tolist(), first, text
            return [TXT] + toks.tolist(), 1, text  # learn from BOS on
        k = int(rng.integers(len(starts) - 1))
        pre, mid = body[:starts[k]], body[starts[k]:starts[k + 1]]
        suf = body[starts[k + 1]:] if rng.random() > P_SUGGEST else body[:0]
        seq = [TXT, FIM_PRE] + pre.tolist() + [FIM_SUF] + suf.tolist() + [FIM_MID]
        first = len(seq) - 1  # FIM_MID predicts the path's first token
        seq += mid.tolist() + [EOS]
        return seq[: self.max_len], first, text

    def batches(self, tokens_per_batch: int, rng: np.random.Generator, rank: int = 0, world: int = 1):
        """Endless length-bucketed batches of indices (each about tokens_per_batch tokens, padded)."""
        order = self.idx[np.argsort(self.lengths + rng.random(len(self.idx)) * 8)]  # sorted, jittered
        chunks, cur, cur_max = [], [], 0
        for i in order:
            n = int(self.off[i + 1] - self.off[i]) + 4
            if cur and max(cur_max, n) * (len(cur) + 1) > tokens_per_batch:
                chunks.append(cur)
                cur, cur_max = [], 0
            cur.append(i)
            cur_max = max(cur_max, n)
        if cur:
            chunks.append(cur)
        while True:
            for j in rng.permutation(len(chunks)):
                if j % world == rank:
                    yield chunks[j]


def collate(samples, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    T = max(len(s) for s, _, _ in samples)
    idx = np.zeros((len(samples), T), np.int64)
    tgt = np.full((len(samples), T), -1, np.int64)
    for r, (s, first, _) in enumerate(samples):
        idx[r, :len(s)] = s
        tgt[r, first:len(s) - 1] = s[first + 1:]
    text = np.stack([t for _, _, t in samples])
    return (torch.from_numpy(idx).to(device), torch.from_numpy(text).to(device), torch.from_numpy(tgt).to(device))


@torch.no_grad()
def evaluate(model, corpus: Corpus, device, n: int = 256, fim: bool = False, amp=None,
             exemplars: bool | None = None) -> float:
    """Mean validation loss on n icons. exemplars=True: only icons with partners, shown one or two
    exemplars; False: the same icons without them (the pair shows what the exemplars add)."""
    rng = np.random.default_rng(1234)
    model.eval()
    pool = corpus.idx if exemplars is None else np.array(sorted(corpus.partners))
    picks = rng.choice(pool, size=min(n, len(pool)), replace=False)
    share = corpus.exemplar_share
    corpus.exemplar_share = 1.0 if exemplars else 0.0 if exemplars is not None else share
    losses = []
    for k in range(0, len(picks), 32):
        batch = [corpus.sample(int(i), rng, fim=fim, drop_text=0.0) for i in picks[k:k + 32]]
        idx, text, tgt = collate(batch, device)
        with amp():
            losses.append(float(model(idx, text, tgt)))
    corpus.exemplar_share = share
    model.train()
    return float(np.mean(losses))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="corpus.npz (default: cache_dir('icon')/corpus.npz)")
    ap.add_argument("--run-dir", default="runs/icon", help="checkpoints and log (resumed when present)")
    ap.add_argument("--out", default=str(asset("icon", "icon.safetensors")))
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-head", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=1024)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--tokens-per-batch", type=int, default=8192)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=5e-5)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--max-steps", type=int, default=4000)
    ap.add_argument("--minutes", type=float, default=0, help="stop (and export) after this much wall time")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exemplar-share", type=float, default=0.0,
                    help="share of whole-icon samples shown one or two same-concept icons from other sets first")
    ap.add_argument("--max-exemplar-tokens", type=int, default=MAX_EXEMPLAR_TOKENS,
                    help="longer icons are not shown as exemplars (CPU: keep sequences short)")
    ap.add_argument("--same-set-pairs", action="store_true",
                    help="pairs may also be a set's own style variants of a concept (closer geometry)")
    ap.add_argument("--init", default=None, help="start from these weights (e.g. the shipped icon.safetensors)")
    args = ap.parse_args(argv)

    ddp = "RANK" in os.environ
    if ddp:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    else:
        rank, world = 0, 1
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and ddp:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    torch.set_num_threads(args.threads)
    cuda = device.startswith("cuda")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else (lambda: torch.autocast("cpu", enabled=False))
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    log_f = open(run / "train.log", "a") if rank == 0 else None

    def log(msg: str):
        if rank == 0:
            print(msg, flush=True)
            log_f.write(msg + "\n")
            log_f.flush()

    data = Path(args.data) if args.data else cache_dir("icon") / "corpus.npz"
    train = Corpus(data, 0, args.max_len, args.exemplar_share, args.max_exemplar_tokens, args.same_set_pairs)
    val = Corpus(data, 1, args.max_len, args.exemplar_share, args.max_exemplar_tokens)  # judged cross-set only
    ckpt_path = run / "ckpt.pt"
    cfg = IconConfig(d_model=args.d_model, n_layer=args.n_layer, n_head=args.n_head, max_seq_len=args.max_len,
                     dropout=args.dropout)
    if args.init:
        from models.common.weights import load_config

        cfg = IconConfig.from_dict({**load_config(Path(args.init))["config"], "dropout": args.dropout})
    state = None
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        cfg = IconConfig.from_dict(state["config"])
        log(f"resuming from {ckpt_path} at step {state['step']}")
    torch.manual_seed(args.seed)
    model = IconModel(cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), fused=cuda)
    step, tokens_seen, best_val, t_used = 0, 0, float("inf"), 0.0
    if args.init and not state:
        from models.common.weights import load_weights

        load_weights(model, Path(args.init), device)
        model.train()
        log(f"initialised from {args.init}")
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, tokens_seen, best_val, t_used = state["step"], state["tokens_seen"], state["best_val"], state.get("t_used", 0.0)
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if cuda else None) if ddp else model
    log(f"model {model.num_params() / 1e6:.2f} M params, config {cfg.to_dict()}; train {len(train)} icons, "
        f"val {len(val)}; with exemplar partners: train {len(train.partners)}, val {len(val.partners)}; "
        f"device {device} x{world}")

    rng = np.random.default_rng(args.seed + 1000 * rank + step)
    batches = train.batches(args.tokens_per_batch, rng, rank, world)

    def lr_at(s: int) -> float:
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        p = min(1.0, (s - args.warmup) / max(1, args.max_steps - args.warmup))
        if args.minutes:  # with a time budget the schedule follows whichever runs out first
            p = max(p, min(1.0, (t_used + time.time() - t_start) / (args.minutes * 60)))
        return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * p))

    def save_ckpt():
        if rank == 0:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "config": cfg.to_dict(), "step": step,
                        "tokens_seen": tokens_seen, "best_val": best_val, "t_used": t_used}, str(ckpt_path) + ".tmp")
            os.replace(str(ckpt_path) + ".tmp", ckpt_path)

    def export(val_loss: float, val_fim: float):
        if rank == 0:
            meta = {"step": step, "tokens_seen": tokens_seen, "val_loss": round(val_loss, 4),
                    "val_fim_loss": round(val_fim, 4), "train_minutes": round(t_used / 60, 1), "device": device,
                    "world": world, "params": model.num_params()}
            if args.exemplar_share > 0:  # the session draws after library exemplars by default only then
                meta["exemplar_share"] = args.exemplar_share
                meta["max_exemplar_tokens"] = args.max_exemplar_tokens
            save_weights(model, Path(args.out), cfg, meta)
            log(f"exported {args.out} ({meta})")

    model.train()
    t_start, t_log, tok_log = time.time(), time.time(), 0
    while step < args.max_steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        chunk = next(batches)
        idx, text, tgt = collate([train.sample(int(i), rng) for i in chunk], device)
        with amp():
            loss = net(idx, text, tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        n_tok = int((tgt >= 0).sum()) * world
        tokens_seen += n_tok
        tok_log += n_tok
        step += 1
        if step % 10 == 0:
            now = time.time()
            log(f"step {step} loss {loss.item():.4f} lr {lr_at(step):.2e} tok/s {tok_log / (now - t_log):.0f} "
                f"seen {tokens_seen / 1e6:.2f}M")
            t_log, tok_log = now, 0
        elapsed = t_used + time.time() - t_start
        out_of_time = args.minutes and elapsed > args.minutes * 60
        if step % args.eval_every == 0 or step == args.max_steps or out_of_time:
            t_used_now = elapsed
            v, vf = evaluate(model, val, device, amp=amp), evaluate(model, val, device, fim=True, amp=amp)
            ex = ""
            if val.partners:
                ve, vn = (evaluate(model, val, device, amp=amp, exemplars=flag) for flag in (True, False))
                ex = f" val with exemplars {ve:.4f} without {vn:.4f}"
                v = ve  # select on the task the panel runs
            log(f"step {step} val loss {v:.4f} val fim loss {vf:.4f}{ex} ({elapsed / 60:.1f} min)")
            t_used, t_start = t_used_now, time.time()
            if v < best_val:
                best_val = v
                export(v, vf)
            save_ckpt()
        if out_of_time:
            log("time budget reached")
            break
    if ddp:
        torch.distributed.destroy_process_group()
    log(json.dumps({"done": step, "best_val": best_val, "tokens_seen": tokens_seen}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
