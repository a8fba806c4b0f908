"""The improved unCLIP generator and the CLIP finetune, on a tiny random-weight pipeline (CPU).

The pipeline is built once per session and saved in the ``from_pretrained`` layout, so
loading, layout checks, SDEdit, embedding noise, prompts and the blur-robust encoder all
run through the real diffusers/transformers code. Nothing touches the network.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hiralign.errors import ModelError
from hiralign.generate.base import variation_seeds
from hiralign.progress import CallbackProgress, Cancelled

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning"),
              pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from hiralign.generate.tiny import build_tiny_unclip

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build_tiny_unclip(tmp_path_factory.mktemp("tiny-unclip") / "model", seed=0)
    finally:
        torch.set_num_threads(old)


@pytest.fixture(scope="session")
def finetuned_encoder(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """(folder, result) of a short CLIP finetune of the tiny encoder on a few images."""
    import torch

    from hiralign.generate.clip_finetune import ClipFinetuneConfig, finetune_clip_encoder

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        settings = ClipFinetuneConfig(steps=16, batch_size=6, lr=1e-4, eval_images=6, blur_sigma=(1.0, 3.0),
                                        device="cpu")
        out = tmp_path_factory.mktemp("clip") / "encoder"
        return out, finetune_clip_encoder(_images(6), out, model=tiny_model, settings=settings)
    finally:
        torch.set_num_threads(old)


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    return [np.clip(gaussian_filter(rng.random((40, 48, 3)), (1.5, 1.5, 0)) * 3 - 1, 0, 1).astype(np.float32)
            for _ in range(n)]


def _generator(model: Path, **settings):
    from hiralign.generate import get_generator

    base = dict(model=str(model), work_side=0, steps=10, device="cpu")
    base.update(settings)
    return get_generator("unclip", **base)


def _record_unet_calls(gen) -> list[dict]:
    """Capture the UNet's inputs at every call of the loaded pipeline."""
    calls: list[dict] = []
    pipe = gen.load()

    def hook(module, args, kwargs):
        calls.append({"sample": args[0].clone(), "t": int(args[1]), "class_labels": kwargs["class_labels"].clone()})

    pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)
    return calls


def test_guides_have_input_size_even_when_not_multiple_of_8(tiny_model: Path, caplog) -> None:
    rgb = _images(1)[0][:37, :45]
    with caplog.at_level("INFO"):
        gen = _generator(tiny_model)
        guides = gen.generate(rgb, 2, seed=0)
    assert [g.shape for g in guides] == [(37, 45, 3)] * 2
    assert all(g.dtype == np.float32 and 0 <= g.min() and g.max() <= 1 for g in guides)
    assert "pad the 37×45 image to 40×48" in caplog.text
    assert gen.info["work_size"] == [40, 48]
    resized = _generator(tiny_model, work_side=64)
    assert resized.generate(rgb, 1, seed=0)[0].shape == (37, 45, 3)
    assert resized.info["work_size"] == [64, 80] and resized.info["resize"] == "resize"


def test_seeds_are_deterministic_and_variations_differ(tiny_model: Path) -> None:
    rgb = _images(1)[0]
    gen = _generator(tiny_model)
    a = gen.generate(rgb, 2, seed=3)
    b = _generator(tiny_model).generate(rgb, 3, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.abs(a[0] - a[1]).mean() > 1e-4


def test_sdedit_strength_sets_the_starting_timestep(tiny_model: Path) -> None:
    rgb = _images(1)[0]
    starts = {}
    for strength in (1.0, 0.5, 0.2):
        gen = _generator(tiny_model, strength=strength)
        calls = _record_unet_calls(gen)
        gen.generate(rgb, 1, seed=0)
        starts[strength] = (calls[0]["t"], len(calls), gen.info["t0"])
    assert starts[1.0][1] == 10 and starts[0.5][1] == 5 and starts[0.2][1] == 2
    assert starts[1.0][0] > 900 and 400 <= starts[0.5][0] <= 550 and 100 <= starts[0.2][0] <= 250
    assert all(t == t0 for t, _, t0 in starts.values())


def test_sdedit_start_is_eq8_noised_vae_latent_of_the_proxy(tiny_model: Path) -> None:
    import torch

    rgb = _images(1)[0]
    gen = _generator(tiny_model, strength=0.5, guidance_scale=1.0)  # no CFG: one sample per call
    calls = _record_unet_calls(gen)
    gen.generate(rgb, 1, seed=9)
    pipe = gen.load()
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    x0 = pipe.vae.encode(image * 2 - 1).latent_dist.mean * pipe.vae.config.scaling_factor
    generator = torch.Generator().manual_seed(variation_seeds(9, 1)[0])
    torch.randn(calls[0]["class_labels"][:, :32].shape, generator=generator)  # the embedding noise comes first
    eps = torch.randn(x0.shape, generator=generator)
    alpha_bar = pipe.scheduler.alphas_cumprod[calls[0]["t"]]
    expected = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps
    torch.testing.assert_close(calls[0]["sample"], expected.detach(), rtol=1e-4, atol=1e-4)


def test_embedding_noise_level_perturbs_the_image_condition(tiny_model: Path) -> None:
    rgb = _images(1)[0]
    labels = {}
    for level in (0, 500):
        gen = _generator(tiny_model, noise_level=level, steps=2)
        calls = _record_unet_calls(gen)
        gen.generate(rgb, 1, seed=0)
        cond = calls[0]["class_labels"][1]  # [unconditional zeros, condition]
        embeds = gen.encode_image(__import__("torch").from_numpy(rgb).permute(2, 0, 1)[None])[0]
        labels[level] = float((cond[:32] - embeds).norm() / embeds.norm())
        assert calls[0]["class_labels"][0].abs().max() == 0
    assert labels[0] < 0.02 < labels[500]


def test_finetune_lowers_the_embedding_loss_and_saves_a_loadable_encoder(finetuned_encoder) -> None:
    from hiralign.generate.clip_vision import load_vision_encoder

    folder, result = finetuned_encoder
    assert result.loss_after < 0.8 * result.loss_before
    assert {"config.json", "model.safetensors", "preprocessor_config.json",
            "hiralign_clip_finetune.json"} <= {p.name for p in folder.iterdir()}
    record = json.loads((folder / "hiralign_clip_finetune.json").read_text())
    assert record["loss_after"] == pytest.approx(result.loss_after)
    assert load_vision_encoder(folder).config.projection_dim == 32


def test_generator_conditions_on_the_finetuned_encoder(tiny_model: Path, finetuned_encoder) -> None:
    import torch

    folder, _ = finetuned_encoder
    rgb = _images(1, seed=1)[0]
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    original = _generator(tiny_model, noise_level=0, steps=1).encode_image(image)[0]
    gen = _generator(tiny_model, clip_encoder=str(folder), noise_level=0, steps=1)
    calls = _record_unet_calls(gen)
    gen.generate(rgb, 1, seed=0)
    finetuned = gen.encode_image(image)[0]
    assert float((finetuned - original).norm()) > 0.05 * float(original.norm())
    # The condition is the embedding after the pipeline's noising at level 0, with the
    # variation's first random draw.
    eps = torch.randn((1, 32), generator=torch.Generator().manual_seed(variation_seeds(0, 1)[0]))
    noised = lambda e: gen.load().noise_image_embeddings(e[None], 0, noise=eps)[0]  # noqa: E731
    used = calls[0]["class_labels"][1]
    torch.testing.assert_close(used, noised(finetuned).detach(), rtol=1e-5, atol=1e-5)
    assert float((used - noised(original)).norm()) > 0.05 * float(original.norm())


def test_progress_per_step_and_cancellation(tiny_model: Path) -> None:
    rgb = _images(1)[0]
    reports, previews = [], []
    progress = CallbackProgress(lambda d, t, m: reports.append((d, t)), lambda k, v: previews.append(k))
    _generator(tiny_model, strength=0.5).generate(rgb, 2, seed=0, progress=progress)
    assert len(reports) == 10 and reports[-1] == (10, 10) and previews == ["guide", "guide"]

    stop = CallbackProgress(lambda d, t, m: stop.token.cancel() if d >= 3 else None)
    with pytest.raises(Cancelled):
        _generator(tiny_model).generate(rgb, 2, seed=0, progress=stop)


def test_missing_or_incomplete_weights_name_the_folder_and_layout(tiny_model: Path, tmp_path, monkeypatch) -> None:
    from hiralign.generate import default_generator_name
    from hiralign.generate.unclip_weights import resolve_model, weights_available

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError, match="does not exist.*model_index.json"):
        _generator(tmp_path / "nowhere").generate(_images(1)[0], 1, 0)
    with pytest.raises(ModelError, match="not in the Hugging Face cache.*huggingface-cli download"):
        resolve_model("stabilityai/stable-diffusion-2-1-unclip")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    shutil.rmtree(broken / "tokenizer")
    with pytest.raises(ModelError, match=r"broken: incomplete unCLIP weights, missing tokenizer/tokenizer\.json"
                                         r" or vocab\.json, unet/\*\.safetensors or \*\.bin"):
        resolve_model(broken)
    index = json.loads((tiny_model / "model_index.json").read_text())
    other = tmp_path / "sd"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ModelError, match="StableDiffusionPipeline pipeline, not a Stable unCLIP"):
        resolve_model(other)
    assert weights_available(tiny_model) and not weights_available(broken) and not weights_available()
    assert default_generator_name(str(tiny_model)) == "unclip" and default_generator_name() == "patchnn"


def test_encoder_of_another_width_is_refused(tiny_model: Path, tmp_path) -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=16, intermediate_size=20, num_hidden_layers=1, num_attention_heads=2, image_size=32,
        patch_size=8, projection_dim=24)).save_pretrained(tmp_path / "enc")
    with pytest.raises(ModelError, match="embeds into 24 dimensions but the unCLIP model .* expects 32"):
        _generator(tiny_model, clip_encoder=str(tmp_path / "enc")).load()
    with pytest.raises(ModelError, match="no config.json"):
        _generator(tiny_model, clip_encoder=str(tmp_path)).load()


def test_finetune_cancel_writes_nothing(tiny_model: Path, tmp_path) -> None:
    from hiralign.generate.clip_finetune import ClipFinetuneConfig, finetune_clip_encoder

    progress = CallbackProgress()
    progress.token.cancel()
    with pytest.raises(Cancelled):
        finetune_clip_encoder(_images(2), tmp_path / "enc", model=tiny_model,
                              settings=ClipFinetuneConfig(steps=3, batch_size=2, eval_images=2), progress=progress)
    assert not (tmp_path / "enc").exists()


def test_cli_clip_finetune_then_generate_with_the_encoder(tiny_model: Path, tmp_path, capsys) -> None:
    from hiralign import io
    from hiralign.cli import main

    images = tmp_path / "coco"
    for i, img in enumerate(_images(3)):
        io.save_rgb(img, images / "sub" / f"img{i}.png")
    encoder = tmp_path / "encoder"
    assert main(["--quiet", "clip-finetune", "--images", str(images), "--out", str(encoder), "--model",
                 str(tiny_model), "--steps", "2", "--batch-size", "2", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["out"] == str(encoder) and (encoder / "model.safetensors").is_file()

    picture = io.save_rgb(_images(1)[0], tmp_path / "proxy.png")
    out = tmp_path / "guides"
    assert main(["--quiet", "generate", "--generator", "unclip", "--model", str(tiny_model), "--clip-encoder",
                 str(encoder), "--n", "2", "--steps", "4", "--strength", "0.5", "--noise-level", "50",
                 "--work-side", "0", "--prompt", "a photo", "--device", "cpu", str(picture), "--out", str(out)]) == 0
    record = json.loads((out / "generate.json").read_text())
    assert record["settings"]["clip_encoder"] == str(encoder) and record["settings"]["prompt"] == "a photo"
    assert record["inputs"][0]["info"]["timesteps_run"] == 2
    assert io.load_rgb(out / "proxy_g1.png").shape == (40, 48, 3)

    assert main(["generate", "--generator", "unclip", "--model", str(tmp_path / "none"), str(picture),
                 "--out", str(out)]) == 2
    assert "unCLIP model folder" in capsys.readouterr().err
