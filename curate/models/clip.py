"""Loading open_clip models: any registered architecture (ViTamin included, through timm) plus
the tiny configs shipped in curate/models/configs; weights from an open_clip pretrained tag
(needs the hub) or an absolute local file or directory, always loaded with weights_only."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from curate.errors import ConfigError

_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "epoch_latest.pt")


@dataclass
class LoadedClip:
    """A CLIP model ready for inference, with its image preprocessing and tokenizer.

    `pixels(image)` is the fast form of `preprocess`: when the transform ends in ToTensor +
    Normalize (every open_clip model's does), it stops at the uint8 crop and `encode` converts
    and normalises the whole batch at once on the model's device, with the same float32
    operations, so the numbers are the same and a quarter of the bytes travel to the GPU."""

    model: Any
    preprocess: Callable
    tokenizer: Callable
    device: str

    def __post_init__(self) -> None:
        from torchvision.transforms import Normalize, ToTensor

        import torch

        steps = list(getattr(self.preprocess, "transforms", []))
        self._crop = None
        if len(steps) >= 2 and isinstance(steps[-2], ToTensor) and isinstance(steps[-1], Normalize):
            self._crop = steps[:-2]
            self._mean, self._std = (torch.as_tensor(v, dtype=torch.float32, device=self.device)[:, None, None]
                                     for v in (steps[-1].mean, steps[-1].std))

    def pixels(self, image: Any) -> Any:
        """One PIL image preprocessed: a uint8 HWC tensor on the fast path, else the float tensor."""
        import numpy as np
        import torch

        if self._crop is None:
            return self.preprocess(image)
        for step in self._crop:
            image = step(image)
        return torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8, copy=True))

    def model_input(self, pixels: Any) -> Any:
        """A batch from pixels() as the model takes it: on its device, float, normalised."""
        import torch

        pixels = pixels.to(self.device, non_blocking=True)
        if pixels.dtype != torch.uint8:
            return pixels
        # HWC crops: what ToTensor + Normalize do per image, done once for the batch
        return pixels.permute(0, 3, 1, 2).float().div(255).sub(self._mean).div(self._std)

    def encode(self, pixels: Any, tokens: Any) -> tuple[Any, Any]:
        """L2-normalised float32 image and text embeddings of a batch (bf16 autocast on a GPU)."""
        return self.encode_images(pixels), self.encode_texts(tokens)

    def encode_images(self, pixels: Any) -> Any:
        """L2-normalised float32 embeddings of a batch of pixels()."""
        import torch

        with torch.no_grad(), self._autocast():
            return self.model.encode_image(self.model_input(pixels), normalize=True).float()

    def encode_texts(self, tokens: Any) -> Any:
        """L2-normalised float32 embeddings of a batch of tokens."""
        import torch

        with torch.no_grad(), self._autocast():
            return self.model.encode_text(tokens.to(self.device, non_blocking=True), normalize=True).float()

    def _autocast(self):
        import torch

        if self.device == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)


@lru_cache(maxsize=None)
def _register_configs() -> None:
    import open_clip

    open_clip.add_model_config(Path(str(resources.files("curate.models") / "configs")))


def open_clip_config(model_name: str, logit_bias: float | None = None) -> dict:
    """The open_clip_config.json of an architecture (curate's or open_clip's): with it in a
    folder, open_clip builds the model as `local-dir:FOLDER` (loading weights found beside it),
    and its own trainer trains it as `--model local-dir:FOLDER`."""
    import open_clip

    _register_configs()
    config = open_clip.get_model_config(model_name)
    if config is None:
        raise ConfigError(f"unknown open_clip model {model_name!r}; e.g. curate-tiny-vit, ViT-B-32, ViTamin-S")
    if logit_bias is not None:
        config = config | {"init_logit_bias": logit_bias}
    return {"model_cfg": config, "preprocess_cfg": {}}


def resolve_device(device: str) -> str:
    """auto: cuda when a GPU is visible, else cpu."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def is_local(weights: str | None) -> bool:
    """Whether `weights` names a local path (anything with a path separator) rather than a tag."""
    return weights is not None and (os.path.isabs(weights) or os.sep in weights)


def weights_file(weights: str) -> Path:
    """An absolute local weights path: a file, or a directory holding one of the usual names."""
    path = Path(weights)
    if path.is_dir():
        found = next((path / name for name in _WEIGHT_FILES if (path / name).is_file()), None)
        checkpoints = sorted(path.glob("checkpoints/epoch_*.pt"), key=os.path.getmtime)
        found = found or (checkpoints[-1] if checkpoints else None)
        if found is None:
            raise ConfigError(f"weights directory {path} holds none of {', '.join(_WEIGHT_FILES)}")
        return found
    if not path.is_file():
        raise ConfigError(f"weights file {path} does not exist; give an absolute path to a checkpoint, "
                          f"or an open_clip pretrained tag")
    return path


def _state_dict(path: Path) -> dict:
    """The model weights in a file: safetensors, a bare state dict, or a trainer checkpoint."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a file that is no checkpoint
        raise ConfigError(f"cannot load weights from {path}: {error}".splitlines()[0]) from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(f"{path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


@contextmanager
def _without_random_init_warning(local: bool):
    """open_clip warns that a model built without a pretrained tag is random; local weights are
    loaded right after, and a model asked for without weights is meant to start random (a
    training from scratch), so the warning would only mislead."""
    import logging

    def keep(record: logging.LogRecord) -> bool:
        return not (local and "No pretrained weights loaded" in record.getMessage())

    logging.getLogger().addFilter(keep)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(keep)


def load_clip(model_name: str, weights: str | None, device: str = "auto", seed: int = 0) -> LoadedClip:
    """Build `model_name` and load its weights: None (a random init seeded by `seed`), an
    absolute local path, or an open_clip pretrained tag."""
    import open_clip
    import torch

    _register_configs()
    if model_name not in open_clip.list_models():
        raise ConfigError(f"unknown open_clip model {model_name!r}; e.g. curate-tiny-vit, ViT-B-32, ViTamin-S")
    device = resolve_device(device)
    local = is_local(weights)
    if weights is not None and not local and weights not in open_clip.list_pretrained_tags_by_model(model_name):
        raise ConfigError(f"{weights!r} is neither an absolute path nor a pretrained tag of {model_name} "
                          f"({', '.join(open_clip.list_pretrained_tags_by_model(model_name)) or 'none'})")
    torch.manual_seed(seed)  # a model without weights is the same everywhere
    with _without_random_init_warning(local or weights is None):
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=None if local else weights, device="cpu", weights_only=True)
    if local:
        state = _state_dict(weights_file(weights))
        if "logit_bias" in state and getattr(model, "logit_bias", None) is None:  # SigLIP-trained
            model.logit_bias = torch.nn.Parameter(torch.zeros_like(state["logit_bias"]))
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise ConfigError(f"weights in {weights} do not fit {model_name}: {str(error).splitlines()[0]}") from None
    model = model.to(device).eval()
    return LoadedClip(model, preprocess, open_clip.get_tokenizer(model_name), device)
