"""Checkpoints of a training run: model, optimiser, step, data position and random states, in
one file written atomically; the final weights alone, as open_clip loads them."""

from __future__ import annotations

import io
import json
from pathlib import Path

from curate.errors import ConfigError
from curate.models.clip import is_local
from curate.run import write_atomic
from curate.train.config import TrainConfig
from curate.train.data import Position

LATEST = "checkpoints/latest.pt"
CONFIG = "train_config.json"
WEIGHTS = "open_clip_pytorch_model.bin"  # a name curate and open_clip both look for
OPEN_CLIP_CONFIG = "open_clip_config.json"
SIGLIP_LOGIT_BIAS = -10.0  # SigLIP's initial bias, open_clip's too


def save(out: Path, step: int, position: Position, model, optimizer) -> None:
    """Everything a run needs to continue after `step` steps."""
    import torch

    state = {"step": step, "position": position.as_dict(), "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
    write_atomic(out / LATEST, _bytes(state))


def load(out: Path) -> dict | None:
    """The latest checkpoint, or None."""
    import torch

    path = out / LATEST
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def save_weights(out: Path, model, config: TrainConfig) -> Path:
    """The model weights alone, with the architecture beside them, so open_clip loads them as
    `create_model_and_transforms(ARCH, pretrained=WEIGHTS)` or `("local-dir:OUT")` (SigLIP
    weights: add `init_logit_bias=-10` to the first)."""
    from curate.models.clip import open_clip_config

    bias = SIGLIP_LOGIT_BIAS if config.loss == "siglip" else None
    write_atomic(out / OPEN_CLIP_CONFIG, json.dumps(open_clip_config(config.model, bias), indent=2).encode())
    write_atomic(out / WEIGHTS, _bytes(model.state_dict()))
    return out / WEIGHTS


def check_config(out: Path, config: TrainConfig, write: bool = True) -> None:
    """Record the config of a new run (when `write`: the main process of a job); refuse to
    continue a run made with another one. Local paths are compared resolved, so `runs/x`, `./runs/x/`
    and its absolute path are the same data."""
    path = out / CONFIG
    mine = config.model_dump(mode="json")
    mine["data"] = [_resolved(entry) for entry in mine["data"]]
    if mine.get("init") and is_local(mine["init"]):
        mine["init"] = _resolved(mine["init"])
    if path.exists():
        theirs = json.loads(path.read_text())
        theirs["data"] = [_resolved(entry) for entry in theirs.get("data", [])]
        if theirs.get("init") and is_local(theirs["init"]):
            theirs["init"] = _resolved(theirs["init"])
        changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if changed:
            raise ConfigError(f"{out} holds a run with other settings ({', '.join(changed)}); "
                              f"choose another --out, or delete {out} to start over")
        return
    if write:
        write_atomic(path, json.dumps(mine, indent=2, sort_keys=True).encode())


def _resolved(entry: str) -> str:
    """A local path, folder or glob made absolute (symbolic links resolved); a URL as it is."""
    return entry if "://" in entry else str(Path(entry).expanduser().resolve())


def _bytes(state) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()
