"""Finding and checking Stable unCLIP weights before diffusers loads them.

A model is either a local folder in the ``from_pretrained`` layout or a Hugging Face hub
id (``stabilityai/stable-diffusion-2-1-unclip``) looked up in the user's cache
(``$HF_HOME/hub``, default ``~/.cache/huggingface/hub``). Nothing is ever downloaded
unless the caller passes ``local_files_only=False``. Missing or incomplete weights raise
a :class:`~hiralign.errors.ModelError` that names the folder and lists what is missing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from hiralign.errors import ModelError

#: The paper's generator (768² Stable unCLIP conditioned on OpenCLIP ViT-H/14 image embeddings).
DEFAULT_MODEL_ID = "stabilityai/stable-diffusion-2-1-unclip"
#: The lighter variant conditioned on CLIP ViT-L/14 image embeddings.
SMALL_MODEL_ID = "stabilityai/stable-diffusion-2-1-unclip-small"

PIPELINE_CLASSES = ("StableUnCLIPImg2ImgPipeline",)

#: Sub-folder -> (files that must all exist, or groups where one of the names must exist).
_WEIGHTS = ("*.safetensors", "*.bin")
EXPECTED_LAYOUT: dict[str, tuple[tuple[str, ...], ...]] = {
    "feature_extractor": (("preprocessor_config.json",),),
    "image_encoder": (("config.json",), _WEIGHTS),
    "image_normalizer": (("config.json",), _WEIGHTS),
    "image_noising_scheduler": (("scheduler_config.json",),),
    "scheduler": (("scheduler_config.json",),),
    "text_encoder": (("config.json",), _WEIGHTS),
    "tokenizer": (("tokenizer.json", "vocab.json"),),
    "unet": (("config.json",), _WEIGHTS),
    "vae": (("config.json",), _WEIGHTS),
}

LAYOUT_HELP = (
    "expected a Stable unCLIP folder as saved by diffusers: model_index.json "
    "(_class_name StableUnCLIPImg2ImgPipeline) and the sub-folders feature_extractor/, "
    "image_encoder/, image_normalizer/, image_noising_scheduler/, scheduler/, text_encoder/, "
    "tokenizer/, unet/, vae/ with their config files and *.safetensors (or *.bin) weights "
    f"(e.g. `huggingface-cli download {DEFAULT_MODEL_ID} --local-dir FOLDER`; see docs/generators.md)"
)


def resolve_model(model: str | os.PathLike | None, local_files_only: bool = True) -> Path | str:
    """Turn a folder or hub id into a checked local folder (or the id when downloads are allowed).

    Args:
        model: a folder, a hub id, or None for :data:`DEFAULT_MODEL_ID`.
        local_files_only: only look in local folders and the Hugging Face cache.

    Returns:
        The folder holding the pipeline, checked with :func:`check_layout`; or the hub id
        unchanged when ``local_files_only`` is False and it is not cached yet.

    Raises:
        ModelError: no such folder, not in the cache, or an incomplete layout.
    """
    name = str(model) if model is not None else DEFAULT_MODEL_ID
    path = Path(name).expanduser()
    if path.exists() or not _looks_like_hub_id(name):
        if not path.is_dir():
            raise ModelError(f"unCLIP model folder {path} does not exist; {LAYOUT_HELP}")
        check_layout(path)
        return path
    cached = _cached_snapshot(name)
    if cached is None:
        if not local_files_only:
            return name
        raise ModelError(
            f"unCLIP weights {name!r}: no such folder, and not in the Hugging Face cache ({_hub_cache()}); "
            f"downloads are off, so download them first (`huggingface-cli download {name}`) or pass "
            f"--model FOLDER. {LAYOUT_HELP}")
    check_layout(cached)
    return cached


def check_layout(folder: Path) -> None:
    """Raise :class:`ModelError` listing every missing piece of a pipeline folder."""
    index = folder / "model_index.json"
    if not index.is_file():
        raise ModelError(f"{folder}: no model_index.json, so this is not a diffusers pipeline folder; "
                         f"{LAYOUT_HELP}")
    try:
        meta = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{index}: unreadable ({exc}); {LAYOUT_HELP}") from None
    cls = meta.get("_class_name")
    if cls not in PIPELINE_CLASSES:
        raise ModelError(f"{folder}: holds a {cls or 'unknown'} pipeline, not a Stable unCLIP image-variation "
                         f"pipeline ({', '.join(PIPELINE_CLASSES)}); use {DEFAULT_MODEL_ID} or "
                         f"{SMALL_MODEL_ID}")
    missing = []
    for sub, groups in EXPECTED_LAYOUT.items():
        d = folder / sub
        for group in groups:
            if not any(next(iter(d.glob(pattern)), None) is not None for pattern in group):
                missing.append(f"{sub}/{' or '.join(group)}")
    if missing:
        raise ModelError(f"{folder}: incomplete unCLIP weights, missing {', '.join(missing)}; {LAYOUT_HELP}")


def weights_available(model: str | os.PathLike | None = None) -> bool:
    """True when ``model`` (default: the paper's checkpoint) is present and complete locally."""
    try:
        resolve_model(model, local_files_only=True)
    except ModelError:
        return False
    return True


def _looks_like_hub_id(name: str) -> bool:
    """``owner/name``: one slash, no path prefix, no backslash."""
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not name.endswith("/") \
        and "\\" not in name


def _cached_snapshot(repo_id: str) -> Path | None:
    """The newest cached snapshot folder of a hub repo, without touching the network."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not cached"
        return None


def _hub_cache() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:  # noqa: BLE001
        return "~/.cache/huggingface/hub"
