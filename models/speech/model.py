"""Acoustic model: characters + voice + emotion vector -> WORLD frames, autoregressively.

Three parts, all on the shared transformer (models/common/transformer.py):
- a character encoder (bidirectional, key-padding mask);
- a word-duration head (log frames per word from the word's pooled characters, the voice and
  the emotion vector) — durations can instead be *given* (target seconds, speed factor): the
  decoder is told how long each word is and how many frames are left, so duration control is
  exact by construction (IndexTTS2's token-count conditioning, at word level);
- a causal frame decoder: one step = 2 frames (20 ms). Its input at step t is the previous step's
  frames through a Tacotron prenet (dropout kept at inference, so the decoder leans on the text),
  the encoder state interpolated at the step's position inside its word, position features
  (progress in the word, steps into / left in the word, steps left in the sentence) and the
  voice + emotion embedding. The emotion can change between steps (slider moves mid-sentence).

Frames are normalised with statistics of the training set stored as buffers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.common.transformer import Transformer, TransformerConfig
from models.speech import frontend, vocoder

N_POS = 6  # position features per step


@dataclass
class SpeechConfig:
    n_chars: int = len(frontend.SYMBOLS)
    n_voice: int = 2
    n_emotion: int = 8
    d_enc: int = 192
    enc_layers: int = 3
    enc_heads: int = 4
    d_model: int = 256
    n_layer: int = 4
    n_head: int = 4
    step: int = 2  # frames per decoder step
    n_feat: int = vocoder.N_FEAT
    max_steps: int = 1024  # longest sentence the decoder cache holds (20 s)
    vuv_layers: int = 2  # non-autoregressive voicing planner
    vuv_dropout: float = 0.0  # the planner's own dropout (it overfits: held-out BCE 0.69 against 0.2-0.3 training)
    prenet_dropout: float = 0.5
    # Tacotron keeps prenet dropout on at inference; measured here it costs intelligibility (Whisper WER
    # 0.57 -> 0.65 on 30 held-out sentences with the session-2 model), so it is off unless set
    prenet_dropout_inference: bool = False
    dropout: float = 0.0
    char_align: bool = False  # a character-share head places the decoder inside each word (align.py)
    phonemes: bool = False  # input: lexicon phonemes for known words, letters for the rest (frontend.encode)
    # inference only: envelope postfilter (vocoder.sharpen) chosen on held-out WER for this model; the
    # L1-regressed envelopes are over-smooth and 1.0 plays them as predicted
    sharpen: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


PLANNER = ("vuv_net.", "vuv_pos.", "vuv_style.")  # the voicing planner's parameters (train --freeze-planner)


class SpeechModel(nn.Module):
    def __init__(self, cfg: SpeechConfig):
        super().__init__()
        self.cfg = cfg
        d, de = cfg.d_model, cfg.d_enc
        self.char_emb = nn.Embedding(cfg.n_chars, de)
        self.encoder = Transformer(TransformerConfig(vocab_size=0, n_layer=cfg.enc_layers, n_head=cfg.enc_heads, d_model=de,
                                                     max_seq_len=512, dropout=cfg.dropout, n_out=0))
        self.voice_emb = nn.Embedding(cfg.n_voice, d)
        self.emo_proj = nn.Sequential(nn.Linear(cfg.n_emotion, d), nn.SiLU(), nn.Linear(d, d))
        self.dur_head = nn.Sequential(nn.Linear(de + d, 256), nn.SiLU(), nn.Linear(256, 256), nn.SiLU(), nn.Linear(256, 1))
        # share of its word's time each character takes (softmax inside the word; models/speech/align.py
        # made the targets): the decoder is told which letter it is saying, not a linear guess
        if cfg.char_align:
            self.frac_head = nn.Sequential(nn.Linear(de + d, 128), nn.SiLU(), nn.Linear(128, 1))
        fin = cfg.step * cfg.n_feat
        self.prenet = nn.Sequential(nn.Linear(fin, 256), nn.ReLU(), nn.Dropout(cfg.prenet_dropout),
                                    nn.Linear(256, d), nn.ReLU(), nn.Dropout(cfg.prenet_dropout))
        self.text_proj = nn.Linear(de, d)
        self.pos_proj = nn.Linear(N_POS, d)
        self.decoder = Transformer(TransformerConfig(vocab_size=0, n_layer=cfg.n_layer, n_head=cfg.n_head, d_model=d,
                                                     max_seq_len=cfg.max_steps, dropout=cfg.dropout, n_out=fin))
        # Voicing planner: bidirectional over the sentence's steps, from text and positions only
        # (never from fed-back frames), so free-running decoding cannot drift into whisper or buzz.
        self.vuv_net = Transformer(TransformerConfig(vocab_size=0, n_layer=cfg.vuv_layers, n_head=cfg.enc_heads, d_model=de,
                                                     max_seq_len=cfg.max_steps, dropout=max(cfg.dropout, cfg.vuv_dropout),
                                                     n_out=cfg.step))
        self.vuv_drop = nn.Dropout(cfg.vuv_dropout)
        self.vuv_pos = nn.Linear(N_POS, de)
        self.vuv_style = nn.Linear(d, de)
        self.vuv_in = nn.Linear(cfg.step, d)
        nn.init.zeros_(self.vuv_in.weight)  # added to a trained decoder without disturbing it
        nn.init.zeros_(self.vuv_in.bias)
        self.register_buffer("feat_mean", torch.zeros(cfg.n_feat))
        self.register_buffer("feat_std", torch.ones(cfg.n_feat))

    # ---- pieces shared by training and streaming --------------------------------------------
    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L) char ids -> (B, L, d_enc)."""
        L = ids.shape[1]
        valid = torch.arange(L, device=ids.device)[None] < lengths[:, None]  # (B, L)
        mask = valid[:, None, None, :].expand(-1, 1, L, L)
        return self.encoder(embeds=self.char_emb(ids), mask=mask, return_hidden=True)

    def style(self, voice: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """(B,) voice ids, (B, 8) or (B, S, 8) emotion -> (B, d) or (B, S, d)."""
        v = self.voice_emb(voice)
        e = self.emo_proj(emotion)
        return e + (v[:, None] if e.dim() == 3 else v)

    def word_pool(self, enc: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """(B, L, de), (B, W, 2) [start, end) -> (B, W, de) mean over each word's characters."""
        L = enc.shape[1]
        ar = torch.arange(L, device=enc.device)
        m = ((ar[None, None] >= spans[..., :1]) & (ar[None, None] < spans[..., 1:])).float()  # (B, W, L)
        return (m @ enc) / m.sum(-1, keepdim=True).clamp(min=1)

    def durations(self, enc, spans, voice, emotion) -> torch.Tensor:
        """Predicted log frames per word (B, W)."""
        pooled = self.word_pool(enc, spans)
        g = self.style(voice, emotion)[:, None].expand(-1, pooled.shape[1], -1)
        return self.dur_head(torch.cat([pooled, g], -1)).squeeze(-1)

    def char_logits(self, enc, voice, emotion) -> torch.Tensor:
        """(B, L) logits whose softmax over a word's characters is each one's share of the word."""
        g = self.style(voice, emotion)[:, None].expand(-1, enc.shape[1], -1)
        return self.frac_head(torch.cat([enc, g], -1)).squeeze(-1)

    @staticmethod
    def word_log_shares(logits: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """(B, L) logits, (B, W, 2) spans -> (B, W, L) log shares inside each word (-inf outside)."""
        L = logits.shape[1]
        ar = torch.arange(L, device=logits.device)
        inside = (ar[None, None] >= spans[..., :1]) & (ar[None, None] < spans[..., 1:])
        x = logits[:, None].expand(-1, spans.shape[1], -1).masked_fill(~inside, float("-inf"))
        return torch.log_softmax(x, -1)

    def char_shares(self, enc, spans, voice, emotion) -> torch.Tensor:
        """(B, L) predicted share of its word's time for every character."""
        logp = self.word_log_shares(self.char_logits(enc, voice, emotion), spans)
        return logp.exp().nan_to_num(0.0).sum(1)

    @staticmethod
    def text_at(enc, char_pos) -> torch.Tensor:
        """Encoder states (B, L, de) linearly interpolated at fractional char positions (B, S)."""
        lo = char_pos.floor().long().clamp(0, enc.shape[1] - 1)
        hi = (lo + 1).clamp(max=enc.shape[1] - 1)
        w = (char_pos - lo.float()).clamp(0, 1)[..., None]
        gather = lambda idx: torch.gather(enc, 1, idx[..., None].expand(-1, -1, enc.shape[-1]))  # noqa: E731
        return gather(lo) * (1 - w) + gather(hi) * w

    def voicing(self, enc, char_pos, pos_feats, style, n_steps: torch.Tensor | None = None) -> torch.Tensor:
        """Voicing logits (B, S, step) for a whole planned sentence at once."""
        x = self.vuv_drop(self.text_at(enc, char_pos)) + self.vuv_pos(pos_feats) + self.vuv_style(style)
        S = x.shape[1]
        if n_steps is None:
            mask = torch.ones(S, S, dtype=torch.bool, device=x.device)
        else:
            valid = torch.arange(S, device=x.device)[None] < n_steps[:, None]
            mask = valid[:, None, None, :].expand(-1, 1, S, S)
        return self.vuv_net(embeds=x, mask=mask)

    def step_inputs(self, enc, char_pos, pos_feats, style, prev, vuv) -> torch.Tensor:
        """Decoder input embeddings. char_pos: (B, S) fractional char index; pos_feats: (B, S, N_POS);
        style: (B, S, d); prev: (B, S, step*n_feat) normalised previous-step frames; vuv: (B, S, step)
        the planned voicing (0/1) of this step's frames."""
        return self.prenet(prev) + self.step_cond(enc, char_pos, pos_feats, style, vuv)

    def step_cond(self, enc, char_pos, pos_feats, style, vuv) -> torch.Tensor:
        """The part of the decoder input that does not depend on fed-back frames (computed for a
        whole sentence at once when streaming)."""
        return self.text_proj(self.text_at(enc, char_pos)) + self.pos_proj(pos_feats) + style + self.vuv_in(vuv)

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames - self.feat_mean) / self.feat_std

    def ar_input(self, frames_norm: torch.Tensor) -> torch.Tensor:
        """Normalised frames (B, S*step, n_feat) -> the decoder's feedback input (B, S, step*n_feat)
        with the voicing flag blanked: fed back, a 0/1 flag locks free-running decoding into
        whisper (all unvoiced) or buzz; the envelope and F0 still tell the decoder what it said."""
        B = frames_norm.shape[0]
        f = frames_norm.clone()
        f[..., 1] = 0.0
        return f.reshape(B, -1, self.cfg.step * self.cfg.n_feat)

    def denormalize_out(self, out: torch.Tensor) -> torch.Tensor:
        """Decoder output (B, S, step*n_feat) -> frames (B, S*step, n_feat) in feature units; the
        voicing channel becomes a 0/1 decision."""
        B, S, _ = out.shape
        f = out.view(B, S * self.cfg.step, self.cfg.n_feat)
        vuv = (f[..., 1:2] > 0).float()
        f = f * self.feat_std + self.feat_mean
        return torch.cat([f[..., :1], vuv, f[..., 2:]], -1)

    # ---- training ---------------------------------------------------------------------------
    def forward(self, batch: dict, ss: float = 0.0, ss_passes: int = 1, delta: float = 0.0) -> dict:
        """Teacher-forced pass; returns the losses. `ss` > 0: parallel scheduled sampling — the
        decoder first predicts every step from the true frames (no gradient, `ss_passes` times, each
        pass fed the last one's predictions), then each step's fed-back input is that prediction with
        probability `ss`: it learns to continue from its own (smoothed) frames, as when it runs free."""
        cfg = self.cfg
        enc = self.encode(batch["ids"], batch["n_chars"])
        logd = self.durations(enc, batch["spans"], batch["voice"], batch["emotion"])
        wmask = batch["word_mask"]
        dur_loss = (F.mse_loss(logd, torch.log(batch["word_frames"].float().clamp(min=1)), reduction="none") * wmask).sum() / wmask.sum()
        tgt = self.normalize(batch["frames"])  # (B, S*step, n_feat)
        B, S = batch["char_pos"].shape
        tgt_steps = self.ar_input(tgt)
        prev = torch.cat([torch.zeros_like(tgt_steps[:, :1]), tgt_steps[:, :-1]], 1)
        prev = prev + 0.1 * torch.randn_like(prev)  # small input noise against exposure bias
        style = self.style(batch["voice"], batch["emotion"])[:, None].expand(-1, S, -1)
        vuv_steps = batch["frames"][..., 1].view(B, S, cfg.step)
        if ss > 0:
            prev = self._scheduled_prev(enc, batch, style, prev, vuv_steps, ss, ss_passes)
        step_mask = batch["frame_mask"].view(B, S, cfg.step)
        plan = self.voicing(enc, batch["char_pos"], batch["pos_feats"], style, step_mask[..., 0].sum(1).long())
        vuv_plan = (F.binary_cross_entropy_with_logits(plan, vuv_steps, reduction="none") * step_mask).sum() / step_mask.sum()
        x = self.step_inputs(enc, batch["char_pos"], batch["pos_feats"], style, prev, vuv_steps)
        out = self.decoder(embeds=x).view(B, S * cfg.step, cfg.n_feat)
        fmask = batch["frame_mask"][..., None]  # (B, S*step, 1)
        vuv_t = batch["frames"][..., 1]
        n = fmask.sum()
        lf0 = (((out[..., 0] - tgt[..., 0]) ** 2) * fmask[..., 0] * (0.3 + vuv_t)).sum() / n
        vuv = (F.binary_cross_entropy_with_logits(out[..., 1], vuv_t, reduction="none") * fmask[..., 0]).sum() / n
        spec = ((out[..., 2:] - tgt[..., 2:]).abs() * fmask).sum() / (n * (cfg.n_feat - 2))
        dspec = self._delta_loss(out, tgt, batch["frame_mask"])
        loss = spec + 0.5 * lf0 + 0.2 * vuv + 0.2 * dur_loss + 0.3 * vuv_plan + delta * dspec
        out = dict(spec=spec, lf0=lf0, vuv=vuv, dur=dur_loss, vuv_plan=vuv_plan, dspec=dspec)
        if self.cfg.char_align and "char_share" in batch:  # cross-entropy of the aligned shares against the predicted ones
            logp = self.word_log_shares(self.char_logits(enc, batch["voice"], batch["emotion"]), batch["spans"])
            tgt = batch["char_share"][:, None] * torch.isfinite(logp)
            share = -(tgt * logp.nan_to_num(0.0, neginf=0.0)).sum(-1)  # (B, W)
            out["share"] = (share * wmask).sum() / wmask.sum()
            loss = loss + 0.2 * out["share"]
        return dict(loss=loss, **out)

    @staticmethod
    def _delta_loss(out: torch.Tensor, tgt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """L1 of the envelope's frame-to-frame change, on the sub-frame grid when frames carry
        sub-frames (vocoder.n_sub; v5's mid-frames: 5 ms)."""
        B, T, n = out.shape
        K = 1 + (n - vocoder.N_FEAT) // vocoder.N_MID
        if K > 1:  # frame t, its sub-frames, frame t+1, ...
            def grid(x):
                subs = x[..., vocoder.N_FEAT:].reshape(B, T, K - 1, vocoder.N_MID)
                return torch.cat([x[..., None, 2:vocoder.N_FEAT], subs], 2).reshape(B, K * T, vocoder.N_MID)
            m = mask.repeat_interleave(K, 1)
        else:
            def grid(x):
                return x[..., 2:]
            m = mask
        d_out, d_tgt = grid(out).diff(dim=1), grid(tgt).diff(dim=1)
        pair = (m[:, 1:] * m[:, :-1])[..., None]
        return ((d_out - d_tgt).abs() * pair).sum() / (pair.sum() * d_out.shape[-1]).clamp(min=1)

    @torch.no_grad()
    def _scheduled_prev(self, enc, batch, style, prev, vuv_steps, ss: float, passes: int) -> torch.Tensor:
        B, S, F_ = prev.shape
        cond = self.step_cond(enc, batch["char_pos"], batch["pos_feats"], style, vuv_steps)
        fed = prev
        for _ in range(passes):
            out = self.decoder(embeds=self.prenet(fed) + cond).view(B, S, self.cfg.step, self.cfg.n_feat).clone()
            out[..., 1] = 0.0  # the voicing flag is blanked in the feedback, as in ar_input
            out = out.view(B, S, F_)
            own = torch.cat([torch.zeros_like(out[:, :1]), out[:, :-1]], 1)
            use = torch.rand(B, S, 1, device=prev.device) < ss
            fed = torch.where(use, own, prev)
        return fed

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def position_features(word_frames, step: int = 2):
    """Per decoder step: (word index, fractional char progress in the word, N_POS features).
    word_frames: list of int frames per word (multiples of `step`). Pure python/numpy-free so the
    streaming session can extend it word by word."""
    import numpy as np  # noqa: PLC0415
    steps = [max(1, int(n) // step) for n in word_frames]
    total = sum(steps)
    W = len(steps)
    widx, prog, feats = [], [], []
    done = 0
    for w, n in enumerate(steps):
        for k in range(n):
            p = (k + 0.5) / n
            left_total = total - done - k - 1
            widx.append(w)
            prog.append(p)
            feats.append([p, np.log1p(k) / 3, np.log1p(n - k - 1) / 3, np.log1p(left_total) / 5, w / max(W - 1, 1),
                          float(w == W - 1)])
        done += n
    return np.asarray(widx, np.int64), np.asarray(prog, np.float32), np.asarray(feats, np.float32)


def char_positions(spans, widx, prog, shares=None):
    """Fractional char index per step. Without `shares`: linear through the word's span (its
    letters, punctuation, space). With shares (L,) — each character's share of its word's time —
    piecewise linear: a step at progress p of its word sits in the character whose cumulative
    share covers p, at the matching point inside it (index c at the middle of character c)."""
    import numpy as np  # noqa: PLC0415
    spans = np.asarray(spans)
    s, e = spans[widx, 0], spans[widx, 1]
    if shares is None:
        return (s + prog * (e - s) - 0.5).clip(0, None).astype(np.float32)
    shares = np.asarray(shares, np.float64)
    out = np.empty(len(widx), np.float32)
    for w, (a, b) in enumerate(spans.tolist()):
        sel = np.flatnonzero(widx == w)
        if not len(sel):
            continue
        sh = np.maximum(shares[a:b], 0.0)
        sh = sh / sh.sum() if sh.sum() > 0 else np.full(b - a, 1.0 / (b - a))
        cum = np.concatenate([[0.0], np.cumsum(sh)])
        p = prog[sel]
        c = np.clip(np.searchsorted(cum, p, side="right") - 1, 0, b - a - 1)
        local = (p - cum[c]) / np.maximum(sh[c], 1e-9)
        out[sel] = a + c + np.clip(local, 0.0, 1.0) - 0.5
    return out.clip(0, None)
