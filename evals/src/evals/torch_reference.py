"""A PyTorch eager twin of `skipless_models.Transformer`, for the side-by-side speed comparison.

Imported only when torch is importable (it is never a project dependency). The twin is built from the
JAX model's own parameters, so the two compute the same function: `bench_step` checks that their
losses agree before timing anything, which keeps the comparison honest (same FLOPs, same variant).
SPA layers take their bias and row scale from `sigprop`'s float64 closed forms at the batch's length (from the
model's schedule numbers `spa_levels`), not from the JAX implementation, so the twin checks that too.

    x ← embed[tokens] (+ pos)
    block:  preln x + f(N x) | postln N(x + f x) | skipless_ln f(N x) | vanilla f x
    attn:   diag(d_l) softmax(QKᵀ/√K + B_l + mask) V W_O      (Value-SkipInit: (αI + βA) V W_O)
    mlp:    φ(x W_in + b_in) W_out + b_out
    logits = N(x) W_head;  loss = mean cross-entropy
"""

from __future__ import annotations

import math

import numpy as np
import sigprop
import torch
import torch.nn.functional as F

_EPS = 1e-6


def _tensor(x, *, grad: bool) -> torch.Tensor:
    t = torch.from_numpy(np.array(x, dtype=np.float32, copy=True))
    return torch.nn.Parameter(t) if grad else t


class TorchTransformer(torch.nn.Module):
    """Eager PyTorch forward pass of a `skipless_models.Transformer` (float32).

    **Arguments:** `model`: a `skipless_models.Transformer` (its parameters are copied; layer l of every
    stacked leaf becomes layer l here).
    """

    def __init__(self, model):
        super().__init__()
        cfg = model.config
        self.cfg = cfg
        self.heads, self.head_dim = cfg.heads, cfg.width // cfg.heads
        self.embed = _tensor(model.embed, grad=True)
        self.pos_embed = None if model.pos_embed is None else _tensor(model.pos_embed, grad=True)
        self.head = _tensor(model.head, grad=True)
        self.final_norm = None if model.final_norm is None else self._norm(model.final_norm, None)
        blocks = model.blocks
        self.layers = torch.nn.ModuleList()
        for layer in range(cfg.depth):
            m = torch.nn.Module()
            attn = blocks.attention
            m.w_qkv = _tensor(np.asarray(attn.w_qkv[layer]).reshape(cfg.width, -1), grad=True)
            m.w_o = _tensor(np.asarray(attn.w_o[layer]).reshape(-1, cfg.width), grad=True)
            if attn.skip_alpha is not None:
                m.skip_alpha = _tensor(attn.skip_alpha[layer], grad=True)
                m.skip_beta = _tensor(attn.skip_beta[layer], grad=True)
            if model.spa_levels is not None:
                m.spa_pair = (model.spa_levels[layer], model.spa_levels[layer + 1])
                m.spa_cache = {}
            if blocks.mlp is not None:
                for name in ("w_in", "b_in", "w_out", "b_out"):
                    setattr(m, name, _tensor(getattr(blocks.mlp, name)[layer], grad=True))
            m.norm_attention = None if blocks.norm_attention is None else self._norm(blocks.norm_attention, layer)
            m.norm_mlp = None if blocks.norm_mlp is None else self._norm(blocks.norm_mlp, layer)
            self.layers.append(m)
        self.act_alpha = blocks.mlp.alpha if blocks.mlp is not None else None

    @staticmethod
    def _norm(norm, layer):
        pick = (lambda a: a) if layer is None else (lambda a: a[layer])
        m = torch.nn.Module()
        m.kind = norm.kind
        m.gain = _tensor(pick(norm.gain), grad=True)
        m.bias = None if norm.bias is None else _tensor(pick(norm.bias), grad=True)
        return m

    # ----- pieces -----------------------------------------------------------------------------------
    @staticmethod
    def _apply_norm(m, x):
        if m.kind == "layernorm":
            return F.layer_norm(x, x.shape[-1:], m.gain, m.bias, _EPS)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + _EPS) * m.gain

    def _rope(self, x):  # [B, H, T, K]
        t, k = x.shape[-2], x.shape[-1]
        half = k // 2
        freqs = 10_000.0 ** (-torch.arange(half, dtype=torch.float32) / half)
        ang = torch.arange(t, dtype=torch.float32)[:, None] * freqs[None, :]
        cos, sin = torch.cos(ang), torch.sin(ang)
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    def _spa_bias_scale(self, m, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer `m`'s SPA bias `[t, t]` (−inf where masked) and row scale `[t]`, from sigprop (cached per t)."""
        if t not in m.spa_cache:
            kind, causal = self.cfg.attention, self.cfg.causal
            if kind == "espa":
                bias, scale = sigprop.espa_log_bias(t, *m.spa_pair), sigprop.espa_row_scale(t, *m.spa_pair)
            else:
                bias = sigprop.uspa_log_bias(t, *m.spa_pair, causal=causal)
                scale = sigprop.uspa_row_scale(t, *m.spa_pair, causal=causal)
            m.spa_cache[t] = (_tensor(bias, grad=False), _tensor(scale, grad=False))
        return m.spa_cache[t]

    def _attention(self, m, x):
        b, t, d = x.shape
        qkv = (x.reshape(b * t, d) @ m.w_qkv).view(b, t, self.heads, 3, self.head_dim)
        q, k, v = (qkv[:, :, :, i].transpose(1, 2) for i in range(3))  # [B, H, T, K]
        if self.cfg.position == "rope":
            q, k = self._rope(q), self._rope(k)
        if hasattr(m, "spa_pair"):
            mask, scale = self._spa_bias_scale(m, t)
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            heads = heads * scale[:, None]
        else:
            heads = F.scaled_dot_product_attention(q, k, v, is_causal=self.cfg.causal)
        if hasattr(m, "skip_alpha"):
            shape = (1, -1, 1, 1) if m.skip_alpha.dim() else ()
            heads = m.skip_alpha.reshape(shape) * v + m.skip_beta.reshape(shape) * heads
        heads = heads.transpose(1, 2).reshape(b * t, d)
        return (heads @ m.w_o).view(b, t, d)

    def _mlp(self, m, x):
        b, t, d = x.shape
        h = torch.addmm(m.b_in, x.reshape(b * t, d), m.w_in)
        act = self.cfg.mlp_activation
        if act == "gelu":
            h = F.gelu(h, approximate="tanh")
        elif act == "relu":
            h = F.relu(h)
        else:
            a = self.act_alpha
            h = math.sqrt(2.0 / (1.0 + a * a)) * F.leaky_relu(h, a)
        return torch.addmm(m.b_out, h, m.w_out).view(b, t, d)

    def _sub(self, f, norm, x):
        kind = self.cfg.block
        if kind == "preln":
            return x + f(self._apply_norm(norm, x))
        if kind == "postln":
            return self._apply_norm(norm, x + f(x))
        if kind == "skipless_ln":
            return f(self._apply_norm(norm, x))
        return f(x)

    # ----- forward ----------------------------------------------------------------------------------
    def forward(self, tokens_BxT: torch.Tensor) -> torch.Tensor:
        """**Arguments:** int64 `[B, T]`. **Returns:** float32 logits `[B, T, V]`."""
        x = self.embed[tokens_BxT]
        if self.pos_embed is not None:
            x = x + self.pos_embed[: tokens_BxT.shape[1]]
        for m in self.layers:
            x = self._sub(lambda y, m=m: self._attention(m, y), m.norm_attention, x)
            if self.cfg.use_mlp:
                x = self._sub(lambda y, m=m: self._mlp(m, y), m.norm_mlp, x)
        if self.final_norm is not None:
            x = self._apply_norm(self.final_norm, x)
        b, t, d = x.shape
        return (x.reshape(b * t, d) @ self.head).view(b, t, -1)

    def loss(self, tokens_BxTp1: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy of int64 `[B, T+1]` tokens. **Returns:** a scalar."""
        logits = self(tokens_BxTp1[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens_BxTp1[:, 1:].reshape(-1))


def make_torch_step(model, *, lr: float, weight_decay: float):
    """The eager PyTorch train step (forward, backward, AdamW) for the twin of `model`.

    **Arguments:** `model` (a `skipless_models.Transformer`), `lr`, `weight_decay`.

    **Returns:** `(step, loss_of)`: `step(tokens_BxTp1: np.ndarray) -> float loss` runs one optimiser
    step; `loss_of(tokens)` evaluates the loss without training (for the numerics check).
    """
    net = TorchTransformer(model)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)

    def step(tokens: np.ndarray) -> float:
        batch = torch.from_numpy(np.asarray(tokens, np.int64))
        opt.zero_grad(set_to_none=True)
        loss = net.loss(batch)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def loss_of(tokens: np.ndarray) -> float:
        with torch.no_grad():
            return float(net.loss(torch.from_numpy(np.asarray(tokens, np.int64))))

    return step, loss_of
