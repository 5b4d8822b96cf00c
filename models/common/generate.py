"""The decode loop every streaming session uses (gpt-fast style): `prefill` the prompt once, then
`decode_one` token at a time, yielding each token as soon as it exists so a session can stream it.

    for tok in generate(model, prompt, 200, SamplingParams(temperature=0.8, seed=1)):
        ...  # tok: (B,) token ids, send a partial result every few tokens

Classifier-free guidance runs the conditional and unconditional rows as one batch of 2B.
A step allocates nothing it can avoid: positions are views of one arange, the tokens that
`logits_bias` sees fill a preallocated buffer, greedy picks need no sync.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from models.common.sampling import SamplingParams, guide, sample
from models.common.transformer import Transformer

# (step, generated tokens so far (B, t)) -> additive logits bias (B, V) with -inf for banned tokens
LogitsBias = Callable[[int, torch.Tensor], torch.Tensor]


@torch.inference_mode()
def prefill(model: Transformer, idx: torch.Tensor | None, input_pos: torch.Tensor, embeds: torch.Tensor | None = None) -> torch.Tensor:
    """Run the prompt through the model, filling the cache. Returns logits of the last position (B, V)
    (the output head runs on that position only, as transformers' generate() does)."""
    h = model(idx, embeds=embeds, input_pos=input_pos, return_hidden=True)[:, -1]
    return h if model.head is None else model.head(h)


@torch.inference_mode()
def decode_one(model: Transformer, tok: torch.Tensor, input_pos: torch.Tensor) -> torch.Tensor:
    """One token (B,) at absolute position input_pos (1,) -> next-token logits (B, V)."""
    return model(tok[:, None], input_pos=input_pos)[:, -1]


@torch.inference_mode()
def generate(model: Transformer, prompt: torch.Tensor, max_new_tokens: int, params: SamplingParams, *,
             prompt_embeds: torch.Tensor | None = None, cfg: bool = False, stop_token: int | None = None,
             logits_bias: LogitsBias | None = None, setup_cache: bool = True) -> Iterator[torch.Tensor]:
    """Yield one (B,) tensor of new tokens per step.

    prompt: (B, T) token ids, or (2B, T) with `cfg` (rows B.. are the unconditional prompt).
    prompt_embeds: optional (B or 2B, T, C) added to the prompt's token embeddings (text prefix).
    Rows that emitted `stop_token` keep emitting it; the loop ends when every row has stopped.
    """
    rows, T = prompt.shape
    B = rows // 2 if cfg else rows
    dev = prompt.device
    if setup_cache:
        model.setup_cache(rows, T + max_new_tokens)
    gen = params.generator(dev)
    positions = torch.arange(T + max_new_tokens, device=dev)  # every step's input_pos is a view of this
    out = torch.empty(B, max_new_tokens, dtype=torch.long, device=dev)  # tokens so far, for logits_bias
    done = torch.zeros(B, dtype=torch.bool, device=dev)
    logits = prefill(model, prompt, positions[:T], prompt_embeds)
    for step in range(max_new_tokens):
        lg = guide(logits[:B], logits[B:], params.guidance) if cfg else logits
        if logits_bias is not None:
            lg = lg + logits_bias(step, out[:, :step])
        tok = sample(lg, params, gen)
        if stop_token is not None:
            tok = torch.where(done, stop_token, tok)
            done |= tok == stop_token
        if logits_bias is not None:
            out[:, step] = tok
        yield tok
        if stop_token is not None and bool(done.all()):
            return
        if step + 1 < max_new_tokens:
            feed = torch.cat([tok, tok]) if cfg else tok
            logits = model(feed[:, None], input_pos=positions[T + step:T + step + 1])[:, -1]  # decode_one, inlined
