"""Clinical vocabulary shared by the report generator and the rule labeler (§4.6).

Everything here is lower-case regular-expression text matched on lower-cased
sentences with word boundaries. The generator's templates (:mod:`.templates`)
only use phrases this lexicon understands, and each template declares the labels
it asserts; the labeler (:mod:`.labeler`) derives labels from text alone. The
unit tests check the two agree on every generated report.

Label values: ``1`` positive, ``0`` negative, ``-1`` uncertain, ``None`` blank
(not mentioned). Aggregation across sentences: priority ``1 > -1 > 0``.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Optional

# CheXpert-14 in CheXpert's CSV column order (§1.2) and the five competition
# labels: one definition, the CheXpert reader's.
from ..chexpert import CHEXPERT_LABELS as OBSERVATIONS
from ..chexpert import COMPETITION_LABELS as COMPETITION

# Observations that block "No Finding" when positive or uncertain.
PATHOLOGIES: tuple[str, ...] = tuple(
    o for o in OBSERVATIONS if o not in ("No Finding", "Support Devices")
)

# Short codes used by the template inventory ("PE+", "ATEL?", "CONS0").
CODES: dict[str, str] = {
    "ECM": "Enlarged Cardiomediastinum",
    "CARD": "Cardiomegaly",
    "LO": "Lung Opacity",
    "LL": "Lung Lesion",
    "EDEMA": "Edema",
    "CONS": "Consolidation",
    "PNA": "Pneumonia",
    "ATEL": "Atelectasis",
    "PTX": "Pneumothorax",
    "PE": "Pleural Effusion",
    "PO": "Pleural Other",
    "FX": "Fracture",
    "SD": "Support Devices",
}
_VALUE_SUFFIX = {"+": 1, "?": -1, "0": 0}

Labels = dict  # observation name -> 1 / 0 / -1 / None


def parse_assertions(spec: str) -> tuple[tuple[str, int], ...]:
    """Parse ``"LO+ ATEL? CONS0"`` into ``(("Lung Opacity", 1), ...)``."""
    out = []
    for tok in spec.split():
        code, suffix = tok[:-1], tok[-1]
        out.append((CODES[code], _VALUE_SUFFIX[suffix]))
    return tuple(out)


def _c(*patterns: str) -> tuple[re.Pattern, ...]:
    return tuple(re.compile(r"\b(?:" + p + r")\b") for p in patterns)


# Mentions whose value comes from the cue context.
MENTIONS: dict[str, tuple[re.Pattern, ...]] = {
    "Atelectasis": _c(r"atelecta\w*"),
    "Cardiomegaly": _c(
        r"cardiomegaly",
        r"cardiac enlargement",
        r"(?:enlarged|prominent) (?:cardiac silhouette|heart)",
        r"(?:cardiac silhouette size|cardiac silhouette|heart size|heart)"
        r" (?:is|remains|appears)(?: at)?(?: \w+ly)? (?:enlarged|prominent)",
    ),
    "Consolidation": _c(r"consolidat\w*"),
    "Edema": _c(r"edema", r"vascular congestion"),
    "Enlarged Cardiomediastinum": _c(
        r"widened mediastin\w*",
        r"widening of the (?:superior )?mediastinum",
        r"mediastinal widening",
        r"(?:superior )?mediastinum is widened",
        r"enlarged cardiomediastinal silhouette",
        r"cardiomediastinal silhouette is enlarged",
    ),
    "Fracture": _c(r"fractures?"),
    "Lung Lesion": _c(r"nodules?", r"nodular", r"mass(?:es)?", r"granulomas?", r"lesions?"),
    "Lung Opacity": _c(r"opacit(?:y|ies)", r"opacification", r"infiltrates?", r"airspace disease"),
    "Pleural Effusion": _c(r"effusions?"),
    "Pleural Other": _c(r"pleural (?:thickening|scarring|plaques?)"),
    "Pneumonia": _c(r"pneumonias?", r"infection", r"infectious process"),
    "Pneumothorax": _c(r"pneumothora(?:x|ces)"),
    "Support Devices": _c(
        r"endotracheal tube", r"et tube", r"enteric tube", r"(?:naso|oro)gastric tube",
        r"feeding tube", r"catheters?", r"picc", r"pacemaker", r"pacer", r"defibrillator",
        r"icd", r"sternotomy", r"chest tubes?", r"lines and tubes", r"tubes and lines",
        r"support devices?",
    ),
}

_ACUTE = ("CONS0 PNA0 LO0 EDEMA0 PE0 PTX0")
# Phrases with a fixed value regardless of cues (implicit negatives, borderline
# heart size). Matched first, in this order; later matches overlapping an earlier
# one are ignored, and generic mentions inside a fixed span are ignored.
FIXED: tuple[tuple[re.Pattern, tuple[tuple[str, int], ...]], ...] = tuple(
    (pat, parse_assertions(spec))
    for pats, spec in (
        (_c(r"(?:heart size|cardiac silhouette size|cardiac silhouette) is (?:at )?(?:the )?upper limits? of normal",
            r"top[- ]normal heart size", r"heart size is top[- ]normal",
            r"heart size is borderline(?: enlarged)?", r"borderline (?:enlarged )?heart size"), "CARD?"),
        (_c(r"lungs are (?:well expanded and |otherwise )?clear"), "CONS0 LO0 LL0 EDEMA0"),
        (_c(r"no acute (?:cardiopulmonary|intrathoracic) (?:process|abnormality)"), _ACUTE),
        (_c(r"normal chest radiograph"), _ACUTE + " CARD0"),
        (_c(r"cardiomediastinal silhouette is (?:normal|within normal limits|unremarkable)",
            r"cardiac and mediastinal (?:silhouettes|contours) are (?:normal|unremarkable|within normal limits)",
            r"heart size and mediastinal contours are (?:normal|unremarkable|within normal limits)"),
         "CARD0 ECM0"),
        (_c(r"heart size is (?:normal|within normal limits)", r"normal heart size",
            r"heart is normal in size"), "CARD0"),
        (_c(r"mediastinal (?:and hilar )?contours are (?:normal|unremarkable|within normal limits)",
            r"mediastinum is (?:normal|unremarkable|within normal limits)"), "ECM0"),
        (_c(r"costophrenic angles are sharp"), "PE0"),
        (_c(r"osseous structures are (?:intact|unremarkable)",
            r"no acute osseous abnormalit(?:y|ies)"), "FX0"),
        (_c(r"pulmonary vasculature is normal"), "EDEMA0"),
    )
    for pat in pats
)

# Cues. "pre" cues scope forward to the end of the clause, "post" cues backward to
# its start; "bidirectional" cues ("A versus B") cover their comma-bounded phrase.
NEG_PRE = _c(r"no", r"without", r"negative for", r"free of", r"absence of", r"resolution of")
NEG_POST = _c(r"(?:has|have) (?:resolved|cleared)", r"(?:is|are) not (?:seen|identified|visualized)",
              r"(?:is|are) absent")
UNC_PRE = _c(r"possible", r"possibly", r"questionable", r"question of", r"may represent",
             r"may reflect", r"could represent", r"could reflect", r"suggestive of",
             r"cannot exclude", r"can not exclude", r"borderline", r"equivocal")
UNC_POST = _c(r"cannot be (?:excluded|ruled out)", r"can not be excluded",
              r"(?:is|are) not excluded", r"(?:is|are) possible", r"(?:is|are) questioned")
UNC_BIDIR = _c(r"versus", r"vs")
CLAUSE_BREAK = re.compile(r";|\b(?:but|however|although|though|which|whereas)\b")
PHRASE_BREAK = re.compile(r",|;|\b(?:but|however|although|though|which|whereas)\b")

# Hedged-but-positive words: used only for definite findings, label 1 (dataset
# convention, stated in the sidecar).
HEDGED_POSITIVE: tuple[str, ...] = (
    "likely", "probable", "probably", "consistent with", "compatible with", "concerning for",
)

# Laterality and anatomy words never replaced by IU "XXXX" tokens.
PROTECTED_WORDS = frozenset(
    "right left bilateral bilaterally bibasilar both lingula lingular retrocardiac apical apex "
    "perihilar upper lower middle mid base bases basilar lobe lung lungs hemithorax".split()
)


def protected_spans(sentence_lower: str) -> list[tuple[int, int]]:
    """Character spans of every lexicon mention, fixed phrase and cue in a sentence."""
    spans: list[tuple[int, int]] = []
    groups: list[Iterable[re.Pattern]] = [[p for p, _ in FIXED], *MENTIONS.values(),
                                          NEG_PRE, NEG_POST, UNC_PRE, UNC_POST, UNC_BIDIR]
    for group in groups:
        for pat in group:
            spans.extend(m.span() for m in pat.finditer(sentence_lower))
    spans.extend(m.span() for m in CLAUSE_BREAK.finditer(sentence_lower))
    return spans


def combine_labels(assertions: Iterable[tuple[str, int]]) -> dict[str, Optional[int]]:
    """Aggregate (observation, value) pairs into a CheXpert-14 label dict.

    Per observation the strongest value wins with priority ``1 > -1 > 0``.
    ``No Finding`` is 1 when something was mentioned and no pathology (anything
    but No Finding / Support Devices) is 1 or -1; otherwise blank.
    """
    rank = {1: 3, -1: 2, 0: 1}
    labels: dict[str, Optional[int]] = {o: None for o in OBSERVATIONS}
    for obs, value in assertions:
        cur = labels[obs]
        if cur is None or rank[value] > rank[cur]:
            labels[obs] = value
    mentioned = any(v is not None for v in labels.values())
    blocked = any(labels[o] in (1, -1) for o in PATHOLOGIES)
    labels["No Finding"] = 1 if mentioned and not blocked else None
    return labels


def labels_to_vector(labels: Mapping[str, Optional[int]]):
    """Labels dict -> float32 vector in :data:`OBSERVATIONS` order (NaN = blank)."""
    import numpy as np

    return np.array([np.nan if labels[o] is None else float(labels[o]) for o in OBSERVATIONS],
                    dtype=np.float32)
