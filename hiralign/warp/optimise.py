"""RGB-guided estimation of the aggregation and interpolation weights (Eqs. 14–21).

Learnable aggregation logits ℓ (K, H, W) and interpolation logits m (s², H, W) are fitted
with Adam so that r̃ = interp_m(Σ_k softmax(ℓ/τ)_k r(v_k)) matches the guide g under the
weighted objective of Eq. 20.

The two big operators have hand-written gradients (:mod:`hiralign.warp.model`) that write
into buffers kept for the whole run; autograd only differentiates the losses with respect
to the small (3, H, W) image r̃ and the (3, H, W) auxiliary fields. At 512² this avoids
re-allocating (and page-faulting) ~70 MB of planes every iteration.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from hiralign.progress import Progress, preview_image
from hiralign.warp import losses as L
from hiralign.warp.config import WarpConfig
from hiralign.warp.model import pad_image, pool_backward, pool_forward, softmax_planes, taps_backward, taps_forward


@dataclasses.dataclass
class Fitted:
    """The optimised transport parameters (tensors on the optimisation device).

    Attributes:
        weights: (K, H, W) aggregation weights a* (Eq. 22).
        kernel: (s², H, W) interpolation weights b* (Eq. 22).
        transported: (3, H, W) r̃ at the optimum.
        coords: (2, H, W) expected proxy coordinates c (row, col) in pixels (Eq. 18).
        loss_terms: the last value of every active term of Eq. 20.
        loss_history: L_warp after every iteration.
    """

    weights: torch.Tensor
    kernel: torch.Tensor
    transported: torch.Tensor
    coords: torch.Tensor
    loss_terms: dict
    loss_history: list


def initial_logits(dist_norm: torch.Tensor, config: WarpConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """ℓ₀ = −scale·τ·d̂ (closer candidates start heavier); m₀ peaked at the stencil centre."""
    _, height, width = dist_norm.shape
    agg = -config.init_distance_scale * config.temperature * dist_norm
    taps = config.stencil ** 2
    interp = torch.zeros((taps, height, width), dtype=dist_norm.dtype, device=dist_norm.device)
    interp[taps // 2] = config.init_kernel_peak
    return agg.contiguous(), interp


class WarpObjective:
    """L_warp of Eq. 20 for one proxy/guide pair, with its gradient.

    Args:
        cand_rgb: (K, 3, H, W) proxy RGB at every candidate.
        cand_coords: (2, K, H, W) candidate (row, col) coordinates in pixels.
        dist_norm: (K, H, W) normalised descriptor distances d̂.
        guide: (3, H, W) guide RGB.
        config: the loss weights and options.
    """

    def __init__(self, cand_rgb: torch.Tensor, cand_coords: torch.Tensor, dist_norm: torch.Tensor,
                 guide: torch.Tensor, config: WarpConfig) -> None:
        self.config = config
        k, _, height, width = cand_rgb.shape
        # Everything linear in the aggregation weights is pooled in one pass: RGB (Eq. 15),
        # then the normalised coordinates ĉ (Eq. 18) and d̂ (Eq. 21) when their terms are on.
        parts = [cand_rgb]
        if config.w_smooth > 0:
            parts += [(cand_coords[0] / height)[:, None], (cand_coords[1] / width)[:, None]]
        if config.w_dist > 0:
            parts.append(dist_norm[:, None])
        self.values = torch.cat(parts, dim=1).contiguous()
        self.terms = L.GuideTerms(guide, config.loss_patch, config.ssim_window, config.mi_bins)
        weighted = {
            "l1": (config.w_l1, L.l1), "patch": (config.w_patch, L.patch_l1),
            "mi": (config.w_mi, L.mutual_information_loss), "ssim": (config.w_ssim, L.ssim_loss),
            "grad": (config.w_grad, L.gradient_l1),
        }
        self.image_terms = {name: wf for name, wf in weighted.items() if wf[0] > 0}
        taps = config.stencil ** 2
        half = config.stencil // 2
        new = dict(dtype=cand_rgb.dtype, device=cand_rgb.device)
        # Buffers reused by every iteration.
        self.agg_weights = torch.empty((k, height, width), **new)
        self.interp_weights = torch.empty((taps, height, width), **new)
        self.pooled = torch.empty((self.values.shape[1], height, width), **new)
        self.transported = torch.empty((3, height, width), **new)
        self.grad_pad = torch.empty((3, height + 2 * half, width + 2 * half), **new)

    def losses(self, rt: torch.Tensor, aux: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """L_warp from r̃ (3, H, W) and the pooled auxiliary fields aux ([ĉ,] [Σ a d̂])."""
        cfg = self.config
        terms = {name: fn(rt, self.terms) for name, (_, fn) in self.image_terms.items()}
        total = sum(self.image_terms[name][0] * value for name, value in terms.items())
        channel = 0
        if cfg.w_smooth > 0:
            terms["smooth"] = L.smoothness(aux[0:2])
            total = total + cfg.w_smooth * terms["smooth"]
            channel = 2
        if cfg.w_dist > 0:
            terms["dist"] = aux[channel].mean()  # L_dist (Eq. 21): mean over pixels of Σ_k a d̂
            total = total + cfg.w_dist * terms["dist"]
        return total, terms

    @torch.no_grad()
    def forward(self, agg_logits: torch.Tensor, interp_logits: torch.Tensor) -> torch.Tensor:
        """Fill the buffers (a, b, pooled fields, r̃) for the given logits; returns the padded r̄."""
        cfg = self.config
        logits = agg_logits / cfg.temperature if cfg.temperature != 1.0 else agg_logits
        softmax_planes(logits, out=self.agg_weights)
        pool_forward(self.agg_weights, self.values, self.pooled)
        padded = pad_image(self.pooled[:3], cfg.stencil // 2, cfg.boundary)
        softmax_planes(interp_logits, out=self.interp_weights)
        taps_forward(self.interp_weights, padded, self.transported)
        return padded

    def step(self, agg_logits: torch.nn.Parameter, interp_logits: torch.nn.Parameter) -> tuple[float, dict]:
        """Evaluate L_warp and write its gradients into ``agg_logits.grad`` / ``interp_logits.grad``."""
        padded = self.forward(agg_logits, interp_logits)
        rt = self.transported.detach().requires_grad_(True)
        aux = self.pooled[3:].detach().requires_grad_(True)
        total, terms = self.losses(rt, aux)
        total.backward()
        with torch.no_grad():
            self.grad_pad.zero_()
            taps_backward(self.interp_weights, padded, rt.grad, interp_logits.grad, self.grad_pad)
        rbar = self.pooled[:3].detach().requires_grad_(True)
        # ∂L/∂r̄: fold the padded gradient back through π (tiny: three planes).
        pad_image(rbar, self.config.stencil // 2, self.config.boundary).backward(self.grad_pad)
        with torch.no_grad():
            grad_pooled = torch.cat([rbar.grad, aux.grad]) if aux.shape[0] else rbar.grad
            pool_backward(self.agg_weights, self.values, grad_pooled, agg_logits.grad, self.config.temperature)
        return float(total.detach()), terms


def fit(candidates: np.ndarray, distances: np.ndarray, proxy_rgb: np.ndarray, guide: np.ndarray,
        config: WarpConfig, device: torch.device, progress: Progress) -> Fitted:
    """Optimise (ℓ, m) with Adam (Eq. 19).

    Args:
        candidates: (H·W, K) int flat proxy indices v_{u,k}.
        distances: (H·W, K) descriptor distances d_{u,k}.
        proxy_rgb: (H, W, 3) r.
        guide: (H, W, 3) g.
        config: iterations, learning rate, loss weights, initialisation.
        device: where the tensors live.
        progress: reports each iteration, previews r̃, checks for cancellation.
    """
    height, width = guide.shape[:2]
    k = candidates.shape[1]
    cand = torch.from_numpy(np.ascontiguousarray(candidates.T.reshape(k, height, width))).to(device).long()
    r_flat = torch.from_numpy(np.ascontiguousarray(proxy_rgb.reshape(-1, 3).T)).to(device)
    cand_rgb = r_flat[:, cand].permute(1, 0, 2, 3).contiguous()  # (K, 3, H, W)
    cand_coords = torch.stack([torch.div(cand, width, rounding_mode="floor"), cand % width]).float()
    del cand
    dist = torch.from_numpy(np.ascontiguousarray(distances.T.reshape(k, height, width))).to(device)
    dist_norm = L.normalise_distances(dist.float())
    guide_t = torch.from_numpy(np.ascontiguousarray(guide.transpose(2, 0, 1))).to(device)
    objective = WarpObjective(cand_rgb, cand_coords, dist_norm, guide_t, config)
    del cand_rgb

    agg0, interp0 = initial_logits(dist_norm, config)
    agg_logits = torch.nn.Parameter(agg0)
    interp_logits = torch.nn.Parameter(interp0)
    agg_logits.grad = torch.zeros_like(agg0)  # written in place by every step, never reallocated
    interp_logits.grad = torch.zeros_like(interp0)
    optimiser = Adam([agg_logits, interp_logits], config.learning_rate)
    history: list[float] = []
    for it in range(config.iterations):
        progress.check()
        value, _ = objective.step(agg_logits, interp_logits)
        if not math.isfinite(value):
            raise FloatingPointError(f"warp loss became {value} at iteration {it + 1}")
        optimiser.step()
        history.append(value)
        progress.report(it + 1, config.iterations, f"warp iteration {it + 1}/{config.iterations} "
                                                   f"loss {value:.4f}")
        if (it + 1) % config.preview_every == 0:
            progress.preview("warp_rgb", preview_image(
                objective.transported.permute(1, 2, 0).clamp(0, 1).cpu().numpy()))
    objective.forward(agg_logits, interp_logits)
    with torch.no_grad():
        total, terms = objective.losses(objective.transported, objective.pooled[3:])
        weights = objective.agg_weights
        coords = torch.stack([(weights * cand_coords[0]).sum(0), (weights * cand_coords[1]).sum(0)])
    return Fitted(weights=weights, kernel=objective.interp_weights, transported=objective.transported,
                  coords=coords, loss_terms={name: float(v) for name, v in terms.items()} | {"total": float(total)},
                  loss_history=history)


class Adam:
    """Adam (Kingma & Ba) on a few large tensors whose ``.grad`` is written in place.

    Uses ATen's fused kernel (the one behind ``torch.optim.Adam(fused=True)``, one pass
    over the four arrays) and a plain in-place update where that kernel is missing. Not
    ``torch.optim`` itself: its first construction imports torch._dynamo, several
    seconds that a CLI warp of a small image would mostly spend waiting.
    """

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = params
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in params]
        self.fused = hasattr(torch, "_fused_adam_")

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        grads = [p.grad for p in self.params]
        if self.fused:
            try:
                torch._foreach_add_(self.steps, 1)
                torch._fused_adam_(self.params, grads, self.exp_avg, self.exp_avg_sq, [], self.steps,
                                   lr=self.lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=self.eps,
                                   amsgrad=False, maximize=False)
                return
            except (RuntimeError, TypeError):  # no fused kernel for this device/dtype: plain update
                torch._foreach_add_(self.steps, -1)
                self.fused = False
        for p, g, m, v, t in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, self.steps):
            t.add_(1)
            step = float(t)
            m.lerp_(g, 1.0 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            denom = (v / (1.0 - beta2 ** step)).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1.0 - beta1 ** step))
