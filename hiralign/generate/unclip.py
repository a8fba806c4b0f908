"""``unclip``: the paper's improved unCLIP (Sec. III-B 1, Eqs. 5–8) on diffusers' Stable unCLIP.

The proxy RGB r_i is embedded by the CLIP vision encoder, z_I = E_clip(r_i); the fixed
positive/negative prompts give the text condition z_T; the UNet of
``StableUnCLIPImg2ImgPipeline`` denoises conditioned on both (Eq. 5: z_I enters as the
class embedding, z_T through cross-attention) with classifier-free guidance, each step
taking the DDPM/DDIM reverse mean of Eq. 6. The three modifications are switches:

* **Blur-robust encoder** (Eq. 7): ``clip_encoder`` names a folder written by
  ``hiralign clip-finetune``; it replaces the pipeline's ``image_encoder``.
* **Prompt guidance**: ``prompt`` / ``negative_prompt`` / ``guidance_scale``.
* **Initialisation from the proxy**, both readings of the paper:
  SDEdit (Eq. 8): r_i is VAE-encoded to x_0, noised with the scheduler to
  t_0 ≈ strength·T and only the remaining timesteps are run (``strength`` = 1 starts
  from pure noise, as plain unCLIP); and Gaussian-perturbed image embeddings
  (``noise_level``, Sec. IV-D), the pipeline's own embedding noising.

The pipeline's ``__call__`` (diffusers 0.42) has neither ``strength`` nor
``callback_on_step_end``, so this module drives the pipeline's own components and helper
methods (``encode_prompt``, ``noise_image_embeddings``, scheduler, UNet, VAE) in its own
loop: that is what SDEdit needs, and it reports progress and honours cancellation at
every denoising step. :meth:`UnCLIPConfig.original` gives plain unCLIP for ablations.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from typing import Any, Iterator

import numpy as np

from hiralign.errors import ConfigError, ModelError
from hiralign.generate.base import check_count, check_rgb, cpu_threads, finish_variation, variation_seeds
from hiralign.generate.unclip_weights import DEFAULT_MODEL_ID, LAYOUT_HELP, resolve_model
from hiralign.progress import Progress, as_progress

log = logging.getLogger(__name__)

DEFAULT_PROMPT = "a clean, sharp, detailed photograph"
DEFAULT_NEGATIVE_PROMPT = "blurry, noisy, low quality, artifacts"


@dataclasses.dataclass(frozen=True)
class UnCLIPConfig:
    """Settings of the improved unCLIP generator.

    Attributes:
        model: pipeline folder or hub id (default: the paper's
            ``stabilityai/stable-diffusion-2-1-unclip``; ``-small`` is lighter).
        local_files_only: never download; look in the folder or the HF cache only.
        variant: weight variant to load (e.g. "fp16"), None for the default files.
        clip_encoder: folder of a blur-robust CLIP vision encoder from
            ``hiralign clip-finetune``; None keeps the pipeline's encoder.
        prompt: positive prompt (z_T); "" for none.
        negative_prompt: negative prompt for classifier-free guidance; "" for none.
        guidance_scale: classifier-free guidance scale (≤ 1 switches guidance off).
        steps: denoising steps of the full schedule (SDEdit runs ≈ strength·steps).
        strength: SDEdit start t_0 = strength·T; 1 = start from pure noise. 0.8 keeps
            the proxy's layout (which the spectral warp then matches) while letting
            the model redraw textures and fine geometry.
        noise_level: Gaussian perturbation of the image embedding, 0–999 on the
            embedding noise schedule; 100 varies appearance between seeds without
            losing the scene's semantics (a choice; the paper gives no value).
        work_side: shorter side the image is resized to for generation (the 2.1 unCLIP
            models were trained at 768²), guides are resized back; 0 = the input's own
            size, padded to a multiple of 8.
        threads: torch CPU threads during CPU generation; 0 keeps the process setting.
        dtype: "auto" (float16 on CUDA, float32 on CPU), "float16", "bfloat16" or "float32".
        device: "auto", "cpu" or "cuda[:N]".
    """

    model: str = DEFAULT_MODEL_ID
    local_files_only: bool = True
    variant: str | None = None
    clip_encoder: str | None = None
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    guidance_scale: float = 10.0
    steps: int = 25
    strength: float = 0.8
    noise_level: int = 100
    work_side: int = 768
    threads: int = 0
    dtype: str = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        if not 0.0 < self.strength <= 1.0:
            raise ConfigError(f"unclip: strength must lie in (0, 1], got {self.strength}")
        if not 0 <= int(self.noise_level) <= 999:
            raise ConfigError(f"unclip: noise_level must lie in 0–999, got {self.noise_level}")
        if self.steps < 1:
            raise ConfigError(f"unclip: steps must be ≥ 1, got {self.steps}")
        if self.guidance_scale < 0:
            raise ConfigError(f"unclip: guidance_scale must be ≥ 0, got {self.guidance_scale}")
        if self.work_side < 0 or self.work_side % 8:
            raise ConfigError(f"unclip: work_side must be 0 or a positive multiple of 8, got {self.work_side}")
        if self.dtype not in ("auto", "float16", "bfloat16", "float32"):
            raise ConfigError(f"unclip: dtype must be auto, float16, bfloat16 or float32, got {self.dtype!r}")

    @classmethod
    def original(cls, **overrides: Any) -> UnCLIPConfig:
        """Plain unCLIP: no prompts, start from pure noise, unperturbed embeddings."""
        base: dict[str, Any] = dict(prompt="", negative_prompt="", strength=1.0, noise_level=0)
        base.update(overrides)
        return cls(**base)


class UnCLIPGenerator:
    """Guide generator by the improved unCLIP. The pipeline is loaded on first use and kept."""

    name = "unclip"

    def __init__(self, settings: UnCLIPConfig | None = None, **overrides: Any) -> None:
        base = settings or UnCLIPConfig()
        self.settings = dataclasses.replace(base, **overrides) if overrides else base
        self._pipe: Any = None
        self._device: Any = None
        #: Facts of the last run (work size, timesteps run, t_0), for generate.json and the GUI.
        self.info: dict[str, Any] = {}

    def load(self) -> Any:
        """Load (once) and return the diffusers pipeline on its device.

        Raises:
            ModelError: weights missing, incomplete or unloadable.
        """
        if self._pipe is not None:
            return self._pipe
        import torch
        from diffusers import StableUnCLIPImg2ImgPipeline

        from hiralign.device import resolve_device

        s = self.settings
        device = resolve_device(s.device)
        dtype = _torch_dtype(s.dtype, device)
        source = resolve_model(s.model, local_files_only=s.local_files_only)
        try:
            with _quiet_loading():
                pipe = StableUnCLIPImg2ImgPipeline.from_pretrained(
                    source, local_files_only=s.local_files_only, dtype=dtype, variant=s.variant)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"unCLIP weights {source}: cannot load them ({exc}); {LAYOUT_HELP}") from None
        if s.clip_encoder:
            from hiralign.generate.clip_vision import load_vision_encoder

            with _quiet_loading():
                encoder = load_vision_encoder(s.clip_encoder, dtype=dtype)
            expected = pipe.image_normalizer.config.embedding_dim
            got = encoder.config.projection_dim
            if got != expected:
                raise ModelError(f"CLIP encoder {s.clip_encoder}: embeds into {got} dimensions but the unCLIP "
                                 f"model {source} expects {expected}; finetune the encoder of this model "
                                 "(hiralign clip-finetune --model ...)")
            pipe.image_encoder = encoder
        pipe.set_progress_bar_config(disable=True)
        try:
            pipe = pipe.to(device)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise ConfigError(f"unclip: the model {source} does not fit in the GPU's memory; free the GPU, use "
                              "the -small model or dtype float16 (docs/generators.md lists the needs)") from None
        self._pipe, self._device = pipe, device
        return pipe

    def generate(self, rgb: np.ndarray, n: int, seed: int, progress: Progress | None = None) -> list[np.ndarray]:
        """Generate ``n`` guides from one proxy RGB.

        Args:
            rgb: (H, W, 3) float32 in [0, 1].
            n: number of variations.
            seed: base seed; variation j uses ``variation_seeds(seed, n)[j]``.
            progress: one unit per denoising step of every variation; ``check()`` is
                called before each step.

        Returns:
            ``n`` arrays (H, W, 3) float32 in [0, 1].

        Raises:
            ModelError: weights missing or unusable. ConfigError: out of GPU memory.
        """
        import torch

        rgb = check_rgb(rgb)
        n = check_count(n)
        progress = as_progress(progress)
        pipe = self.load()
        device = self._device
        with torch.no_grad(), cpu_threads(self.settings.threads if device.type == "cpu" else 0):
            try:
                return self._generate(pipe, rgb, n, seed, progress)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                h, w = self.info.get("work_size", rgb.shape[:2])
                raise ConfigError(
                    f"unclip: out of GPU memory generating a {h}×{w} guide; use a smaller work_side "
                    f"(--work-side {max(256, 8 * (min(h, w) // 16))}), dtype float16 or the -small model") from None

    def _generate(self, pipe: Any, rgb: np.ndarray, n: int, seed: int, progress: Progress) -> list[np.ndarray]:
        import torch

        s = self.settings
        device, dtype = self._device, pipe.unet.dtype
        height, width = rgb.shape[:2]
        work, how = work_size(height, width, s.work_side)
        if how != "none":
            log.info("unclip: %s the %d×%d image to %d×%d for the diffusion model (multiple of 8%s)", how,
                     height, width, work[0], work[1], f", shorter side {s.work_side}" if s.work_side else "")
        image = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(device=device, dtype=torch.float32)
        work_image = _to_work(image, work, how)
        do_cfg = s.guidance_scale > 1.0
        text, negative = pipe.encode_prompt(prompt=s.prompt, device=device, num_images_per_prompt=1,
                                            do_classifier_free_guidance=do_cfg, negative_prompt=s.negative_prompt)
        text = torch.cat([negative, text]) if do_cfg else text
        embeds = self.encode_image(image)
        init_latents = None
        if s.strength < 1.0:
            encoded = pipe.vae.encode(work_image.to(dtype) * 2 - 1).latent_dist.mean
            init_latents = encoded * pipe.vae.config.scaling_factor
        pipe.scheduler.set_timesteps(s.steps, device=device)
        timesteps = sdedit_timesteps(pipe.scheduler, s.steps, s.strength)
        self.info = {"work_size": list(work), "resize": how, "t0": int(timesteps[0]),
                     "timesteps_run": len(timesteps), "timesteps_total": s.steps}
        latent_shape = (1, pipe.unet.config.in_channels, work[0] // pipe.vae_scale_factor,
                        work[1] // pipe.vae_scale_factor)
        guides = []
        total = n * len(timesteps)
        for j, vseed in enumerate(variation_seeds(seed, n)):
            gen = torch.Generator().manual_seed(vseed)
            embed_noise = torch.randn(embeds.shape, generator=gen).to(device=device, dtype=embeds.dtype)
            cond = pipe.noise_image_embeddings(embeds, s.noise_level, noise=embed_noise)
            cond = torch.cat([torch.zeros_like(cond), cond]) if do_cfg else cond
            latent_noise = torch.randn(latent_shape, generator=gen).to(device=device, dtype=dtype)
            # Schedulers keep a step counter: reset them for every variation.
            pipe.scheduler.set_timesteps(s.steps, device=device)
            _set_begin(pipe.scheduler, s.steps, len(timesteps))
            if init_latents is None:
                latents = latent_noise * pipe.scheduler.init_noise_sigma
            else:  # Eq. 8: x_t0 = sqrt(ᾱ_t0)·x_0 + sqrt(1 − ᾱ_t0)·ε
                latents = pipe.scheduler.add_noise(init_latents, latent_noise, timesteps[:1])
            step_kwargs = pipe.prepare_extra_step_kwargs(gen, 0.0)
            for i, t in enumerate(timesteps):
                progress.check()
                model_in = torch.cat([latents] * 2) if do_cfg else latents
                model_in = pipe.scheduler.scale_model_input(model_in, t)
                noise_pred = pipe.unet(model_in, t, encoder_hidden_states=text, class_labels=cond,
                                       return_dict=False)[0]
                if do_cfg:
                    uncond, cond_pred = noise_pred.chunk(2)
                    noise_pred = uncond + s.guidance_scale * (cond_pred - uncond)
                latents = pipe.scheduler.step(noise_pred, t, latents, **step_kwargs, return_dict=False)[0]
                progress.report(j * len(timesteps) + i + 1, total,
                                f"guide {j + 1}/{n}: step {i + 1}/{len(timesteps)}")
            decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
            out = _from_work((decoded.float() / 2 + 0.5).clamp(0, 1), (height, width), how)
            guides.append(finish_variation(progress, out[0].permute(1, 2, 0).cpu().numpy()))
        return guides

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:  # noqa: F821
        """CLIP image embedding z_I of (1, 3, H, W) images in [0, 1] by the pipeline's (or finetuned) encoder."""
        from hiralign.generate.clip_vision import ClipGeometry, clip_pixels

        pipe = self.load()
        encoder = pipe.image_encoder
        geometry = ClipGeometry.from_processor(pipe.feature_extractor, encoder.config.image_size)
        pixels = clip_pixels(image.float(), geometry).to(device=self._device, dtype=encoder.dtype)
        return encoder(pixels).image_embeds


def sdedit_timesteps(scheduler: Any, steps: int, strength: float) -> torch.Tensor:  # noqa: F821
    """The tail of the scheduler's timesteps that SDEdit runs (call ``set_timesteps`` first).

    With ``steps`` steps and ``strength`` s, the last max(1, round(s·steps)) timesteps are
    kept, so the first one is t_0 ≈ s·T (T = the training timesteps). s = 1 keeps all.
    """
    kept = min(steps, max(1, int(round(steps * strength))))
    order = getattr(scheduler, "order", 1)
    return scheduler.timesteps[(steps - kept) * order:]


def _set_begin(scheduler: Any, steps: int, kept: int) -> None:
    """Tell index-based schedulers (Euler, DPM) where SDEdit starts; DDIM/DDPM ignore it."""
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index((steps - kept) * getattr(scheduler, "order", 1))


def work_size(height: int, width: int, work_side: int) -> tuple[tuple[int, int], str]:
    """(working (height, width), "resize" | "pad" | "none") for an image of the given size.

    With ``work_side`` > 0 the shorter side becomes ``work_side`` and the longer one the
    nearest multiple of 8 keeping the aspect ratio; with 0 the image is padded up to
    multiples of 8 (the VAE halves the size three times).
    """
    if work_side > 0:
        scale = work_side / min(height, width)
        size = (max(8, 8 * int(round(height * scale / 8))), max(8, 8 * int(round(width * scale / 8))))
        return size, ("none" if size == (height, width) else "resize")
    size = (8 * math.ceil(height / 8), 8 * math.ceil(width / 8))
    return size, ("none" if size == (height, width) else "pad")


def _to_work(image: torch.Tensor, size: tuple[int, int], how: str) -> torch.Tensor:  # noqa: F821
    import torch.nn.functional as F

    if how == "resize":
        down = size[0] < image.shape[-2]
        return F.interpolate(image, size=size, mode="bicubic", antialias=down, align_corners=False).clamp(0, 1)
    if how == "pad":
        pad_h, pad_w = size[0] - image.shape[-2], size[1] - image.shape[-1]
        mode = "reflect" if pad_h < image.shape[-2] and pad_w < image.shape[-1] else "replicate"
        return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
    return image


def _from_work(image: torch.Tensor, size: tuple[int, int], how: str) -> torch.Tensor:  # noqa: F821
    import torch.nn.functional as F

    if how == "resize":
        down = size[0] < image.shape[-2]
        return F.interpolate(image, size=size, mode="bicubic", antialias=down, align_corners=False).clamp(0, 1)
    return image[..., :size[0], :size[1]]


def _torch_dtype(name: str, device: torch.device) -> torch.dtype:  # noqa: F821
    import torch

    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide diffusers' and transformers' loading bars (hiralign reports its own progress)."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    states = [(lib, lib.is_progress_bar_enabled()) for lib in (diffusers_logging, transformers_logging)]
    for lib, _ in states:
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, enabled in states:
            if enabled:
                lib.enable_progress_bar()
