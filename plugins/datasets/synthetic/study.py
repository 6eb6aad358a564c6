"""One call per sample: latent, images, reports, labels, masks and boxes.

:func:`generate_study` is what native-format emulators (§4.7) iterate over:
``for index in range(n): study = generate_study(seed, split, index, size_px,
profile=...)``. Everything is a pure function of the arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .latent import Constraints, SampleSpec, StudyLatent, SynthConfig, config_for_profile, sample_latent
from .render import render_frontal, render_lateral
from .reports import REPORT_STYLES, SyntheticReport, generate_reports
from .targets import (
    Targets,
    compute_targets,
    covidx_binary,
    covidx_class,
    image_truth_labels,
    rsna_detailed_class,
    rsna_target,
)


@dataclass
class SyntheticStudy:
    """A generated study.

    ``frontal`` / ``lateral``: ``float32 (H, W)`` display images in [0, 1]
    (``lateral`` is None without a companion view or when not requested).
    ``targets``: masks and boxes at ``mask_size`` (default: the image size).
    ``reports``: style -> :class:`.reports.SyntheticReport`. ``image_labels``:
    CheXpert-14 image truth (0/1); ``report_labels``: labels of the MIMIC-style
    report (what MIMIC / CheXpert emulations store).
    """

    spec: SampleSpec
    latent: StudyLatent
    frontal: np.ndarray
    lateral: Optional[np.ndarray]
    targets: Targets
    reports: dict
    image_labels: dict

    @property
    def report_labels(self) -> dict:
        return self.reports["mimic"].labels if "mimic" in self.reports else {}

    @property
    def view(self) -> str:
        return self.latent.view

    @property
    def rsna_target(self) -> int:
        return rsna_target(self.latent)

    @property
    def rsna_class(self) -> str:
        return rsna_detailed_class(self.latent)

    @property
    def covidx_class(self) -> str:
        return covidx_class(self.latent)

    @property
    def covidx_binary(self) -> str:
        return covidx_binary(self.latent)


def conventions() -> dict:
    """Conventions of the synthetic world, for a dataset sidecar."""
    return {
        "coordinates": "pixel units, origin at the top-left pixel corner, x right, y down; normalized u = x / W, "
                       "v = y / H",
        "boxes": "[x0, y0, x1, y1]; mask-derived boxes are end-exclusive integers (x1 = last column + 1)",
        "masks": "bool (H, W); a pixel belongs to a shape when its centre does",
        "laterality": "radiological display: patient right = image left; no horizontal flips",
        "labels": "1 positive, 0 negative, -1 uncertain, blank = not mentioned; report labels come from the "
                  "text (findings + impression present in the file), image truth from the latent",
        "hedged_positive": "'likely', 'probable', 'consistent with', 'compatible with', 'concerning for' are used "
                           "only for definite findings and labelled 1",
        "uncertainty": "'possible', 'questionable', 'cannot be excluded', 'may represent', 'could reflect', "
                       "'A versus B', 'suggestive of', borderline / upper limits of normal heart size -> -1",
        "seeding": "numpy Generator(PCG64(SeedSequence([seed, crc32(split), index, crc32(profile), attempt])))",
    }


def latent_from_spec(spec: SampleSpec, config: Optional[SynthConfig] = None) -> StudyLatent:
    """The latent record ``spec`` names.

    Without ``config`` the profile's defaults (:func:`.latent.config_for_profile`) are used with
    ``contrast_gain = spec.contrast_gain``. The spec is the sample's identity, so an explicit
    ``config`` must agree with it: a different ``profile`` or ``contrast_gain`` is a ValueError
    (neither silently wins).
    """
    if config is None:
        cfg = config_for_profile(spec.profile)
        cfg.contrast_gain = spec.contrast_gain
    else:
        cfg = config
    if cfg.profile != spec.profile:
        raise ValueError(f"config profile {cfg.profile!r} != spec profile {spec.profile!r}")
    if float(cfg.contrast_gain) != spec.contrast_gain:
        raise ValueError(f"config contrast_gain {cfg.contrast_gain!r} != spec contrast_gain {spec.contrast_gain!r}")
    return sample_latent(spec.seed, spec.split, spec.index, cfg, constraints=spec.constraints, attempt=spec.attempt)


def generate_from_spec(spec: SampleSpec, size_px=256, *, config: Optional[SynthConfig] = None,
                       with_lateral: bool = True, mask_size=None,
                       styles=REPORT_STYLES) -> SyntheticStudy:
    """Generate the study a :class:`.latent.SampleSpec` names (see :func:`generate_study`)."""
    latent = latent_from_spec(spec, config)
    frontal = render_frontal(latent, size_px)
    lateral = render_lateral(latent, size_px) if with_lateral and latent.has_lateral else None
    targets = compute_targets(latent, mask_size if mask_size is not None else size_px)
    reports = generate_reports(latent, styles)
    return SyntheticStudy(spec, latent, frontal, lateral, targets, reports, image_truth_labels(latent))


def generate_study(seed: int, split: str, index: int, size_px=256, *, profile: str = "mimic",
                   config: Optional[SynthConfig] = None, constraints: Optional[Constraints] = None,
                   attempt: int = 0, with_lateral: bool = True, mask_size=None,
                   styles=REPORT_STYLES) -> SyntheticStudy:
    """Generate study ``(seed, split, index)`` of an emulated dataset.

    ``size_px``: int (square) or ``(H, W)``; ``mask_size`` likewise for targets
    (e.g. 1024 for RSNA / SIIM emulation). ``config`` overrides the profile's
    default probabilities (its ``profile`` field must equal ``profile``); the study's
    ``contrast_gain`` is ``config.contrast_gain`` (1.0 without a config).
    """
    gain = config.contrast_gain if config is not None else 1.0
    spec = SampleSpec(seed, split, index, profile, attempt, constraints, contrast_gain=gain)
    return generate_from_spec(spec, size_px, config=config, with_lateral=with_lateral, mask_size=mask_size,
                              styles=styles)


def study_text(spec: SampleSpec, styles=REPORT_STYLES,
               config: Optional[SynthConfig] = None) -> tuple[StudyLatent, dict[str, SyntheticReport]]:
    """Latent and reports only (no pixels): cheap enough to scan thousands of samples."""
    latent = latent_from_spec(spec, config)
    return latent, generate_reports(latent, styles)
