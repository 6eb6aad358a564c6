"""Native-format emulators (datasets.md §4.7): miniature copies of every native dataset format.

Each module writes one dataset tree with the real file names, columns, folder layouts and the
quirks ``prepare`` must cope with, and exposes

``emulate(out_dir, size="tiny", seed=0, image_px=None, *, workers=1, counts=None, contrast_gain=1.0)
-> EmulationResult``

(``contrast_gain``: the §4.9 lesion contrast multiplier, see :mod:`.common`;
:class:`.common.EmulationResult`: files written, counts per split, planted quirks, the counts a
correct ``prepare`` should report). Beside the native files every tree holds ``latent.jsonl``
(the truth per study) and ``manifest_of_quirks.json``. Output is byte-identical for identical
arguments; studies are generated and written one at a time.

============  =====================================================  =======================
name          native format                                           module
============  =====================================================  =======================
mimic_cxr     MIMIC-CXR-JPG 2.0.0 + report .txt files                 :mod:`.mimic_cxr`
chexpert      CheXpert-v1.0-small train.csv / valid.csv               :mod:`.chexpert`
rsna          RSNA Pneumonia stage 2 CSVs + DICOMs                    :mod:`.rsna`
siim          SIIM-ACR stage 1 train-rle.csv + DICOM tree             :mod:`.siim`
covidx        COVIDx 9A and CXR-4 label files + images                :mod:`.covidx`
object_cxr    Object-CXR train/dev/test CSVs + JPEGs                  :mod:`.object_cxr`
iu_xray       OpenI XML + PNGs + R2Gen annotation.json                :mod:`.iu_xray`
mimic_rrg     R2Gen MIMIC annotation.json (over a mimic_cxr tree)     :mod:`.mimic_rrg`
============  =====================================================  =======================
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from . import chexpert, covidx, iu_xray, mimic_cxr, mimic_rrg, object_cxr, rsna, siim
from .common import LATENT_FILE, QUIRKS_FILE, EmulationResult, recorded_emulation

EMULATORS: dict[str, Callable[..., EmulationResult]] = {
    "mimic_cxr": mimic_cxr.emulate,
    "chexpert": chexpert.emulate,
    "rsna": rsna.emulate,
    "siim": siim.emulate,
    "covidx": covidx.emulate,
    "object_cxr": object_cxr.emulate,
    "iu_xray": iu_xray.emulate,
    "mimic_rrg": mimic_rrg.emulate,
}
DATASETS: tuple[str, ...] = tuple(EMULATORS)


def emulate(dataset: str, out_dir: Path, size: str = "tiny", seed: int = 0, image_px: Optional[int] = None, *,
            contrast_gain: float = 1.0, **options) -> EmulationResult:
    """Run the emulator of ``dataset`` (one of :data:`DATASETS`). ``contrast_gain`` (a finite
    number > 0, default 1.0) multiplies lesion contrast (see :mod:`.common`) and is recorded in
    ``manifest_of_quirks.json`` and in each ``latent.jsonl`` spec."""
    if dataset not in EMULATORS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    return EMULATORS[dataset](Path(out_dir), size=size, seed=seed, image_px=image_px, contrast_gain=contrast_gain,
                              **options)


__all__ = ["DATASETS", "EMULATORS", "EmulationResult", "LATENT_FILE", "QUIRKS_FILE", "emulate", "recorded_emulation"]
