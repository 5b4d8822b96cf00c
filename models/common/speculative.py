"""Training-free speculative decoding (ADED-style): an n-gram drafter proposes the next few tokens
from the prompt context and a token corpus; one forward pass verifies them all. With greedy
decoding the output is identical to plain decoding, only faster when drafts are accepted. With
sampling, `accept_or_resample` keeps each draft token with the target probability of that token
and otherwise draws from the target with it removed (speculative sampling, Leviathan et al. 2023 /
Chen et al. 2023, with the drafter's distribution a point mass), so every token is distributed
exactly as in plain sampling.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence

import torch

from models.common.generate import prefill
from models.common.sampling import SamplingParams, filter_logits
from models.common.transformer import Transformer


class NGramDrafter:
    """Most frequent continuation of the last n-1 tokens, from a corpus and the live context."""

    def __init__(self, n: int = 4, corpus: Iterable[Sequence[int]] = ()):
        self.n = n
        self.table: dict[tuple, Counter] = defaultdict(Counter)
        for seq in corpus:
            self.add(seq)

    def add(self, seq: Sequence[int]) -> None:
        seq = list(seq)
        for order in range(1, self.n):
            for i in range(len(seq) - order):
                self.table[tuple(seq[i:i + order])][seq[i + order]] += 1

    def draft(self, context: Sequence[int], k: int) -> list[int]:
        ctx, out = list(context), []
        for _ in range(k):
            nxt = None
            for order in range(self.n - 1, 0, -1):  # back off from the longest matching context
                c = self.table.get(tuple(ctx[-order:])) if len(ctx) >= order else None
                if c:
                    nxt = c.most_common(1)[0][0]
                    break
            if nxt is None:
                break
            out.append(nxt)
            ctx.append(nxt)
        return out


def accept_or_resample(logits: torch.Tensor, draft: int | None, params: SamplingParams,
                       gen: torch.Generator | None) -> tuple[int, bool]:
    """One verify step. logits (V,) of the target at a position whose draft token is `draft` (None:
    no draft left). -> (token, draft accepted). Greedy (temperature 0): the argmax, accepted when it
    equals the draft. Sampled: the draft x is kept with probability p(x) under the temperature /
    top-k / top-p distribution p; else a token is drawn from p with x removed (renormalised) — the
    token is then distributed exactly as a plain draw from p."""
    if params.temperature == 0.0:
        tok = int(logits.argmax())
        return tok, tok == draft
    probs = filter_logits(logits.float()[None] / params.temperature, params.top_k, params.top_p).softmax(-1)[0]
    if draft is not None:
        if float(torch.rand((), generator=gen)) < float(probs[draft]):
            return draft, True
        probs = probs.clone()
        probs[draft] = 0.0
    return int(torch.multinomial(probs, 1, generator=gen)), False


@torch.inference_mode()
def speculative_generate(model: Transformer, prompt: torch.Tensor, max_new_tokens: int, drafter: NGramDrafter, *,
                         k: int = 4, stop_token: int | None = None, prompt_embeds: torch.Tensor | None = None,
                         stats: dict | None = None) -> Iterator[int]:
    """Greedy decoding of one sequence (prompt: (1, T)) with draft-and-verify; yields tokens one by one."""
    T = prompt.shape[1]
    model.setup_cache(1, T + max_new_tokens + k + 1)
    logits = prefill(model, prompt, torch.arange(T), prompt_embeds)
    context = prompt[0].tolist()
    tok = int(logits[0].argmax())
    n_out, pos, forwards, accepted = 0, T, 1, 0
    while True:
        yield tok
        n_out += 1
        context.append(tok)
        if tok == stop_token or n_out >= max_new_tokens:
            break
        draft = drafter.draft(context, min(k, max_new_tokens - n_out))
        feed = torch.tensor([[tok] + draft])
        logits = model(feed, input_pos=torch.arange(pos, pos + feed.shape[1]))[0]  # (1+len(draft), V)
        forwards += 1
        pred = logits.argmax(-1).tolist()
        n_ok = 0
        while n_ok < len(draft) and pred[n_ok] == draft[n_ok]:
            n_ok += 1
        for t in draft[:n_ok]:  # accepted drafts are exactly what greedy decoding would emit
            yield t
            n_out += 1
            context.append(t)
            if t == stop_token or n_out >= max_new_tokens:
                break
        else:
            accepted += n_ok
            pos += 1 + n_ok
            tok = pred[n_ok]
            continue
        break
    if stats is not None:
        stats.update(forwards=forwards, accepted=accepted, tokens=n_out)
