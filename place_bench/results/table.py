"""The leaderboard table: a pure function of records (``build_table``).

Rows are methods, columns are (task, dataset, metric, fraction), in two blocks
that are never merged: **measured** rows from this suite's records and
**reference** rows from published numbers, so a measured "MGCA" and the
reference "MGCA" are always two rows.

Measured rows are keyed by (checkpoint_sha256, protocol, variant), except for the tasks of
:data:`VARIANT_COLUMN_TASKS`, whose variant names the column's metric instead. Their label is
the method label, plus ``[<first 8 hex of the checkpoint hash>]`` when several
checkpoints share the label, plus ``(protocol/variant)`` when one checkpoint has
records under several (protocol, variant) pairs. Reference rows are keyed by
(method label, protocol, source).

Columns: by default the primary metric of each record and the task's
:data:`SHOWN_METRICS` it has (``all_metrics=True``: every metric). A failed record that names no primary metric counts in the column of the
primary metric most often named by the measured records of its (task, dataset),
else by the reference records, else in a column of metric "primary".

A measured cell aggregates the seeds of one row and column: ``mean`` over seeds,
``sd`` the sample standard deviation (n - 1; None for one seed), ``n`` seeds. Its
CI is the record's CI for one seed; for several seeds it is the mean of the
per-seed lower bounds and the mean of the per-seed upper bounds (seeds without a
CI are left out): a typical single-run CI, not a CI of the seed mean, which the
s.d. describes. Failed records count in ``n_failed``; a cell with failures and no
values has status "failed". Records repeated under one key (e.g. from two
folders) count once: the one finished last wins. All values stay in [0, 1];
renderers show percentages.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

TASK_ORDER = ("cls_linear", "cls_finetune", "zeroshot", "retrieval", "seg", "det", "rrg")
DATASET_ORDER = ("chexpert", "siim", "rsna", "covidx", "object_cxr")  # the spec tables' order
BELOW_1 = "below 1 %"
#: Tasks whose variants are readings of one protocol (the probes' zero-shot and linear
#: readings): their variant goes into the column (``zeroshot:accuracy``), not into the row.
VARIANT_COLUMN_TASKS = ("probes",)
#: Metrics shown beside the primary one by default (when a record has them): a task's
#: leaderboard reading, e.g. report generation's NLG and clinical-efficacy columns.
SHOWN_METRICS = {
    "zeroshot": ("accuracy_znorm", "f1_macro", "auroc_macro"),
    "retrieval": ("i2t_precision@10", "t2i_precision@5"),
    "seg": ("dice_positive", "dice_dataset"),
    "det": ("ap50", "map_all"),
    "rrg": ("bleu1", "meteor", "rouge_l", "cider", "full_bleu4", "ce_f1", "ce_f1_macro", "ce_latent_f1_macro"),
}


def _rank(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    return (order.index(value) if value in order else len(order), value)


@dataclass(frozen=True)
class Column:
    task: str
    dataset: str
    metric: str
    fraction: float | None

    def sort_key(self) -> tuple:
        return (_rank(self.task, TASK_ORDER), _rank(self.dataset, DATASET_ORDER), self.metric,
                -1.0 if self.fraction is None else self.fraction)

    @property
    def fraction_label(self) -> str:
        return "" if self.fraction is None else f"{self.fraction * 100:g}%"

    @property
    def header(self) -> str:
        return " ".join(p for p in (self.dataset, self.metric, self.fraction_label) if p)


@dataclass
class Cell:
    """Seeds of one row and column; ``published`` cells hold one reference value."""

    values: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    ci_lows: list[float] = field(default_factory=list)
    ci_highs: list[float] = field(default_factory=list)
    levels: set[float] = field(default_factory=set)
    n_failed: int = 0
    errors: list[str] = field(default_factory=list)
    published: bool = False
    note: str | None = None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return sum(self.values) / self.n if self.values else None

    @property
    def sd(self) -> float | None:
        if self.n < 2:
            return None
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1))

    @property
    def ci(self) -> tuple[float, float] | None:
        if not self.ci_lows:
            return None
        return sum(self.ci_lows) / len(self.ci_lows), sum(self.ci_highs) / len(self.ci_highs)

    @property
    def level(self) -> float | None:
        return next(iter(self.levels)) if len(self.levels) == 1 else None

    @property
    def status(self) -> str:
        if self.values:
            return "ok"
        if self.n_failed:
            return "failed"
        return "note" if self.note else "missing"


@dataclass
class Row:
    label: str
    block: str  # "measured" | "reference"
    cells: dict[Column, Cell] = field(default_factory=dict)
    checkpoint_sha256: str | None = None
    protocol: str | None = None
    variant: str | None = None
    source: str | None = None
    method: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # task -> method note (reference rows)

    def has_task(self, task: str) -> bool:
        return any(c.task == task for c in self.cells)


@dataclass
class Table:
    columns: list[Column]
    measured: list[Row]
    reference: list[Row]
    all_metrics: bool = False
    problems: list[Any] = field(default_factory=list)

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(c.task for c in self.columns))

    def columns_of(self, task: str) -> list[Column]:
        return [c for c in self.columns if c.task == task]

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(r.source for r in self.reference))


def _dedupe(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    latest: dict[str, Mapping[str, Any]] = {}
    for r in records:
        kept = latest.get(r["key"])
        if kept is None or str(r.get("finished_at", "")) >= str(kept.get("finished_at", "")):
            latest[r["key"]] = r
    return list(latest.values())


def _measured_rows(records: list[Mapping[str, Any]], reference: list[Mapping[str, Any]], all_metrics: bool) -> list[Row]:
    primary = defaultdict(Counter)
    fallback = defaultdict(Counter)
    names = defaultdict(set)
    for r in records:
        if r.get("primary_metric"):
            primary[r["task"], r["dataset"]][r["primary_metric"]] += 1
        names[r["task"], r["dataset"]].update(r.get("metrics") or {})
    for r in reference:
        fallback[r["task"], r["dataset"]][r["metric"]] += 1

    def metrics_of(r: Mapping[str, Any]) -> list[str]:
        td = (r["task"], r["dataset"])
        if all_metrics and names[td]:
            return sorted(names[td])
        if r.get("primary_metric"):
            shown = [m for m in SHOWN_METRICS.get(r["task"], ()) if m in (r.get("metrics") or {})]
            return [r["primary_metric"], *[m for m in shown if m != r["primary_metric"]]]
        for counts in (primary[td], fallback[td]):
            if counts:
                return [counts.most_common(1)[0][0]]
        return ["primary"]

    rows: dict[tuple, Row] = {}
    for r in sorted(records, key=lambda r: (r["key"])):
        in_column = r["task"] in VARIANT_COLUMN_TASKS and r["variant"]
        rkey = (r["identity"]["checkpoint_sha256"], r["protocol"], None if in_column else r["variant"])
        row = rows.setdefault(rkey, Row(label=r["method"]["label"], block="measured", checkpoint_sha256=rkey[0],
                                        protocol=rkey[1], variant=rkey[2], method=dict(r["method"])))
        for metric in metrics_of(r):
            shown = f"{r['variant']}:{metric}" if in_column else metric
            cell = row.cells.setdefault(Column(r["task"], r["dataset"], shown, r["fraction"]), Cell())
            if r["status"] == "failed":
                cell.n_failed += 1
                cell.errors.append(str(r.get("error")))
                continue
            entry = (r.get("metrics") or {}).get(metric)
            if not entry or entry.get("value") is None:
                continue
            cell.values.append(float(entry["value"]))
            cell.seeds.append(r["seed"])
            if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
                cell.ci_lows.append(float(entry["ci_low"]))
                cell.ci_highs.append(float(entry["ci_high"]))
            if entry.get("level") is not None:
                cell.levels.add(float(entry["level"]))
    _label_measured(list(rows.values()))
    return sorted(rows.values(), key=lambda row: (row.label.lower(), row.label))


def _label_measured(rows: list[Row]) -> None:
    checkpoints_per_label = defaultdict(set)
    setups_per_checkpoint = defaultdict(set)
    for row in rows:
        checkpoints_per_label[row.label].add(row.checkpoint_sha256)
        setups_per_checkpoint[row.checkpoint_sha256].add((row.protocol, row.variant))
    for row in rows:
        label = row.label
        if len(checkpoints_per_label[row.label]) > 1:
            label += f" [{row.checkpoint_sha256[:8]}]"
        if len(setups_per_checkpoint[row.checkpoint_sha256]) > 1:
            label += f" ({row.protocol}/{row.variant})" if row.variant else f" ({row.protocol})"
        row.label = label


def _reference_rows(records: list[Mapping[str, Any]]) -> list[Row]:
    rows: dict[tuple, Row] = {}
    for r in records:
        label = r["method"]["label"]
        row = rows.setdefault((label, r["protocol"], r["source"]), Row(
            label=label, block="reference", protocol=r["protocol"], source=r["source"], method=dict(r["method"])))
        if r["method"].get("note"):
            row.notes[r["task"]] = r["method"]["note"]
        cell = Cell(published=True, note=r.get("note"))
        if r["value"] is not None:
            cell.values.append(float(r["value"]))
        row.cells[Column(r["task"], r["dataset"], r["metric"], r["fraction"])] = cell
    return sorted(rows.values(), key=lambda row: (row.source, row.label.lower(), row.label))


def build_table(
    records: Iterable[Mapping[str, Any]],
    reference_records: Iterable[Mapping[str, Any]] = (),
    all_metrics: bool = False,
    problems: Iterable[Any] = (),
) -> Table:
    """The leaderboard of (validated) ``records`` and ``reference_records``.

    Records of kind "reference" found in ``records`` join the reference block.
    ``problems`` (unreadable files reported by the store) are carried to the renderers.
    """
    everything = _dedupe([*records, *reference_records])
    reference_records = [r for r in everything if r["kind"] == "reference"]
    measured = _measured_rows([r for r in everything if r["kind"] == "measured"], reference_records, all_metrics)
    reference = _reference_rows(reference_records)
    columns = sorted({c for row in measured + reference for c in row.cells}, key=Column.sort_key)
    return Table(columns=columns, measured=measured, reference=reference, all_metrics=all_metrics,
                 problems=list(problems))
