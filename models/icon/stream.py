"""The engine's Icon session (task "icon"): text to SVG icons that stream path by path, plus the
editing requests of the panel.

Modes (params["mode"]):
  generate  prompt, n (1-8 candidates, one batch), temperature, top_p, guidance, seed, max_tokens,
            stop_loops (default True: a candidate that redraws the same points over and over ends there),
            exemplars: "auto" (default: the library icons whose labels match the prompt best, when the
            weights were fine-tuned with exemplars; none otherwise), "off", or a list of library ids
            (the user's picks, always honoured); k_exemplars (0-3, default 2). The model sees
            the exemplars first (TXT EXM <icon> EXM <icon> BOS ...) and draws a new icon of the concept;
            the output names them with their licence and attribution, and each candidate's raster IoU
            with each exemplar (novelty: a copy would score 1).
  infill    paths (the icon), index (the path to redraw), prompt: redraw one path, the rest as context
  suggest   paths, prompt: draw one more path after the given ones
  import    svg (document text): normalise it through the same pipeline as the training data
  library   query (text), k (1-96): browse the library; one output {"items": [{id, name, set, license,
            author, attribution, svg, score}]}, best match first
Events: partial {"candidate", "index", "cmds", "pts", "final"} as paths finish (final=True) and every
few tokens for the path in progress (final=False); progress {"done", "total"}; one output with the
finished candidates (wire paths + SVG text + validity, text-match scores when the evaluator is there).

Decoding runs on the shared core (models.common.generate) with the icon grammar in its logits_bias
hook, so every sample is a valid token sequence. Greedy single-candidate requests use grammar-aware
speculative decoding (ADED-style n-gram draft and verify, `speculative_tokens`); its output is
identical to plain greedy decoding. Sampled single-candidate requests can ask for it
(`speculative: True`): speculative sampling keeps the exact sampling distribution (the random draws
differ from plain sampling), but at temperature 0.8 the n-gram drafts are rarely accepted, so it
is off by default for them.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from models.common.generate import generate, prefill
from models.common.paths import asset
from models.common.quant import int8_enabled, int8_linear
from models.common.sampling import SamplingParams, guide
from models.common.session import ParamError, StreamSession, check_range
from models.common.speculative import NGramDrafter, accept_or_resample
from models.common.weights import load_config, load_weights
from models.icon.model import IconConfig, IconModel
from models.icon.library import LIBRARY_DIR, IconLibrary
from models.icon.svg import IconError, IconPath, iou, parse_svg, render_paths, to_svg
from models.icon.tokenizer import (EOS, PATH, START, TXT, Grammar, GrammarTracker, close_row, decode,
                                   encode_paths, exemplar_prompt, fim_prompt, repeating_tail)

STEP_BUDGET_S = 0.03  # decode for about this long per step() so cancel / steer stay instant
PARTIAL_EVERY = 6  # tokens between updates of the path in progress
MAX_PATHS_IN = 64
EXEMPLAR_TOKENS = 180  # longer library icons are not shown as exemplars (as in training: --max-exemplar-tokens)
INK_SIZE = 32  # raster side for the "the drawing is not empty" check before a candidate may end


@dataclass
class IconBundle:
    """What every icon session shares: the model, the text encoder, the drafter table, the evaluator."""

    model: IconModel
    encoder: object  # models.common.text.TextEncoder (None in tests that pass text vectors)
    ngrams: dict
    evaluator: object | None = None
    library: object | None = None  # models.icon.library.IconLibrary (None when not shipped)
    # weights fine-tuned with exemplars (train.py --exemplar-share, in their meta): "auto" uses them only then
    exemplar_trained: bool = False
    # an int8-weight copy of model.gpt for sampled decoding on CPU (models.common.quant); greedy
    # speculative decoding keeps the float model: dynamic int8 quantises the activations of a whole
    # call together, so a verify pass over several drafted tokens would not match one-token steps
    fast_gpt: object | None = None


def load_bundle(device: str = "cpu", weights=None, with_text: bool = True, int8: bool | None = None) -> IconBundle:
    """int8: decode with int8 Linear weights (default: on CPU unless WEFT_INT8=0; see models.common.quant)."""
    path = weights or asset("icon", "icon.safetensors")
    if not path.exists():
        raise FileNotFoundError(f"icon weights not found at {path}; train them with `python -m models.icon.train`")
    conf = load_config(path)
    cfg = IconConfig.from_dict(conf["config"])
    exemplar_trained = float(conf.get("meta", {}).get("exemplar_share", 0)) > 0
    model = load_weights(IconModel(cfg), path, device)
    fast_gpt = None
    if int8_enabled(device) if int8 is None else int8:
        q, ok = int8_linear(model.gpt)
        fast_gpt = q if ok else None
    encoder = None
    if with_text:
        from models.common.text import shared_encoder

        encoder = shared_encoder()
    ngrams = load_ngrams(asset("icon", "ngrams.npz"))
    evaluator = None
    ev_path = asset("icon", "evaluator.safetensors")
    if ev_path.exists() and with_text:
        from models.icon.evaluator import load_evaluator

        evaluator = load_evaluator(ev_path, device)
    library = None
    if with_text and (LIBRARY_DIR / "icons.npz").exists():
        library = IconLibrary(LIBRARY_DIR)
    return IconBundle(model, encoder, ngrams, evaluator, library=library, fast_gpt=fast_gpt,
                      exemplar_trained=exemplar_trained)


# ---- speculative decoding ----------------------------------------------------------------------
def load_ngrams(path) -> dict:
    """assets/icon/ngrams.npz -> {context tuple: most frequent next token} from the training corpus."""
    if not path.exists():
        return {}
    z = np.load(path)
    out = {}
    for ctx, nxt in zip(z["context"].tolist(), z["next"].tolist()):
        out[tuple(t for t in ctx if t >= 0)] = nxt
    return out


class _LiveThenCorpus(defaultdict):
    """The drafter's n-gram table: counts from the live context, else the corpus' most frequent next token."""

    def __init__(self, corpus: dict):
        super().__init__(Counter)
        self.corpus = corpus

    def get(self, key, default=None):
        c = super().get(key)
        if c:
            return c
        nxt = self.corpus.get(key)
        return Counter({nxt: 1}) if nxt is not None else default


class IconDrafter(NGramDrafter):
    """The shared n-gram drafter over the live context (prompt and decoded tokens), backed by the
    training corpus' n-gram table shipped in assets/icon/ngrams.npz."""

    def __init__(self, corpus: dict, n: int = 4):
        super().__init__(n)
        self.table = _LiveThenCorpus(corpus)


@torch.inference_mode()
def speculative_tokens(model: IconModel, prompt: torch.Tensor, embeds: torch.Tensor, guidance: float,
                       tracker: GrammarTracker, drafter: IconDrafter, max_new: int, k: int = 6,
                       stats: dict | None = None, sampling: SamplingParams | None = None,
                       gen: torch.Generator | None = None) -> Iterator[int]:
    """Grammar-constrained decoding of one candidate with n-gram draft-and-verify.

    prompt: (rows, T) with rows = 2 under classifier-free guidance (row 1 unconditional).
    The verify pass scores all drafted tokens in one forward. Greedy (the default `sampling`): a
    draft token is accepted only when it equals the guided, grammar-masked argmax, so the output
    equals plain greedy decoding. Sampled: `accept_or_resample` on the guided, grammar-masked
    logits, so each token has exactly the distribution plain sampling would give it.
    """
    sampling = sampling or SamplingParams(temperature=0.0)
    gpt = model.gpt
    rows, T = prompt.shape
    gpt.setup_cache(rows, T + max_new + k + 2)
    logits = prefill(gpt, prompt, torch.arange(T, device=prompt.device), embeds)[:, None]  # (rows, 1, V)
    context = prompt[0].tolist()
    drafter.add(context)
    p, n_out, forwards, accepted = T - 1, 0, 1, 0  # p: position of the last token fed to the model
    draft: list[int] = []
    while True:
        lg = (guide(logits[:1], logits[1:], guidance) if rows == 2 else logits)[0].float()  # (1+len(draft), V)
        for j in range(len(draft) + 1):  # row j predicts the token after [fed token] + draft[:j]
            bias = torch.from_numpy(tracker.bias()[0]).to(lg.device)
            tok, ok = accept_or_resample(lg[j] + bias, draft[j] if j < len(draft) else None, sampling, gen)
            tracker.feed([tok])
            context.append(tok)
            drafter.add(context[-drafter.n:])
            n_out += 1
            if stats is not None:
                stats.update(forwards=forwards, accepted=accepted, tokens=n_out)
            yield tok
            if tok == EOS or n_out >= max_new:
                return
            if j < len(draft) and ok:
                accepted += 1  # already in the cache at position p + 1 + j
                continue
            break
        p += 1 + j  # where `tok` (the model's own choice, not yet fed) goes
        draft = drafter.draft(context, min(k, max_new - n_out - 1))
        feed = torch.tensor([[tok] + draft] * rows, device=prompt.device)
        logits = gpt(feed, input_pos=torch.arange(p, p + feed.shape[1], device=prompt.device))
        forwards += 1


# ---- the session ---------------------------------------------------------------------------------
class IconSession(StreamSession):
    task = "icon"
    demo = {"prompt": "a rocket", "n": 4, "seed": 0}

    @classmethod
    def load(cls, device: str):
        bundle = load_bundle(device)
        # warm up: one short decode so the first request does not pay for lazy initialisation
        s = cls(bundle, device)
        s.start({"prompt": "star", "n": 1, "max_tokens": 16, "seed": 0})
        while not s.done:
            s.step()
        return bundle

    @classmethod
    def parse_job(cls, params: dict):
        if params.get("mode") == "import":
            from models.common import file_readers

            return file_readers.icon_svg, params.get("svg"), "this SVG"
        return None

    @classmethod
    def needs_weights(cls, params: dict) -> bool:
        return params.get("mode") != "import"

    # ---- requests ---------------------------------------------------------------------------
    def start(self, params: dict):
        self.t0 = time.perf_counter()
        self.first_path_s = None
        self.n_tokens = 0
        self.spec_stats: dict = {}
        mode = params.get("mode", "generate")
        if mode == "import":
            return self._import(params)
        if mode == "library":
            return self._browse(params)
        if mode not in ("generate", "infill", "suggest"):
            raise ParamError(f"unknown mode '{mode}'; use generate, infill, suggest, import or library")
        self.mode = mode
        prompt = params.get("prompt", "")
        if not isinstance(prompt, str):
            raise ParamError("prompt must be text")
        prompt = prompt.strip()
        if mode == "generate" and not prompt:
            raise ParamError("type a prompt describing the icon, e.g. 'a rocket'")
        temperature = check_range(params, "temperature", 0.0, 2.0, 0.8)
        top_p = check_range(params, "top_p", 0.05, 1.0, 0.95)
        guidance = check_range(params, "guidance", 0.0, 10.0, 2.0)
        seed = check_range(params, "seed", 0, 2**31 - 1, 0, int)
        n = check_range(params, "n", 1, 8, 4 if mode == "generate" else 1, int)
        cfg = self.bundle.model.cfg
        self.sampling = SamplingParams(temperature=temperature, top_p=top_p, guidance=guidance, seed=seed)

        self.context_paths: list[dict] = []
        self.exemplars: list = []
        text = self._text_vector(prompt)  # (384,) zeros when there is no prompt
        if mode == "generate":
            self.exemplars = self._pick_exemplars(params, text, prompt, seed)
            ctx = [TXT] + exemplar_prompt([e.tokens for e in self.exemplars])
        else:
            self.context_paths = self._read_paths(params.get("paths"))
            paths = [IconPath.from_wire(p) for p in self.context_paths]
            if mode == "infill":
                self.index = check_range(params, "index", 0, max(len(paths) - 1, 0), 0, int)
                if not paths:
                    raise ParamError("there is no path to redraw; draw or generate an icon first")
                ctx = [TXT] + fim_prompt(paths[:self.index], paths[self.index + 1:])
            else:
                self.index = len(paths)
                ctx = [TXT] + fim_prompt(paths, [])
        budget = cfg.max_seq_len - len(ctx) - 1
        if budget < 16:
            raise ParamError("the icon is too large to add to; delete some paths first")
        self.max_new = min(check_range(params, "max_tokens", 8, 1024, 1000, int), budget)
        self.n = n
        use_cfg = guidance != 1.0 and bool(prompt)
        rows = 2 * n if use_cfg else n
        prompt_t = torch.tensor([ctx] * rows, device=self.device)
        texts = torch.from_numpy(np.stack([text] * n + ([np.zeros_like(text)] * n if use_cfg else [])))
        model = self.bundle.model
        with torch.inference_mode():
            embeds = model.prefix_embeds(texts.to(self.device), len(ctx))
        self.tracker = GrammarTracker(Grammar(single_path=mode != "generate", max_len=self.max_new), n, START)
        # a candidate may not end while its drawing is still empty (validity: it must render something)
        self.require_ink = bool(params.get("require_ink", True))
        self.tracker.no_eos[:] = self.require_ink
        # drafting pays for greedy requests; sampled ones (T 0.8) accept too few n-gram drafts
        # (1.1 tokens per forward, 0.57x per token on this CPU), so they draft only when asked
        self.speculative = bool(params.get("speculative", temperature == 0.0)) and n == 1
        # int8 for sampled requests; greedy ones stay in float so they match speculative greedy exactly
        self.int8 = not self.speculative and self.bundle.fast_gpt is not None and temperature > 0
        if self.speculative:
            self.drafter = IconDrafter(self.bundle.ngrams)
            gen = speculative_tokens(model, prompt_t, embeds, guidance if use_cfg else 1.0, self.tracker,
                                     self.drafter, self.max_new, stats=self.spec_stats, sampling=self.sampling,
                                     gen=self.sampling.generator(self.device))
            self.tokens_iter = (np.array([t]) for t in gen)
        else:
            self.tokens_iter = self._sampled(prompt_t, embeds, use_cfg)
        self.rows: list[list[int]] = [[] for _ in range(n)]
        self.finished = np.zeros(n, bool)
        self.stop_loops = bool(params.get("stop_loops", True))
        self.loops_stopped = 0
        self.ended = ["budget"] * n  # why each candidate ended: "eos", "loop" or "budget"
        self.path_count = [0] * n
        self.prompt = prompt
        return [("progress", {"done": 0, "total": self.max_new + 1, "n": n, "mode": mode})]

    def _pick_exemplars(self, params: dict, text: np.ndarray, prompt: str, seed: int) -> list:
        """The library icons the model is shown before drawing (see the module docstring)."""
        lib = self.bundle.library
        choice = params.get("exemplars", "auto")
        k = check_range(params, "k_exemplars", 0, 3, 2, int)
        if lib is None or choice == "off" or k == 0:
            return []
        if isinstance(choice, (list, tuple)):
            ids = []
            for i in choice[:3]:
                if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(lib):
                    raise ParamError(f"exemplars must be library icon numbers (0 to {len(lib) - 1}), got {i!r}")
                ids.append(i)
            return [lib.icon(i) for i in ids]
        if choice != "auto":
            raise ParamError("exemplars must be 'auto', 'off' or a list of library icon numbers")
        if not prompt or not np.any(text) or not self.bundle.exemplar_trained:
            return []  # the shipped weights have not learned to draw after exemplars (models/icon/CARD.md)
        exclude = set(params.get("exclude_library") or [])  # the bench hides the icons it asks for
        return [lib.icon(i) for i, _ in lib.search(text, k, exclude=exclude, seed=seed, max_tokens=EXEMPLAR_TOKENS)]

    def _browse(self, params: dict):
        lib = self.bundle.library
        if lib is None:
            raise ParamError("this engine has no icon library (assets/icon/library is missing)")
        query = params.get("query", "")
        if not isinstance(query, str) or not query.strip():
            raise ParamError("type what to look for in the library, e.g. 'rocket'")
        if len(query) > 200:
            raise ParamError(f"the search text is {len(query)} characters long; keep it under 200")
        k = check_range(params, "k", 1, 96, 24, int)
        hits = lib.search(self._text_vector(query.strip()), k, max_tokens=10_000, distinct_sets=False)
        items = []
        for i, score in hits:
            e = lib.icon(i)
            paths = decode(e.tokens)
            items.append({"id": e.id, "name": e.name, "set": e.set, "license": e.license, "author": e.author,
                          "attribution": e.attribution, "svg": to_svg(paths), "score": round(score, 3),
                          "paths": [p.to_wire() for p in paths]})
        self.done, self.mode = True, "library"
        return [("output", {"mode": "library", "query": query.strip(), "items": items})]

    def _sampled(self, prompt_t, embeds, use_cfg) -> Iterator[np.ndarray]:
        tracker = self.tracker

        def bias(step, out):
            return torch.from_numpy(tracker.bias()).to(out.device)

        gpt = self.bundle.fast_gpt if self.int8 else self.bundle.model.gpt
        for tok in generate(gpt, prompt_t, self.max_new, self.sampling, prompt_embeds=embeds,
                            cfg=use_cfg, stop_token=EOS, logits_bias=bias):
            t = tok.cpu().numpy()
            tracker.feed(t)
            yield t

    def _read_paths(self, raw) -> list[dict]:
        if not isinstance(raw, (list, tuple)):
            raise ParamError("paths must be a list of {'cmds', 'pts'} paths")
        if len(raw) > MAX_PATHS_IN:
            raise ParamError(f"the icon has {len(raw)} paths; at most {MAX_PATHS_IN} are supported")
        out = []
        for i, p in enumerate(raw):
            try:
                IconPath.from_wire(p)
            except (IconError, ValueError) as e:
                raise ParamError(f"path {i} is malformed: {e}") from None
            out.append(p)
        return out

    def _text_vector(self, prompt: str) -> np.ndarray:
        dim = self.bundle.model.cfg.text_dim
        if not prompt:
            return np.zeros(dim, np.float32)
        if self.bundle.encoder is None:  # tests without MiniLM: a deterministic stand-in vector
            g = np.random.default_rng(abs(hash(prompt)) % 2**32)
            v = g.standard_normal(dim).astype(np.float32)
            return v / np.linalg.norm(v)
        return self.bundle.encoder.encode([prompt])[0]

    def _import(self, params):
        if "parsed" in params:  # read by the engine in a limited child process (models.common.file_readers)
            paths = [IconPath.from_wire(p) for p in self._read_paths(params["parsed"])]
        else:
            svg = params.get("svg")
            if not isinstance(svg, str) or not svg.strip():
                raise ParamError("the file is empty or not text; choose an SVG file")
            try:
                paths = parse_svg(svg)
            except IconError as e:
                raise ParamError(f"cannot import this SVG: {e}") from None
        self.done = True
        self.mode = "import"
        wire = [p.to_wire() for p in paths]
        return [("output", {"mode": "import", "paths": wire, "svg": to_svg(paths)})]

    # ---- decoding --------------------------------------------------------------------------
    def step(self):
        out = []
        t_end = time.perf_counter() + STEP_BUDGET_S
        while not self.done and time.perf_counter() < t_end:
            try:
                toks = next(self.tokens_iter)
            except StopIteration:
                out += self._finish()
                break
            self.n_tokens += 1
            for b, t in enumerate(toks.tolist()):
                if self.finished[b]:
                    continue
                row = self.rows[b]
                if t in (PATH, EOS) and PATH in row:
                    out.append(self._path_event(b, final=True))
                row.append(t)
                if self.tracker.no_eos[b] and self.tracker.may_end(b) and self._has_ink(row):
                    self.tracker.no_eos[b] = False
                if t == EOS:
                    self.finished[b] = True
                    self.ended[b] = "eos"
                    out += self._candidate_done(b)
                elif self.stop_loops and repeating_tail(row):
                    # the model redraws the same points over and over: end this candidate here
                    self.rows[b] = row = close_row(row)
                    if PATH in row:
                        out.append(self._path_event(b, final=True))
                    row.append(EOS)
                    self.finished[b] = True
                    self.ended[b] = "loop"
                    self.loops_stopped += 1
                    out += self._candidate_done(b)
                elif t != PATH and len(row) % PARTIAL_EVERY == 0:
                    ev = self._path_event(b, final=False)
                    if ev[1]["cmds"]:
                        out.append(ev)
            if self.finished.all() or self.n_tokens >= self.max_new:
                out += self._finish()
                break
        if not self.done:
            out.append(("progress", {"done": self.n_tokens, "total": self.max_new + 1}))
        return out

    def _candidate_done(self, b: int) -> list:
        """A generated candidate is whole: send it at once as a progress event (the CLI writes it) instead
        of waiting for the slowest of the batch; its paths have streamed as partial events already."""
        if self.mode != "generate":
            return []
        try:
            paths = decode(self.rows[b])
        except ValueError:
            return []
        wire = [p.to_wire() for p in paths]
        return [("progress", {"candidate": b, "candidate_done": True, "paths": wire,
                             "svg": to_svg(paths) if paths else "", "valid": bool(paths)})]

    @staticmethod
    def _has_ink(row: list[int]) -> bool:
        """Does the row drawn so far (open paths closed) cover any pixel of a 32 px raster — the
        size the evaluator and the validity check use?"""
        try:
            paths = decode(row, partial=True)
        except ValueError:
            return False
        return bool(paths) and bool((render_paths(paths, INK_SIZE) > 0.5).any())

    def _current_path(self, b: int) -> IconPath | None:
        row = self.rows[b]
        last = len(row) - 1 - row[::-1].index(PATH)
        paths = decode(row[last:], partial=True)
        return paths[0] if paths else None

    def _path_event(self, b: int, final: bool):
        p = self._current_path(b)
        k = self.path_count[b]
        if final:
            self.path_count[b] += 1
            if self.first_path_s is None and p is not None:
                self.first_path_s = time.perf_counter() - self.t0
        index = k if self.mode == "generate" else self.index
        data = {"candidate": b, "index": index, "final": final, "cmds": p.cmds if p else "",
                "pts": p.pts if p else np.zeros((0, 2), np.float32)}
        return ("partial", data)

    def _finish(self):
        self.done = True
        cands = []
        for b in range(self.n):
            try:
                paths = decode(self.rows[b], partial=not self.finished[b])
                valid = bool(self.finished[b]) and len(paths) > 0
            except ValueError:
                paths, valid = [], False
            if self.mode == "generate":
                wire = [p.to_wire() for p in paths]
            else:  # the untouched paths go back exactly as they came
                new = [p.to_wire() for p in paths[:1]]
                if self.mode == "infill":
                    wire = self.context_paths[:self.index] + new + self.context_paths[self.index + 1:]
                else:
                    wire = self.context_paths + new
                valid = valid and len(new) == 1
            svg = to_svg([IconPath.from_wire(p) for p in wire]) if wire else ""
            cands.append({"paths": wire, "svg": svg, "valid": valid, "ended": self.ended[b]})
        data = {"mode": self.mode, "candidates": cands, "prompt": self.prompt}
        if self.exemplars:
            ex_paths = [decode(e.tokens) for e in self.exemplars]
            data["exemplars"] = [{"id": e.id, "name": e.name, "set": e.set, "license": e.license, "author": e.author,
                                  "attribution": e.attribution, "svg": to_svg(p)} for e, p in zip(self.exemplars, ex_paths)]
            ex_r = [render_paths(p, 64) > 0.5 for p in ex_paths]
            for c in cands:  # novelty: how much of each exemplar a candidate repeats (1 = a copy)
                r = render_paths([IconPath.from_wire(p) for p in c["paths"]], 64) > 0.5 if c["paths"] else None
                c["exemplar_iou"] = [round(iou(r, x), 3) if r is not None else 0.0 for x in ex_r]
        if self.mode != "generate":
            data["index"] = self.index
        ev = self.bundle.evaluator
        if ev is not None and self.prompt and self.mode == "generate":
            imgs = np.stack([render_paths([IconPath.from_wire(p) for p in c["paths"]], ev.size) if c["paths"]
                             else np.zeros((ev.size, ev.size), np.float32) for c in cands])
            data["scores"] = ev.score(imgs, self._text_vector(self.prompt)).astype(np.float32)
        return [("output", data)]

    def stats(self) -> dict:
        s = {"tokens": int(getattr(self, "n_tokens", 0)) * int(getattr(self, "n", 1)),
             "loops_stopped": int(getattr(self, "loops_stopped", 0)),
             "int8": bool(getattr(self, "int8", False))}
        if getattr(self, "first_path_s", None) is not None:
            s["first_path_ms"] = round(1000 * self.first_path_s, 1)
        if getattr(self, "spec_stats", None):
            s["speculative"] = dict(self.spec_stats)
        return s
