"""A tiny randomly initialised Stable unCLIP pipeline, saved in the ``from_pretrained`` layout.

No unCLIP/CLIP weights can be obtained on the development machines, so tests, benchmarks
and the GUI's demo mode exercise the real diffusers code path with these components: a
2-level UNet with a projection class embedding (the unCLIP image-embedding input), a VAE
with a down-scale factor of 8 (as Stable Diffusion's; factor 1 made 10 steps on 64² take
≈8 s instead of ≈0.2 s), CLIP text and vision models with 32-wide hidden layers, and a
CLIP byte-level BPE tokenizer whose vocabulary is the 256 byte symbols (plus their
end-of-word forms and a few merges). The folder it writes has exactly the layout of
``stabilityai/stable-diffusion-2-1-unclip`` (see docs/generators.md), so the loader,
layout checks and the CLIP finetune treat it like a real checkpoint.

Its images are noise: it tests plumbing (shapes, seeds, timesteps, embeddings), not
image quality.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

#: Width of the tiny CLIP models and of the image embedding.
EMBED_DIM = 32
#: Tokens per prompt (as real CLIP).
MAX_TOKENS = 77
#: A handful of merges so the tokenizer really runs BPE (and their merged symbols).
_MERGES = (("t", "h"), ("th", "e</w>"), ("i", "n"), ("a", "n"), ("e", "r"), ("o", "n"))


def byte_symbols() -> list[str]:
    """The 256 printable symbols byte-level BPE uses for the bytes 0..255, in byte order.

    Bytes that are printable Latin-1 characters stand for themselves; the others are
    mapped, in order, to code points from 256 upwards.
    """
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) \
        | set(range(ord("®"), ord("ÿ") + 1))
    symbols, extra = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def write_tiny_tokenizer(folder: str | os.PathLike) -> Path:
    """Write ``vocab.json``, ``merges.txt`` and the configs of a tiny CLIP tokenizer.

    ``CLIPTokenizer.from_pretrained(folder)`` loads it (transformers 5 ignores
    ``vocab_file=`` / ``merges_file=`` given to the constructor; FACTS.md).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in _MERGES]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in _MERGES)
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    config = {"model_max_length": MAX_TOKENS, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
              "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "tokenizer_class": "CLIPTokenizer"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def build_tiny_unclip(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Save a tiny random ``StableUnCLIPImg2ImgPipeline`` to ``folder`` and return it.

    Args:
        folder: output folder (created; files inside are overwritten).
        seed: torch seed of the random weights.

    Returns:
        ``folder`` as a Path, loadable with ``StableUnCLIPImg2ImgPipeline.from_pretrained``.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableUnCLIPImg2ImgPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    folder = Path(folder)
    torch.manual_seed(seed)
    tok_dir = write_tiny_tokenizer(folder / ".tiny-tokenizer-src")
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=EMBED_DIM, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=MAX_TOKENS, projection_dim=EMBED_DIM,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=EMBED_DIM, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=8, projection_dim=EMBED_DIM))
    feature_extractor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64), attention_head_dim=(2, 4), cross_attention_dim=EMBED_DIM,
        class_embed_type="projection", projection_class_embeddings_input_dim=2 * EMBED_DIM,
        use_linear_projection=True, norm_num_groups=8)
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4, sample_size=64)
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=feature_extractor, image_encoder=image_encoder,
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=EMBED_DIM),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
        tokenizer=tokenizer, text_encoder=text_encoder, unet=unet,
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                prediction_type="v_prediction", set_alpha_to_one=False, steps_offset=1),
        vae=vae)
    pipe.save_pretrained(folder, safe_serialization=True)
    for leftover in tok_dir.iterdir():
        leftover.unlink()
    tok_dir.rmdir()
    return folder
