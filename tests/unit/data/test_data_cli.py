"""``place-bench data prepare`` / ``data inspect`` through their argparse wiring."""

from __future__ import annotations

import argparse
import csv

import pytest

pytest.importorskip("datasets")

from place_bench import registry  # noqa: E402
from place_bench.commands.data import add_data_parser  # noqa: E402
from place_bench.data.prepare import PrepareError  # noqa: E402
from place_bench.plugin_manager import get_plugin_manager  # noqa: E402
from place_bench.plugins.datasets.rsna import RSNADataset  # noqa: E402


@pytest.fixture
def parser():
    get_plugin_manager()
    try:
        registry.get_component("dataset", "rsna")
    except registry.UnknownComponentError:  # entry points not installed yet: register by hand
        registry.add_component("dataset", "rsna", RSNADataset, "test")
    p = argparse.ArgumentParser(prog="place-bench")
    add_data_parser(p.add_subparsers(dest="command"))
    return p


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "rsna"
    root.mkdir()
    with open(root / "stage_2_train_labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patientId", "x", "y", "width", "height", "Target"])
        for k in range(10):
            w.writerow([f"id{k:02d}", "", "", "", "", "0"] if k % 3 else [f"id{k:02d}", "10", "20", "30", "40", "1"])
    return root


def run(parser, *argv):
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_prepare_then_inspect(parser, tree, tmp_path, capsys):
    out = tmp_path / "cache"
    argv = ["data", "prepare", "rsna", "--root", str(tree), "--protocol", "suite", "--out", str(out), "--no-image-check"]
    assert run(parser, *argv) == 0
    text = capsys.readouterr().out
    assert f"wrote {out / 'rsna' / 'suite.parquet'} (10 rows" in text
    # 10 ids: round(0.15 * 10) = 2 test, 2 valid, 6 train; ids 0, 3, 6, 9 positive
    assert "  train     6" in text and "  valid     2" in text and "  test      2" in text
    assert "view_unknown x10" in text
    assert run(parser, *argv) == 0
    assert "up to date" in capsys.readouterr().out

    assert run(parser, "data", "inspect", str(out)) == 0
    text = capsys.readouterr().out
    assert text.startswith("rsna / suite: 10 rows")
    assert "Pneumonia" in text and "fractions: frac_rank < round(p * 6)" in text
    assert run(parser, "data", "inspect", str(out / "rsna" / "suite.parquet")) == 0
    assert capsys.readouterr().out.startswith("rsna / suite: 10 rows")


def test_prepare_error_is_one_line(parser, tree, tmp_path):
    (tree / "stage_2_train_labels.csv").write_text("patientId,x,y,width,height\nid00,,,,\n")
    with pytest.raises(PrepareError) as err:
        run(parser, "data", "prepare", "rsna", "--root", str(tree), "--protocol", "suite", "--out", str(tmp_path / "o"),
            "--no-image-check")
    assert str(err.value).startswith("stage_2_train_labels.csv: missing column 'Target'")
    assert "\n" not in str(err.value)


def test_unknown_dataset_and_protocol(parser, tree, tmp_path):
    with pytest.raises(registry.UnknownComponentError):
        run(parser, "data", "prepare", "nope", "--root", str(tree), "--protocol", "suite", "--out", str(tmp_path))
    with pytest.raises(PrepareError, match="has no protocol 'benchx'"):
        run(parser, "data", "prepare", "rsna", "--root", str(tree), "--protocol", "benchx", "--out", str(tmp_path))


def test_inspect_empty_folder(parser, tmp_path):
    from place_bench.data.manifest import ManifestError

    with pytest.raises(ManifestError, match="no manifest"):
        run(parser, "data", "inspect", str(tmp_path))


def test_prepare_set_passes_dataset_settings_and_rejects_unknown_ones():
    from place_bench.commands.data import _parse_options
    from place_bench.registry import get_component

    cls = get_component("dataset", "chexpert").obj
    assert _parse_options("chexpert", cls, ["n_per_class=40", "n_valid=12"]) == {"n_per_class": 40, "n_valid": 12}
    with pytest.raises(ValueError, match="has no setting 'n_per_klass'; settings: n_valid, n_per_class"):
        _parse_options("chexpert", cls, ["n_per_klass=3"])
