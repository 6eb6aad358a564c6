"""Dataset sizes of the synthetic world (§4.10)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizeSpec:
    """Counts of one size.

    ``pretrain``: image–report pairs of the MIMIC-style pretraining emulation;
    ``train`` / ``valid`` / ``test``: per downstream dataset; ``five_by_n``: N of
    the 5×N evaluation set (images per class); ``image_px``: default side of
    rendered images (``image_px_max`` the upper end of the allowed range);
    ``dicom_px`` / ``dicom_images``: size and number of the 1024-px DICOM
    emulations (RSNA / SIIM) in ``tiny`` (None: same as the dataset counts).
    """

    pretrain: int
    train: int
    valid: int
    test: int
    five_by_n: int
    image_px: int
    image_px_max: int
    dicom_px: int
    dicom_images: int | None


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(200, 40, 10, 20, 8, 64, 64, 1024, 8),
    "small": SizeSpec(4000, 1000, 200, 400, 40, 128, 256, 1024, None),
    "full": SizeSpec(40000, 10000, 1000, 2000, 200, 256, 256, 1024, None),
}

# Plain per-split counts: {"tiny": {"pretrain": 200, "train": 40, "valid": 10, "test": 20, "5xn": 8}, ...}
SIZE_COUNTS: dict[str, dict[str, int]] = {
    name: {"pretrain": s.pretrain, "train": s.train, "valid": s.valid, "test": s.test, "5xn": s.five_by_n}
    for name, s in SIZES.items()
}
