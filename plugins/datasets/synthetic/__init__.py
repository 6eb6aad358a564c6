"""Synthetic chest X-ray world (datasets.md §4.1–§4.6, §4.8).

Every study is a pure function of ``(seed, split, index)`` plus a profile (which
dataset is being emulated) and, for evaluation subsets, explicit constraints:

* :mod:`.latent`    – the latent study model (patient, view, findings, devices,
  foreign objects, nuisance, report noise) and its sampler;
* :mod:`.geometry`  – continuous thorax geometry, the patient pose and zones;
* :mod:`.shapes`    – continuous definitions of every pathology / device / object;
* :mod:`.render`    – frontal and lateral image rendering;
* :mod:`.targets`   – masks, boxes and image-truth labels derived from the latent;
* :mod:`.templates`, :mod:`.reports` – sentence inventory and report styles
  (MIMIC, R2Gen, IU, 5×N);
* :mod:`.lexicon`, :mod:`.labeler` – shared vocabulary and the rule labeler;
* :mod:`.subsets`   – evaluation subsets (5×N, laterality, negation, severity);
* :mod:`.study`     – :func:`generate_study`, one call returning image(s),
  reports, labels, masks and boxes;
* :mod:`.sizes`     – the ``tiny`` / ``small`` / ``full`` sizes;
* :mod:`.glyphs`    – stroke font for burned-in markers.

Conventions: normalized coordinates ``u = x / W``, ``v = y / H``; pixel
coordinates have their origin at the top-left pixel *corner*, x to the right,
y downward. Frontal images are displayed radiologically: the patient's right is
on the image left. Nothing is ever flipped horizontally.
"""

from .latent import (
    CERTAINTIES,
    CHANGES,
    DEVICE_KINDS,
    FINDING_KINDS,
    FOREIGN_KINDS,
    PROFILES,
    SEVERITIES,
    Constraints,
    FindingRequest,
    SampleSpec,
    StudyLatent,
    SynthConfig,
    config_for_profile,
    sample_latent,
)
from .lexicon import COMPETITION, OBSERVATIONS
from .labeler import label_sections, label_text
from .render import render_frontal, render_lateral, to_uint8, to_uint12
from .reports import REPORT_STYLES, SyntheticReport, generate_reports
from .sizes import SIZE_COUNTS, SIZES
from .study import SyntheticStudy, conventions, generate_from_spec, generate_study, latent_from_spec, study_text
from .targets import Targets, boxes_to_mask, component_boxes, compute_targets, image_truth_labels, mask_bbox

__all__ = [
    "CERTAINTIES", "CHANGES", "COMPETITION", "DEVICE_KINDS", "FINDING_KINDS",
    "FOREIGN_KINDS", "OBSERVATIONS", "PROFILES", "REPORT_STYLES", "SEVERITIES",
    "SIZES", "SIZE_COUNTS", "Constraints", "FindingRequest", "SampleSpec",
    "StudyLatent", "SynthConfig", "SyntheticReport", "SyntheticStudy", "Targets",
    "boxes_to_mask", "component_boxes", "compute_targets", "config_for_profile", "conventions",
    "generate_from_spec", "generate_reports", "generate_study", "image_truth_labels",
    "label_sections", "label_text", "latent_from_spec", "mask_bbox", "render_frontal",
    "render_lateral", "sample_latent", "study_text", "to_uint8", "to_uint12",
]
