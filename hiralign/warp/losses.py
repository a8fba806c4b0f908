"""Terms of the warp objective L_warp (Eq. 20) on (3, H, W) RGB tensors.

The guide g is fixed during the optimisation, so everything that depends on g alone
(its SSIM statistics, its histogram bins, its entropy) is computed once in
:class:`GuideTerms` and reused every iteration.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over size×size windows of every channel of (C, H, W), 'valid' borders.

    The uniform window is scikit-image's default SSIM window. Two depthwise 1-D
    convolutions beat average pooling (≈5×) and shifted-slice sums (≈2.5×) on a CPU,
    forward plus backward.
    """
    c = x.shape[0]
    taps = x.new_full((c, 1, 1, size), 1.0 / size)
    out = F.conv2d(x[None], taps, groups=c)
    return F.conv2d(out, taps.view(c, 1, size, 1), groups=c)[0]


def patch_weights(height: int, width: int, patch: int, device) -> torch.Tensor:
    """(H, W) weights making Σ w·|e| the mean ℓ1 over all unfolded valid p×p patches.

    A pixel enters as many patches as fit around it; the weights count them and divide
    by (number of patches · p²), so no (H·W, p²) unfold is ever built.
    """
    def counts(n: int) -> torch.Tensor:
        i = torch.arange(n, device=device)
        lo = torch.clamp(i - patch + 1, min=0)
        hi = torch.clamp(i, max=n - patch)
        return (hi - lo + 1).clamp(min=0).float()

    n_patches = max(height - patch + 1, 1) * max(width - patch + 1, 1)
    return counts(height)[:, None] * counts(width)[None, :] / (n_patches * patch * patch)


class GuideTerms:
    """Everything about the guide g the losses need, computed once.

    Args:
        guide: (3, H, W) guide RGB in [0, 1].
        patch: side of the L_patch patches.
        ssim_window: side of the uniform SSIM window.
        mi_bins: histogram bins of the mutual information.
    """

    def __init__(self, guide: torch.Tensor, patch: int, ssim_window: int, mi_bins: int) -> None:
        self.guide = guide
        _, height, width = guide.shape
        self.patch_w = patch_weights(height, width, patch, guide.device) if min(height, width) >= patch else None
        self.ssim_window = ssim_window
        self.ssim_ok = min(height, width) >= ssim_window
        if self.ssim_ok:
            self.mu_g = box_mean(guide, ssim_window)
            self.var_g = box_mean(guide * guide, ssim_window) - self.mu_g ** 2
        self.grad_y = guide[:, 1:] - guide[:, :-1]
        self.grad_x = guide[:, :, 1:] - guide[:, :, :-1]
        self.bins = mi_bins
        self.g_lo, self.g_frac = _bin_positions(guide, mi_bins)
        self.g_lo = self.g_lo.detach()
        self.g_frac = self.g_frac.detach()
        # I(g; g) under the same soft binning: the loss is 0 when r̃ = g. (It is below H(g)
        # because every value is spread over two bins.)
        self.self_information = torch.stack([_soft_mutual_information(
            self.g_lo[c].reshape(-1), self.g_frac[c].reshape(-1), self.g_lo[c].reshape(-1),
            self.g_frac[c].reshape(-1), mi_bins)[0] for c in range(3)])


def _soft_mutual_information(r_lo: torch.Tensor, r_frac: torch.Tensor, g_lo: torch.Tensor,
                             g_frac: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """I(r; g) from linear-Parzen joint histograms of flat bin positions.

    Returns:
        (I in nats, D = log(P / (P_r P_g)) flattened (bins²,), the gradient table).
    """
    base = r_lo * bins + g_lo
    w_lo, w_hi = 1.0 - r_frac, r_frac
    size = bins * bins
    joint = (torch.bincount(base, w_lo * (1.0 - g_frac), minlength=size)
             + torch.bincount(base + 1, w_lo * g_frac, minlength=size)
             + torch.bincount(base + bins, w_hi * (1.0 - g_frac), minlength=size)
             + torch.bincount(base + bins + 1, w_hi * g_frac, minlength=size))
    p = (joint / r_lo.numel()).view(bins, bins)
    table = torch.log(p.clamp_min(1e-12)) - torch.log((p.sum(1, keepdim=True) * p.sum(0, keepdim=True))
                                                    .clamp_min(1e-12))
    return (p * table).sum(), table.reshape(-1)


def _bin_positions(x: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower bin index and linear (triangular Parzen) weight of each value in [0, 1]."""
    pos = x.clamp(0.0, 1.0) * (bins - 1)
    lo = pos.detach().floor().clamp(max=bins - 2).long()
    return lo, pos - lo


def l1(rt: torch.Tensor, terms: GuideTerms) -> torch.Tensor:
    return (rt - terms.guide).abs().mean()


def patch_l1(rt: torch.Tensor, terms: GuideTerms) -> torch.Tensor:
    """Mean ℓ1 between the unfolded p×p patches of r̃ and g (L_patch)."""
    if terms.patch_w is None:
        return l1(rt, terms)
    return ((rt - terms.guide).abs() * terms.patch_w).sum() / rt.shape[0]


def ssim_loss(rt: torch.Tensor, terms: GuideTerms) -> torch.Tensor:
    """1 − mean SSIM over channels (uniform window, data range 1, valid borders)."""
    if not terms.ssim_ok:
        return rt.new_zeros(())
    mu = box_mean(rt, terms.ssim_window)
    stats = box_mean(torch.cat([rt * rt, rt * terms.guide]), terms.ssim_window)
    var = stats[:3] - mu * mu
    cov = stats[3:] - mu * terms.mu_g
    num = (2 * mu * terms.mu_g + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu * mu + terms.mu_g ** 2 + SSIM_C1) * (var + terms.var_g + SSIM_C2)
    return 1.0 - (num / den).mean()


def gradient_l1(rt: torch.Tensor, terms: GuideTerms) -> torch.Tensor:
    """‖∇r̃ − ∇g‖₁ with forward differences (mean over both directions)."""
    gy = (rt[:, 1:] - rt[:, :-1] - terms.grad_y).abs().mean()
    gx = (rt[:, :, 1:] - rt[:, :, :-1] - terms.grad_x).abs().mean()
    return 0.5 * (gy + gx)


class _MutualInformation(torch.autograd.Function):
    """Σ_c (1 − I(r̃_c; g_c) / I(g_c; g_c)) / C from linear-Parzen joint histograms.

    Each value is spread over its two nearest bins with linear (triangular Parzen)
    weights. Histograms are bincounts and the gradient is written out:
    ∂I/∂x_u = (bins−1)/N · Σ_j w_g(u, j) (D[lo+1, j] − D[lo, j]) with
    D = log(P / (P_r P_g)); the g marginal does not depend on r̃. This avoids the
    autograd graph of index_add (≈3× faster on a CPU).
    """

    @staticmethod
    def forward(ctx, rt: torch.Tensor, terms: GuideTerms) -> torch.Tensor:
        bins = terms.bins
        flat = rt.detach().reshape(3, -1)
        inside = (flat > 0) & (flat < 1)
        lo, frac = _bin_positions(flat, bins)
        channels = [c for c in range(3) if terms.self_information[c] > 1e-6]
        loss = rt.new_zeros(())
        tables = []
        for c in channels:
            mi, table = _soft_mutual_information(lo[c], frac[c], terms.g_lo[c].reshape(-1),
                                                 terms.g_frac[c].reshape(-1), bins)
            loss = loss + (1.0 - mi / terms.self_information[c])
            tables.append(table)
        ctx.terms, ctx.channels = terms, channels
        ctx.save_for_backward(lo, inside, *tables)
        return loss / max(len(channels), 1)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        lo, inside, *tables = ctx.saved_tensors
        terms = ctx.terms
        bins = terms.bins
        grad = torch.zeros(lo.shape, dtype=terms.guide.dtype, device=lo.device)
        scale = grad_out * (bins - 1) / (lo.shape[1] * max(len(ctx.channels), 1))
        for table, c in zip(tables, ctx.channels):
            gf = terms.g_frac[c].reshape(-1)
            base = lo[c] * bins + terms.g_lo[c].reshape(-1)
            d_lo = table[base] * (1.0 - gf) + table[base + 1] * gf
            d_hi = table[base + bins] * (1.0 - gf) + table[base + bins + 1] * gf
            grad[c] = (d_lo - d_hi) * (scale / terms.self_information[c])  # ∂(−I/I_gg)/∂x
        grad.mul_(inside)
        return grad.view(3, *terms.guide.shape[1:]), None


def mutual_information_loss(rt: torch.Tensor, terms: GuideTerms) -> torch.Tensor:
    """1 − I(r̃; g) / I(g; g), averaged over the channels where g is not constant."""
    return _MutualInformation.apply(rt, terms)


def mutual_information_reference(rt: torch.Tensor, terms: GuideTerms) -> torch.Tensor:
    """The same loss through autograd (index_add); slow, kept to test the fast one."""
    bins = terms.bins
    lo, frac = _bin_positions(rt, bins)
    lo, frac = lo.view(3, -1), frac.view(3, -1)
    g_lo, g_frac = terms.g_lo.view(3, -1), terms.g_frac.view(3, -1)
    losses = []
    for c in range(3):
        if terms.self_information[c] <= 1e-6:
            continue
        joint = rt.new_zeros(bins * bins)
        for r_off, r_w in ((0, 1 - frac[c]), (1, frac[c])):
            for g_off, g_w in ((0, 1 - g_frac[c]), (1, g_frac[c])):
                joint = joint.index_add(0, (lo[c] + r_off) * bins + g_lo[c] + g_off, r_w * g_w)
        p = (joint / lo.shape[1]).view(bins, bins)
        ratio = p.clamp_min(1e-12) / (p.sum(1, keepdim=True) * p.sum(0, keepdim=True)).clamp_min(1e-12)
        losses.append(1.0 - (p * torch.log(ratio)).sum() / terms.self_information[c])
    return torch.stack(losses).mean() if losses else rt.new_zeros(())


def smoothness(coords_norm: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation of the normalised coordinate field ĉ (2, H, W).

    ℓ1 TV does not penalise a smooth monotone map (a shift, zoom or flip costs only its
    end-to-end extent) but does penalise jumps between unrelated proxy regions.
    """
    dy = (coords_norm[:, 1:] - coords_norm[:, :-1]).abs().sum(0).mean()
    dx = (coords_norm[:, :, 1:] - coords_norm[:, :, :-1]).abs().sum(0).mean()
    return dy + dx


def normalise_distances(dist: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """d̂ = d / (mean d + ε) (Eq. 21)."""
    return dist / (dist.mean() + eps)

