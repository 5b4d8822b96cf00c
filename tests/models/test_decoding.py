"""The shared decoding core: KV cache equals a full forward pass, rolling windows, sampling, speculation."""
import pytest
import torch

from models.common.generate import generate
from models.common.sampling import SamplingParams, filter_logits, guide, sample
from models.common.speculative import NGramDrafter, accept_or_resample, speculative_generate
from models.common.transformer import Transformer, TransformerConfig


def tiny(n_layer=2, axes=1, **kw):
    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=50, n_layer=n_layer, n_head=4, d_model=64, max_seq_len=256,
                                         rope_axes=axes, **kw)).eval()


@torch.inference_mode()
def test_kv_cache_matches_full_forward():
    m = tiny()
    x = torch.randint(0, 50, (3, 60))
    full = m(x)
    m.setup_cache(3, 64)
    parts = [m(x[:, :25], input_pos=torch.arange(25))]
    for i in range(25, 60):
        parts.append(m(x[:, i:i + 1], input_pos=torch.tensor([i])))
    assert torch.allclose(full, torch.cat(parts, 1), atol=1e-4)


@torch.inference_mode()
def test_rolling_cache_is_exact_while_it_fits_and_keeps_its_size():
    m = tiny()
    x = torch.randint(0, 50, (1, 40))
    full = m(x)
    m.setup_cache(1, window=48, sink=4)
    parts = [m(x[:, i:i + 1], input_pos=torch.tensor([i])) for i in range(40)]
    assert torch.allclose(full, torch.cat(parts, 1), atol=1e-4)
    cache = m.blocks[0].attn.kv_cache
    size = cache.k.shape
    for i in range(40, 500):  # an endless stream: the cache never grows
        m(x[:, :1], input_pos=torch.tensor([i]))
    assert cache.k.shape == size and int(cache.slot_pos.max()) == 499
    assert sorted(cache.slot_pos.tolist())[:4] == [0, 1, 2, 3]  # the sinks stay


@torch.inference_mode()
def test_rolling_cache_with_sinks_looks_like_contiguous_sequence():
    # With one layer, K/V depend only on each token, so after wrapping the cache must give exactly
    # the logits of a fresh pass over [sinks + last window] (StreamingLLM re-positioning).
    m = tiny(n_layer=1)
    x = torch.randint(0, 50, (1, 100))
    m.setup_cache(1, window=20, sink=4)
    for i in range(100):
        last = m(x[:, i:i + 1], input_pos=torch.tensor([i]))
    m.clear_cache()
    ref = m(torch.cat([x[:, :4], x[:, 80:]], 1))
    assert torch.allclose(last[:, -1], ref[:, -1], atol=1e-4)


@torch.inference_mode()
def test_block_causal_attend_limit_matches_mask():
    m = tiny()
    x = torch.randint(0, 50, (1, 16))
    blocks = torch.arange(16) // 4
    mask = blocks[None, :] <= blocks[:, None]  # (T, S): each block sees itself and earlier blocks
    ref = m(x, mask=mask)
    m.setup_cache(1, 32)
    out = [m(x[:, b * 4:(b + 1) * 4], input_pos=torch.arange(b * 4, (b + 1) * 4),
             attend_limit=torch.full((4,), (b + 1) * 4 - 1)) for b in range(4)]
    assert torch.allclose(ref, torch.cat(out, 1), atol=1e-4)


@torch.inference_mode()
def test_three_axis_rope_runs_and_depends_on_position():
    m = tiny(axes=3)
    x = torch.randint(0, 50, (1, 8))
    p1 = torch.randint(0, 8, (8, 3))
    a, b = m(x, rope_pos=p1), m(x, rope_pos=p1.flip(0))
    assert a.shape == (1, 8, 50) and not torch.allclose(a, b)


def test_same_seed_same_tokens_and_different_seed_differs():
    m = tiny()
    prompt = torch.zeros(2, 3, dtype=torch.long)

    def run(seed):
        return torch.stack(list(generate(m, prompt, 40, SamplingParams(temperature=1.0, top_p=0.95, seed=seed))), 1)

    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == (2, 40)


def test_greedy_generate_equals_argmax_of_full_forward():
    m = tiny()
    prompt = torch.randint(0, 50, (1, 5))
    toks = torch.stack(list(generate(m, prompt, 12, SamplingParams(temperature=0.0))), 1)
    seq = prompt
    for _ in range(12):
        with torch.inference_mode():
            nxt = m(seq)[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
    assert torch.equal(toks, seq[:, 5:])


def test_stop_token_ends_rows():
    m = tiny()
    bias = torch.full((50,), float("-inf"))
    bias[9] = 0.0  # force token 9 = stop
    toks = list(generate(m, torch.zeros(2, 1, dtype=torch.long), 30, SamplingParams(temperature=1.0),
                         stop_token=9, logits_bias=lambda step, out: bias))
    assert len(toks) == 1 and toks[0].tolist() == [9, 9]


def test_classifier_free_guidance_batch():
    m = tiny()
    prompt = torch.randint(0, 50, (2, 4))  # row 0 conditional, row 1 unconditional
    toks = list(generate(m, prompt, 5, SamplingParams(temperature=0.0, guidance=3.0), cfg=True))
    assert all(t.shape == (1,) for t in toks)
    cond, unc = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    assert torch.allclose(guide(cond, unc, 3.0), torch.tensor([[1.0, 6.0]]))
    assert guide(cond, unc, 1.0) is cond


def test_filters():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    k = filter_logits(logits, top_k=2)
    assert torch.isfinite(k).sum() == 2
    p = filter_logits(logits, top_p=0.5)
    assert torch.isfinite(p[0, 0]) and torch.isinf(p[0, -1])
    g = torch.Generator().manual_seed(0)
    draws = {int(sample(logits, SamplingParams(temperature=1.0, top_k=2), g)) for _ in range(50)}
    assert draws <= {0, 1} and len(draws) == 2


@pytest.mark.parametrize("bad", [{"temperature": -1}, {"top_p": 0}, {"top_k": -2}, {"guidance": 100}])
def test_sampling_params_are_checked(bad):
    with pytest.raises(ValueError):
        SamplingParams(**bad)


def test_speculative_greedy_is_identical_and_saves_forwards():
    m = tiny()
    prompt = torch.randint(0, 50, (1, 6))
    plain = [int(t) for t in generate(m, prompt, 60, SamplingParams(temperature=0.0))]
    drafter = NGramDrafter(n=4, corpus=[prompt[0].tolist() + plain])  # a corpus that knows the answer
    stats = {}
    spec = list(speculative_generate(m, prompt, 60, drafter, k=4, stats=stats))
    assert spec == plain
    assert stats["forwards"] < 60 / 2
    bad_drafter = NGramDrafter(n=3, corpus=[[1, 2, 3, 4, 5] * 10])  # drafts that are mostly wrong
    assert list(speculative_generate(m, prompt, 60, bad_drafter, k=4)) == plain


def test_speculative_sampling_keeps_the_target_distribution():
    """accept_or_resample(draft) must draw tokens exactly as plain sampling would, whatever the draft."""
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0, 0.0])
    p = SamplingParams(temperature=0.8, top_p=0.9)
    from models.common.sampling import filter_logits
    target = filter_logits(logits[None] / 0.8, 0, 0.9).softmax(-1)[0]
    gen = torch.Generator().manual_seed(0)
    n = 20000
    for draft in (0, 2, 3):  # a likely draft, an unlikely one, one outside the nucleus
        counts = torch.zeros(5)
        kept = 0
        for _ in range(n):
            tok, ok = accept_or_resample(logits, draft, p, gen)
            counts[tok] += 1
            kept += ok
            assert ok == (tok == draft)
        assert torch.allclose(counts / n, target, atol=0.012), (draft, counts / n, target)
        assert abs(kept / n - float(target[draft])) < 0.012
    assert accept_or_resample(logits, 1, SamplingParams(temperature=0.0), None) == (0, False)
    assert accept_or_resample(logits, 0, SamplingParams(temperature=0.0), None) == (0, True)


def test_int8_linear_keeps_greedy_decoding_close():
    from models.common.quant import int8_linear

    m = tiny()
    q, ok = int8_linear(m)
    assert ok and q is not m
    assert not any(type(x) is torch.nn.Linear for x in q.modules())  # every Linear swapped
    assert any(type(x) is torch.nn.Linear for x in m.modules())  # the float model is untouched
    prompt = torch.randint(0, 50, (1, 6))
    with torch.inference_mode():
        m.setup_cache(1, 8)
        q.setup_cache(1, 8)
        a = m(prompt, input_pos=torch.arange(6))
        b = q(prompt, input_pos=torch.arange(6))
    assert torch.allclose(a, b, atol=0.05 * float(a.abs().max()))


def _naive_greedy(m, prompt, n, window=None, sink=0):
    """Greedy decoding by recomputing a full forward pass (no cache) for every token. With a
    rolling `window`, the pass sees what a StreamingLLM cache holds: the `sink` first tokens and
    the last `window` ones, as one contiguous sequence."""
    m.clear_cache()
    seq = prompt
    with torch.inference_mode():
        for _ in range(n):
            ctx = seq if window is None or seq.shape[1] <= sink + window else torch.cat([seq[:, :sink], seq[:, -window:]], 1)
            seq = torch.cat([seq, m(ctx)[:, -1].argmax(-1, keepdim=True)], 1)
    return seq[:, prompt.shape[1]:]


@pytest.mark.timeout(60)
def test_decode_loop_gives_the_greedy_tokens_of_a_full_recompute():
    torch.manual_seed(1)
    m = Transformer(TransformerConfig(vocab_size=300, n_layer=3, n_head=4, d_model=64, max_seq_len=128)).eval()
    prompt = torch.randint(0, 300, (2, 7))
    toks = torch.stack(list(generate(m, prompt, 60, SamplingParams(temperature=0.0))), 1)
    assert torch.equal(toks, _naive_greedy(m, prompt, 60))
    # the same through the rolling cache (positions past max_seq_len take the exact RoPE path)
    m.setup_cache(2, window=200, sink=4)
    rolled = torch.stack(list(generate(m, prompt, 60, SamplingParams(temperature=0.0), setup_cache=False)), 1)
    assert torch.equal(rolled, toks)


@pytest.mark.timeout(60)
def test_decode_loop_past_a_rolling_window_wrap_matches_a_full_recompute():
    # one layer: a cached key depends on its own token only, so after the window wraps the cache
    # must give exactly what a fresh pass over [sinks + last window] gives (see the test above)
    torch.manual_seed(2)
    m = Transformer(TransformerConfig(vocab_size=64, n_layer=1, n_head=4, d_model=64, max_seq_len=64)).eval()
    prompt = torch.randint(0, 64, (1, 5))
    m.setup_cache(1, window=12, sink=4)
    toks = torch.stack(list(generate(m, prompt, 70, SamplingParams(temperature=0.0), setup_cache=False)), 1)
    assert int(m.blocks[0].attn.kv_cache.slot_pos.max()) == 5 + 70 - 2  # wrapped several times
    assert torch.equal(toks, _naive_greedy(m, prompt, 70, window=12, sink=4))


@pytest.mark.timeout(60)
def test_decode_step_is_bit_identical_to_the_reference_formulas():
    """The decode path spells RMSNorm and RoPE out with fewer ops; they must equal F.rms_norm and
    apply_rope exactly, so greedy (and seeded sampled) outputs are unchanged."""
    from models.common.transformer import RMSNorm, apply_rope, rope_angles, rope_rotation, rotate_

    torch.manual_seed(3)
    x = torch.randn(3, 5, 96) * 4
    norm = RMSNorm(96)
    norm.weight.data.normal_()
    with torch.inference_mode():
        assert torch.equal(norm(x), torch.nn.functional.rms_norm(x, (96,), norm.weight, norm.eps))
        cos, sin = rope_angles(torch.arange(100, 105), 32, 10000.0)
        q = torch.randn(2, 3, 4, 5, 32)
        ref = apply_rope(q, cos, sin)
        assert torch.equal(rotate_(q.clone(), *rope_rotation(cos, sin)), ref)


@pytest.mark.timeout(60)
def test_kv_cache_views_follow_the_buffer_when_moved():
    m = tiny()
    m.setup_cache(1, 16)
    m.double()  # after setup: the cache moves with the model, k and v stay views of its buffer
    cache = m.blocks[0].attn.kv_cache
    assert cache.k.dtype == torch.float64 and cache.k.data_ptr() == cache.kv[0].data_ptr()
    x = torch.randint(0, 50, (1, 10))
    with torch.inference_mode():
        step = [m(x[:, :6], input_pos=torch.arange(6))]
        step += [m(x[:, i:i + 1], input_pos=torch.tensor([i])) for i in range(6, 10)]
        m.clear_cache()
        full = m(x)
    assert torch.allclose(full, torch.cat(step, 1), atol=1e-9)


@pytest.mark.timeout(60)
def test_a_model_that_decoded_can_still_train():
    # the RoPE table is built on first use, often under inference_mode; autograd must accept it
    m = tiny()
    x = torch.randint(0, 50, (2, 12))
    list(generate(m, x[:, :3], 4, SamplingParams(temperature=0.0)))
    m.clear_cache()
    m.train()
    m(x).square().mean().backward()
    assert all(p.grad is not None for p in m.blocks[0].parameters())
