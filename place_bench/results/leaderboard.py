"""The leaderboard: a pure function of records, rendered to Markdown, HTML, CSV and PNG.

``build_table`` (rules in ``place_bench.results.table``) and the renderers
(``place_bench.results.render``) are re-exported here; ``write_leaderboard``
reads record folders and the shipped reference records and writes the files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from place_bench.io import atomic_write_bytes, atomic_write_text
from place_bench.results.reference import load_reference_records
from place_bench.results.render import render_csv, render_curves, render_html, render_markdown, render_overview
from place_bench.results.store import Problem, ResultsStore
from place_bench.results.table import Cell, Column, Row, Table, build_table

__all__ = ["Cell", "Column", "Problem", "Row", "Table", "build_table", "render_csv", "render_curves", "render_html",
           "render_markdown", "write_leaderboard", "FORMATS"]

FORMATS = ("md", "html", "csv", "png")


def write_leaderboard(
    records_dir: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    formats: Iterable[str] = FORMATS,
    all_metrics: bool = False,
    include_reference: bool = True,
) -> list[Path]:
    """Render the records under ``records_dir`` (one folder or several) into ``out_dir``.

    Writes ``leaderboard.md``, ``leaderboard.html``, ``leaderboard.csv``, ``leaderboard.png``
    (an overview picture of the measured rows) and ``curves/<task>_<dataset>_<metric>.png`` (each atomically) for the requested
    ``formats``; returns the written paths. Unreadable record files are skipped and
    listed in the Markdown and HTML output. Reference records come from the
    package data unless ``include_reference`` is False.
    """
    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown leaderboard format(s) {unknown}; choose from {FORMATS}")
    folders = [records_dir] if isinstance(records_dir, (str, os.PathLike)) else list(records_dir)
    records, problems = [], []
    for folder in folders:
        found, bad = ResultsStore(folder).read_all()
        records += found
        problems += bad
    reference = load_reference_records() if include_reference else []
    table = build_table(records, reference, all_metrics=all_metrics, problems=problems)
    out_dir = Path(out_dir)
    paths = []
    for fmt, render in (("md", render_markdown), ("html", render_html), ("csv", render_csv)):
        if fmt in formats:
            path = out_dir / f"leaderboard.{fmt}"
            atomic_write_text(path, render(table))
            paths.append(path)
    if "png" in formats:
        overview = render_overview(table)
        if overview is not None:
            atomic_write_bytes(out_dir / "leaderboard.png", overview)
            paths.append(out_dir / "leaderboard.png")
        paths += render_curves(table, out_dir / "curves")
    return paths

