"""The forward model of the warp: soft aggregation (Eq. 15) and local interpolation (Eq. 17).

Shapes follow the image: aggregation weights a are (K, H, W), interpolation weights b
are (s², H, W) with the stencil offsets η in row-major order from (−⌊s/2⌋, −⌊s/2⌋) to
(⌊s/2⌋, ⌊s/2⌋). Both the RGB during optimisation and every spectral band at transfer go
through the same two functions, which is what makes ỹ = T p and r̃ = T r share T.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_PAD_MODES = {"clamp": "replicate", "reflect": "reflect"}


def stencil_offsets(stencil: int) -> list[tuple[int, int]]:
    """Offsets η = (dy, dx) of the s × s stencil in row-major order."""
    half = stencil // 2
    return [(dy, dx) for dy in range(-half, half + 1) for dx in range(-half, half + 1)]


def pad_image(x: torch.Tensor, half: int, boundary: str) -> torch.Tensor:
    """Pad (C, H, W) by ``half`` with the boundary rule π ("clamp" or "reflect")."""
    return F.pad(x[None], (half, half, half, half), mode=_PAD_MODES[boundary])[0]


def boundary_index(index: torch.Tensor, size: int, boundary: str) -> torch.Tensor:
    """π applied to integer coordinates along one axis of length ``size``."""
    if boundary == "clamp":
        return index.clamp(0, size - 1)
    period = 2 * (size - 1) if size > 1 else 1
    folded = torch.remainder(index, period)
    return torch.where(folded >= size, period - folded, folded)


def softmax_planes(logits: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over dim 0 of (n, H, W), written into ``out`` when given.

    Written out (and into a reused buffer in the optimisation loop) because fresh
    50 MB results cost page faults on every call on a CPU.
    """
    if out is None:
        out = torch.empty_like(logits)
    torch.sub(logits, logits.amax(dim=0, keepdim=True), out=out)
    out.exp_()
    return out.div_(out.sum(dim=0, keepdim=True))


def taps_forward(weights: torch.Tensor, padded: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out(u) = Σ_η b_η(u) · x(u + η): weights (s², H, W), padded x (C, H+2h, W+2h), out (C, H, W).

    One in-place multiply-add per tap on plane views: several times faster on a CPU than
    an unfolded (C, s², H, W) tensor or broadcast products, and no big temporaries.
    """
    taps, height, width = weights.shape
    stencil = int(round(taps ** 0.5))
    out.zero_()
    for i in range(taps):
        dy, dx = divmod(i, stencil)
        out.addcmul_(padded[:, dy:dy + height, dx:dx + width], weights[i])
    return out


def taps_backward(weights: torch.Tensor, padded: torch.Tensor, grad_out: torch.Tensor,
                  grad_logits: torch.Tensor, grad_pad: torch.Tensor | None) -> None:
    """Gradients of :func:`taps_forward` composed with the softmax of Eq. 16.

    Writes ∂L/∂m into ``grad_logits`` (s², H, W) and adds ∂L/∂x into ``grad_pad``
    (C, H+2h, W+2h) when given.
    """
    taps, height, width = weights.shape
    stencil = int(round(taps ** 0.5))
    grad_out = grad_out.contiguous()
    weighted_sum = torch.zeros_like(weights[0])  # Σ_η b_η ∂L/∂b_η
    for i in range(taps):
        dy, dx = divmod(i, stencil)
        window = padded[:, dy:dy + height, dx:dx + width]
        plane = grad_logits[i]  # ∂L/∂b_η first
        torch.mul(window[0], grad_out[0], out=plane)
        for c in range(1, window.shape[0]):
            plane.addcmul_(window[c], grad_out[c])
        weighted_sum.addcmul_(plane, weights[i])
        if grad_pad is not None:
            grad_pad[:, dy:dy + height, dx:dx + width].addcmul_(grad_out, weights[i])
    grad_logits.sub_(weighted_sum).mul_(weights)  # ∂m = b ⊙ (∂b − Σ_η b_η ∂b_η)


def pool_forward(weights: torch.Tensor, values: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out = Σ_k a_k ⊙ values_k: weights (K, H, W), values (K, C, H, W), out (C, H, W)."""
    out.zero_()
    for k in range(values.shape[0]):
        out.addcmul_(values[k], weights[k])
    return out


def pool_backward(weights: torch.Tensor, values: torch.Tensor, grad_out: torch.Tensor,
                  grad_logits: torch.Tensor, temperature: float = 1.0) -> None:
    """Writes ∂L/∂ℓ of :func:`pool_forward` after a = softmax(ℓ/τ) into ``grad_logits``."""
    grad_out = grad_out.contiguous()
    weighted_sum = torch.zeros_like(weights[0])
    for k in range(values.shape[0]):
        plane = grad_logits[k]  # ∂L/∂a_k first
        torch.mul(values[k, 0], grad_out[0], out=plane)
        for c in range(1, values.shape[1]):
            plane.addcmul_(values[k, c], grad_out[c])
        weighted_sum.addcmul_(plane, weights[k])
    grad_logits.sub_(weighted_sum).mul_(weights)
    if temperature != 1.0:
        grad_logits.div_(temperature)


class LocalInterpolation(torch.autograd.Function):
    """r̃(u) = Σ_η softmax(m_u)_η · x(π(u + η)) for a padded (C, H+2h, W+2h) image x (Eq. 17)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, padded: torch.Tensor) -> torch.Tensor:
        _, height, width = logits.shape
        weights = softmax_planes(logits)
        out = taps_forward(weights, padded, padded.new_empty((padded.shape[0], height, width)))
        ctx.save_for_backward(weights, padded)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        weights, padded = ctx.saved_tensors
        grad_logits = torch.empty_like(weights)
        grad_pad = torch.zeros_like(padded) if ctx.needs_input_grad[1] else None
        taps_backward(weights, padded, grad_out, grad_logits, grad_pad)
        return grad_logits, grad_pad


def interpolate(logits: torch.Tensor, x: torch.Tensor, boundary: str) -> torch.Tensor:
    """Differentiable local interpolation of (C, H, W) ``x`` with logits m (s², H, W)."""
    stencil = int(round(logits.shape[0] ** 0.5))
    return LocalInterpolation.apply(logits, pad_image(x, stencil // 2, boundary))


class SoftAggregate(torch.autograd.Function):
    """Σ_k softmax(ℓ/τ)_k · values_k for logits ℓ (K, H, W) and fixed values (K, C, H, W) (Eq. 15)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, values: torch.Tensor, temperature: float) -> torch.Tensor:
        weights = softmax_planes(logits / temperature)
        out = pool_forward(weights, values, values.new_empty(values.shape[1:]))
        ctx.save_for_backward(weights, values)
        ctx.temperature = temperature
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        weights, values = ctx.saved_tensors
        grad_logits = torch.empty_like(weights)
        pool_backward(weights, values, grad_out, grad_logits, ctx.temperature)
        return grad_logits, None, None


def aggregate(logits: torch.Tensor, values: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Differentiable soft aggregation: logits (K, H, W), values (K, C, H, W) → (C, H, W)."""
    return SoftAggregate.apply(logits, values, temperature)


@torch.no_grad()
def interpolate_fixed(weights: torch.Tensor, x: torch.Tensor, boundary: str,
                      chunk: int = 8) -> torch.Tensor:
    """Apply fixed interpolation weights b* (s², H, W) to (C, H, W) ``x`` (Eq. 24), in channel chunks."""
    stencil = int(round(weights.shape[0] ** 0.5))
    out = torch.empty_like(x)
    for start in range(0, x.shape[0], chunk):
        taps_forward(weights, pad_image(x[start:start + chunk], stencil // 2, boundary), out[start:start + chunk])
    return out


@torch.no_grad()
def aggregate_fixed(weights: torch.Tensor, candidates: torch.Tensor, source: torch.Tensor,
                    chunk: int = 8) -> torch.Tensor:
    """ȳ = Σ_k a*_k p(v_k) for a (C, H·W) source, gathering per channel chunk (Eq. 23).

    Args:
        weights: (K, H, W) aggregation weights a*.
        candidates: (K, H, W) int64 flat proxy indices v_{u,k}.
        source: (C, H·W) proxy values (RGB or spectral bands).

    Returns:
        (C, H, W).
    """
    k, height, width = weights.shape
    flat_idx = candidates.reshape(k, -1)
    flat_w = weights.reshape(k, -1)
    out = torch.empty((source.shape[0], height * width), dtype=source.dtype, device=source.device)
    for start in range(0, source.shape[0], chunk):
        part = source[start:start + chunk]
        acc = torch.zeros((part.shape[0], height * width), dtype=source.dtype, device=source.device)
        for j in range(k):
            acc.addcmul_(part[:, flat_idx[j]], flat_w[j])
        out[start:start + chunk] = acc
    return out.view(-1, height, width)
