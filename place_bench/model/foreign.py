"""Reading checkpoints that other code bases wrote ("foreign" checkpoints), safe by default.

What a file may be:

* ``.safetensors``: tensors only, always safe to read.
* a torch pickle (``.ckpt``, ``.pth``, ``.pt``, ``.bin``, ``.tar``, ...). By default it is read
  with ``torch.load(weights_only=True)``, which rebuilds tensors and plain containers and
  refuses every other Python object. PyTorch Lightning checkpoints also pickle their
  hyper-parameters (``argparse.Namespace``, OmegaConf containers, ``AttributeDict``) and
  callback states: such a file is refused with :class:`PickleRefusedError`, naming the
  object and the opt-in. Unpickling can execute code, so the opt-in (``allow_pickle=True``,
  ``--allow-pickle``) is for files from a trusted source only. With it a file that
  ``weights_only`` refused is fully unpickled (a file that needs no unpickling never is);
  classes whose module is not importable here (``pytorch_lightning`` or ``omegaconf`` when
  not installed) become inert stand-ins, so a trusted Lightning file loads without Lightning.
  The stand-ins used are listed in :attr:`ForeignState.stand_ins`.

Containers unwrapped (``ForeignState.container``): ``"lightning"`` (a dict with
``state_dict`` and ``pytorch-lightning_version``), ``"state_dict"`` (``{"state_dict": ...}``),
``"model"`` (``{"model": ...}``, BenchX / DeiT style), ``"plain"`` (a flat mapping of tensors).
Keys are returned exactly as stored: stripping prefixes is the adapters' job.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import threading
import types
from pathlib import Path
from typing import Any, Mapping

import torch

from place_bench.model.weights import PartialLoadError, require_local_path

SAFETENSORS_SUFFIXES = (".safetensors",)


class PickleRefusedError(PartialLoadError):
    """A torch pickle holds Python objects beyond tensors and ``allow_pickle`` was not given."""


@dataclasses.dataclass
class ForeignState:
    """Tensors of a foreign checkpoint and what was learned while reading it.

    ``state``: key -> tensor, keys as stored; ``container``: see the module docstring;
    ``sha256``: of the file's bytes; ``pickled``: read by full unpickling (``allow_pickle`` was
    given and needed);
    ``stand_ins``: ``module.Name`` of classes replaced by inert stand-ins; ``meta``: small
    facts from the container (Lightning version, epoch, global step, top-level keys).
    """

    path: Path
    state: dict[str, torch.Tensor]
    container: str
    sha256: str
    size: int
    pickled: bool = False
    stand_ins: list[str] = dataclasses.field(default_factory=list)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        """The JSON-ready description recorded in a card and in result records."""
        return {"path": str(self.path), "sha256": self.sha256, "bytes": self.size, "container": self.container,
                "pickled": self.pickled, "stand_ins": list(self.stand_ins), "meta": dict(self.meta)}


def sha256_of(path: str | os.PathLike) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_foreign_checkpoint(path: str | os.PathLike, allow_pickle: bool = False) -> ForeignState:
    """Read a foreign checkpoint file into a :class:`ForeignState`.

    :param allow_pickle: fully unpickle torch files (trusted files only; see the module docstring).
    :raises PickleRefusedError: the file needs unpickling and ``allow_pickle`` is False.
    :raises PartialLoadError: the file is unreadable or holds no state dict of tensors.
    """
    p = require_local_path(path, "checkpoint", "a foreign checkpoint file (.ckpt, .pth, .pt, .bin or .safetensors)")
    if p.is_dir():
        raise PartialLoadError(f"checkpoint '{p}' is a folder; give the checkpoint file itself")
    sha, size = sha256_of(p), p.stat().st_size
    if p.suffix in SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        try:
            return ForeignState(p, dict(load_file(str(p))), "plain", sha, size)
        except Exception as exc:
            raise PartialLoadError(f"checkpoint '{p}' is not a readable safetensors file: {exc}") from None
    stand_ins: list[str] = []
    pickled = False
    try:
        obj = _load_weights_only(p)
    except PickleRefusedError:
        if not allow_pickle:
            raise
        obj, stand_ins = _unpickle_everything(p)
        pickled = True
    state, container, meta = unwrap_container(obj, p)
    return ForeignState(p, state, container, sha, size, pickled=pickled, stand_ins=stand_ins, meta=meta)


def _load_weights_only(p: Path) -> Any:
    try:
        return torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"a pickled Python object ({found.group(1)})" if found else "pickled Python objects"
        raise PickleRefusedError(
            f"checkpoint '{p}' holds {what} besides tensors, as PyTorch Lightning checkpoints do "
            f"(hyper-parameters, callback states). Reading it means unpickling, which can execute code: "
            f"pass --allow-pickle (allow_pickle=True) only if you trust the file's source"
        ) from None
    except Exception as exc:
        raise PartialLoadError(f"checkpoint '{p}' is not a readable torch file: {type(exc).__name__}: {exc}") from None


def unwrap_container(obj: Any, p: Path) -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """(state dict, container name, meta) of a loaded checkpoint object; see the module docstring."""
    if not isinstance(obj, Mapping):
        raise PartialLoadError(f"checkpoint '{p}' holds a {type(obj).__name__}, not a state dict")
    meta: dict[str, Any] = {}
    container = "plain"
    if isinstance(obj.get("state_dict"), Mapping):
        container = "lightning" if "pytorch-lightning_version" in obj else "state_dict"
        for key in ("pytorch-lightning_version", "epoch", "global_step"):
            if isinstance(obj.get(key), (str, int, float)):
                meta[key] = obj[key]
        meta["top_level_keys"] = sorted(str(k) for k in obj)
        obj = obj["state_dict"]
    elif isinstance(obj.get("model"), Mapping):
        container = "model"
        meta["top_level_keys"] = sorted(str(k) for k in obj)
        obj = obj["model"]
    not_tensors = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise PartialLoadError(
            f"checkpoint '{p}': the {container} state dict holds non-tensor entries "
            f"({', '.join(not_tensors[:5])}{', ...' if len(not_tensors) > 5 else ''})"
        )
    if not obj:
        raise PartialLoadError(f"checkpoint '{p}' holds an empty state dict")
    return {str(k): v for k, v in obj.items()}, container, meta


# -- full unpickling, opt-in only --------------------------------------------------------------

class _StandIn(dict):
    """An inert replacement for a class that cannot be imported here.

    Subclasses ``dict`` so that pickled mappings (``AttributeDict``, ``DictConfig`` contents)
    fill it; keeps constructor arguments, ``__setstate__`` state and appended items.
    """

    def __new__(cls, *args: Any, **kwargs: Any):  # pickle's NEWOBJ passes the constructor arguments here
        obj = super().__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.items_ = args, kwargs, None, []
        return obj

    def __init__(self, *args: Any, **kwargs: Any):  # pickle's REDUCE calls the class
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def append(self, item: Any) -> None:
        self.items_.append(item)

    def extend(self, items: Any) -> None:
        self.items_.extend(items)


_STUB_LOCK = threading.Lock()
_STUBBED: list[str] = []


class _StubbingUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            qualified = f"{module}.{name}"
            if qualified not in _STUBBED:
                _STUBBED.append(qualified)
            return type(name, (_StandIn,), {"__module__": module, "__qualname__": name})


def _stubbing_pickle_module() -> types.ModuleType:
    module = types.ModuleType("place_bench_stubbing_pickle")
    module.Unpickler = _StubbingUnpickler  # type: ignore[attr-defined]
    module.load = pickle.load  # type: ignore[attr-defined]
    module.loads = pickle.loads  # type: ignore[attr-defined]
    module.Pickler = pickle.Pickler  # type: ignore[attr-defined]
    module.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
    return module


def _unpickle_everything(p: Path) -> tuple[Any, list[str]]:
    """``torch.load(weights_only=False)`` with stand-ins for unimportable classes."""
    with _STUB_LOCK:
        _STUBBED.clear()
        try:
            obj = torch.load(str(p), map_location="cpu", weights_only=False, pickle_module=_stubbing_pickle_module())
        except Exception as exc:
            raise PartialLoadError(f"checkpoint '{p}' could not be unpickled: {type(exc).__name__}: {exc}") from None
        return obj, list(_STUBBED)
