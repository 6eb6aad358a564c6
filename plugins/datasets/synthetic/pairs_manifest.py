"""A manifest of synthetic image-report pairs written straight from the generator.

DESIGN's data flow has two ways into a manifest: native files through ``prepare``,
and the synthetic generator directly. This is the direct one: PNG frontal images
and MIMIC-style reports, without native-format emulation, for engine tests and
benchmarks that must not depend on any ``prepare``.

``contrast_gain`` (default 1.0, a finite number > 0) is the §4.9 calibration knob: it
multiplies the contrast of the findings painted into the images; studies and reports are
the same for every gain, and 1.0 gives the generator's own images.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from place_bench.hookspecs import hookimpl

from .latent import SampleSpec, check_contrast_gain, gain_suffix
from .render import to_uint8
from .study import generate_from_spec


def write_pairs_manifest(
    folder: str | Path, n_train: int = 8, n_test: int = 4, image_px: int = 80, seed: int = 0,
    contrast_gain: float = 1.0,
) -> Path:
    """Write ``folder/images/*.png`` and ``folder/pairs.parquet`` (+ sidecar); return the manifest.

    Study ``i`` of split ``s`` is ``generate_from_spec(SampleSpec(seed, s, i,
    contrast_gain=contrast_gain), image_px)`` (with the default gain, ``generate_study(seed, s,
    i, image_px)``); its report is the ``mimic`` style with its generated findings and
    impression sections. The sidecar's ``generator`` records the settings, ``contrast_gain``
    included.
    """
    from place_bench.data.manifest import write_manifest, write_sidecar

    contrast_gain = check_contrast_gain(contrast_gain)
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for split, count in (("train", n_train), ("test", n_test)):
        for index in range(count):
            spec = SampleSpec(seed, split, index, contrast_gain=contrast_gain)
            study = generate_from_spec(spec, image_px, with_lateral=False)
            report = study.reports["mimic"]
            sample_id = f"{split}_{index:06d}"
            rel = f"images/{sample_id}.png"
            Image.fromarray(to_uint8(study.frontal)).save(folder / rel)
            rows.append(dict(
                dataset="synthetic_pairs", sample_id=sample_id, subject_id=f"{split}_{index:06d}",
                image_path=rel, image_format="png", split=split, report=report.text,
                findings=report.sections.get("findings"), impression=report.sections.get("impression"),
            ))
    manifest = folder / "pairs.parquet"
    summary = write_manifest(manifest, sorted(rows, key=lambda r: r["sample_id"]))
    write_sidecar(manifest.with_suffix(".json"), {
        "dataset": "synthetic_pairs",
        "protocol": "direct",
        "native_root": str(folder.resolve()),
        "generator": {"seed": seed, "image_px": image_px, "n_train": n_train, "n_test": n_test,
                      "contrast_gain": contrast_gain},
        "manifest": {"file": manifest.name, "rows": summary.rows, "sha256": summary.sha256, "fingerprint": summary.fingerprint},
    })
    return manifest


class SyntheticPairs:
    """Dataset component ``synthetic_pairs``: a generated pairs manifest, made on first use.

    ``materialize()`` returns ``<cache_dir>/<settings key>/pairs.parquet``, writing it
    (into a temporary folder renamed into place, so never half of it) only when it
    is not there yet. Configs use it as ``data.train.source``::

        data = dict(train=dict(source=dict(type="synthetic_pairs", n_train=256), split="train"))

    ``contrast_gain`` (default 1.0; checked here: a finite number > 0) is passed to
    :func:`write_pairs_manifest`. The settings key names every setting that changes the files,
    so manifests made with other settings are never reused: ``seed0_px96_train256_test64``
    for the default gain (the key used before the knob existed, so existing caches stay
    valid), ``seed0_px96_train256_test64_gain1.5`` otherwise.
    """

    def __init__(self, n_train: int = 256, n_test: int = 64, image_px: int = 96, seed: int = 0,
                 cache_dir: str = "work/synthetic_pairs", contrast_gain: float = 1.0):
        self.n_train, self.n_test, self.image_px, self.seed = n_train, n_test, image_px, seed
        self.contrast_gain = check_contrast_gain(contrast_gain)
        self.cache_dir = Path(cache_dir)

    @property
    def key(self) -> str:
        """The cache folder name of these settings (see the class docstring)."""
        key = f"seed{self.seed}_px{self.image_px}_train{self.n_train}_test{self.n_test}"
        return key + gain_suffix(self.contrast_gain)

    def materialize(self) -> Path:
        import shutil
        import tempfile

        key = self.key
        target = self.cache_dir / key
        manifest = target / "pairs.parquet"
        if manifest.is_file() and manifest.with_suffix(".json").is_file():
            return manifest
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.cache_dir))
        try:
            write_pairs_manifest(staging, self.n_train, self.n_test, self.image_px, self.seed, self.contrast_gain)
            # The sidecar records the root; point it at the final folder before the move.
            from place_bench.data.manifest import read_sidecar, write_sidecar

            sidecar = read_sidecar(staging / "pairs.json")
            sidecar["native_root"] = str(target.resolve())
            write_sidecar(staging / "pairs.json", sidecar)
            staging.rename(target)
        except FileExistsError:  # another process finished first
            shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return manifest


@hookimpl
def place_bench_register(registrar):
    registrar.add("dataset", "synthetic_pairs", SyntheticPairs)
