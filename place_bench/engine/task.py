"""The contract between the evaluation runner and a downstream task plugin.

A task is a component of the ``task`` registry (``place_bench.registry``), built from the
``task`` section of an evaluation config (``dict(type="cls_linear", ...)``: every key but
``type`` is a constructor argument, i.e. a protocol parameter). It declares what it needs from
a checkpoint and turns a dataset manifest into result units:

* ``needs``: ``{"image"}`` (an image encoder) or ``{"image", "text"}`` (both encoders and the
  joint space). The runner refuses a checkpoint that lacks a needed encoder before any work.
* :meth:`Task.units` expands the requested label fractions and seeds into :class:`Unit`s; a unit
  is the smallest thing that gets one result record. Tasks without fractions (zero-shot,
  retrieval) return one unit per variant with ``fraction=None`` and ``seed`` the bootstrap seed.
* :meth:`Task.run` computes every unit's metrics (on the whole test set, never per batch) and
  yields :class:`UnitResult`s as they finish, so a killed run keeps the units already recorded.
  The runner only asks for the units whose records are missing.

Tasks never special-case a method: they see a :class:`~place_bench.model.vlm.VisionLanguageModel`
through its encoders and ``embed_*`` methods only.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch

__all__ = ["DatasetRef", "EvalContext", "Task", "Unit", "UnitFailure", "UnitResult", "per_dataset_overrides"]


def per_dataset_overrides(by_dataset: Mapping[str, Any] | None, allowed: Iterable[str]) -> dict[str, dict]:
    """A task's ``by_dataset`` setting (dataset name -> settings overriding the task's own for that
    dataset, e.g. BenchX's COVIDx learning rate), checked: a key outside ``allowed`` is an error."""
    allowed = set(allowed)
    out = {str(k): dict(v) for k, v in (by_dataset or {}).items()}
    for dataset, overrides in out.items():
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise ValueError(f"by_dataset[{dataset!r}]: {unknown} cannot be set per dataset; allowed: {sorted(allowed)}")
    return out


@dataclasses.dataclass(frozen=True)
class Unit:
    """One (variant, fraction, seed) of a task on one dataset: one result record.

    ``fraction``: share of the train split's labels in (0, 1], or None for tasks without
    training; ``variant``: a named protocol variant (e.g. ``"zeroshot"`` / ``"linear"`` of the
    probes task) or None.
    """

    fraction: float | None
    seed: int
    variant: str | None = None


@dataclasses.dataclass
class UnitResult:
    """What a task measured for one unit.

    ``metrics``: name -> ``{"value", "ci_low", "ci_high", "level", "n_resamples", "n_valid",
    "seed"}`` (values in [0, 1]; see :mod:`place_bench.evaluation.bootstrap`);
    ``primary_metric``: the key the leaderboard shows; ``n_test``: evaluated test items;
    ``extra``: JSON-able task details (prompts used, per-label values, epochs trained, ...);
    ``files``: name -> path of side files the task wrote (e.g. sample generations); the runner
    copies each beside the record as ``<key>.<name><suffix>`` and lists it in ``extra.files``;
    ``item_ids`` + ``predictions``: the per-test-item arrays the metrics were computed from
    (``scores`` + ``targets``, or ``per_item__<metric>`` values whose mean is the metric), saved
    beside the record so that ``place-bench compare`` can run a paired test later.
    """

    unit: Unit
    metrics: dict[str, dict[str, Any]]
    primary_metric: str
    n_test: int
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    files: dict[str, str] = dataclasses.field(default_factory=dict)
    item_ids: list[str] = dataclasses.field(default_factory=list)
    predictions: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class UnitFailure:
    """A task's way to fail one unit and go on with the others (e.g. a label fraction that leaves
    no training image): the runner records ``unit`` as ``failed`` with ``error``. An exception
    raised by ``run`` instead fails every unit not yet yielded."""

    unit: Unit
    error: str


@dataclasses.dataclass(frozen=True)
class DatasetRef:
    """A prepared manifest: ``<out>/<dataset>/<protocol>.parquet`` and its sidecar.

    ``root``: the native dataset folder image paths are relative to (the sidecar's
    ``native_root`` unless given); ``fingerprint``: the manifest's SHA-256.
    """

    manifest: Path
    root: Path
    name: str
    protocol: str
    fingerprint: str
    sidecar: Mapping[str, Any]

    @classmethod
    def open(cls, manifest: str | Path, root: str | Path | None = None) -> "DatasetRef":
        from place_bench.data.manifest import manifest_fingerprint, read_sidecar, sidecar_path

        path = Path(manifest)
        if path.is_dir():
            found = sorted(path.glob("*.parquet"))
            if len(found) != 1:
                names = ", ".join(p.name for p in found) or "none"
                raise FileNotFoundError(f"'{path}' must hold exactly one manifest (<protocol>.parquet); found: {names}")
            path = found[0]
        if not path.is_file():
            raise FileNotFoundError(f"data manifest '{path}' does not exist (run `place-bench data prepare`)")
        sidecar = read_sidecar(sidecar_path(path))
        native = root if root is not None else sidecar.get("native_root")
        if native is None:
            raise ValueError(f"{path}: the sidecar records no native root; give --root")
        return cls(
            manifest=path,
            root=Path(native),
            name=str(sidecar.get("dataset") or path.parent.name),
            protocol=str(sidecar.get("protocol") or path.stem),
            fingerprint=manifest_fingerprint(path),
            sidecar=sidecar,
        )


@dataclasses.dataclass
class EvalContext:
    """Everything a task may use while running.

    ``model``: the evaluated model in eval mode on ``device`` (tasks that train copy what they
    train); ``subject_id``: the checkpoint's SHA-256 (the feature-cache key);
    ``work_dir``: a folder for side files and caches that survives the run;
    ``cache_dir``: where frozen features are cached; ``pipeline``: the image transform settings
    the model was pretrained with (its config's ``data.pipeline``), which tasks use when their own
    ``pipeline`` is not set (so a 64 px synthetic model is evaluated at 64 px).
    """

    model: Any
    subject_id: str
    dataset: DatasetRef
    work_dir: Path
    cache_dir: Path
    device: torch.device
    log: Any = print
    pipeline: dict = dataclasses.field(default_factory=dict)


class Task(abc.ABC):
    """Base class of task plugins (see the module docstring for the contract)."""

    #: The name results are filed under (``cls_linear``, ``zeroshot``, ...).
    name: str = ""
    #: What the task needs from a checkpoint: ``{"image"}`` or ``{"image", "text"}``.
    needs: frozenset[str] = frozenset({"image"})
    #: Whether label fractions apply (trained heads); tasks without them take ``fraction=None``.
    uses_fractions: bool = False

    def units(self, fractions: Sequence[float] | None, seeds: Sequence[int]) -> list[Unit]:
        fracs: Iterable[float | None] = (fractions or (1.0,)) if self.uses_fractions else (None,)
        return [Unit(None if f is None else float(f), int(s)) for f in fracs for s in seeds]

    def protocol(self) -> dict[str, Any]:
        """The task's protocol parameters as recorded (JSON-able)."""
        return {}

    @abc.abstractmethod
    def run(self, ctx: EvalContext, units: Sequence[Unit]) -> Iterator[UnitResult]:
        """Compute ``units`` on ``ctx.dataset`` and yield one result per unit as it finishes."""
