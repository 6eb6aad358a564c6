"""The calibration knob ``contrast_gain`` (datasets.md §4.9) end to end: the sample spec, the
renderer, the emulators, ``place-bench data synth``, the ``synthetic_pairs`` source and the
benchmark's ``prepare`` steps. The default 1.0 must give the generator's own output."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from place_bench.plugins.datasets.synthetic.emulators import QUIRKS_FILE, covidx, emulate, recorded_emulation
from place_bench.plugins.datasets.synthetic.emulators.command import _same_emulation
from place_bench.plugins.datasets.synthetic.latent import (
    Constraints,
    FindingRequest,
    SampleSpec,
    config_for_profile,
    sample_latent,
)
from place_bench.plugins.datasets.synthetic.render import render_frontal
from place_bench.plugins.datasets.synthetic.study import generate_from_spec, generate_study, latent_from_spec

PX = 64
COUNTS = {"train": 5, "valid": 2, "test": 2}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Square dilation by ``r`` pixels."""
    h, w = mask.shape
    padded = np.pad(mask, r)
    out = np.zeros_like(mask)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def _single(kind: str) -> Constraints:
    return Constraints(view="PA", force=(FindingRequest(kind, severity="moderate", certainty="definite"),),
                       exclusive=True, no_devices=True)


# ------------------------------------------------------------------------------- spec and latent
def test_the_spec_checks_the_gain_and_stores_a_float():
    assert SampleSpec(0, "train", 0).contrast_gain == 1.0
    spec = SampleSpec(0, "train", 0, contrast_gain=2)
    assert spec.contrast_gain == 2.0 and isinstance(spec.contrast_gain, float)
    assert spec == SampleSpec(0, "train", 0, contrast_gain=2.0) != SampleSpec(0, "train", 0)
    for bad in (0, -1.0, math.nan, math.inf, "abc", None, True):
        with pytest.raises(ValueError, match="contrast_gain must be a finite number > 0"):
            SampleSpec(0, "train", 0, contrast_gain=bad)


def test_the_default_gain_renders_what_the_generator_renders_without_the_knob():
    for index in range(3):
        today = render_frontal(sample_latent(4, "train", index), PX)  # a path that never sees a spec
        for spec in (SampleSpec(4, "train", index), SampleSpec(4, "train", index, contrast_gain=1.0)):
            assert generate_from_spec(spec, PX).frontal.tobytes() == today.tobytes()
        assert generate_study(4, "train", index, PX).frontal.tobytes() == today.tobytes()


def test_the_gain_is_recorded_in_the_latent_but_does_not_change_the_sampling():
    one = latent_from_spec(SampleSpec(4, "train", 5))
    two = latent_from_spec(SampleSpec(4, "train", 5, contrast_gain=2.0))
    assert one.contrast_gain == 1.0 and two.contrast_gain == 2.0
    assert {**one.to_dict(), "contrast_gain": 2.0} == two.to_dict()


def test_an_explicit_config_must_agree_with_the_spec():
    spec = SampleSpec(4, "train", 5, contrast_gain=2.0)
    cfg = config_for_profile("mimic")
    with pytest.raises(ValueError, match="contrast_gain"):
        latent_from_spec(spec, cfg)  # the config's 1.0 does not silently win
    cfg.contrast_gain = 2.0
    assert latent_from_spec(spec, cfg).to_dict() == latent_from_spec(spec).to_dict()
    assert generate_study(4, "train", 5, 32, config=cfg).spec == spec  # generate_study takes its config's gain


# ------------------------------------------------------------------------------------ renderer
@pytest.mark.parametrize("kind", ["consolidation", "effusion"])
def test_a_gain_of_two_changes_the_lesion_pixels_and_only_those(kind):
    for index in range(2):
        one = generate_from_spec(SampleSpec(0, "gain", index, constraints=_single(kind)), PX, with_lateral=False)
        two = generate_from_spec(SampleSpec(0, "gain", index, constraints=_single(kind), contrast_gain=2.0), PX,
                                 with_lateral=False)
        mask = one.targets.mask(kind)
        assert mask.any() and np.array_equal(two.targets.mask(kind), mask)
        assert two.reports["mimic"].text == one.reports["mimic"].text and two.image_labels == one.image_labels
        changed = one.frontal != two.frontal
        # The renderer paints the finding into the attenuation image, then blurs (radius ceil(3 sigma) pixels,
        # render.gaussian_blur) and adds the same noise; coverage at the mask edge reaches one pixel further.
        reach = math.ceil(3 * one.latent.nuisance.blur_sigma * PX / 256) + 1
        assert changed[mask].mean() > 0.5
        assert not (changed & ~_dilate(mask, reach)).any()
        assert two.frontal[mask].mean() > one.frontal[mask].mean() + 0.02  # denser lesion, brighter pixels


def test_the_gain_leaves_normal_studies_and_geometric_findings_alone():
    # cardiomegaly is drawn as heart geometry, not as added lesion contrast
    for c in (Constraints(exclusive=True, no_devices=True), _single("cardiomegaly")):
        one = generate_from_spec(SampleSpec(0, "gain", 0, constraints=c), PX)
        two = generate_from_spec(SampleSpec(0, "gain", 0, constraints=c, contrast_gain=2.0), PX)
        assert one.frontal.tobytes() == two.frontal.tobytes()


# ----------------------------------------------------------------------------------- emulators
@pytest.fixture(scope="module")
def covidx_trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("gain")
    covidx.emulate(base / "omitted", "tiny", seed=2, image_px=PX, counts=COUNTS)
    emulate("covidx", base / "one", "tiny", seed=2, image_px=PX, counts=COUNTS, contrast_gain=1.0)
    emulate("covidx", base / "two", "tiny", seed=2, image_px=PX, counts=COUNTS, contrast_gain=2.0)
    return base


def test_an_emulation_with_the_default_gain_is_byte_identical(covidx_trees):
    assert _digest(covidx_trees / "omitted") == _digest(covidx_trees / "one")


def test_an_emulation_records_its_gain(covidx_trees):
    for name, gain in (("omitted", 1.0), ("two", 2.0)):
        root = covidx_trees / name
        assert json.loads((root / QUIRKS_FILE).read_text())["contrast_gain"] == gain
        assert recorded_emulation(root)["contrast_gain"] == gain
        lines = [json.loads(x) for x in (root / "latent.jsonl").read_text().splitlines()]
        assert lines and all(r["spec"]["contrast_gain"] == gain == r["latent"]["contrast_gain"] for r in lines)


def test_a_gain_changes_the_images_of_an_emulation_and_nothing_else(covidx_trees):
    one, two = _digest(covidx_trees / "one"), _digest(covidx_trees / "two")
    assert one.keys() == two.keys()
    changed = {k for k in one if one[k] != two[k]} - {"latent.jsonl", QUIRKS_FILE}
    assert changed and all(k.endswith(IMAGE_SUFFIXES) for k in changed)  # label files, ids: unchanged

    def without_gain(root: Path) -> list:
        out = []
        for line in (root / "latent.jsonl").read_text().splitlines():
            rec = json.loads(line)
            del rec["spec"]["contrast_gain"], rec["latent"]["contrast_gain"]
            out.append(rec)
        return out

    assert without_gain(covidx_trees / "one") == without_gain(covidx_trees / "two")


def test_a_tree_is_the_same_emulation_only_with_the_same_gain(covidx_trees, tmp_path):
    two = covidx_trees / "two"
    assert _same_emulation(two, "tiny", 2, 2.0) and not _same_emulation(two, "tiny", 2, 1.0)
    # a tree written before the gain was recorded was made with 1.0
    old = tmp_path / "old"
    old.mkdir()
    info = json.loads((covidx_trees / "one" / QUIRKS_FILE).read_text())
    del info["contrast_gain"]
    (old / QUIRKS_FILE).write_text(json.dumps(info))
    assert recorded_emulation(old)["contrast_gain"] == 1.0
    assert _same_emulation(old, "tiny", 2, 1.0) and not _same_emulation(old, "tiny", 2, 2.0)


# ---------------------------------------------------------------------------------- data synth
def test_data_synth_references_the_mimic_images_made_with_the_same_gain(tmp_path, capsys):
    from place_bench.cli import main

    # mimic_rrg references an existing mimic_cxr emulation of the same size, seed and gain (no pixels rendered)
    (tmp_path / "mimic_cxr").mkdir()
    (tmp_path / "mimic_cxr" / QUIRKS_FILE).write_text(json.dumps(
        {"size": "tiny", "seed": 0, "image_px": 64, "contrast_gain": 1.5}))
    assert main(["data", "synth", "--out", str(tmp_path), "--datasets", "mimic_rrg", "--contrast-gain", "1.5"]) == 0
    assert "contrast gain 1.5" in capsys.readouterr().out
    quirks = json.loads((tmp_path / "mimic_rrg" / QUIRKS_FILE).read_text())
    assert quirks["image_root"] == "../mimic_cxr/files" and quirks["contrast_gain"] == 1.5


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "abc"])
def test_data_synth_refuses_a_bad_gain_in_one_line(tmp_path, capsys, value):
    from place_bench.cli import main

    out = tmp_path / "out"
    assert main(["data", "synth", "--out", str(out), "--datasets", "covidx", "--contrast-gain", value]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--contrast-gain must be a finite number > 0" in err
    assert not out.exists()  # refused before anything is written


# ----------------------------------------------------------------------------- synthetic_pairs
def test_the_synthetic_pairs_cache_is_not_shared_across_gains(tmp_path):
    from place_bench.plugins.datasets.synthetic.pairs_manifest import SyntheticPairs

    settings = dict(n_train=3, n_test=1, image_px=32, seed=2, cache_dir=str(tmp_path))
    default = SyntheticPairs(**settings).materialize()
    assert default.parent.name == "seed2_px32_train3_test1"  # the key from before the knob: old caches stay valid
    assert SyntheticPairs(contrast_gain=1.0, **settings).materialize() == default
    doubled = SyntheticPairs(contrast_gain=2.0, **settings).materialize()
    assert doubled.parent.name == "seed2_px32_train3_test1_gain2.0"
    for manifest, gain in ((default, 1.0), (doubled, 2.0)):
        assert json.loads(manifest.with_suffix(".json").read_text())["generator"]["contrast_gain"] == gain
    images = sorted(p.name for p in (default.parent / "images").iterdir())
    assert images == sorted(p.name for p in (doubled.parent / "images").iterdir())
    assert any((default.parent / "images" / n).read_bytes() != (doubled.parent / "images" / n).read_bytes()
               for n in images)
    with pytest.raises(ValueError, match="contrast_gain must be a finite number > 0"):
        SyntheticPairs(contrast_gain=0, **settings)


# --------------------------------------------------------------------------- benchmark prepare
def _bench_plan(tmp_path: Path, step: str):
    from place_bench import api
    from place_bench.engine import bench

    work = tmp_path / "work"
    cfg = tmp_path / "bench_gain.py"
    cfg.write_text(f"""
benchmark = dict(
    work_dir={str(work)!r},
    prepare=[{step}],
    methods=[dict(name="random-init", config="eval/random_init_tiny_vit")],
    tasks=[dict(task="cls_linear", datasets=[{str(work / 'manifests' / 'covidx')!r}], fractions=[1.0], seeds=[0])],
    device="cpu",
)
""")
    return bench.plan(api.load_config(cfg))


def test_a_prepare_step_takes_a_contrast_gain(tmp_path):
    from place_bench.config import ConfigError

    assert _bench_plan(tmp_path, 'dict(dataset="covidx")').prepare[0].contrast_gain == 1.0
    assert _bench_plan(tmp_path, 'dict(dataset="covidx", contrast_gain=1.5)').prepare[0].contrast_gain == 1.5
    with pytest.raises(ConfigError, match=r"benchmark.prepare\[covidx\]: contrast_gain must be a finite number > 0"):
        _bench_plan(tmp_path, 'dict(dataset="covidx", contrast_gain=0)')
    with pytest.raises(ConfigError, match=r"benchmark.prepare\[covidx\]: unknown key\(s\) \['synth'\]"):
        _bench_plan(tmp_path, 'dict(dataset="covidx", synth=dict(contrast_gain=1.5))')


def test_a_prepare_step_emulates_with_its_gain_and_refuses_a_tree_made_with_another(tmp_path):
    from place_bench.engine.bench import prepare_job

    (unit,) = _bench_plan(tmp_path, 'dict(dataset="covidx", contrast_gain=1.5)').prepare
    assert not unit.done
    assert Path(prepare_job(unit)) == unit.manifest and unit.manifest.is_file()
    assert recorded_emulation(unit.root)["contrast_gain"] == 1.5
    assert _bench_plan(tmp_path, 'dict(dataset="covidx", contrast_gain=1.5)').prepare[0].done

    # the same folders asked for another gain: not done, and neither reused nor replaced
    (other,) = _bench_plan(tmp_path, 'dict(dataset="covidx", contrast_gain=2.0)').prepare
    assert not other.done
    before = _digest(unit.root)
    with pytest.raises(ValueError, match=r"holds an emulation with contrast_gain 1.5 \(this step: 2.0\)"):
        prepare_job(other)
    assert _digest(unit.root) == before
    # ... or another size or seed
    for step, named in (('size="small"', "size 'tiny' (this step: 'small')"), ("seed=3", "seed 0 (this step: 3)")):
        (other,) = _bench_plan(tmp_path, f'dict(dataset="covidx", contrast_gain=1.5, {step})').prepare
        assert not other.done
        with pytest.raises(ValueError, match=re.escape(named)):
            prepare_job(other)
    assert _digest(unit.root) == before
