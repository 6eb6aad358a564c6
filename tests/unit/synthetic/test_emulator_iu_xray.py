"""IU X-ray emulator: OpenI XML, R2Gen annotation.json layout, two views per entry, planted exclusions."""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from place_bench.data.images import read_image
from place_bench.data.report_text import parse_openi_xml
from place_bench.plugins.datasets.synthetic import render_frontal, render_lateral
from place_bench.plugins.datasets.synthetic.emulators import iu_xray
from place_bench.plugins.datasets.synthetic.latent import StudyLatent

ID_RE = re.compile(r"^CXR(\d+)_IM-(\d{4})$")


def _digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("iu") / "iu_xray"
    return root, iu_xray.emulate(root, "tiny", seed=9)


def test_annotation_json_layout(tree):
    root, _ = tree
    ann = json.loads((root / "annotation.json").read_text())
    assert list(ann) == ["train", "val", "test"]
    assert [len(ann[s]) for s in ann] == [40, 10, 20]
    ids = set()
    for split, entries in ann.items():
        for e in entries:
            assert list(e) == ["id", "report", "image_path", "split"] and e["split"] == split
            assert ID_RE.match(e["id"]) and e["id"] not in ids
            ids.add(e["id"])
            assert e["image_path"] == [f"{e['id']}/0.png", f"{e['id']}/1.png"]
            assert all((root / "images" / p).is_file() for p in e["image_path"])
            assert e["report"].strip()


def test_reports_equal_the_xml_findings(tree):
    root, result = tree
    ann = json.loads((root / "annotation.json").read_text())
    entries = {e["id"]: e for s in ann.values() for e in s}
    xmls = sorted((root / "ecgen-radiology").glob("*.xml"))
    assert len(xmls) == len(entries) + 2
    excluded = []
    for path in xmls:
        doc = ET.parse(path).getroot()
        assert doc.tag == "eCitation"
        uid = doc.find("uId").get("id")
        assert uid == f"CXR{path.stem}"
        labels = [el.get("Label") for el in doc.iter("AbstractText")]
        assert labels == ["COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION"]
        images = [el.get("id") for el in doc.iter("parentImage")]
        sections = parse_openi_xml(path.read_bytes())
        rid = images[0].rsplit("-", 1)[0] if images else None
        if not images or not sections.findings:
            excluded.append(path.name)
            assert rid not in entries
            continue
        assert images == [f"{rid}-1001", f"{rid}-2001"] and rid.startswith(uid + "_IM-")
        assert entries[rid]["report"] == sections.findings
        for k, name in enumerate(images):
            raw = (root / "NLMCXR_png" / f"{name}.png").read_bytes()
            assert raw == (root / "images" / rid / f"{k}.png").read_bytes()
    planted = result.quirks["empty_findings"]["xml"] + result.quirks["no_images"]["xml"]
    assert sorted(excluded) == sorted(Path(p).name for p in planted)


def test_iu_text_quirks(tree):
    root, result = tree
    ann = json.loads((root / "annotation.json").read_text())
    entries = [e for s in ann.values() for e in s]
    with_x = sorted(e["id"] for e in entries if "XXXX" in e["report"])
    in_ann = {e["id"] for e in entries}
    assert with_x and with_x == sorted(i for i in result.quirks["xxxx_tokens"]["ids"] if i in in_ann)
    numbered = [e["id"] for e in entries if re.match(r"1\. ", e["report"])]
    assert sorted(numbered) == sorted(i for i in result.quirks["numbered_sentences"]["ids"]
                                      if i in {e["id"] for e in entries})


def test_views_are_frontal_then_lateral(tree):
    root, _ = tree
    for line in (root / "latent.jsonl").read_text().splitlines()[:6]:
        rec = json.loads(line)
        if not rec["ids"]["image_path"]:
            continue
        latent = StudyLatent.from_dict(rec["latent"])
        front = read_image(root / "images" / rec["ids"]["image_path"][0])
        lat = read_image(root / "images" / rec["ids"]["image_path"][1])
        assert np.abs(front - render_frontal(latent, 64)).max() <= 0.5 / 255 + 1e-6
        assert np.abs(lat - render_lateral(latent, 64)).max() <= 0.5 / 255 + 1e-6


def test_deterministic(tmp_path):
    counts = {"train": 4, "valid": 1, "test": 2}
    iu_xray.emulate(tmp_path / "a", "tiny", seed=9, counts=counts)
    iu_xray.emulate(tmp_path / "b", "tiny", seed=9, counts=counts)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
