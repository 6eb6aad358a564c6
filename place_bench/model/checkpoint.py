"""The suite's checkpoints: safetensors weights plus a JSON card.

A checkpoint ``NAME.safetensors`` holds the model's state dict (keys prefixed by
submodule: ``image_encoder.``, ``text_encoder.``, ...). Its card is written twice:
as the sidecar ``NAME.json`` (readable without torch, with the weights' SHA-256)
and inside the safetensors metadata under ``place_bench_card`` (so a copied file
keeps it). Both files are written atomically.

Card fields: ``format`` ("place-bench-checkpoint/1"), ``config`` (the full merged
config), ``components`` (kind -> registered name), ``code_version``, ``packages``
(versions), ``data_fingerprint``, ``created`` (UTC ISO 8601), ``extra``; the
sidecar adds ``weights_sha256``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from place_bench.io import atomic_write_bytes, atomic_write_text
from place_bench.model.weights import PartialLoadError, load_strict, require_local_path, strip_prefix

CARD_KEY = "place_bench_card"
FORMAT = "place-bench-checkpoint/1"


def card_path(weights: str | os.PathLike) -> Path:
    return Path(weights).with_suffix(".json")


def code_version() -> str:
    """The package version plus the git commit (and ``-dirty``) when run from a checkout."""
    import place_bench

    version = place_bench.__version__
    root = Path(place_bench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+git.{commit}" if commit else version


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("torch", "timm", "transformers", "mmengine", "mmcv", "mmdet", "mmsegmentation", "datasets"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def model_components(config: Mapping[str, Any]) -> dict[str, str]:
    """kind -> registered type name of each component in a ``model`` config section."""
    model = config.get("model", {}) or {}
    out = {}
    for key in ("image_encoder", "text_encoder", "image_projection", "text_projection"):
        if isinstance(model.get(key), Mapping) and "type" in model[key]:
            out[key] = str(model[key]["type"])
    for i, objective in enumerate(model.get("objectives", []) or []):
        if isinstance(objective, Mapping) and "type" in objective:
            out[f"objectives.{i}"] = str(objective["type"])
    return out


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    config: Mapping[str, Any],
    data_fingerprint: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights to ``path`` (``.safetensors``) and its card; return the path."""
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"checkpoint path must end in .safetensors, got '{path}'")
    card = {
        "format": FORMAT,
        "config": json.loads(json.dumps(dict(config), default=str)),
        "components": model_components(config),
        "code_version": code_version(),
        "packages": package_versions(),
        "data_fingerprint": data_fingerprint,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "extra": dict(extra or {}),
    }
    # safetensors refuses tensors that share storage; contiguous clones are cheap at these sizes.
    state = {k: v.detach().contiguous().clone().cpu() for k, v in model.state_dict().items()}
    blob = save(state, metadata={CARD_KEY: json.dumps(card, sort_keys=True)})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, blob)
    sidecar = dict(card, weights_sha256=hashlib.sha256(blob).hexdigest())
    atomic_write_text(card_path(path), json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return path


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """The card of a checkpoint: the sidecar if present, else the embedded copy."""
    path = require_local_path(path, "checkpoint", "a .safetensors checkpoint written by place-bench")
    sidecar = card_path(path)
    if sidecar.is_file():
        return json.loads(sidecar.read_text())
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if CARD_KEY not in meta:
        raise PartialLoadError(f"'{path}' has no place-bench card (neither {sidecar.name} nor embedded metadata)")
    return json.loads(meta[CARD_KEY])


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict and card of a suite checkpoint; the weights' hash is checked against the sidecar."""
    from safetensors.torch import load

    path = require_local_path(path, "checkpoint", "a .safetensors checkpoint written by place-bench")
    blob = path.read_bytes()
    card = read_card(path)
    expected = card.get("weights_sha256")
    if expected and hashlib.sha256(blob).hexdigest() != expected:
        raise PartialLoadError(f"'{path}' does not match the SHA-256 in {card_path(path).name}: the file changed or is truncated")
    try:
        state = load(blob)
    except Exception as exc:
        raise PartialLoadError(f"'{path}' is not a readable safetensors file: {exc}") from None
    return state, card


def load_model_weights(model: nn.Module, path: str | os.PathLike, prefix: str = "") -> dict[str, Any]:
    """Load a checkpoint into ``model`` (or, with ``prefix``, into one submodule) strictly.

    ``prefix`` selects the entries of one submodule, e.g. ``"image_encoder."`` to load
    only an image encoder: every key of that module must be in the file.
    Returns the card.
    """
    state, card = load_checkpoint(path)
    part = strip_prefix(state, prefix)
    if prefix and not part:
        raise PartialLoadError(f"'{path}' holds no '{prefix}' weights (components: {card.get('components')})")
    load_strict(model, part, what=f"'{prefix.rstrip('.') or 'model'}'", source=str(path))
    return card


def build_model_from_checkpoint(path: str | os.PathLike):
    """Rebuild the model from the card's config and load its weights strictly."""
    from place_bench.model.vlm import VisionLanguageModel

    card = read_card(path)
    model_cfg = dict(card["config"].get("model") or {})
    # The checkpoint carries every weight: the image encoder's initial weight file
    # is neither read nor needed. (A text encoder still reads its local folder for
    # its architecture and tokenizer.)
    if isinstance(model_cfg.get("image_encoder"), dict):
        model_cfg["image_encoder"] = dict(model_cfg["image_encoder"], pretrained_path=None)
    model = VisionLanguageModel(**model_cfg)
    load_model_weights(model, path)
    return model, card


# -- mmengine checkpoints under torch's weights_only default ---------------------------------

def _history_buffer_statistic(owner: Any, name: str) -> Any:
    """The one ``getattr`` a Runner checkpoint needs, and nothing more.

    ``HistoryBuffer`` keeps its statistics methods (min, max, mean, current and any
    registered ones) in a class-level dict, which pickles each as
    ``getattr(HistoryBuffer, "min")``. Allowing the builtin ``getattr`` would let a
    crafted file reach any attribute of any allowed object (``ndarray.tofile``, say);
    this stand-in answers only those lookups.
    """
    from mmengine.logging import HistoryBuffer

    is_buffer = owner is HistoryBuffer or isinstance(owner, HistoryBuffer)
    # The four built-ins enter the class dict only when a first buffer is made.
    allowed = {"min", "max", "mean", "current", *HistoryBuffer._statistics_methods}
    if not is_buffer or name not in allowed:
        raise pickle.UnpicklingError(
            f"refusing getattr({getattr(owner, '__name__', type(owner).__name__)}, {name!r}) in a checkpoint"
        )
    return getattr(owner, name)


def mmengine_safe_globals() -> list[Any]:
    """Exactly the non-tensor globals that mmengine Runner checkpoints pickle.

    ``message_hub`` stores :class:`mmengine.logging.HistoryBuffer` objects holding
    numpy arrays and scalars, and their statistics methods by ``getattr`` (answered
    by :func:`_history_buffer_statistic`, registered under the builtin's name).
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer

    core = np._core if hasattr(np, "_core") else np.core
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32", "bool")]
    return [
        HistoryBuffer,
        (_history_buffer_statistic, "builtins.getattr"),
        core.multiarray._reconstruct,
        core.multiarray.scalar,
        np.ndarray,
        np.dtype,
        *dtypes,
    ]


def register_mmengine_safe_globals() -> None:
    """Allow ``torch.load(weights_only=True)`` to read mmengine Runner checkpoints.

    Registers :func:`mmengine_safe_globals` with ``torch.serialization.add_safe_globals``
    instead of turning the weights-only protection off for every load.
    """
    torch.serialization.add_safe_globals(mmengine_safe_globals())
