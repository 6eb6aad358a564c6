"""Renderers of a leaderboard ``Table``: Markdown, CSV, HTML, PNG label-efficiency curves and a
PNG overview (the measured rows as a colour-coded grid).

Every renderer shows values in % with one decimal. A measured cell reads
``mean ± s.d. (n=seeds) [CI low, CI high]`` (no ± for one seed, no brackets
without a CI, ``+k failed`` when some seeds failed, ``failed`` when all did); a
reference cell shows the published value (``<1`` for "below 1 %"). Output is
deterministic (no timestamps) so a re-render of unchanged records is unchanged.
Markdown and HTML have one section per task, with the measured block first and
one reference block per source, labelled with the source.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from place_bench.io import atomic_write_bytes
from place_bench.results.table import BELOW_1, Cell, Column, Row, Table, build_table

EMPTY = "—"


def pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}"


def cell_text(cell: Cell | None) -> str:
    if cell is None:
        return EMPTY
    if cell.published:
        if cell.mean is not None:
            return pct(cell.mean)
        return "<1" if cell.note == BELOW_1 else EMPTY
    if cell.status == "failed":
        return "failed"
    if cell.mean is None:
        return EMPTY
    text = pct(cell.mean) + (f" ± {pct(cell.sd)}" if cell.sd is not None else "") + f" (n={cell.n})"
    if cell.ci is not None:
        text += f" [{pct(cell.ci[0])}, {pct(cell.ci[1])}]"
    if cell.n_failed:
        text += f" +{cell.n_failed} failed"
    return text


def _row_label(row: Row, task: str) -> str:
    note = row.notes.get(task)
    return f"{row.label} ({note})" if note else row.label


def _legend(table: Table) -> str:
    levels = {c.level for r in table.measured for c in r.cells.values() if c.level is not None}
    level = f"{next(iter(levels)) * 100:g} %" if len(levels) == 1 else "bootstrap"
    return (f"Values in % (unbounded metrics such as CIDEr: value × 100). Measured cells: mean ± s.d. over seeds (n = seeds), then the {level} CI "
            "[low, high]; for several seeds the CI bounds are the means of the per-seed bounds. "
            "Reference rows are published numbers, shown apart and never merged with measured rows.")


def _blocks(table: Table, task: str) -> list[tuple[str, str | None, list[Row]]]:
    """(block title, source, rows) for one task: measured, then one block per reference source."""
    blocks = [("Measured", None, [r for r in table.measured if r.has_task(task)])]
    for source in table.sources:
        rows = [r for r in table.reference if r.source == source and r.has_task(task)]
        if rows:
            blocks.append(("Reference (published)", source, rows))
    return blocks


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(table: Table) -> str:
    out = ["# PLACE-Bench leaderboard", "", _legend(table), ""]
    for task in table.tasks:
        columns = table.columns_of(task)
        out += [f"## {task}", ""]
        for title, source, rows in _blocks(table, task):
            out += [f"### {title}", ""]
            if source:
                out += [f"Source: {_md_escape(source)}", ""]
            if not rows:
                out += ["_No measured results._", ""]
                continue
            out.append("| method | " + " | ".join(c.header for c in columns) + " |")
            out.append("|---" * (len(columns) + 1) + "|")
            for row in rows:
                cells = [_md_escape(_row_label(row, task))] + [cell_text(row.cells.get(c)) for c in columns]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
    out += _problem_lines(table)
    return "\n".join(out).rstrip() + "\n"


def _problem_lines(table: Table) -> list[str]:
    if not table.problems:
        return []
    lines = ["## Skipped record files", ""]
    lines += [f"- `{getattr(p, 'path', p)}`: {getattr(p, 'reason', '')}" for p in table.problems]
    return lines + [""]


CSV_FIELDS = ("block", "method", "row_label", "checkpoint_sha256", "protocol", "variant", "source", "task",
              "dataset", "metric", "fraction", "status", "mean_pct", "sd_pct", "n_seeds", "ci_low_pct",
              "ci_high_pct", "ci_level", "n_failed", "note")


def render_csv(table: Table) -> str:
    """One line per existing cell (long format), measured rows first."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in table.measured + table.reference:
        for column in table.columns:
            cell = row.cells.get(column)
            if cell is None:
                continue
            ci = cell.ci
            writer.writerow({
                "block": row.block, "method": row.method.get("label", row.label), "row_label": row.label,
                "checkpoint_sha256": row.checkpoint_sha256 or "", "protocol": row.protocol or "",
                "variant": row.variant or "", "source": row.source or "", "task": column.task,
                "dataset": column.dataset, "metric": column.metric,
                "fraction": "" if column.fraction is None else f"{column.fraction:g}",
                "status": cell.status, "mean_pct": pct(cell.mean), "sd_pct": pct(cell.sd),
                "n_seeds": "" if cell.published else cell.n, "ci_low_pct": pct(ci[0]) if ci else "",
                "ci_high_pct": pct(ci[1]) if ci else "", "ci_level": "" if cell.level is None else f"{cell.level:g}",
                "n_failed": "" if cell.published else cell.n_failed,
                "note": cell.note or row.notes.get(column.task, ""),
            })
    return buf.getvalue()


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:right;white-space:nowrap}
td.m,th.m{text-align:left}
thead th{background:#eee;cursor:pointer;user-select:none}
thead th:after{content:" \\2195";color:#999}
tbody.reference td{background:#f6f6fb;color:#445;font-style:italic}
tbody.reference th.block{background:#dde;text-align:left;border-top:3px double #889}
tbody.measured th.block{background:#def;text-align:left}
td.failed{color:#b00;font-weight:bold}
"""

# Sorting stays inside each <tbody>, so reference rows never move into the measured block.
_JS = """
function sortTable(th){
  var table=th.closest('table'), col=th.cellIndex, asc=th.dataset.dir!=='asc';
  table.querySelectorAll('thead th').forEach(function(h){delete h.dataset.dir;});
  th.dataset.dir=asc?'asc':'desc';
  table.querySelectorAll('tbody').forEach(function(body){
    var rows=Array.prototype.slice.call(body.querySelectorAll('tr.data'));
    rows.sort(function(a,b){
      var x=a.cells[col].dataset.v, y=b.cells[col].dataset.v;
      var nx=parseFloat(x), ny=parseFloat(y);
      if(isNaN(nx)&&isNaN(ny)) return (asc?1:-1)*String(x).localeCompare(String(y));
      if(isNaN(nx)) return 1; if(isNaN(ny)) return -1;
      return asc?nx-ny:ny-nx;
    });
    rows.forEach(function(r){body.appendChild(r);});
  });
}
"""


def _td(cell: Cell | None) -> str:
    text = html.escape(cell_text(cell))
    value = "" if cell is None or cell.mean is None else f"{cell.mean * 100:.4f}"
    cls = ' class="failed"' if cell is not None and cell.status == "failed" else ""
    title = ""
    if cell is not None and (cell.errors or cell.note):
        title = f' title="{html.escape("; ".join(cell.errors) or cell.note or "", quote=True)}"'
    return f'<td data-v="{value}"{cls}{title}>{text}</td>'


def render_html(table: Table) -> str:
    """One self-contained page (inline CSS and JS); click a column header to sort."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>PLACE-Bench leaderboard</title>", f"<style>{_CSS}</style>", f"<script>{_JS}</script>",
           "</head><body>", "<h1>PLACE-Bench leaderboard</h1>", f"<p>{html.escape(_legend(table))}</p>"]
    for task in table.tasks:
        columns = table.columns_of(task)
        width = len(columns) + 1
        out += [f"<h2>{html.escape(task)}</h2>", '<table class="leaderboard">', "<thead><tr>",
                '<th class="m" onclick="sortTable(this)">method</th>']
        out += [f'<th onclick="sortTable(this)">{html.escape(c.header)}</th>' for c in columns]
        out.append("</tr></thead>")
        for title, source, rows in _blocks(table, task):
            block = "reference" if source else "measured"
            caption = f"{title} — {source}" if source else title
            out += [f'<tbody class="{block}">',
                    f'<tr class="block"><th class="block" colspan="{width}">{html.escape(caption)}</th></tr>']
            if not rows:
                out.append(f'<tr><td class="m" colspan="{width}">no measured results</td></tr>')
            for row in rows:
                label = html.escape(_row_label(row, task))
                out.append(f'<tr class="data"><td class="m" data-v="{label}">{label}</td>'
                           + "".join(_td(row.cells.get(c)) for c in columns) + "</tr>")
            out.append("</tbody>")
        out.append("</table>")
    if table.problems:
        out.append("<h2>Skipped record files</h2><ul>")
        out += [f"<li><code>{html.escape(str(getattr(p, 'path', p)))}</code>: "
                f"{html.escape(str(getattr(p, 'reason', '')))}</li>" for p in table.problems]
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_curves(
    records: Table | Iterable[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    reference_records: Iterable[Mapping[str, Any]] = (),
) -> list[Path]:
    """One PNG per (task, dataset, metric) that has label fractions: ``<task>_<dataset>_<metric>.png``.

    x: label fraction (log axis); y: value in %; one line per row; error bars: s.d.
    across seeds; reference rows dashed and marked "(ref.)". ``records`` may be a
    built ``Table``. Uses matplotlib's Agg canvas directly (no pyplot, no global
    backend switch). Returns the written paths.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    table = records if isinstance(records, Table) else build_table(records, reference_records)
    groups: dict[tuple[str, str, str], list[Column]] = {}
    for c in table.columns:
        if c.fraction is not None:
            groups.setdefault((c.task, c.dataset, c.metric), []).append(c)
    out_dir = Path(out_dir)
    paths = []
    for (task, dataset, metric), columns in groups.items():
        fig = Figure(figsize=(6, 4.2), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        fractions = sorted({c.fraction for c in columns})
        for row in table.measured + table.reference:
            points = [(c.fraction, row.cells[c]) for c in sorted(columns, key=lambda c: c.fraction)
                      if c in row.cells and row.cells[c].mean is not None]
            if not points:
                continue
            reference = row.block == "reference"
            ax.errorbar([f for f, _ in points], [cell.mean * 100 for _, cell in points],
                        yerr=[(cell.sd or 0.0) * 100 for _, cell in points], capsize=3,
                        linestyle="--" if reference else "-", marker="s" if reference else "o",
                        alpha=0.6 if reference else 1.0, linewidth=1.2 if reference else 2.0, label=row.label + (" (ref.)" if reference else ""))
        ax.set_xscale("log")
        ax.set_xticks(fractions, [f"{f * 100:g}%" for f in fractions])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("fraction of training labels")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(f"{task} · {dataset}")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        stem = re.sub(r"[^A-Za-z0-9_.@-]+", "-", f"{task}_{dataset}_{metric}")  # e.g. probes' "linear:accuracy"
        path = out_dir / f"{stem}.png"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths


def render_overview(table: Table, max_columns: int = 24) -> bytes | None:
    """A PNG picture of the measured leaderboard: rows = measured rows, columns = the first
    ``max_columns`` (task, dataset, metric, fraction) columns, cells = mean in % shaded by
    their rank within the column (darker = better; a column with one value stays light).
    None when nothing is measured. Agg canvas only (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = [c for c in table.columns if any(c in r.cells and r.cells[c].mean is not None for r in table.measured)]
    columns = columns[:max_columns]
    rows = [r for r in table.measured if any(c in r.cells for c in columns)]
    if not rows or not columns:
        return None
    values = [[(r.cells[c].mean if c in r.cells else None) for c in columns] for r in rows]
    shades = [[0.0] * len(columns) for _ in rows]
    for j in range(len(columns)):
        present = sorted({v[j] for v in values if v[j] is not None})
        if len(present) > 1:
            for i, v in enumerate(values):
                if v[j] is not None:
                    shades[i][j] = present.index(v[j]) / (len(present) - 1)
    fig = Figure(figsize=(1.0 + 0.62 * len(columns) + 0.09 * max(len(r.label) for r in rows), 1.6 + 0.32 * len(rows)),
                 dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(shades, cmap="Blues", vmin=-0.25, vmax=1.6, aspect="auto")
    for i, row_values in enumerate(values):
        for j, v in enumerate(row_values):
            ax.text(j, i, EMPTY if v is None else pct(v), ha="center", va="center", fontsize=7,
                    color="white" if shades[i][j] > 0.65 else "black")
    ax.set_yticks(range(len(rows)), [r.label + (f" [{r.variant}]" if r.variant else "") for r in rows], fontsize=7)
    ax.set_xticks(range(len(columns)),
                  [f"{c.task}\n{c.dataset}\n{c.metric}" + (f" {c.fraction_label}" if c.fraction is not None else "")
                   for c in columns], fontsize=6, rotation=90)
    ax.tick_params(length=0)
    ax.set_title("measured leaderboard (values in %, darker = better within a column)", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()
