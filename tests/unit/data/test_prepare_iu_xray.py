"""``prepare`` for IU X-ray: hand-made OpenI XMLs + R2Gen annotation, and the real OpenI reports."""

from __future__ import annotations

import importlib.util
import json
import shutil
import tarfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

pytest.importorskip("datasets")

from place_bench.data.manifest import iter_manifest, read_sidecar  # noqa: E402
from place_bench.data.prepare import PrepareError  # noqa: E402
from place_bench.data.report_text import parse_iu_xray_report  # noqa: E402
from place_bench.plugins.datasets.iu_xray import IUXrayDataset  # noqa: E402

# uid number -> (image ids, findings, impression)
XMLS = {
    1: (["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"], "The heart is normal. XXXX lungs are clear.", "Normal chest x-XXXX."),
    2: (["CXR2_IM-0652-1001", "CXR2_IM-0652-2001", "CXR2_IM-0652-3001"], "Borderline cardiomegaly. No effusion.",
        "1. Cardiomegaly."),
    3: (["CXR3_IM-1384-1001", "CXR3_IM-1384-2001"], "", "No acute disease."),  # no findings
    4: (["CXR4_IM-2050-1001"], "Lungs are clear.", "Normal."),  # one image
    5: ([], "Lungs are clear.", "Normal."),  # no image
    6: (["CXR6_IM-2000-1001", "CXR6_IM-2000-1002"], "Lungs clear.", ""),
    7: (["CXR7_IM-0007-1001", "CXR7_IM-0007-2001"], "Small left effusion.", "Effusion."),
    8: (["CXR8_IM-0008-1001", "CXR8_IM-0008-2001"], "Clear lungs.", "No disease."),
    9: (["CXR9_IM-0009-1001", "CXR9_IM-0009-2001"], "Stable mediastinum.", "Stable."),
    10: (["CXR10_IM-0010-1001", "CXR10_IM-0010-2001"], "Hyperinflated lungs.", "COPD."),
}
KEPT = {"CXR10_IM-0010", "CXR1_1_IM-0001", "CXR2_IM-0652", "CXR6_IM-2000", "CXR7_IM-0007", "CXR8_IM-0008",
        "CXR9_IM-0009"}


def xml_text(uid: int, images, findings: str, impression: str) -> str:
    def abstract(label, text):
        return f'<AbstractText Label="{label}">{escape(text)}</AbstractText>' if text else f'<AbstractText Label="{label}"/>'

    parts = [
        '<?xml version="1.0" encoding="utf-8"?>', "<eCitation>", f'<uId id="CXR{uid}"/>',
        "<MedlineCitation><Article><Abstract>",
        abstract("COMPARISON", "None."), abstract("INDICATION", "Cough"),
        abstract("FINDINGS", findings), abstract("IMPRESSION", impression),
        "</Abstract></Article></MedlineCitation>",
    ]
    parts += [f'<parentImage id="{i}"><caption>Xray Chest PA and Lateral</caption></parentImage>' for i in images]
    parts.append("</eCitation>")
    return "\n".join(parts)


def entry(ident, report, paths, split):
    return {"id": ident, "report": report, "image_path": paths, "split": split}


ANNOTATION = {
    "train": [
        entry("CXR1_1_IM-0001", "The heart is normal. XXXX lungs are clear.",
              ["CXR1_1_IM-0001/0.png", "CXR1_1_IM-0001/1.png"], "train"),
        entry("CXR2_IM-0652", "Borderline cardiomegaly. No effusion.", ["CXR2_IM-0652/0.png", "CXR2_IM-0652/1.png"],
              "train"),
        entry("CXR7_IM-0007", "  ", ["CXR7_IM-0007/0.png", "CXR7_IM-0007/1.png"], "train"),  # empty report
        entry("CXR8_IM-0008", "Clear lungs.", ["CXR8_IM-0008/0.png", "CXR8_IM-0008/1.png"], "test"),  # field differs
    ],
    "val": [entry("CXR6_IM-2000", "Lungs clear.", ["CXR6_IM-2000/0.png", "CXR6_IM-2000/1.png"], "val")],
    "test": [entry("CXR99_IM-0099", "No XML for me.", ["CXR99_IM-0099/0.png", "CXR99_IM-0099/1.png"], "test")],
}


def make_tree(root: Path, annotation=ANNOTATION, xmls: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if xmls:
        (root / "ecgen-radiology").mkdir()
        for uid, (images, findings, impression) in XMLS.items():
            (root / "ecgen-radiology" / f"{uid}.xml").write_text(xml_text(uid, images, findings, impression))
    if annotation is not None:
        text = annotation if isinstance(annotation, str) else json.dumps(annotation)
        (root / "annotation.json").write_text(text)
    return root


def write_png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 9), 10).save(path, format="PNG")


def rows_of(result):
    return {r["sample_id"]: r for r in iter_manifest(result.manifest_path)}


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "iu")


def test_r2gen_rows_by_hand(tree, tmp_path):
    result = IUXrayDataset().prepare(tree, "r2gen", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    assert {k: r["split"] for k, r in rows.items()} == {
        "CXR1_1_IM-0001": "train", "CXR2_IM-0652": "train", "CXR8_IM-0008": "train",
        "CXR6_IM-2000": "valid", "CXR99_IM-0099": "test",
    }
    r = rows["CXR1_1_IM-0001"]
    assert r["image_path"] == "images/CXR1_1_IM-0001/0.png" and r["aux_image_paths"] == ["images/CXR1_1_IM-0001/1.png"]
    assert r["report"] == r["findings"] == "The heart is normal. XXXX lungs are clear."
    assert r["impression"] == "Normal chest x-XXXX." and r["study_id"] == "CXR1"
    assert (r["image_format"], r["view"], r["subject_id"]) == ("png", "UNKNOWN", None)
    assert json.loads(r["source_row"])["xml"] == "ecgen-radiology/1.xml"
    assert rows["CXR2_IM-0652"]["impression"] == "1. Cardiomegaly."
    assert rows["CXR6_IM-2000"]["impression"] is None  # empty IMPRESSION element
    assert rows["CXR99_IM-0099"]["impression"] is None and rows["CXR99_IM-0099"]["study_id"] == "CXR99"
    assert result.warning_count("empty_report") == 1
    assert result.warning_count("xml_missing") == 1
    assert result.warning_count("split_field_mismatch") == 1
    assert result.warning_count("unexpected_row_count") == 1
    # train ids sorted: CXR1_1_IM-0001, CXR2_IM-0652, CXR8_IM-0008; RandomState(42).permutation(3) = [0, 1, 2]
    assert [rows[k]["frac_rank"] for k in ("CXR1_1_IM-0001", "CXR2_IM-0652", "CXR8_IM-0008")] == [0, 1, 2]
    side = read_sidecar(result.sidecar_path)
    assert side["annotation_sizes"] == {"train": 4, "val": 1, "test": 1}
    assert side["openi_counts"]["reports"] == 10 and side["options"]["xml_files"]["count"] == 10


def test_r2gen_without_xmls(tmp_path):
    root = make_tree(tmp_path / "iu", xmls=False)
    result = IUXrayDataset().prepare(root, "r2gen", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    assert result.rows == 5 and rows["CXR2_IM-0652"]["impression"] is None
    assert rows["CXR2_IM-0652"]["study_id"] == "CXR2" and result.warning_count("xml_missing") == 0
    with pytest.raises(PrepareError, match="no OpenI reports"):
        IUXrayDataset().prepare(root, "openi", tmp_path / "out", check_images=False)


def test_openi_rows_by_hand(tree, tmp_path):
    result = IUXrayDataset().prepare(tree, "openi", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    assert set(rows) == KEPT
    # sorted ids: CXR10_IM-0010, CXR1_1_IM-0001, CXR2_IM-0652, CXR6_IM-2000, CXR7_IM-0007, CXR8_IM-0008,
    # CXR9_IM-0009; RandomState(0).permutation(7) = [6, 2, ...]: round(0.2 * 7) = 1 test, round(0.1 * 7) = 1 valid
    assert {k for k, r in rows.items() if r["split"] == "test"} == {"CXR9_IM-0009"}
    assert {k for k, r in rows.items() if r["split"] == "valid"} == {"CXR2_IM-0652"}
    r = rows["CXR2_IM-0652"]
    assert r["image_path"] == "NLMCXR_png/CXR2_IM-0652-1001.png"
    assert r["aux_image_paths"] == ["NLMCXR_png/CXR2_IM-0652-2001.png", "NLMCXR_png/CXR2_IM-0652-3001.png"]
    assert (r["report"], r["impression"], r["study_id"]) == ("Borderline cardiomegaly. No effusion.", "1. Cardiomegaly.", "CXR2")
    assert json.loads(r["source_row"])["sections"]["indication"] == "Cough"
    assert result.warning_count("no_findings") == 1 and result.warning_count("too_few_images") == 2
    # train ids in order CXR10, CXR1_1, CXR6, CXR7, CXR8; RandomState(42).permutation(5) = [1, 4, 2, 0, 3]
    assert [rows[k]["frac_rank"] for k in ("CXR10_IM-0010", "CXR1_1_IM-0001", "CXR6_IM-2000", "CXR7_IM-0007",
                                           "CXR8_IM-0008")] == [3, 0, 2, 4, 1]
    counts = read_sidecar(result.sidecar_path)["openi_counts"]
    assert counts == {"reports": 10, "images": 18, "reports_with_findings": 9, "reports_with_impression": 9,
                      "reports_without_images": 1, "kept": 7}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a["train"][1].pop("report"), r"^annotation\.json: train\[1\] \(id 'CXR2_IM-0652'\): missing key 'report'$"),
        (lambda a: a["train"][0].update(image_path="CXR1_1_IM-0001/0.png"),
         r"^annotation\.json: train\[0\] \(id 'CXR1_1_IM-0001'\): 'image_path' must be a non-empty list"),
        (lambda a: a["test"][0].update(id="CXR2_IM-0652"), r"^annotation\.json: test\[0\] \(id 'CXR2_IM-0652'\): id repeats train\[1\]$"),
        (lambda a: a["val"][0].update(report=None), r"^annotation\.json: val\[0\] \(id 'CXR6_IM-2000'\): 'report' is NoneType"),
        (lambda a: a.pop("val"), r"^annotation\.json: missing list 'val' \(found: test, train\)$"),
        (lambda a: a["train"].append("CXR5"), r"^annotation\.json: train\[4\]: expected an object, got str$"),
    ],
)
def test_malformed_annotation_names_the_entry(tmp_path, mutate, message):
    annotation = json.loads(json.dumps(ANNOTATION))
    mutate(annotation)
    root = make_tree(tmp_path / "iu", annotation=annotation)
    with pytest.raises(PrepareError, match=message):
        IUXrayDataset().prepare(root, "r2gen", tmp_path / "out", check_images=False)


def test_bad_json_and_bad_xml(tmp_path):
    root = make_tree(tmp_path / "iu", annotation='{"train": [')
    with pytest.raises(PrepareError, match=r"^annotation\.json: not valid JSON"):
        IUXrayDataset().prepare(root, "r2gen", tmp_path / "out", check_images=False)
    (root / "ecgen-radiology" / "4.xml").write_text("<eCitation><uId id='CXR4'>")
    with pytest.raises(PrepareError, match=r"^ecgen-radiology/4\.xml: OpenI report is not well-formed XML"):
        IUXrayDataset().prepare(root, "openi", tmp_path / "out", check_images=False)


def test_images_checked_and_missing_ones_counted(tree, tmp_path):
    for e in [e for split in ANNOTATION.values() for e in split]:
        for p in e["image_path"]:
            if p not in ("CXR8_IM-0008/0.png", "CXR6_IM-2000/1.png"):
                write_png(tree / "images" / p)
    result = IUXrayDataset().prepare(tree, "r2gen", tmp_path / "out", check_images=True)
    rows = rows_of(result)
    assert "CXR8_IM-0008" not in rows and result.rows == 4
    assert result.warning_count("missing_image") == 1
    assert result.warning_count("missing_aux_image") == 1  # CXR6's lateral: row kept
    assert (rows["CXR6_IM-2000"]["width"], rows["CXR6_IM-2000"]["height"]) == (8, 9)


def test_rerun_is_byte_identical(tree, tmp_path):
    for protocol in ("r2gen", "openi"):
        a = IUXrayDataset().prepare(tree, protocol, tmp_path / "a", check_images=False)
        b = IUXrayDataset().prepare(tree, protocol, tmp_path / "b", check_images=False, force=True)
        assert a.manifest_path.read_bytes() == b.manifest_path.read_bytes()
        assert a.sidecar_path.read_bytes() == b.sidecar_path.read_bytes()
        assert IUXrayDataset().prepare(tree, protocol, tmp_path / "a", check_images=False).reused


# --------------------------------------------------------------------------------------------
# The real OpenI reports bundled with torchxrayvision (3,955 XMLs; no images)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    # located without importing torchxrayvision (which would import torch: seconds)
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or spec.origin is None:
        pytest.skip("torchxrayvision is not installed")
    archive = Path(spec.origin).parent / "data" / "NLMCXR_reports.tgz"
    if not archive.is_file():
        pytest.skip(f"{archive} not shipped by this torchxrayvision")
    root = tmp_path_factory.mktemp("iu_real")
    shutil.copyfile(archive, root / "NLMCXR_reports.tgz")
    return root


def test_real_openi_counts(real_root, tmp_path):
    result = IUXrayDataset().prepare(real_root, "openi", tmp_path, check_images=False)
    counts = read_sidecar(result.sidecar_path)["openi_counts"]
    # OpenI: 3,955 reports and 7,470 images (datasets.md section 1.7)
    assert (counts["reports"], counts["images"]) == (3955, 7470)
    assert result.warning_count("unexpected_row_count") == 0
    # R2Gen kept the studies with findings and two images: 2,069 + 296 + 590 = 2,955
    assert result.rows == counts["kept"] == 2955
    assert counts["reports_with_findings"] == 3425
    assert result.warning_count("no_findings") == 3955 - 3425
    assert result.warning_count("too_few_images") == 3425 - 2955
    # 20 % / 10 % of 2,955 by id: round(591.0) test, round(295.5) = 296 valid
    assert [result.split_rows(s) for s in ("train", "valid", "test")] == [2068, 296, 591]
    # the example entry shown in R2Gen's README / many derived repositories
    row = next(r for r in iter_manifest(result.manifest_path) if r["sample_id"] == "CXR2384_IM-0942")
    assert row["report"].startswith("The heart size and pulmonary vascularity appear within normal limits. "
                                    "A large hiatal hernia is noted.")
    assert row["impression"] == "1. No evidence of active disease."
    assert row["image_path"] == "NLMCXR_png/CXR2384_IM-0942-1001.png"


def test_real_xmls_parse_as_plain_iu_reports(real_root):
    # every raw XML also goes through the generic IU entry point without error
    with tarfile.open(real_root / "NLMCXR_reports.tgz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".xml")]
        assert len(members) == 3955
        with_findings = sum(bool(parse_iu_xray_report(tar.extractfile(m).read()).findings) for m in members)
    assert with_findings == 3425


def test_emulated_iu_xray_prepares(tmp_path):
    emulator = pytest.importorskip("place_bench.plugins.datasets.synthetic.emulators.iu_xray")
    emulated = emulator.emulate(tmp_path / "iu", "tiny", 0)
    expected = emulated.expected
    splits = {"train": "train", "valid": "val", "test": "test"}
    r2gen = IUXrayDataset().prepare(emulated.root, "r2gen", tmp_path / "out", check_images=True)
    assert {s: r2gen.split_rows(s) for s in splits} == {s: expected["rows"][n] for s, n in splits.items()}
    assert {w["code"] for w in r2gen.warnings} <= {"unexpected_row_count"} | set(expected["warnings"])
    rows = list(iter_manifest(r2gen.manifest_path))
    assert all(r["impression"] and len(r["aux_image_paths"]) == expected["images_per_entry"] - 1 for r in rows)
    openi = IUXrayDataset().prepare(emulated.root, "openi", tmp_path / "out", check_images=True)
    assert read_sidecar(openi.sidecar_path)["openi_counts"]["reports"] == expected["xml_reports"]
    # the XMLs planted outside annotation.json (empty FINDINGS, no image) are the ones left out
    assert openi.rows == sum(expected["rows"].values())
    assert openi.warning_count("no_findings") == 1 and openi.warning_count("too_few_images") == 1


def test_real_reports_through_splitter_and_rule_labeler(real_root):
    """All 3,955 real reports go through the sentence splitter and the rule labeler;
    one report's output is checked against a reading by hand."""
    from place_bench.data.report_text import split_sentences
    from place_bench.plugins.datasets.synthetic.labeler import label_text

    with tarfile.open(real_root / "NLMCXR_reports.tgz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".xml")]
        reports = {m.name: parse_iu_xray_report(tar.extractfile(m).read()) for m in members}
    sentences = 0
    for report in reports.values():
        text = " ".join(part for part in (report.findings, report.impression) if part)
        sentences += len(split_sentences(text))
        label_text(text)
    assert len(reports) == 3955 and sentences > 3955

    example = reports["ecgen-radiology/2384.xml"]
    assert split_sentences(example.findings) == [
        "The heart size and pulmonary vascularity appear within normal limits.",
        "A large hiatal hernia is noted.",
        "The lungs are free of focal airspace disease.",
        "No pneumothorax or pleural effusion is seen.",
        "Degenerative changes are present in the spine.",
    ]
    labels = label_text(example.findings + " " + example.impression)
    # read by hand: no focal airspace disease, no pneumothorax, no effusion, "no active disease"
    assert {k: v for k, v in labels.items() if v is not None} == {
        "No Finding": 1, "Lung Opacity": 0, "Pneumothorax": 0, "Pleural Effusion": 0,
    }
