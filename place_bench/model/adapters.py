"""Checkpoint adapters: declarative descriptions of a foreign checkpoint format.

An adapter (registered by a plugin under kind ``checkpoint_adapter``) states everything needed
to turn one code base's checkpoint into a suite model, as data:

* ``source_format``: what the file is (a PyTorch Lightning checkpoint, a plain state dict,
  BenchX converted weights) and ``reference``: where its key names come from;
* ``prefixes``: prefixes stripped from the front of every file key (the first that matches);
* ``drops``: expected *unexpected* keys, each with the reason nothing in the suite takes them
  (pretraining-only layers, unused buffers, a text side without a faithful joint space);
* ``rules``: renames from file keys to suite keys (a regular expression anchored at the start
  and its replacement), optionally with a named tensor transform (:data:`TENSOR_TRANSFORMS`);
* ``fills``: expected *missing* suite keys and the rule that produces them
  (:data:`FILLS`), with the reason that is exact;
* ``transforms``: tensor transforms applied to suite keys after renaming, with their reason;
* ``model``: the suite config sections this checkpoint needs (``model``, ``data.pipeline``):
  encoder architecture, heads; :class:`Dim` placeholders are read from tensor shapes;
* ``text``: the text encoder's expectations (:class:`TextSpec`: tokenizer, layers, pooling);
  None for an image-only import;
* ``detect``: file keys (after stripping) whose presence identifies this adapter among the
  adapters of the same ``format`` (e.g. ResNet-50 vs ViT-B/16 checkpoints of one method);
* ``notes``: where the import is not exact (preprocessing, pooling), for the card;
  ``zero_shot``: None when the joint space is faithful, else why zero-shot is not offered.

Calling an adapter converts a state dict: ``adapter(file_state, model_state)`` returns the
state to load and a :class:`~place_bench.model.load_report.LoadReport`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Mapping

import torch

from place_bench.model.load_report import LoadReport


# -- tensor rules -------------------------------------------------------------------------------

def squeeze_kernel(t: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution's weight (out, in, 1[, 1]) as a linear weight (out, in); others unchanged."""
    if t.ndim > 2 and all(int(s) == 1 for s in t.shape[2:]):
        return t.reshape(t.shape[0], t.shape[1])
    return t


def first_row_everywhere(t: torch.Tensor) -> torch.Tensor:
    """Every row of a (rows, width) table set to row 0 (a model that always looked up row 0)."""
    return t[:1].expand_as(t).clone()


TENSOR_TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "squeeze_kernel": squeeze_kernel,
    "first_row_everywhere": first_row_everywhere,
}


def _zeros(like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like)


def _identity(like: torch.Tensor) -> torch.Tensor:
    if like.ndim == 2 and like.shape[0] == like.shape[1]:
        return torch.eye(like.shape[0], dtype=like.dtype)
    if like.ndim == 1:
        return torch.zeros_like(like)  # the bias of an identity map
    raise ValueError(f"fill 'identity' needs a square weight or a bias, got shape {tuple(like.shape)}")


#: fill rule -> tensor from the model's own (initial) tensor of the same key
FILLS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"zeros": _zeros, "identity": _identity}


@dataclasses.dataclass(frozen=True)
class KeyRule:
    """File keys matching ``pattern`` (a regex, matched at the start) become ``re.sub(pattern,
    target, key)``; ``transform`` names a :data:`TENSOR_TRANSFORMS` entry applied on the way."""

    pattern: str
    target: str
    transform: str | None = None


@dataclasses.dataclass(frozen=True)
class Drop:
    """File keys matching ``pattern`` are expected and not loaded, for ``reason``."""

    pattern: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Fill:
    """Suite keys matching ``pattern`` that the file lacks are produced by ``rule`` (:data:`FILLS`)."""

    pattern: str
    rule: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Transform:
    """Suite keys matching ``pattern`` go through ``name`` (:data:`TENSOR_TRANSFORMS`), for ``reason``."""

    pattern: str
    name: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Dim:
    """A width read from the file: ``shape[axis]`` of file key ``key`` (after prefix stripping)."""

    key: str
    axis: int = 0


@dataclasses.dataclass(frozen=True)
class TextSpec:
    """What the foreign text encoder was and which parts of the text folder it needs.

    ``tokenizer``: the tokenizer (and vocabulary) the checkpoint was trained with, in words;
    ``num_layers``: transformer layers the checkpoint holds (None: the folder's config);
    ``hf_text``: extra ``hf_text`` keywords (``word_pooling``, ``max_length``, ...).
    The BERT dimensions come from the text folder's ``config.json``.
    """

    tokenizer: str
    num_layers: int | None = None
    hf_text: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, repr=False)
class CheckpointAdapter:
    """One foreign checkpoint format for one architecture; see the module docstring."""

    name: str
    format: str
    arch: str
    method: Mapping[str, Any]
    source_format: str
    reference: str
    model: Mapping[str, Any]
    rules: tuple[KeyRule, ...]
    detect: tuple[str, ...]
    prefixes: tuple[str, ...] = ()
    drops: tuple[Drop, ...] = ()
    fills: tuple[Fill, ...] = ()
    transforms: tuple[Transform, ...] = ()
    text: TextSpec | None = None
    pipeline: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()
    zero_shot: str | None = None

    def __repr__(self) -> str:
        return f"CheckpointAdapter({self.name!r})"

    # -- reading the file ------------------------------------------------------------------
    def strip(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` with the first matching prefix of :attr:`prefixes` removed from each key."""
        out = {}
        for key, value in state.items():
            for prefix in self.prefixes:
                if key.startswith(prefix):
                    key = key[len(prefix):]
                    break
            out[key] = value
        return out

    def recognises(self, stripped: Mapping[str, torch.Tensor]) -> bool:
        return all(k in stripped for k in self.detect)

    def resolve(self, value: Any, stripped: Mapping[str, torch.Tensor]) -> Any:
        """``value`` with every :class:`Dim` replaced by the width it names."""
        if isinstance(value, Dim):
            if value.key not in stripped:
                raise KeyError(f"adapter {self.name!r}: the file has no key {value.key!r} to read a width from")
            return int(stripped[value.key].shape[value.axis])
        if isinstance(value, Mapping):
            return {k: self.resolve(v, stripped) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.resolve(v, stripped) for v in value)
        return value

    def describe(self) -> dict[str, Any]:
        """The declaration as JSON (recorded in cards; ``place-bench import-checkpoint --describe``)."""
        def plain(v):
            if dataclasses.is_dataclass(v):
                return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
            if isinstance(v, Mapping):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            return v

        return plain(self)

    # -- converting ------------------------------------------------------------------------
    def __call__(self, stripped: Mapping[str, torch.Tensor],
                 model_state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], LoadReport]:
        """Map ``stripped`` (file keys after :meth:`strip`) onto ``model_state``'s keys.

        Returns the tensors to load (file tensors, transformed, plus declared fills; keys the
        file misses are absent) and the report. Nothing is refused here:
        :func:`~place_bench.model.load_report.refuse_if_needed` decides.
        """
        report = LoadReport(adapter=self.name)
        out: dict[str, torch.Tensor] = {}
        for key, tensor in stripped.items():
            drop = next((d for d in self.drops if re.match(d.pattern, key)), None)
            if drop is not None:
                report.dropped[key] = drop.reason
                continue
            rule = next((r for r in self.rules if re.match(r.pattern, key)), None)
            if rule is None:
                report.unexpected.append(key)
                continue
            target = re.sub(rule.pattern, rule.target, key, count=1)
            if target not in model_state:
                report.unexpected.append(f"{key} (-> {target})")
                continue
            if target in out:
                raise ValueError(f"adapter {self.name!r}: two file keys map to {target!r}")
            if rule.transform is not None:
                changed = TENSOR_TRANSFORMS[rule.transform](tensor)
                if changed is not tensor:
                    report.transformed[target] = rule.transform
                tensor = changed
            out[target] = tensor
        for target in list(out):
            for transform in self.transforms:
                if re.match(transform.pattern, target):
                    out[target] = TENSOR_TRANSFORMS[transform.name](out[target])
                    report.transformed[target] = f"{transform.name}: {transform.reason}"
        for target, expected in model_state.items():
            if target in out:
                if tuple(out[target].shape) != tuple(expected.shape):
                    report.mismatched.append(
                        f"{target}: file {tuple(out[target].shape)} vs model {tuple(expected.shape)}")
                    del out[target]
                else:
                    out[target] = out[target].to(expected.dtype)
                    report.loaded.append(target)
                continue
            fill = next((f for f in self.fills if re.match(f.pattern, target)), None)
            if fill is not None:
                out[target] = FILLS[fill.rule](expected)
                report.filled[target] = f"{fill.rule}: {fill.reason}"
            else:
                report.missing.append(target)
        return out, report
