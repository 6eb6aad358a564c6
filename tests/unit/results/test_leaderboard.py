"""Leaderboard: aggregation over seeds, separate reference block, md/csv/html/png renderings."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pytest

from place_bench.results.leaderboard import (
    Column, build_table, render_csv, render_curves, render_html, render_markdown, write_leaderboard,
)
from place_bench.results.reference import load_reference_records
from place_bench.results.store import ResultsStore

CHEX_1 = Column("cls_linear", "chexpert", "auroc_macro", 0.01)


@pytest.fixture
def records(make_measured):
    out = [make_measured("PLACE", seed=s, value=v, ci=(v - 0.03, v + 0.03))  # mean 0.83, s.d. 0.01
           for s, v in ((0, 0.82), (1, 0.83), (2, 0.84))]
    out += [make_measured("PLACE", seed=s, fraction=1.0, value=0.88 + 0.01 * s, ci=(0.85, 0.91)) for s in (0, 1)]
    out.append(make_measured("PLACE", dataset="rsna", metric="auroc", status="failed"))
    out.append(make_measured("MGCA", sha="b" * 64, value=0.871, ci=(0.85, 0.89)))
    out.append(make_measured("ConVIRT", sha="c" * 64, value=0.80))
    out.append(make_measured("ConVIRT", sha="d" * 64, value=0.81))
    out.append(make_measured("PLACE", task="zeroshot", fraction=None, value=0.7, metric="auroc_macro"))
    return out


@pytest.fixture(scope="module")
def refs():
    return load_reference_records()


def _row(rows, label):
    (row,) = [r for r in rows if r.label == label]
    return row


def test_cells_aggregate_seeds(records, refs):
    table = build_table(records, refs)
    place = _row(table.measured, "PLACE")
    cell = place.cells[CHEX_1]
    assert cell.n == 3 and cell.mean == pytest.approx(0.83) and cell.sd == pytest.approx(0.01)
    assert cell.ci == pytest.approx((0.80, 0.86))  # mean of the per-seed bounds
    assert cell.level == 0.95
    one = _row(table.measured, "MGCA").cells[CHEX_1]
    assert one.n == 1 and one.sd is None and one.ci == pytest.approx((0.85, 0.89))
    failed = place.cells[Column("cls_linear", "rsna", "auroc", 0.01)]
    assert failed.status == "failed" and failed.n_failed == 1
    assert {r.label for r in table.measured} == {"PLACE", "MGCA", "ConVIRT [cccccccc]", "ConVIRT [dddddddd]"}
    assert table.tasks == ["cls_linear", "zeroshot", "seg", "det"]


def test_measured_and_reference_rows_never_merge(records, refs):
    table = build_table(records, refs)
    measured_mgca = _row(table.measured, "MGCA")
    reference_mgca = _row(table.reference, "MGCA")
    assert measured_mgca is not reference_mgca
    assert measured_mgca.block == "measured" and reference_mgca.block == "reference"
    assert measured_mgca.cells[CHEX_1].mean == pytest.approx(0.871)
    assert reference_mgca.cells[CHEX_1].mean == pytest.approx(0.876)
    assert all(r.block == "reference" for r in table.reference) and all(r.block == "measured" for r in table.measured)
    # Rows of the same label from separate checkpoints of the same block still never pool.
    assert len(table.measured) == 4


def test_markdown(records, refs):
    text = render_markdown(build_table(records, refs))
    assert "83.0 ± 1.0 (n=3) [80.0, 86.0]" in text
    assert "88.5 ± 0.7 (n=2) [85.0, 91.0]" in text
    assert "87.1 (n=1) [85.0, 89.0]" in text
    assert "| failed |" in text
    section = text.split("## cls_linear")[1].split("## zeroshot")[0]
    measured, reference = section.split("### Reference (published)")
    assert "| MGCA | 87.1 (n=1)" in measured and "| MGCA | 87.1 (n=1)" not in reference
    assert "| MGCA | 87.6 | 88.0 | 88.2 |" in reference and "87.6" not in measured
    assert "Source: G2D paper" in reference
    assert "<1" in text.split("## det")[1]
    assert render_markdown(build_table(records, refs)) == text  # deterministic


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.rows, self.scripts, self.external, self.th_onclick = [], [], [], [], 0
        self.tbody, self.row, self.in_script = None, None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "link", "img") and (attrs.get("src") or attrs.get("href")):
            self.external.append(tag)
        if tag == "script":
            self.in_script = True
        if tag == "tbody":
            self.tbody = attrs.get("class")
        if tag == "tr" and attrs.get("class") == "data":
            self.row = (self.tbody, [])
        if tag == "th" and "onclick" in attrs:
            self.th_onclick += 1

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False
        if tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.in_script:
            self.scripts.append(data)
        elif self.row is not None and data.strip():
            self.row[1].append(data.strip())


def test_html(records, refs):
    page = render_html(build_table(records, refs))
    parser = _Collector()
    parser.feed(page)
    parser.close()
    assert parser.external == [] and "<link" not in page
    assert "function sortTable" in "".join(parser.scripts) and parser.th_onclick > 0
    mgca = [(block, cells) for block, cells in parser.rows if cells[0] == "MGCA"]
    blocks = {block for block, _ in mgca}
    assert blocks == {"measured", "reference"}
    assert any(block == "measured" and cells[1].startswith("87.1 (n=1)") for block, cells in mgca)
    assert any(block == "reference" and cells[1] == "87.6" for block, cells in mgca)
    assert "Reference (published) — G2D paper" in page


def test_csv(records, refs):
    rows = list(csv.DictReader(io.StringIO(render_csv(build_table(records, refs)))))
    place = [r for r in rows if r["row_label"] == "PLACE" and r["dataset"] == "chexpert" and r["fraction"] == "0.01"]
    assert place == [dict(place[0], block="measured", mean_pct="83.0", sd_pct="1.0", n_seeds="3",
                          ci_low_pct="80.0", ci_high_pct="86.0", status="ok")]
    assert {r["block"] for r in rows if r["method"] == "MGCA"} == {"measured", "reference"}


def test_curves(records, refs, tmp_path):
    paths = render_curves(records, tmp_path, refs)
    names = {p.name for p in paths}
    assert "cls_linear_chexpert_auroc_macro.png" in names and "det_object_cxr_map.png" in names
    assert not any(n.startswith("zeroshot") for n in names)  # no label fractions, no curve
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000


def test_write_leaderboard(records, tmp_path):
    store = ResultsStore(tmp_path / "results")
    for r in records:
        store.write(r)
    garbage = tmp_path / "results" / "cls_linear" / "chexpert" / ("9" * 64 + ".json")
    garbage.write_text("{")
    paths = write_leaderboard(tmp_path / "results", tmp_path / "board", formats=("md", "html", "csv", "png"))
    names = {p.relative_to(tmp_path / "board").as_posix() for p in paths}
    assert {"leaderboard.md", "leaderboard.html", "leaderboard.csv", "leaderboard.png",
            "curves/cls_linear_chexpert_auroc_macro.png"} <= names
    from PIL import Image

    with Image.open(tmp_path / "board" / "leaderboard.png") as picture:
        assert picture.format == "PNG" and picture.size[0] > 200 and picture.size[1] > 100
    md = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "83.0 ± 1.0 (n=3)" in md and "## Skipped record files" in md and str(garbage) in md
    assert not [p for p in (tmp_path / "board").rglob("*.tmp")]
    only_md = write_leaderboard([tmp_path / "results"], tmp_path / "b2", formats=("md",), include_reference=False)
    assert [p.name for p in only_md] == ["leaderboard.md"]
    assert "### Reference" not in only_md[0].read_text()
    with pytest.raises(ValueError, match="pdf"):
        write_leaderboard(tmp_path / "results", tmp_path / "b3", formats=("pdf",))


def test_probe_readings_are_columns_of_one_row(make_measured):
    from place_bench.results.leaderboard import build_table, render_markdown

    records = [make_measured(task="probes", dataset="synthetic_probe_laterality_effusion", variant="zeroshot",
                             fraction=None, metric="accuracy", value=0.9),
               make_measured(task="probes", dataset="synthetic_probe_laterality_effusion", variant="linear",
                             fraction=1.0, metric="accuracy", value=0.7)]
    text = render_markdown(build_table(records))
    assert "zeroshot:accuracy" in text and "linear:accuracy" in text
    (row,) = [line for line in text.splitlines() if line.startswith("| PLACE")]
    assert "90.0" in row and "70.0" in row
