"""Result records: the schema, their keys, and validation.

A record is one JSON object. Two kinds exist.

**Measured** (``kind: "measured"``): one evaluation this suite ran, one file per
(checkpoint, task, dataset, protocol, variant, fraction, seed)::

    schema        1
    kind          "measured"
    key           sha256 hex of the canonical JSON of ``identity`` (see ``record_key``)
    identity      {checkpoint_sha256, task, dataset, protocol, variant, fraction, seed}
    method        the checkpoint card's method section; ``name`` and ``label`` required
                  (``reconstruction``, ``reference``, ... kept as given)
    checkpoint    {path, sha256, label}; ``sha256`` equals identity.checkpoint_sha256
    task, dataset, protocol, variant, fraction, seed
                  copies of the identity fields (variant: str or null; fraction: a
                  label fraction in (0, 1] or null when the task has none; seed: int)
    metrics       {name: {value, ci_low, ci_high, level, n_resamples, n_valid, seed}};
                  value and CI bounds in [0, 1] (or null: undefined); level in (0, 1);
                  an entry with ``"unbounded": true`` (e.g. CIDEr) may exceed 1 (>= 0)
    primary_metric  a key of ``metrics`` (when status is "ok")
    n_test        number of test items the metrics were computed on
    config        the full task config (JSON); config_hash = sha256 of its canonical JSON
    manifest      {path, fingerprint} of the evaluation data
    code_version  place_bench version + git commit; packages: {name: version}
    started_at, finished_at   ISO-8601 UTC timestamps
    status        "ok" | "failed";  error: null, or the failure message when failed
    overrides     the command-line overrides applied to the config
    extra         task-specific details (prompts used, sample files, ...)

**Reference** (``kind: "reference"``): one published number, transcribed::

    schema, kind ("reference"), key
    identity      {method, task, dataset, protocol, fraction, metric, source}
    method        {label, note?}
    task, dataset, protocol, fraction, metric    copies of the identity fields
    value         in [0, 1], or null when the source gives no number (see ``note``)
    note          null, or why the value is missing/qualified (e.g. "below 1 %")
    backbone      e.g. "ResNet-50";   source   the paper and table

``task`` and ``dataset`` are used as folder names, so they are restricted to
``[A-Za-z0-9_.-]``. Every check raises ``RecordError`` naming the offending field.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from typing import Any, Mapping

SCHEMA_VERSION = 1
IDENTITY_FIELDS = ("checkpoint_sha256", "task", "dataset", "protocol", "variant", "fraction", "seed")
REFERENCE_IDENTITY_FIELDS = ("method", "task", "dataset", "protocol", "fraction", "metric", "source")
STATUSES = ("ok", "failed")
METRIC_FIELDS = ("value", "ci_low", "ci_high", "level", "n_resamples", "n_valid", "seed")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class RecordError(ValueError):
    """A record is malformed; the message names the field."""


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, ASCII only, no NaN: equal data gives equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("ascii")).hexdigest()


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _normalize_fraction(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise RecordError(f"record field '{field}' must be a label fraction in (0, 1] or null, got {value!r}")
    return float(value)


def normalize_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """The identity with its fields checked and ``fraction`` as a float (so 1 and 1.0 give one key)."""
    if not isinstance(identity, Mapping):
        raise RecordError(f"record field 'identity' must be an object, got {type(identity).__name__}")
    fields = REFERENCE_IDENTITY_FIELDS if "metric" in identity else IDENTITY_FIELDS
    missing = [f for f in fields if f not in identity]
    if missing:
        raise RecordError(f"record field 'identity.{missing[0]}' is missing (identity needs {', '.join(fields)})")
    unknown = sorted(set(identity) - set(fields))
    if unknown:
        raise RecordError(f"record field 'identity.{unknown[0]}' is not an identity field ({', '.join(fields)})")
    out = {f: identity[f] for f in fields}
    for f in ("task", "dataset"):
        if not isinstance(out[f], str) or not _NAME.match(out[f]) or out[f] in (".", ".."):
            raise RecordError(f"record field 'identity.{f}' must be a name of [A-Za-z0-9_.-], got {out[f]!r}")
    for f in fields:
        if f not in ("fraction", "seed", "variant") and (not isinstance(out[f], str) or not out[f]):
            raise RecordError(f"record field 'identity.{f}' must be a non-empty string, got {out[f]!r}")
    if "variant" in out and out["variant"] is not None and (not isinstance(out["variant"], str) or not out["variant"]):
        raise RecordError(f"record field 'identity.variant' must be a non-empty string or null, got {out['variant']!r}")
    if "seed" in out and (isinstance(out["seed"], bool) or not isinstance(out["seed"], int)):
        raise RecordError(f"record field 'identity.seed' must be an integer, got {out['seed']!r}")
    out["fraction"] = _normalize_fraction(out["fraction"], "identity.fraction")
    return out


def record_key(identity: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of the (normalized) identity fields; stable across runs."""
    return sha256_json(normalize_identity(identity))


def _metric_entry(name: str, entry: Any) -> dict[str, Any]:
    if entry is None or (isinstance(entry, (int, float)) and not isinstance(entry, bool)):
        entry = {"value": entry}
    if not isinstance(entry, Mapping):
        raise RecordError(f"record field 'metrics.{name}' must be an object or a number, got {entry!r}")
    return {f: entry.get(f) for f in METRIC_FIELDS} | {k: v for k, v in entry.items() if k not in METRIC_FIELDS}


def _check_unit(value: Any, field: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        raise RecordError(f"record field '{field}' must be a number in [0, 1] or null, got {value!r}")


def _check_non_negative(value: Any, field: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise RecordError(f"record field '{field}' must be a non-negative number or null, got {value!r}")


def _check_metrics(metrics: Any) -> None:
    if not isinstance(metrics, Mapping):
        raise RecordError(f"record field 'metrics' must be an object, got {type(metrics).__name__}")
    for name, entry in metrics.items():
        if not isinstance(entry, Mapping) or "value" not in entry:
            raise RecordError(f"record field 'metrics.{name}.value' is missing")
        for f in ("value", "ci_low", "ci_high"):
            if entry.get("unbounded") is True:
                _check_non_negative(entry.get(f), f"metrics.{name}.{f}")
            else:
                _check_unit(entry.get(f), f"metrics.{name}.{f}")
        lo, hi = entry.get("ci_low"), entry.get("ci_high")
        if lo is not None and hi is not None and lo > hi:
            raise RecordError(f"record field 'metrics.{name}.ci_low' ({lo}) exceeds ci_high ({hi})")
        level = entry.get("level")
        if level is not None and (isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1):
            raise RecordError(f"record field 'metrics.{name}.level' must be in (0, 1), got {level!r}")


def _check_time(value: Any, field: str) -> None:
    try:
        parsed = _dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise RecordError(f"record field '{field}' must be an ISO-8601 timestamp, got {value!r}") from None
    if parsed.utcoffset() != _dt.timedelta(0):
        raise RecordError(f"record field '{field}' must be in UTC, got {value!r}")


def _require(record: Mapping[str, Any], fields: tuple[str, ...], where: str = "") -> None:
    for f in fields:
        if f not in record:
            raise RecordError(f"record field '{where}{f}' is missing")


def _check_common(record: Mapping[str, Any], kind: str, id_fields: tuple[str, ...]) -> dict[str, Any]:
    _require(record, ("schema", "kind", "key", "identity"))
    if record["schema"] != SCHEMA_VERSION:
        raise RecordError(f"record field 'schema' is {record['schema']!r}; this code reads schema {SCHEMA_VERSION}")
    identity = normalize_identity(record["identity"])
    if tuple(identity) != id_fields:
        raise RecordError(f"record field 'identity' of a {kind} record needs {', '.join(id_fields)}")
    key = sha256_json(identity)
    if record["key"] != key:
        raise RecordError(f"record field 'key' ({record['key']!r}) does not match its identity (expected {key})")
    for f in id_fields:
        if f in ("checkpoint_sha256", "method"):
            continue
        _require(record, (f,))
        value = _normalize_fraction(record[f], f) if f == "fraction" else record[f]
        if value != identity[f] or type(value) is not type(identity[f]):
            raise RecordError(f"record field '{f}' ({record[f]!r}) differs from identity.{f} ({identity[f]!r})")
    method = record.get("method")
    if not isinstance(method, Mapping):
        raise RecordError("record field 'method' is missing or not an object")
    if not isinstance(method.get("label"), str) or not method["label"]:
        raise RecordError("record field 'method.label' is missing or empty")
    return identity


def validate_record(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """Check a measured or reference record; return it unchanged or raise ``RecordError``."""
    if not isinstance(record, Mapping):
        raise RecordError(f"a record must be a JSON object, got {type(record).__name__}")
    kind = record.get("kind")
    if kind == "reference":
        return _validate_reference(record)
    if kind != "measured":
        raise RecordError(f"record field 'kind' must be 'measured' or 'reference', got {kind!r}")
    identity = _check_common(record, "measured", IDENTITY_FIELDS)
    _require(record, ("metrics", "primary_metric", "n_test", "config", "config_hash", "manifest", "checkpoint",
                      "code_version", "packages", "started_at", "finished_at", "status", "error"))
    _require(record["method"], ("name",), "method.")
    checkpoint = record["checkpoint"]
    if not isinstance(checkpoint, Mapping):
        raise RecordError("record field 'checkpoint' must be an object")
    _require(checkpoint, ("path", "sha256", "label"), "checkpoint.")
    if checkpoint["sha256"] != identity["checkpoint_sha256"]:
        raise RecordError("record field 'checkpoint.sha256' differs from identity.checkpoint_sha256")
    manifest = record["manifest"]
    if not isinstance(manifest, Mapping):
        raise RecordError("record field 'manifest' must be an object")
    _require(manifest, ("path", "fingerprint"), "manifest.")
    if record["status"] not in STATUSES:
        raise RecordError(f"record field 'status' must be one of {STATUSES}, got {record['status']!r}")
    _check_metrics(record["metrics"])
    if record["status"] == "ok":
        if record["error"] is not None:
            raise RecordError("record field 'error' must be null when status is 'ok'")
        if record["primary_metric"] not in record["metrics"]:
            raise RecordError(f"record field 'primary_metric' ({record['primary_metric']!r}) is not among metrics")
        n_test = record["n_test"]
        if isinstance(n_test, bool) or not isinstance(n_test, int) or n_test < 0:
            raise RecordError(f"record field 'n_test' must be a non-negative integer, got {n_test!r}")
    elif not isinstance(record["error"], str) or not record["error"]:
        raise RecordError("record field 'error' must say why when status is 'failed'")
    if not isinstance(record["config"], Mapping):
        raise RecordError("record field 'config' must be an object")
    if record["config_hash"] != sha256_json(record["config"]):
        raise RecordError("record field 'config_hash' does not match the config")
    _check_time(record["started_at"], "started_at")
    _check_time(record["finished_at"], "finished_at")
    return record


def _validate_reference(record: Mapping[str, Any]) -> Mapping[str, Any]:
    identity = _check_common(record, "reference", REFERENCE_IDENTITY_FIELDS)
    _require(record, ("value", "note", "backbone", "source"))
    if record["method"]["label"] != identity["method"]:
        raise RecordError("record field 'method.label' differs from identity.method")
    if record["source"] != identity["source"]:
        raise RecordError("record field 'source' differs from identity.source")
    _check_unit(record["value"], "value")
    if record["value"] is None and not record["note"]:
        raise RecordError("record field 'note' must say why 'value' is null")
    return record


def make_record(
    *,
    checkpoint: Mapping[str, Any],
    method: Mapping[str, Any],
    task: str,
    dataset: str,
    protocol: str,
    seed: int,
    metrics: Mapping[str, Any],
    primary_metric: str | None,
    n_test: int | None,
    config: Mapping[str, Any],
    manifest: Mapping[str, Any],
    fraction: float | None = None,
    variant: str | None = None,
    status: str = "ok",
    error: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    started_at: str | None = None,
    finished_at: str | None = None,
    code_version: str | None = None,
    packages: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A validated measured record.

    Fills ``key``, ``identity``, ``config_hash``, missing timestamps (now, UTC),
    ``method.label`` (from ``method.name``), ``checkpoint.label`` (from the method
    label), and ``code_version``/``packages`` from this installation. A metric given
    as a bare number becomes ``{"value": number}`` with null CI fields. ``config``,
    ``overrides`` and ``extra`` are made JSON (non-JSON leaves become strings).
    """
    method = dict(method or {})
    if "name" in method and not method.get("label"):
        method["label"] = method["name"]
    checkpoint = dict(checkpoint or {})
    if "label" not in checkpoint and method.get("label"):
        checkpoint["label"] = method["label"]
    if "sha256" not in checkpoint:
        raise RecordError("record field 'checkpoint.sha256' is missing")
    if code_version is None or packages is None:
        from place_bench.model import checkpoint as _ckpt

        code_version = _ckpt.code_version() if code_version is None else code_version
        packages = _ckpt.package_versions() if packages is None else packages
    identity = normalize_identity({
        "checkpoint_sha256": checkpoint["sha256"], "task": task, "dataset": dataset, "protocol": protocol,
        "variant": variant, "fraction": fraction, "seed": seed,
    })
    config = _jsonable(config, "config")
    now = utc_now()
    record = {
        "schema": SCHEMA_VERSION,
        "kind": "measured",
        "key": sha256_json(identity),
        "identity": identity,
        "method": _jsonable(method, "method"),
        "checkpoint": _jsonable(checkpoint, "checkpoint"),
        **{f: identity[f] for f in IDENTITY_FIELDS if f != "checkpoint_sha256"},
        "metrics": {name: _jsonable(_metric_entry(name, entry), f"metrics.{name}") for name, entry in (metrics or {}).items()},
        "primary_metric": primary_metric,
        "n_test": n_test,
        "config": config,
        "config_hash": sha256_json(config),
        "manifest": _jsonable(manifest, "manifest"),
        "code_version": code_version,
        "packages": dict(packages),
        "started_at": started_at or now,
        "finished_at": finished_at or now,
        "status": status,
        "error": error,
        "overrides": _jsonable(overrides or {}, "overrides"),
        "extra": _jsonable(extra or {}, "extra"),
    }
    validate_record(record)
    return record


def make_reference_record(
    *,
    method: str,
    task: str,
    dataset: str,
    protocol: str,
    fraction: float | None,
    metric: str,
    value: float | None,
    source: str,
    backbone: str,
    note: str | None = None,
    method_note: str | None = None,
) -> dict[str, Any]:
    """A validated reference record for one published number (``value`` already in [0, 1])."""
    identity = normalize_identity({
        "method": method, "task": task, "dataset": dataset, "protocol": protocol,
        "fraction": fraction, "metric": metric, "source": source,
    })
    method_section = {"label": method}
    if method_note:
        method_section["note"] = method_note
    record = {
        "schema": SCHEMA_VERSION,
        "kind": "reference",
        "key": sha256_json(identity),
        "identity": identity,
        "method": method_section,
        **{f: identity[f] for f in REFERENCE_IDENTITY_FIELDS if f not in ("method", "source")},
        "value": value,
        "note": note,
        "backbone": backbone,
        "source": source,
    }
    validate_record(record)
    return record


def _jsonable(obj: Any, field: str) -> Any:
    try:
        return json.loads(json.dumps(obj, default=str, allow_nan=False))
    except ValueError as exc:  # NaN or infinity somewhere inside
        raise RecordError(f"record field '{field}' is not valid JSON: {exc}") from None
