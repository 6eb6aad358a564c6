"""Run a task on one checkpoint and dataset, unit by unit, into the results store.

:func:`evaluate` is what ``place-bench eval`` and the benchmark runner call. For every unit
(fraction, seed, variant) of the task it computes the record key from the unit's identity
(checkpoint SHA-256, task, dataset, protocol, variant, fraction, seed); a unit whose record
exists with status ``ok`` is skipped (``force`` recomputes it). Records are written atomically
one by one as units finish, so an interrupted run keeps every finished unit and leaves no
partial record; a unit that raises is recorded as ``failed`` with its error and the run goes on
(:class:`EvalSummary` says which).

What is evaluated (:class:`Subject`) is a suite checkpoint (``.safetensors`` + card: the
weights are loaded strictly) or a model config without weights: the "random init" row (every
weight drawn from ``seed``) and the "ImageNet init" row (an image encoder reading its local
ImageNet weights). A config subject's id is the SHA-256 of its canonical model config and seed,
prefixed ``init:``, so it never collides with a checkpoint's. A foreign checkpoint (MGCA, GLoRIA,
ConVIRT, BenchX; ``load_subject(..., foreign=dict(format=...))``) is converted in memory by its
checkpoint adapter; its id is ``import:<hash>`` of the source file's SHA-256, the format and the
load options (:func:`place_bench.model.importer.foreign_subject_id`), and its load report (keys
loaded, filled, dropped, missing, unexpected; the override flags) goes into every record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from place_bench.engine.task import DatasetRef, EvalContext, Task, Unit, UnitFailure, UnitResult

__all__ = ["EvalSummary", "FOREIGN_KEYS", "Subject", "build_task", "evaluate", "foreign_subject_info", "load_subject"]

#: the keys of ``load_subject(..., foreign=...)`` (a benchmark method's foreign-checkpoint settings)
FOREIGN_KEYS = ("format", "text_model", "arch", "allow_pickle", "allow_missing", "allow_unexpected", "options",
                "label", "seed")


@dataclasses.dataclass
class Subject:
    """The model under evaluation with its identity.

    ``sha256``: checkpoint weights' SHA-256 (or ``init:<hash>`` for config subjects);
    ``method``: the card's method section (``name``, ``label``, ...); ``path``: the checkpoint
    or config file; ``load_report``: how the weights were loaded (recorded in results).
    """

    model: Any
    sha256: str
    method: dict
    path: str
    config: dict
    load_report: dict = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.method.get("label") or self.method.get("name") or Path(self.path).stem)


def load_subject(source: str | os.PathLike, cfg_options: Mapping[str, Any] | None = None,
                 plugin_dirs: Sequence[str] = (), seed: int = 0, foreign: Mapping[str, Any] | None = None) -> Subject:
    """A :class:`Subject` from a ``.safetensors`` checkpoint, a model config, or (with ``foreign``)
    a foreign checkpoint.

    :param foreign: ``dict(format="mgca", text_model=DIR, arch=None, allow_pickle=False,
        allow_missing=False, allow_unexpected=False, options={...}, label=None)`` (keys:
        :data:`FOREIGN_KEYS`; all but ``format`` optional): ``source`` is then a foreign
        checkpoint converted by :func:`place_bench.model.importer.import_foreign`.
    """
    from place_bench import api
    from place_bench.config import to_plain
    from place_bench.model.checkpoint import build_model_from_checkpoint

    if foreign is not None:
        return _foreign_subject(source, foreign, plugin_dirs)
    if str(source).endswith(".safetensors"):
        from place_bench.plugin_manager import get_plugin_manager

        get_plugin_manager(plugin_dirs)
        model, card = build_model_from_checkpoint(source)
        config = card.get("config") or {}
        method = dict(config.get("method") or {"name": Path(source).parent.name or Path(source).stem})
        from place_bench.data.manifest import sha256_file

        sha = card.get("weights_sha256") or sha256_file(source)
        report = {"source": "suite checkpoint", "strict": True}
        imported = (card.get("extra") or {}).get("import")
        if imported:
            from place_bench.model.importer import record_load_report

            report = record_load_report(imported, "imported suite checkpoint")
        return Subject(model, sha, method, str(source), config, report)
    cfg = api.load_config(source, cfg_options, plugin_dirs)
    config = to_plain(cfg)
    torch.manual_seed(int(seed))
    model = api.build_model(cfg)
    model_json = json.dumps({"model": config.get("model"), "seed": int(seed)}, sort_keys=True, default=str)
    sha = "init:" + hashlib.sha256(model_json.encode()).hexdigest()
    method = dict(config.get("method") or {"name": Path(str(source)).stem})
    encoder = (config.get("model") or {}).get("image_encoder") or {}
    report = {"source": "config", "seed": int(seed), "image_weights": encoder.get("pretrained_path") or "random"}
    return Subject(model, sha, method, str(getattr(cfg, "filename", source)), config, report)


def _foreign_options(foreign: Mapping[str, Any]) -> tuple[str, dict]:
    unknown = sorted(set(foreign) - set(FOREIGN_KEYS))
    if unknown:
        raise ValueError(f"foreign checkpoint settings: unknown keys {unknown}; keys: {', '.join(FOREIGN_KEYS)}")
    if not foreign.get("format"):
        raise ValueError("foreign checkpoint settings need format= (mgca, gloria, convirt, benchx, ...)")
    options = dict(foreign)
    return str(options.pop("format")), options


def _foreign_subject(source: str | os.PathLike, foreign: Mapping[str, Any], plugin_dirs: Sequence[str]) -> Subject:
    from place_bench.model.importer import import_foreign, record_load_report
    from place_bench.plugin_manager import get_plugin_manager

    get_plugin_manager(plugin_dirs)
    fmt, options = _foreign_options(foreign)
    imported = import_foreign(source, fmt, **options)
    report = record_load_report(imported.provenance, "foreign checkpoint")
    return Subject(imported.model, imported.provenance["subject_id"], dict(imported.config["method"]), str(source),
                   imported.config, report)


def foreign_subject_info(source: str | os.PathLike, foreign: Mapping[str, Any],
                         plugin_dirs: Sequence[str] = ()) -> dict[str, Any]:
    """What a benchmark plan needs about a foreign checkpoint without loading it.

    ``{"sha256": <the id load_subject(source, foreign=foreign) will have, or None when the file
    is not there yet>, "encoders": {"image"} or {"image", "text"}}`` (the encoders every adapter
    of the format yields; image-only formats serve no zero-shot, retrieval or probes).
    """
    from place_bench.model.foreign import sha256_of
    from place_bench.model.importer import adapters_of, foreign_subject_id
    from place_bench.plugin_manager import get_plugin_manager

    get_plugin_manager(plugin_dirs)
    fmt, options = _foreign_options(foreign)
    adapters = adapters_of(fmt)
    encoders = {"image"} | ({"text"} if all(a.text is not None for a in adapters) else set())
    path = Path(source)
    sha = None
    if path.is_file():
        sha = foreign_subject_id(sha256_of(path), fmt, options.get("arch"), bool(options.get("allow_missing")),
                                 bool(options.get("allow_unexpected")), options.get("options"), options.get("seed", 0))
    return {"sha256": sha, "encoders": encoders}


def build_task(task_cfg: Mapping[str, Any]) -> Task:
    from place_bench import registry as registries

    return registries.build("task", dict(task_cfg))


@dataclasses.dataclass
class EvalSummary:
    """Keys of the units written, skipped (already recorded) and failed, with the records."""

    written: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    records: list[dict] = dataclasses.field(default_factory=list)


def predictions_path(store, task: str, dataset: str, key: str) -> Path:
    """Where the per-item predictions of record ``key`` live: beside the record."""
    return Path(store.root) / task / dataset / f"{key}.predictions.npz"


def save_predictions(store, task: str, dataset: str, key: str, result: UnitResult) -> Path:
    """Write ``result.item_ids`` and ``result.predictions`` atomically as ``.npz``; return the path."""
    import io

    import numpy as np

    from place_bench.io import atomic_write_bytes

    if len(result.item_ids) != result.n_test:
        raise ValueError(f"{task}: {len(result.item_ids)} item ids for {result.n_test} test items")
    buffer = io.BytesIO()
    np.savez(buffer, item_ids=np.asarray(result.item_ids, dtype=str),
             **{k: np.asarray(v) for k, v in result.predictions.items()})
    path = predictions_path(store, task, dataset, key)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def finite_json(obj: Any, where: str = "extra") -> Any:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN); the replaced
    paths are listed under ``<where>.non_finite`` by the caller."""
    import math

    replaced: list[str] = []

    def walk(value, path):
        if isinstance(value, float) and not math.isfinite(value):
            replaced.append(path)
            return None
        if isinstance(value, Mapping):
            return {k: walk(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    cleaned = walk(obj, where)
    if replaced and isinstance(cleaned, dict):
        cleaned["non_finite"] = replaced
    return cleaned


def copy_beside(store, task: str, dataset: str, key: str, name: str, source: str | os.PathLike) -> Path:
    """Copy a task's side file (e.g. sample generations) beside record ``key`` as
    ``<key>.<name><suffix>``, atomically; return the new path."""
    from place_bench.io import atomic_write_bytes

    source = Path(source)
    target = predictions_path(store, task, dataset, key).with_name(f"{key}.{name}{source.suffix}")
    atomic_write_bytes(target, source.read_bytes())
    return target


def unit_identity(subject: Subject, task: Task, dataset: DatasetRef, unit: Unit) -> dict:
    """The identity fields of a unit's record (its key is their hash)."""
    return {"checkpoint_sha256": subject.sha256, "task": task.name, "dataset": dataset.name,
            "protocol": dataset.protocol, "variant": unit.variant, "fraction": unit.fraction, "seed": unit.seed}


def evaluate(
    subject: Subject,
    task_cfg: Mapping[str, Any],
    dataset: DatasetRef,
    store,
    fractions: Sequence[float] | None = None,
    seeds: Sequence[int] = (0,),
    work_dir: str | os.PathLike | None = None,
    force: bool = False,
    device: str | torch.device = "cpu",
    overrides: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> EvalSummary:
    """Run ``task_cfg`` (``dict(type=<task>, ...)``) on ``subject`` and ``dataset`` into ``store``.

    ``store``: a :class:`place_bench.results.store.ResultsStore`; ``work_dir``: side files and
    the feature cache (default ``<store root>/../work``).
    """
    from place_bench.results.records import make_record, record_key, utc_now

    task = build_task(task_cfg)
    missing = sorted(n for n in task.needs if getattr(subject.model, f"{n}_encoder", None) is None)
    if missing:
        raise ValueError(f"task {task.name!r} needs the {' and '.join(missing)} encoder; "
                         f"'{subject.path}' has none (model.{missing[0]}_encoder is None)")
    summary = EvalSummary()
    pending: list[Unit] = []
    for unit in task.units(fractions, seeds):
        key = record_key(unit_identity(subject, task, dataset, unit))
        if not force and store.has(key) and store.get(key).get("status") == "ok":
            summary.skipped.append(key)
            continue
        pending.append(unit)
    if not pending:
        log(f"{task.name} on {dataset.name}: all {len(summary.skipped)} units already recorded")
        return summary

    work = Path(work_dir) if work_dir is not None else Path(store.root).parent / "work"
    device = torch.device(device)
    subject.model.to(device).eval()
    ctx = EvalContext(model=subject.model, subject_id=subject.sha256, dataset=dataset, work_dir=work,
                      cache_dir=work / "feature_cache", device=device, log=log,
                      pipeline=dict((subject.config.get("data") or {}).get("pipeline") or {}))
    common = dict(
        checkpoint={"path": subject.path, "sha256": subject.sha256, "label": subject.label,
                    "load_report": subject.load_report},
        method=dict(subject.method, label=subject.label),
        task=task.name, dataset=dataset.name, protocol=dataset.protocol,
        config={"task": dict(task_cfg), "protocol": task.protocol()},
        manifest={"path": str(dataset.manifest), "fingerprint": dataset.fingerprint},
        overrides=dict(overrides or {}),
    )

    def write(unit: Unit, started: str, result: UnitResult | None, error: str | None) -> None:
        fields = dict(common, seed=unit.seed, fraction=unit.fraction, variant=unit.variant,
                      started_at=started, finished_at=utc_now())
        if result is None:
            record = make_record(**fields, metrics={}, primary_metric=None, n_test=None, status="failed", error=error)
            summary.failed.append(record["key"])
        else:
            key = record_key(unit_identity(subject, task, dataset, unit))
            files = {name: copy_beside(store, task.name, dataset.name, key, name, path).name
                     for name, path in result.files.items()}
            if result.predictions:
                files["predictions"] = save_predictions(store, task.name, dataset.name, key, result).name
            record = make_record(**fields, metrics=result.metrics, primary_metric=result.primary_metric,
                                 n_test=result.n_test, extra=finite_json(dict(result.extra, files=files)))
            summary.written.append(record["key"])
        store.write(record)
        summary.records.append(record)

    started = utc_now()
    done: set[Unit] = set()
    t0 = time.perf_counter()
    try:
        for result in task.run(ctx, pending):
            if isinstance(result, UnitFailure):
                write(result.unit, started, None, result.error)
                done.add(result.unit)
                log(f"{task.name} {dataset.name} fraction={result.unit.fraction} seed={result.unit.seed}: "
                    f"failed: {result.error}")
                started = utc_now()
                continue
            write(result.unit, started, result, None)
            done.add(result.unit)
            value = result.metrics.get(result.primary_metric, {}).get("value")
            log(f"{task.name} {dataset.name} fraction={result.unit.fraction} seed={result.unit.seed}"
                f"{' ' + result.unit.variant if result.unit.variant else ''}: {result.primary_metric}="
                f"{value:.4f} ({time.perf_counter() - t0:.1f} s)")
            started = utc_now()
    except Exception as exc:  # the remaining units fail with this error; finished ones are kept
        message = f"{type(exc).__name__}: {exc}"
        if os.environ.get("PLACE_BENCH_DEBUG"):
            traceback.print_exc()
        for unit in pending:
            if unit not in done:
                write(unit, started, None, message)
        log(f"{task.name} on {dataset.name} failed: {message}")
    return summary
