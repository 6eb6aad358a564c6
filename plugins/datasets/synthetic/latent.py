"""Latent study model and its sampler (§4.2).

A study is sampled from its own generator
``numpy.random.Generator(PCG64(SeedSequence([seed, crc32(split), index,
crc32(profile), attempt])))`` – never from global state – so any single sample can
be regenerated in isolation and parallel generation is order-independent.
``split`` and ``profile`` are free strings hashed with CRC-32 (stable across
processes, unlike ``hash``). ``attempt`` lets subset builders (§4.8) draw another
candidate for the same slot.

Sampling order: patient (anatomy, nuisance), clusters (CHF, pneumonia, viral),
pneumothorax, view (AP more likely for inpatients: CHF or pneumothorax), devices
(more likely for AP), the remaining independent findings, foreign objects,
lateral companion, report noise, then the shape parameters of every finding
(which need the study's thorax geometry). ``render_seed`` (vessel texture and
pixel noise) and ``text_seed`` (sentence choices) are stored in the latent, so
images and reports are pure functions of the latent record.

Shape parameters are in normalized anatomical coordinates (see
:mod:`.geometry`); 1.0 vertical unit is about 40 cm.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .geometry import build_thorax, sample_point, zone_contains
from .shapes import PX256, solve_blob_threshold

PROFILES = ("mimic", "chexpert", "rsna", "siim", "covidx", "object_cxr", "iu")
FINDING_KINDS = (
    "consolidation", "ground_glass", "atelectasis", "effusion", "edema", "nodule",
    "pneumothorax", "cardiomegaly", "widened_mediastinum", "rib_fracture", "pleural_thickening",
)
DEVICE_KINDS = ("ett", "enteric_tube", "cvc", "pacemaker", "sternotomy", "chest_tube")
FOREIGN_KINDS = ("button", "coin", "clip", "necklace", "hair_tie")
SEVERITIES = ("mild", "moderate", "severe")
CERTAINTIES = ("definite", "uncertain")
CHANGES = ("none", "new", "stable", "increased", "decreased")
SIDES = ("right", "left", "bilateral")

# Which zones each finding may occupy (finding-specific allowed sets, §4.2).
ALLOWED_ZONES = {
    "consolidation": ("upper", "middle", "lower", "retrocardiac"),
    "ground_glass": ("lower",),
    "atelectasis": ("lower", "middle", "upper", "retrocardiac"),
    "effusion": ("lower",),
    "edema": ("perihilar",),
    "nodule": ("upper", "middle", "lower", "apical", "perihilar", "lateral"),
    "pneumothorax": ("apical",),
    "cardiomegaly": (None,),
    "widened_mediastinum": (None,),
    "rib_fracture": (None,),
    "pleural_thickening": ("lateral",),
}


@dataclass
class SynthConfig:
    """Sampling probabilities (defaults of §4.2), one instance per emulated dataset."""

    profile: str = "mimic"
    p_ap: float = 0.4
    p_ap_inpatient: float = 0.7
    p_lateral: float = 0.7
    p_chf: float = 0.12
    p_chf_cardiomegaly: float = 0.8
    p_chf_edema: float = 0.7
    p_chf_effusion: float = 0.6
    p_pneumonia: float = 0.15
    p_parapneumonic: float = 0.2
    p_viral: float = 0.0
    p_atelectasis: float = 0.15
    p_atelectasis_with_effusion: float = 0.5
    p_nodule: float = 0.07
    p_pneumothorax: float = 0.06
    p_effusion: float = 0.08
    p_cardiomegaly: float = 0.08
    p_widened_mediastinum: float = 0.04
    p_rib_fracture: float = 0.03
    p_devices: float = 0.25
    p_devices_ap: float = 0.5
    p_foreign: float = 0.10
    p_pleural_thickening: float = 0.02
    p_bilateral_effusion: float = 0.35
    p_bibasilar_atelectasis: float = 0.3
    p_chest_tube_ptx: float = 0.4
    severity_probs: tuple = (0.5, 0.35, 0.15)
    p_uncertain: float = 0.15
    change_probs: tuple = (0.6, 0.1, 0.1, 0.1, 0.1)
    p_omit: float = 0.05
    p_false_positive: float = 0.01
    p_swap_side: float = 0.01
    contrast_gain: float = 1.0  # calibration knob (§4.9): multiplies lesion contrast; set via SampleSpec.contrast_gain


def config_for_profile(profile: str) -> SynthConfig:
    """Default configuration of an emulated dataset (§4.2 profile-specific rates)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    cfg = SynthConfig(profile=profile)
    if profile == "iu":
        cfg.p_lateral = 1.0
    elif profile not in ("mimic", "chexpert"):
        cfg.p_lateral = 0.0
    if profile == "covidx":
        cfg.p_viral = 0.33
    if profile == "object_cxr":
        cfg.p_foreign = 0.5
    return cfg


# ------------------------------------------------------------------ dataclasses
@dataclass
class Anatomy:
    """Per-patient anatomy template values (jittered, anatomical coordinates)."""

    r_cx: float = 0.33
    r_cy: float = 0.46
    r_ax: float = 0.135
    r_by: float = 0.30
    r_dome: float = 0.74
    l_cx: float = 0.67
    l_cy: float = 0.47
    l_ax: float = 0.13
    l_by: float = 0.31
    l_dome: float = 0.77
    heart_cx: float = 0.54
    heart_cy: float = 0.62
    heart_half_h: float = 0.11
    ctr: float = 0.44
    med_half_w: float = 0.045
    knob_r: float = 0.03
    body_ax: float = 0.40
    body_by: float = 0.46
    att_soft: float = 0.55
    att_lung: float = 0.18
    att_mediastinum: float = 0.72
    att_heart: float = 0.72
    att_abdomen: float = 0.62
    bone_gain: float = 1.0
    gastric_bubble: bool = True


@dataclass
class Nuisance:
    """Acquisition nuisance (§4.3), independent of pathology."""

    scale: float = 1.0
    rotation_deg: float = 0.0
    shift_u: float = 0.0
    shift_v: float = 0.0
    inspiration: float = 1.0
    contrast: float = 1.0
    brightness: float = 0.0
    gamma: float = 1.0
    blur_sigma: float = 0.0       # px at 256
    noise_sigma: float = 0.0      # attenuation units
    collimation: Optional[list] = None  # [left, top, right, bottom] fractions
    marker: bool = False          # lead "R" marker at the top-left (patient right)
    ap_text: Optional[str] = None  # burned-in "PORTABLE" / "AP" at the top right


@dataclass
class Finding:
    """One pathology. ``side`` is the patient side (None where meaningless);
    ``params`` holds every shape parameter (JSON-serializable)."""

    id: int
    kind: str
    side: Optional[str]
    zone: Optional[str]
    severity: str
    certainty: str
    change: str
    params: dict = field(default_factory=dict)


@dataclass
class Device:
    kind: str
    side: Optional[str] = None
    params: dict = field(default_factory=dict)


@dataclass
class ForeignObject:
    kind: str
    params: dict = field(default_factory=dict)


@dataclass
class ReportNoise:
    """Text-only noise: findings left out of the report, one absent finding
    mentioned positively, one finding with its side swapped in the text."""

    omitted: list = field(default_factory=list)       # finding ids
    false_positive: Optional[Finding] = None
    swapped: Optional[int] = None                     # finding id


@dataclass
class StudyLatent:
    seed: int
    split: str
    index: int
    profile: str
    attempt: int
    sex: str
    view: str                  # "PA" or "AP"
    inpatient: bool
    clusters: list
    has_lateral: bool
    anatomy: Anatomy
    nuisance: Nuisance
    findings: list
    devices: list
    foreign_objects: list
    report_noise: ReportNoise
    render_seed: int
    text_seed: int
    contrast_gain: float = 1.0

    def finding(self, kind: str) -> Optional[Finding]:
        return next((f for f in self.findings if f.kind == kind), None)

    def has(self, kind: str) -> bool:
        return self.finding(kind) is not None

    @property
    def is_normal(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict:
        """JSON-serializable record (one line of ``latent.jsonl``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StudyLatent":
        d = dict(d)
        d["anatomy"] = Anatomy(**d["anatomy"])
        d["nuisance"] = Nuisance(**d["nuisance"])
        d["findings"] = [Finding(**f) for f in d["findings"]]
        d["devices"] = [Device(**x) for x in d["devices"]]
        d["foreign_objects"] = [ForeignObject(**x) for x in d["foreign_objects"]]
        rn = dict(d["report_noise"])
        if rn.get("false_positive") is not None:
            rn["false_positive"] = Finding(**rn["false_positive"])
        d["report_noise"] = ReportNoise(**rn)
        return cls(**d)


@dataclass(frozen=True)
class FindingRequest:
    """A finding forced by a subset builder; None fields are sampled as usual."""

    kind: str
    side: Optional[str] = None
    severity: Optional[str] = None
    certainty: Optional[str] = None
    zone: Optional[str] = None


@dataclass(frozen=True)
class Constraints:
    """Conditions imposed on a sample (evaluation subsets, §4.8).

    ``exclusive``: no finding other than the forced ones and no devices;
    ``forbid``: finding kinds that must stay absent; ``clean_text``: no report
    noise (omission, false mention, side swap).
    """

    view: Optional[str] = None
    force: tuple = ()
    forbid: frozenset = frozenset()
    exclusive: bool = False
    no_devices: bool = False
    clean_text: bool = False


def check_contrast_gain(value: Any, name: str = "contrast_gain") -> float:
    """``value`` as a float if it is a finite number > 0, else ValueError naming ``name``."""
    try:
        gain = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        gain = math.nan
    if not (math.isfinite(gain) and gain > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return gain


def gain_suffix(contrast_gain: float) -> str:
    """The name suffix of things made with another contrast gain: ``""`` for 1.0, else
    ``"_gain<g>"`` (``_gain3.0``). Cache folders and probe dataset names use it, so what
    was made before the knob existed keeps its name."""
    return "" if contrast_gain == 1.0 else f"_gain{float(contrast_gain)!r}"


@dataclass(frozen=True)
class SampleSpec:
    """Everything needed to regenerate one sample.

    ``contrast_gain`` is the calibration knob of §4.9 (lesion contrast multiplier,
    :attr:`SynthConfig.contrast_gain`; a finite number > 0, stored as a float). It is part of
    the sample's identity but not of its seeding: specs that differ only in the gain give the
    same latent record apart from ``StudyLatent.contrast_gain``, i.e. the same study with
    its findings painted more or less strongly.
    """

    seed: int
    split: str
    index: int
    profile: str = "mimic"
    attempt: int = 0
    constraints: Optional[Constraints] = None
    tags: tuple = ()  # (key, value) pairs, e.g. (("class", "Edema"), ("view", "PA"))
    contrast_gain: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "contrast_gain", check_contrast_gain(self.contrast_gain))

    def tag(self, key: str, default: Any = None) -> Any:
        return dict(self.tags).get(key, default)


# ---------------------------------------------------------------------- seeding
def stable_code(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def seed_sequence(seed: int, split: str, index: int, profile: str, attempt: int = 0) -> np.random.SeedSequence:
    if seed < 0 or index < 0 or attempt < 0:
        raise ValueError("seed, index and attempt must be non-negative")
    return np.random.SeedSequence([int(seed), stable_code(split), int(index), stable_code(profile), int(attempt)])


# ---------------------------------------------------------------------- sampler
def _pick(rng: np.random.Generator, options, probs=None):
    i = rng.choice(len(options), p=None if probs is None else np.asarray(probs, dtype=float) / sum(probs))
    return options[int(i)]


def _sample_anatomy(rng: np.random.Generator) -> Anatomy:
    def j(x, rel=0.10):
        return float(x * rng.uniform(1 - rel, 1 + rel))

    an = Anatomy()
    return Anatomy(
        r_cx=an.r_cx + float(rng.uniform(-0.01, 0.01)), r_cy=an.r_cy + float(rng.uniform(-0.01, 0.01)),
        r_ax=j(an.r_ax), r_by=j(an.r_by, 0.05), r_dome=an.r_dome + float(rng.uniform(-0.015, 0.015)),
        l_cx=an.l_cx + float(rng.uniform(-0.01, 0.01)), l_cy=an.l_cy + float(rng.uniform(-0.01, 0.01)),
        l_ax=j(an.l_ax), l_by=j(an.l_by, 0.05), l_dome=an.l_dome + float(rng.uniform(-0.015, 0.015)),
        heart_cx=an.heart_cx + float(rng.uniform(-0.01, 0.01)), heart_cy=an.heart_cy + float(rng.uniform(-0.01, 0.01)),
        heart_half_h=j(an.heart_half_h), ctr=float(rng.uniform(0.40, 0.48)),
        med_half_w=j(an.med_half_w), knob_r=j(an.knob_r),
        body_ax=j(an.body_ax, 0.05), body_by=j(an.body_by, 0.03),
        att_soft=j(an.att_soft), att_lung=j(an.att_lung), att_mediastinum=j(an.att_mediastinum),
        att_heart=j(an.att_heart), att_abdomen=j(an.att_abdomen), bone_gain=j(1.0),
        gastric_bubble=bool(rng.random() < 0.6),
    )


def _sample_nuisance(rng: np.random.Generator) -> Nuisance:
    collim = None
    if rng.random() < 0.2:
        collim = [float(x) for x in rng.uniform(0.02, 0.08, 4)]
    return Nuisance(
        scale=float(rng.uniform(0.9, 1.1)), rotation_deg=float(rng.uniform(-5, 5)),
        shift_u=float(rng.uniform(-0.03, 0.03)), shift_v=float(rng.uniform(-0.03, 0.03)),
        inspiration=float(rng.uniform(0.92, 1.05)), contrast=float(rng.uniform(0.85, 1.15)),
        brightness=float(rng.uniform(-0.05, 0.05)), gamma=float(rng.uniform(0.8, 1.25)),
        blur_sigma=float(rng.uniform(0.3, 1.2)), noise_sigma=float(rng.uniform(0.005, 0.02)),
        collimation=collim, marker=bool(rng.random() < 0.7),
    )


class _Builder:
    """Collects findings during sampling (at most one finding per kind)."""

    def __init__(self, rng: np.random.Generator, cfg: SynthConfig, constraints: Constraints):
        self.rng, self.cfg, self.c = rng, cfg, constraints
        self.findings: dict[str, Finding] = {}

    def allowed(self, kind: str) -> bool:
        return kind not in self.c.forbid and not self.c.exclusive and kind not in self.findings

    def attrs(self, kind: str, side=None, zone=None, severity=None, certainty=None):
        rng, cfg = self.rng, self.cfg
        sev = severity or _pick(rng, SEVERITIES, cfg.severity_probs)
        cert = certainty or ("uncertain" if rng.random() < cfg.p_uncertain else "definite")
        chg = _pick(rng, CHANGES, cfg.change_probs)
        side = side or self._side(kind)
        zone = zone or self._zone(kind, side)
        return dict(side=side, zone=zone, severity=sev, certainty=cert, change=chg)

    def _side(self, kind: str) -> Optional[str]:
        rng, cfg = self.rng, self.cfg
        if kind in ("edema", "ground_glass"):
            return "bilateral"
        if kind in ("cardiomegaly", "widened_mediastinum"):
            return None
        if kind == "effusion" and rng.random() < cfg.p_bilateral_effusion:
            return "bilateral"
        if kind == "atelectasis" and rng.random() < cfg.p_bibasilar_atelectasis:
            return "bilateral"
        if kind == "consolidation":
            return _pick(rng, ("right", "left"), (0.55, 0.45))
        return _pick(rng, ("right", "left"))

    def _zone(self, kind: str, side: Optional[str]) -> Optional[str]:
        rng = self.rng
        if kind == "consolidation":
            if side == "right":
                return _pick(rng, ("upper", "middle", "lower"), (0.25, 0.30, 0.45))
            return _pick(rng, ("upper", "middle", "lower", "retrocardiac"), (0.30, 0.15, 0.35, 0.20))
        if kind == "atelectasis":
            if side == "bilateral":
                return "lower"
            z = _pick(rng, ("lower", "middle", "upper"), (0.8, 0.15, 0.05))
            if z == "lower" and side == "left" and rng.random() < 0.25:
                z = "retrocardiac"
            return z
        if kind == "nodule":
            return _pick(rng, ALLOWED_ZONES["nodule"], (0.3, 0.25, 0.2, 0.1, 0.05, 0.1))
        return ALLOWED_ZONES[kind][0]

    def add(self, kind: str, **attrs) -> Finding:
        a = self.attrs(kind, **attrs)
        f = Finding(id=len(self.findings), kind=kind, params={}, **a)
        self.findings[kind] = f
        return f


def _phase1_params(rng: np.random.Generator, f: Finding) -> None:
    """Parameters that change the thorax geometry (sampled before placement)."""
    sev_i = SEVERITIES.index(f.severity)
    if f.kind == "atelectasis":
        sides = ("right", "left") if f.side == "bilateral" else (f.side,)
        f.params["dome_raise"] = {s: float(rng.uniform(0.02, 0.04)) for s in sides}
    elif f.kind == "effusion":
        lo, hi = ((0.08, 0.15), (0.15, 0.35), (0.35, 0.60))[sev_i]
        sides = ("right", "left") if f.side == "bilateral" else (f.side,)
        f.params["sides"] = {s: {"h": float(rng.uniform(lo, hi)), "subpulmonic": bool(rng.random() < 0.15)}
                             for s in sides}
        shift = 0.0
        if f.severity == "severe" and f.side != "bilateral":
            shift = float(rng.uniform(0.01, 0.03)) * (1.0 if f.side == "right" else -1.0)
        f.params["shift"] = shift
    elif f.kind == "pneumothorax":
        lo, hi = ((0.015, 0.03), (0.03, 0.07), (0.07, 0.15))[sev_i]
        f.params["w"] = float(rng.uniform(lo, hi))
        f.params["extent"] = (0.4, 0.7, 1.0)[sev_i]
        tension = f.severity == "severe" and bool(rng.random() < 0.2)
        f.params["tension"] = tension
        f.params["shift"] = (0.03 * (1.0 if f.side == "right" else -1.0)) if tension else 0.0
    elif f.kind == "cardiomegaly":
        lo, hi = ((0.52, 0.57), (0.57, 0.63), (0.63, 0.70))[sev_i]
        if f.certainty == "uncertain":
            lo, hi = 0.49, 0.52
        f.params["ctr"] = float(rng.uniform(lo, hi))
        f.params["ecm"] = bool(rng.random() < 0.5)
    elif f.kind == "widened_mediastinum":
        f.params["factor"] = float(rng.uniform(1.2, 1.4))


def _zone_point(rng, thorax, side, zone):
    lung = thorax.lung(side)
    return sample_point(rng, lambda a, b: zone_contains(thorax, side, zone, a, b), lung.bbox,
                        fallback=(lung.cx, lung.cy + 0.5 * lung.by))


def _phase2_params(rng: np.random.Generator, f: Finding, thorax) -> None:
    """Placement parameters (need the thorax geometry)."""
    sev_i = SEVERITIES.index(f.severity)
    if f.kind == "consolidation":
        side = "left" if f.zone == "retrocardiac" else f.side
        lung = thorax.lung(side)
        frac = float(rng.uniform(*((0.03, 0.08), (0.08, 0.20), (0.20, 0.40))[sev_i]))
        spread = math.sqrt(frac * lung.area() / math.pi) * 0.7
        cx, cy = _zone_point(rng, thorax, side, f.zone)
        gs = []
        for _ in range(int(rng.integers(3, 7))):
            gs.append([cx + float(rng.normal(0, 0.5 * spread)), cy + float(rng.normal(0, 0.5 * spread)),
                       spread * float(rng.uniform(0.6, 1.4)), spread * float(rng.uniform(0.6, 1.4)),
                       float(rng.uniform(0, math.pi)), float(rng.uniform(0.6, 1.0))])
        bronchi = []
        if rng.random() < 0.5:
            for _ in range(int(rng.integers(2, 5))):
                ang = float(rng.uniform(0, 2 * math.pi))
                pts = [[cx, cy]]
                for _ in range(4):
                    ang += float(rng.uniform(-0.45, 0.45))
                    pts.append([pts[-1][0] + 0.35 * spread * math.cos(ang), pts[-1][1] + 0.35 * spread * math.sin(ang)])
                bronchi.append(pts)
        f.params.update(
            lung=side, area_fraction=frac, gaussians=gs,
            threshold=solve_blob_threshold(lung, gs, frac),
            delta=(0.10, 0.16, 0.22)[sev_i], bronchograms=bronchi,
            silhouette=bool(side == "right" and f.zone == "middle" and cx > lung.cx),
            lat_u=float(rng.uniform(0.35, 0.65)),
        )
    elif f.kind == "ground_glass":
        total = float(rng.uniform(0.05, 0.25)) * (thorax.right.area() + thorax.left.area())
        n = int(rng.integers(3, 9))
        blobs = []
        for i in range(n):
            side = ("right", "left")[i % 2] if i < 2 else _pick(rng, ("right", "left"))
            lung = thorax.lung(side)

            def periph(a, b, lung=lung):
                return lung.contains(a, b) & (lung.lateralness(a) >= 0.6) & (lung.relative_height(b) >= 0.3)

            cx, cy = sample_point(rng, periph, lung.bbox, fallback=(lung.cx, lung.cy))
            s = math.sqrt(total / n / math.pi) * float(rng.uniform(0.8, 1.2))
            blobs.append([cx, cy, s * float(rng.uniform(0.8, 1.25)), s * float(rng.uniform(0.8, 1.25)),
                          float(rng.uniform(0, math.pi)), float(rng.uniform(0.06, 0.10)), side])
        f.params.update(blobs=blobs)
    elif f.kind == "atelectasis":
        sides = ("right", "left") if f.side == "bilateral" else (f.side,)
        half_len = (0.04, 0.06, 0.09)[sev_i]
        plates = []
        for s in sides:
            cx, cy = _zone_point(rng, thorax, s, f.zone)
            plates.append(dict(side=s, cx=cx, cy=cy, half_len=half_len,
                               half_thick=half_len / float(rng.uniform(5, 8)),
                               angle=float(rng.uniform(-15, 15))))
        f.params.update(plates=plates, delta=0.12, lat_u=float(rng.uniform(0.35, 0.65)))
    elif f.kind == "edema":
        f.params.update(amplitude=(0.04, 0.08, 0.14)[sev_i], sigma=0.10,
                        cephalization=f.severity == "mild")
        kerley = []
        if f.severity != "mild":
            for _ in range(int(rng.integers(4, 11))):
                side = _pick(rng, ("right", "left"))
                lung = thorax.lung(side)
                y = lung.top + lung.height * float(rng.uniform(0.65, 0.92))
                x = float(lung.lateral_edge(y)) - lung.lateral_sign * float(rng.uniform(0.005, 0.02))
                kerley.append([x, y, float(rng.uniform(0.01, 0.015)) * -lung.lateral_sign])
        f.params["kerley"] = kerley
    elif f.kind == "nodule":
        subtype = ("nodule", "nodule", "mass")[sev_i]
        if subtype == "nodule" and rng.random() < 0.2:
            subtype = "granuloma"
        count = 1 if subtype == "mass" else int(rng.integers(1, 4))
        insts = []
        for i in range(count):
            zone = f.zone if i == 0 else _pick(rng, ("upper", "middle", "lower"))
            cx, cy = _zone_point(rng, thorax, f.side, zone)
            if subtype == "granuloma":
                r, delta = float(rng.uniform(0.004, 0.008)), 0.4
            elif subtype == "mass":
                r, delta = float(rng.uniform(0.03, 0.06)), float(rng.uniform(0.18, 0.30))
            else:
                r = float(rng.uniform(*((0.008, 0.014), (0.014, 0.02))[min(sev_i, 1)]))
                delta = float(rng.uniform(0.18, 0.30))
            spikes = []
            if subtype == "mass" and rng.random() < 0.3:
                spikes = [[float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.4, 1.0))]
                          for _ in range(int(rng.integers(8, 15)))]
            insts.append(dict(cx=cx, cy=cy, r=r, delta=delta, spikes=spikes,
                              lat_u=float(rng.uniform(0.3, 0.7))))
        f.params.update(subtype=subtype, instances=insts)
    elif f.kind == "rib_fracture":
        f.params.update(rib=int(rng.integers(2, 9)), t=float(rng.uniform(0.35, 0.8)),
                        gap=float(rng.uniform(1, 2)) * PX256,
                        offset=float(rng.uniform(1, 2)) * PX256 * float(rng.choice([-1.0, 1.0])))
    elif f.kind == "pleural_thickening":
        lung = thorax.lung(f.side)
        v0 = lung.top + 0.2 * lung.height
        f.params.update(v0=float(v0), v1=float(lung.top + lung.height * rng.uniform(0.5, 0.8)),
                        width=float(rng.uniform(0.005, 0.01)), delta=0.08)


def _sample_devices(rng, kinds, ptx_side) -> list:
    devices = []
    for kind in kinds:
        if kind == "ett":
            devices.append(Device("ett", None, {"tip_cm": float(rng.uniform(2, 7))}))
        elif kind == "enteric_tube":
            devices.append(Device("enteric_tube", None, {"malpositioned": bool(rng.random() < 0.05)}))
        elif kind == "cvc":
            route = _pick(rng, ("right_ij", "left_subclavian"), (0.6, 0.4))
            devices.append(Device("cvc", "right" if route == "right_ij" else "left",
                                  {"route": route, "tip_du": float(rng.uniform(-0.01, 0.01)),
                                   "tip_dv": float(rng.uniform(-0.02, 0.04))}))
        elif kind == "pacemaker":
            devices.append(Device("pacemaker", "left", {"leads": int(rng.integers(1, 3)),
                                                         "dx": float(rng.uniform(-0.02, 0.02)),
                                                         "dy": float(rng.uniform(-0.02, 0.02))}))
        elif kind == "sternotomy":
            n = int(rng.integers(5, 8))
            wires = np.linspace(0.30, 0.60, n) + rng.uniform(-0.01, 0.01, n)
            devices.append(Device("sternotomy", None, {"wires": [float(w) for w in wires]}))
        elif kind == "chest_tube":
            devices.append(Device("chest_tube", ptx_side, {"entry_v": float(rng.uniform(0.55, 0.68))}))
    return devices


def _sample_foreign(rng, thorax, count: int) -> list:
    out = []
    for _ in range(count):
        kind = _pick(rng, FOREIGN_KINDS, (0.3, 0.15, 0.2, 0.2, 0.15))
        side = _pick(rng, ("right", "left"))
        lung = thorax.lung(side)
        cx, cy = sample_point(rng, lung.contains, lung.bbox, fallback=(lung.cx, lung.cy))
        if kind == "button":
            r = float(rng.uniform(0.012, 0.02))
            p = dict(cx=cx, cy=cy, r=r, holes=int(rng.choice([2, 4])), delta=0.35)
        elif kind == "coin":
            p = dict(cx=cx, cy=cy, r=float(rng.uniform(0.02, 0.03)), delta=0.45)
        elif kind == "clip":
            p = dict(cx=cx, cy=cy, half_w=float(rng.uniform(0.004, 0.008)), half_h=float(rng.uniform(0.012, 0.022)),
                     angle=float(rng.uniform(0, 180)), delta=0.5)
        elif kind == "necklace":
            n = int(rng.integers(6, 16))
            ang = float(rng.uniform(0, 2 * math.pi))
            step = float(rng.uniform(0.012, 0.018))
            turns = rng.uniform(-0.3, 0.3, n - 1)
            beads = [[cx, cy]]
            for t in turns:  # a strand inside the lung field (stops at its edge)
                ang += float(t)
                nxt = [beads[-1][0] + step * math.cos(ang), beads[-1][1] + step * math.sin(ang)]
                if not lung.contains(np.array(nxt[0]), np.array(nxt[1])):
                    if len(beads) >= 3:
                        break
                    ang += math.pi
                    nxt = [beads[-1][0] + step * math.cos(ang), beads[-1][1] + step * math.sin(ang)]
                beads.append(nxt)
            p = dict(beads=beads, bead_r=float(rng.uniform(0.004, 0.007)), delta=0.4)
        else:  # hair tie
            p = dict(cx=cx, cy=cy, r=float(rng.uniform(0.015, 0.025)), thickness=float(rng.uniform(0.003, 0.005)),
                     delta=0.3)
        out.append(ForeignObject(kind, {**p, "side": side}))
    return out


def sample_latent(seed: int, split: str, index: int, config: Optional[SynthConfig] = None, *,
                  profile: Optional[str] = None, constraints: Optional[Constraints] = None,
                  attempt: int = 0) -> StudyLatent:
    """Sample the latent record of study ``(seed, split, index)``.

    ``profile`` selects :func:`config_for_profile` unless ``config`` is given
    (then ``config.profile`` is used for seeding). The result depends only on the
    arguments.
    """
    cfg = config if config is not None else config_for_profile(profile or "mimic")
    c = constraints or Constraints()
    ss = seed_sequence(seed, split, index, cfg.profile, attempt)
    r_pat, r_find, r_dev, r_obj, r_noise, r_shape, r_seed = [np.random.Generator(np.random.PCG64(s))
                                                              for s in ss.spawn(7)]
    sex = _pick(r_pat, ("man", "woman"))
    anatomy = _sample_anatomy(r_pat)
    nuisance = _sample_nuisance(r_pat)

    b = _Builder(r_find, cfg, c)
    for req in c.force:
        b.add(req.kind, side=req.side, zone=req.zone, severity=req.severity, certainty=req.certainty)
    clusters = []
    if not c.exclusive:
        viral = r_find.random() < cfg.p_viral
        if viral and b.allowed("ground_glass"):
            clusters.append("viral")
            b.add("ground_glass")
        if r_find.random() < cfg.p_chf:
            clusters.append("chf")
            if r_find.random() < cfg.p_chf_cardiomegaly and b.allowed("cardiomegaly"):
                b.add("cardiomegaly")
            if r_find.random() < cfg.p_chf_edema and b.allowed("edema"):
                b.add("edema")
            if r_find.random() < cfg.p_chf_effusion and b.allowed("effusion"):
                b.add("effusion", side="bilateral")
        if r_find.random() < cfg.p_pneumonia and not viral:
            clusters.append("pneumonia")
            if b.allowed("consolidation"):
                cons = b.add("consolidation")
                if r_find.random() < cfg.p_parapneumonic and b.allowed("effusion"):
                    side = "left" if cons.zone == "retrocardiac" else cons.side
                    b.add("effusion", side=side, severity="mild")
        if r_find.random() < cfg.p_pneumothorax and b.allowed("pneumothorax"):
            b.add("pneumothorax")

    inpatient = "chf" in clusters or "pneumothorax" in b.findings
    view = c.view or ("AP" if r_find.random() < (cfg.p_ap_inpatient if inpatient else cfg.p_ap) else "PA")
    if view not in ("PA", "AP"):
        raise ValueError(f"view must be 'PA' or 'AP', got {view!r}")
    if view == "AP" and r_pat.random() < 0.8:
        nuisance.ap_text = _pick(r_pat, ("PORTABLE", "AP"))

    no_devices = c.exclusive or c.no_devices
    device_kinds: list[str] = []
    if not no_devices and r_dev.random() < (cfg.p_devices_ap if view == "AP" else cfg.p_devices):
        n = int(r_dev.integers(1, 4))
        pool = ["ett", "enteric_tube", "cvc", "pacemaker", "sternotomy"]
        w = np.array([0.3 if view == "AP" else 0.05, 0.25, 0.35, 0.25, 0.2])
        device_kinds = [pool[i] for i in sorted(r_dev.choice(len(pool), size=n, replace=False, p=w / w.sum()))]

    if not c.exclusive:
        eff = b.findings.get("effusion")
        p_at = cfg.p_atelectasis_with_effusion if eff is not None else cfg.p_atelectasis
        if r_find.random() < p_at and b.allowed("atelectasis"):
            side = None
            if eff is not None:
                side = "bilateral" if eff.side == "bilateral" else eff.side
            b.add("atelectasis", side=side, zone="lower" if eff is not None else None)
        for kind, p in (("nodule", cfg.p_nodule), ("effusion", cfg.p_effusion),
                        ("cardiomegaly", cfg.p_cardiomegaly), ("widened_mediastinum", cfg.p_widened_mediastinum),
                        ("rib_fracture", cfg.p_rib_fracture), ("pleural_thickening", cfg.p_pleural_thickening)):
            if r_find.random() < p and b.allowed(kind):
                b.add(kind)

    ptx = b.findings.get("pneumothorax")
    if ptx is not None and not no_devices and r_dev.random() < cfg.p_chest_tube_ptx:
        device_kinds.append("chest_tube")

    findings = sorted(b.findings.values(), key=lambda f: FINDING_KINDS.index(f.kind))
    for i, f in enumerate(findings):
        f.id = i
        _phase1_params(r_shape, f)

    latent = StudyLatent(
        seed=int(seed), split=split, index=int(index), profile=cfg.profile, attempt=int(attempt), sex=sex,
        view=view, inpatient=bool(inpatient or device_kinds), clusters=clusters,
        has_lateral=bool(r_pat.random() < cfg.p_lateral), anatomy=anatomy, nuisance=nuisance,
        findings=findings, devices=[], foreign_objects=[], report_noise=ReportNoise(),
        render_seed=int(r_seed.integers(0, 2**63 - 1)), text_seed=int(r_seed.integers(0, 2**63 - 1)),
        contrast_gain=float(cfg.contrast_gain),
    )
    thorax = build_thorax(latent)
    for f in findings:
        _phase2_params(r_shape, f, thorax)
    latent.devices = _sample_devices(r_dev, device_kinds, ptx.side if ptx is not None else None)
    if r_obj.random() < cfg.p_foreign:
        latent.foreign_objects = _sample_foreign(r_obj, thorax, int(r_obj.integers(1, 5)))
    if not c.clean_text:
        latent.report_noise = _sample_report_noise(r_noise, cfg, latent)
    return latent


_FP_KINDS = ("effusion", "consolidation", "atelectasis", "pneumothorax", "cardiomegaly", "edema", "nodule")


def _sample_report_noise(rng: np.random.Generator, cfg: SynthConfig, latent: StudyLatent) -> ReportNoise:
    omitted = [f.id for f in latent.findings if rng.random() < cfg.p_omit]
    fp = None
    if rng.random() < cfg.p_false_positive:
        absent = [k for k in _FP_KINDS if not latent.has(k)]
        if absent:
            kind = _pick(rng, absent)
            tmp = _Builder(rng, cfg, Constraints())
            fp = tmp.add(kind, certainty="definite")
            fp.id = -1
            if kind == "nodule":
                # Text-only: size words need a radius, nothing is drawn.
                fp.params = {"subtype": "nodule", "instances": [dict(cx=0.3, cy=0.4, r=0.01, delta=0.0,
                                                                      spikes=[], lat_u=0.5)]}
            elif kind == "cardiomegaly":
                fp.params = {"ctr": 0.55, "ecm": False}
            elif kind == "effusion":
                fp.params = {"sides": {}, "shift": 0.0}
    swapped = None
    if rng.random() < cfg.p_swap_side:
        unilateral = [f.id for f in latent.findings if f.side in ("right", "left") and f.id not in omitted]
        if unilateral:
            swapped = int(_pick(rng, unilateral))
    return ReportNoise(omitted=omitted, false_positive=fp, swapped=swapped)


__all__ = [
    "ALLOWED_ZONES", "Anatomy", "CERTAINTIES", "CHANGES", "Constraints", "DEVICE_KINDS", "Device",
    "FINDING_KINDS", "FOREIGN_KINDS", "Finding", "FindingRequest", "ForeignObject", "Nuisance",
    "PROFILES", "ReportNoise", "SEVERITIES", "SIDES", "SampleSpec", "StudyLatent", "SynthConfig",
    "check_contrast_gain", "config_for_profile", "gain_suffix", "sample_latent", "seed_sequence", "stable_code",
]
