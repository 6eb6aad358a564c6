#!/usr/bin/env python
"""Transcribe the published reference numbers into reference records.

    python tools/make_reference_records.py shared/spec/reference_numbers.md [--out registry/reference] [--check]

Reads every markdown table of the spec file whose header names datasets with
label fractions ("CheXpert 1 | 10 | 100 | RSNA 1 | ..."), and writes one JSON
file per method (a list of reference records, schema in
``place_bench.results.records``) into ``--out``. Values become fractions in
[0, 1]; "-" (below 1 %) becomes null with a note. A parenthesised remark after a
method name ("MedKLIP (uses disease annotations)") is kept as the method note.
``--check`` writes nothing and exits 1 when the files on disk differ.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from place_bench.io import atomic_write_text
from place_bench.results.records import make_reference_record

SOURCE = ('G2D paper (Liu et al., "From Global to Dense...", NeurIPS 2024), Tables 1 and 4, '
          "as reprinted under the MGCA protocol")
SOURCE_SLUG = "g2d_neurips2024"
PROTOCOL = "mgca"
BACKBONE = "ResNet-50"
BELOW_1 = "below 1 %"
#: header name in the spec -> (task, dataset, metric)
COLUMNS = {
    "CheXpert": ("cls_linear", "chexpert", "auroc_macro"),
    "RSNA": ("cls_linear", "rsna", "auroc"),
    "COVIDx": ("cls_linear", "covidx", "accuracy"),
    "SIIM": ("seg", "siim", "dice"),
    "RSNA-seg": ("seg", "rsna", "dice"),
    "RSNA-det": ("det", "rsna", "map"),
    "Obj-CXR": ("det", "object_cxr", "map"),
}
FRACTIONS = {"1": 0.01, "10": 0.1, "100": 1.0}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _columns(header: list[str]) -> list[tuple[str, str, str, float]] | None:
    """(task, dataset, metric, fraction) per value column, or None if this is not a numbers table."""
    out, current = [], None
    for cell in header[1:]:
        match = re.fullmatch(r"(?:(.+?)\s+)?(\d+)", cell)
        if not match or match.group(2) not in FRACTIONS:
            return None
        if match.group(1):
            if match.group(1) not in COLUMNS:
                raise SystemExit(f"unknown dataset column {match.group(1)!r}; add it to COLUMNS")
            current = COLUMNS[match.group(1)]
        if current is None:
            return None
        out.append((*current, FRACTIONS[match.group(2)]))
    return out


def parse(text: str) -> list[dict]:
    """Every reference record in the markdown ``text``."""
    records, columns = [], None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.lstrip().startswith("|"):
            columns = None
            continue
        cells = _cells(line)
        if columns is None:
            columns = _columns(cells) or []
            continue
        if not columns or all(set(c) <= set("-: ") for c in cells):
            continue
        if len(cells) != len(columns) + 1:
            raise SystemExit(f"line {n}: {len(cells) - 1} values for {len(columns)} columns")
        name = re.fullmatch(r"(.+?)(?:\s*\((.+)\))?", cells[0])
        label, method_note = name.group(1), name.group(2)
        for (task, dataset, metric, fraction), cell in zip(columns, cells[1:]):
            value, note = (None, BELOW_1) if cell == "-" else (round(float(cell) / 100, 4), None)
            records.append(make_reference_record(
                method=label, method_note=method_note, task=task, dataset=dataset, protocol=PROTOCOL,
                fraction=fraction, metric=metric, value=value, note=note, source=SOURCE, backbone=BACKBONE,
            ))
    return records


def by_file(records: list[dict]) -> dict[str, str]:
    """File name -> JSON text, one file per method."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        slug = re.sub(r"[^a-z0-9]+", "_", record["method"]["label"].lower()).strip("_")
        groups.setdefault(f"{SOURCE_SLUG}_{slug}.json", []).append(record)
    return {name: json.dumps(items, indent=2, sort_keys=True) + "\n" for name, items in sorted(groups.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="the reference numbers markdown (shared/spec/reference_numbers.md)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "registry" / "reference")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out; write nothing")
    args = parser.parse_args(argv)
    records = parse(args.spec.read_text(encoding="utf-8"))
    files = by_file(records)
    if args.check:
        stale = [name for name, text in files.items()
                 if not (args.out / name).is_file() or (args.out / name).read_text(encoding="utf-8") != text]
        extra = sorted(p.name for p in args.out.glob("*.json") if p.name.startswith(SOURCE_SLUG) and p.name not in files)
        for name in stale + extra:
            print(f"differs: {args.out / name}")
        return 1 if stale or extra else 0
    for name, text in files.items():
        atomic_write_text(args.out / name, text)
    print(f"wrote {len(records)} records in {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
