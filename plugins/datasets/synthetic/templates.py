"""Sentence inventory of the report generator (§4.5), written for this suite.

Each :class:`Template` is a sentence (or noun phrase, for impressions) with
``{slots}`` and the CheXpert labels it asserts (``"PE+ LO+ ATEL?"``, see
:func:`.lexicon.parse_assertions`). Filters say when a template may be used
(certainty, side, zone, severity, temporal change, view and finding flags such as
``subpulmonic``). The phrases of the GLoRIA CheXpert prompt vocabulary
(Apache-2.0, github.com/marshuang80/gloria ``constants.py``) are used in context
so that literature prompts are in-distribution; :data:`GLORIA_PHRASES` lists them
for the tests.

Slots (filled by :mod:`.reports`): ``sev`` severity word, ``sevly`` severity
adverb, ``side``, ``loc`` (location usable after "in the" / "at the"),
``loc_adj`` (adjectival location), ``chg`` temporal suffix (", unchanged"),
``chgw`` temporal word ("stable"), ``n`` number (cm for pneumothorax and tubes,
mm for nodules), ``ncm`` mass size in cm, ``ord`` rib ordinal, ``cons`` /
``atype`` / ``atsev`` / ``ggsev`` descriptors, ``count`` number word,
``bigside`` larger effusion side, ``svc`` catheter tip position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .lexicon import parse_assertions


@dataclass(frozen=True)
class Template:
    id: str
    text: str
    asserts: tuple
    certainty: str = "definite"        # "definite" | "uncertain" | "any"
    sides: Optional[frozenset] = None
    zones: Optional[frozenset] = None
    severities: Optional[frozenset] = None
    changes: Optional[frozenset] = None
    views: Optional[frozenset] = None
    requires: frozenset = frozenset()
    excludes: frozenset = frozenset()
    weight: float = 1.0


def _fs(x):
    if x is None:
        return None
    return frozenset([x] if isinstance(x, str) else x)


def T(id: str, text: str, asserts: str = "", *, cert: str = "definite", sides=None, zones=None, sev=None,
      chg=None, views=None, req=(), exc=(), w: float = 1.0) -> Template:
    return Template(id, text, parse_assertions(asserts), cert, _fs(sides), _fs(zones), _fs(sev), _fs(chg),
                    _fs(views), frozenset(req), frozenset(exc), w)


U = "uncertain"
UNI = ("right", "left")
BI = "bilateral"
CHANGED = ("stable", "increased", "decreased")
NOT_NEW = ("none", "stable")

# ------------------------------------------------------------------ findings
SENTENCES: dict[str, list[Template]] = {
    "effusion": [
        T("eff.d1", "{sev} {side} pleural effusion{chg}.", "PE+", sides=UNI),
        T("eff.d2", "There is a {sev} {side} pleural effusion{chg}.", "PE+", sides=UNI),
        T("eff.d3", "{side} pleural effusion is {sev} and layers posteriorly.", "PE+", sides=UNI),
        T("eff.d4", "Blunting of the {side} costophrenic angle reflects a small pleural effusion.", "PE+",
          sides=UNI, sev="mild"),
        T("eff.d5", "{chgw} {sev} {side} pleural effusion.", "PE+", sides=UNI, chg=CHANGED),
        T("eff.d6", "{sev} {side} pleural effusion is again seen{chg}.", "PE+", sides=UNI, chg=NOT_NEW),
        T("eff.d7", "{side} subpulmonic pleural effusion, {sev}.", "PE+", sides=UNI, req=["subpulmonic"], w=3),
        T("eff.d8", "There is a {sev} {side} subpulmonic pleural effusion{chg}.", "PE+", sides=UNI,
          req=["subpulmonic"], w=3),
        T("eff.u1", "Possible {sev} {side} pleural effusion.", "PE?", cert=U, sides=UNI),
        T("eff.u2", "A {sev} {side} pleural effusion cannot be excluded.", "PE?", cert=U, sides=UNI),
        T("eff.u3", "Questionable {side} pleural effusion.", "PE?", cert=U, sides=UNI),
        T("eff.u4", "Slight blunting of the {side} costophrenic angle may represent a small pleural effusion.",
          "PE?", cert=U, sides=UNI, sev="mild"),
        T("eff.u5", "Findings suggestive of a {sev} {side} pleural effusion.", "PE?", cert=U, sides=UNI),
        T("eff.u6", "{sev} {side} pleural effusion is possible.", "PE?", cert=U, sides=UNI),
        T("effb.d1", "{sev} bilateral pleural effusions{chg}.", "PE+", sides=BI),
        T("effb.d2", "There are {sev} bilateral pleural effusions{chg}.", "PE+", sides=BI),
        T("effb.d3", "Bilateral pleural effusions, larger on the {bigside}.", "PE+", sides=BI),
        T("effb.d4", "{chgw} bilateral pleural effusions.", "PE+", sides=BI, chg=CHANGED),
        T("effb.d5", "{sev} bilateral pleural effusion is present{chg}.", "PE+", sides=BI),
        T("effb.d6", "Blunting of both costophrenic angles reflects {sev} bilateral pleural effusions.", "PE+",
          sides=BI),
        T("effb.u1", "Possible {sev} bilateral pleural effusions.", "PE?", cert=U, sides=BI),
        T("effb.u2", "Small bilateral pleural effusions cannot be excluded.", "PE?", cert=U, sides=BI, sev="mild"),
        T("effb.u3", "Questionable bilateral pleural effusions.", "PE?", cert=U, sides=BI),
        T("effb.u4", "{sev} bilateral pleural effusions are possible.", "PE?", cert=U, sides=BI),
        T("effb.u5", "Blunting of both costophrenic angles may reflect small pleural effusions.", "PE?", cert=U,
          sides=BI, sev="mild"),
    ],
    "consolidation": [
        T("cons.d1", "Focal consolidation in the {loc}{chg}.", "CONS+"),
        T("cons.d2", "{patchy} airspace opacity in the {loc} concerning for pneumonia.", "LO+ PNA+"),
        T("cons.d3", "Airspace consolidation at the {loc} with air bronchograms.", "CONS+", req=["bronchograms"], w=2),
        T("cons.d4", "{cons} consolidation at the {loc}{chg}.", "CONS+", w=2),
        T("cons.d5", "There is {cons} consolidation in the {loc}, compatible with pneumonia.", "CONS+ PNA+"),
        T("cons.d6", "{loc_adj} pneumonia{chg}.", "PNA+", zones=("upper", "middle", "lower", "retrocardiac")),
        T("cons.d7", "Retrocardiac consolidation{chg}.", "CONS+", zones="retrocardiac", w=2),
        T("cons.d8", "{chgw} {cons} consolidation at the {loc}.", "CONS+", chg=("increased", "decreased")),
        T("cons.d9", "Apperance of patchy consolidation at the {loc}.", "CONS+", chg="new", w=0.3),
        T("cons.d10", "Reticular consolidation at the {loc}.", "CONS+", w=0.3),
        T("cons.d11", "Opacity in the right middle lobe obscures the right heart border, consistent with "
          "consolidation.", "LO+ CONS+", req=["silhouette"], w=3),
        T("cons.d12", "Partial consolidation of the {loc}, likely pneumonia.", "CONS+ PNA+", w=0.5),
        T("cons.u1", "Possible early pneumonia in the {loc}.", "PNA?", cert=U),
        T("cons.u2", "{loc_adj} opacity, atelectasis versus consolidation.", "LO+ ATEL? CONS?", cert=U),
        T("cons.u3", "Hazy opacity in the {loc} may represent pneumonia.", "LO+ PNA?", cert=U),
        T("cons.u4", "Questionable consolidation in the {loc}.", "CONS?", cert=U),
        T("cons.u5", "Consolidation in the {loc} cannot be excluded.", "CONS?", cert=U),
        T("cons.u6", "Subtle opacity in the {loc} could reflect an early pneumonia.", "LO+ PNA?", cert=U),
        T("cons.u7", "Findings suggestive of consolidation in the {loc}.", "CONS?", cert=U),
    ],
    "ground_glass": [
        T("gg.d1", "Bilateral peripheral ground-glass opacities, lower lung predominant{chg}.", "LO+"),
        T("gg.d2", "Multifocal hazy opacities in both lungs, compatible with viral pneumonia.", "LO+ PNA+"),
        T("gg.d3", "{ggsev} peripheral opacities at the lung bases bilaterally.", "LO+"),
        T("gg.d4", "Bilateral consolidation at the lower lung zone with ground-glass opacities.", "CONS+ LO+"),
        T("gg.d5", "There are {ggsev} bilateral ground-glass opacities in a peripheral distribution, concerning "
          "for atypical infection.", "LO+ PNA+"),
        T("gg.d6", "Multifocal pneumonia with peripheral predominance{chg}.", "PNA+"),
        T("gg.u1", "Subtle bilateral peripheral opacities may represent viral pneumonia.", "LO+ PNA?", cert=U),
        T("gg.u2", "Possible faint bilateral ground-glass opacities.", "LO?", cert=U),
        T("gg.u3", "Questionable hazy opacities at both lung bases.", "LO?", cert=U),
        T("gg.u4", "Bilateral peripheral opacities, atypical infection versus edema.", "LO+ PNA? EDEMA?", cert=U),
        T("gg.u5", "Viral pneumonia cannot be excluded.", "PNA?", cert=U),
    ],
    "atelectasis": [
        T("atel.d1", "{atype} atelectasis at the {loc}{chg}.", "ATEL+", sides=UNI, w=2),
        T("atel.d2", "{atsev} {atype} atelectasis at the {loc}.", "ATEL+", sides=UNI),
        T("atel.d3", "{loc_adj} opacity, likely atelectasis.", "LO+ ATEL+", sides=UNI),
        T("atel.d4", "There is {atype} atelectasis in the {loc}.", "ATEL+", sides=UNI),
        T("atel.d5", "Trace atelectasis at the {loc}.", "ATEL+", sides=UNI, sev="mild"),
        T("atel.d6", "Residual atelectasis at the {loc}.", "ATEL+", sides=UNI, chg=("decreased", "stable")),
        T("atel.d7", "Retrocardiac atelectasis{chg}.", "ATEL+", sides="left", zones="retrocardiac", w=3),
        T("atel.d8", "{atype} atelectasis at the mid lung zone on the {side}.", "ATEL+", sides=UNI, zones="middle"),
        T("atel.d9", "{atype} atelectasis at the upper lung zone on the {side}.", "ATEL+", sides=UNI, zones="upper"),
        T("atel.d10", "Minimal atelectasis at the {side} lung zone, lower portion.", "ATEL+", sides=UNI,
          zones="lower", sev="mild", w=0.3),
        T("atelb.d1", "Bibasilar atelectasis{chg}.", "ATEL+", sides=BI),
        T("atelb.d2", "{atsev} bibasilar atelectasis.", "ATEL+", sides=BI),
        T("atelb.d3", "{atype} atelectasis at the lung bases.", "ATEL+", sides=BI),
        T("atelb.d4", "{atype} atelectasis at the bilateral lung bases{chg}.", "ATEL+", sides=BI),
        T("atelb.d5", "Streaky bibasilar opacities, likely atelectasis.", "LO+ ATEL+", sides=BI),
        T("atel.u1", "{loc_adj} opacity may represent atelectasis.", "LO+ ATEL?", cert=U, sides=UNI),
        T("atel.u2", "Possible {atype} atelectasis at the {loc}.", "ATEL?", cert=U, sides=UNI),
        T("atel.u3", "{loc_adj} opacity, atelectasis versus consolidation.", "LO+ ATEL? CONS?", cert=U, sides=UNI),
        T("atel.u4", "Atelectasis at the {loc} cannot be excluded.", "ATEL?", cert=U, sides=UNI),
        T("atel.u5", "Questionable subsegmental atelectasis at the {loc}.", "ATEL?", cert=U, sides=UNI),
        T("atelb.u1", "Possible bibasilar atelectasis.", "ATEL?", cert=U, sides=BI),
        T("atelb.u2", "Bibasilar opacities may reflect atelectasis.", "LO+ ATEL?", cert=U, sides=BI),
        T("atelb.u3", "Bibasilar opacities, atelectasis versus early infection.", "LO+ ATEL? PNA?", cert=U, sides=BI),
    ],
    "edema": [
        T("ed.m1", "Mild pulmonary vascular congestion{chg}.", "EDEMA+", sev="mild"),
        T("ed.m2", "Mild interstitial edema{chg}.", "EDEMA+", sev="mild"),
        T("ed.m3", "Trace interstitial edema.", "EDEMA+", sev="mild"),
        T("ed.m4", "Mild pulmonary edema{chg}.", "EDEMA+", sev="mild"),
        T("ed.m5", "Mild pulmonary vascular congestion with cephalization of the upper lobe vessels.", "EDEMA+",
          sev="mild"),
        T("ed.o1", "Moderate pulmonary edema{chg}.", "EDEMA+", sev="moderate"),
        T("ed.o2", "Interstitial edema with Kerley B lines.", "EDEMA+", sev="moderate", req=["kerley"]),
        T("ed.o3", "Moderate interstitial pulmonary edema.", "EDEMA+", sev="moderate"),
        T("ed.o4", "Pulmonary interstitial edema, moderate{chg}.", "EDEMA+", sev="moderate"),
        T("ed.o5", "There is moderate pulmonary edema with perihilar haziness.", "EDEMA+", sev="moderate"),
        T("ed.s1", "Severe pulmonary edema{chg}.", "EDEMA+", sev="severe"),
        T("ed.s2", "Marked bilateral perihilar edema.", "EDEMA+", sev="severe"),
        T("ed.s3", "Severe alveolar pulmonary edema.", "EDEMA+", sev="severe"),
        T("ed.s4", "There is severe pulmonary edema with Kerley B lines.", "EDEMA+", sev="severe", req=["kerley"]),
        T("ed.s5", "Diffuse severe pulmonary edema{chg}.", "EDEMA+", sev="severe"),
        T("ed.c1", "Improvement in pulmonary edema.", "EDEMA+", chg="decreased"),
        T("ed.c2", "Decreased pulmonary edema.", "EDEMA+", chg="decreased"),
        T("ed.c3", "Increased pulmonary edema.", "EDEMA+", chg="increased"),
        T("ed.c4", "Presistent pulmonary edema.", "EDEMA+", chg="stable", w=0.3),
        T("ed.c5", "Persistent pulmonary edema.", "EDEMA+", chg="stable"),
        T("ed.u1", "Possible mild interstitial edema.", "EDEMA?", cert=U),
        T("ed.u2", "Mild pulmonary vascular congestion versus early edema.", "EDEMA?", cert=U),
        T("ed.u3", "Cannot exclude mild pulmonary edema.", "EDEMA?", cert=U),
        T("ed.u4", "Questionable mild interstitial edema.", "EDEMA?", cert=U),
        T("ed.u5", "Findings may reflect mild pulmonary edema.", "EDEMA?", cert=U),
    ],
    "nodule": [
        T("nod.d1", "A {n} mm nodule projects over the {loc}{chg}.", "LL+", req=["nodule", "single"]),
        T("nod.d2", "{n} mm nodular density in the {loc}.", "LL+", req=["nodule", "single"]),
        T("nod.d3", "There is a {n} mm pulmonary nodule in the {loc}.", "LL+", req=["nodule", "single"]),
        T("nod.d4", "Small nodule in the {loc}, measuring {n} mm.", "LL+", req=["nodule", "single"]),
        T("nod.d5", "{n} mm {loc_adj} pulmonary nodule{chg}.", "LL+", req=["nodule", "single"]),
        T("nod.d6", "{count} pulmonary nodules, the largest measuring {n} mm in the {loc}.", "LL+",
          req=["nodule", "multi"]),
        T("nod.d7", "Multiple small nodules in the {side} lung, up to {n} mm{chg}.", "LL+", req=["nodule", "multi"]),
        T("mass.d1", "A {ncm} cm mass in the {loc}{chg}.", "LL+", req=["mass"]),
        T("mass.d2", "{loc_adj} mass measuring {ncm} cm.", "LL+", req=["mass"]),
        T("mass.d3", "There is a spiculated mass in the {loc}, measuring approximately {ncm} cm.", "LL+",
          req=["mass", "spiculated"], w=3),
        T("mass.d4", "Large {loc_adj} mass concerning for malignancy.", "LL+", req=["mass"]),
        T("mass.d5", "{loc_adj} mass lesion{chg}.", "LL+", req=["mass"]),
        T("gran.d1", "Calcified granuloma in the {loc}.", "LL+", req=["granuloma", "single"]),
        T("gran.d2", "{count} calcified granulomas in the {loc}.", "LL+", req=["granuloma", "multi"]),
        T("gran.d3", "Small calcified granuloma projects over the {loc}, likely benign.", "LL+",
          req=["granuloma", "single"]),
        T("gran.d4", "Tiny calcified nodule in the {loc}, consistent with a granuloma.", "LL+",
          req=["granuloma", "single"]),
        T("gran.d5", "Benign-appearing calcified granulomas in the {side} lung{chg}.", "LL+", req=["granuloma"]),
        T("nod.u1", "Possible {n} mm nodule in the {loc}.", "LL?", cert=U, req=["nodule"]),
        T("nod.u2", "A nodule in the {loc} cannot be excluded.", "LL?", cert=U, exc=["mass"]),
        T("nod.u3", "Questionable nodular opacity in the {loc}.", "LL? LO?", cert=U, exc=["mass"]),
        T("nod.u4", "{n} mm rounded density in the {loc} may represent a nodule.", "LL?", cert=U, req=["nodule"]),
        T("mass.u1", "Possible {loc_adj} mass.", "LL?", cert=U, req=["mass"]),
        T("mass.u2", "Rounded opacity in the {loc} could represent a mass.", "LO+ LL?", cert=U, req=["mass"]),
        T("gran.u1", "Possible calcified granuloma in the {loc}.", "LL?", cert=U, req=["granuloma"]),
    ],
    "pneumothorax": [
        T("ptx.d1", "{sev} {side} apical pneumothorax{chg}.", "PTX+"),
        T("ptx.d2", "There is a {sev} {side} pneumothorax measuring approximately {n} cm.", "PTX+"),
        T("ptx.d3", "{side} apical pneumothorax, {sev}{chg}.", "PTX+"),
        T("ptx.d4", "A {sev} {side} pneumothorax is present{chg}.", "PTX+"),
        T("ptx.d5", "{sev} {side} pneumothorax with a visible visceral pleural line.", "PTX+"),
        T("ptx.d6", "Large {side} tension pneumothorax with contralateral mediastinal shift.", "PTX+",
          req=["tension"], w=4),
        T("ptx.d7", "{chgw} {sev} {side} pneumothorax.", "PTX+", chg=CHANGED),
        T("ptx.u1", "Possible tiny {side} apical pneumothorax.", "PTX?", cert=U, sev="mild"),
        T("ptx.u2", "A small {side} apical pneumothorax cannot be excluded.", "PTX?", cert=U, sev=("mild", "moderate")),
        T("ptx.u3", "Questionable {side} apical pneumothorax.", "PTX?", cert=U),
        T("ptx.u4", "Subtle {side} apical lucency may represent a small pneumothorax.", "PTX?", cert=U),
        T("ptx.u5", "Possible {sev} {side} pneumothorax.", "PTX?", cert=U),
    ],
    "cardiomegaly": [
        T("card.d1", "The cardiac silhouette is {sevly} enlarged{chg}.", "CARD+"),
        T("card.d2", "{sev} cardiomegaly{chg}.", "CARD+", w=2),
        T("card.d3", "Mildly prominent cardiac silhouette.", "CARD+", sev="mild"),
        T("card.d4", "Cardiac silhouette size is mildly enlarged.", "CARD+", sev="mild"),
        T("card.d5", "Heart size remains at mildly enlarged.", "CARD+", sev="mild", chg=NOT_NEW),
        T("card.d6", "Mildly enlarged cardiac silhouette, likely left ventricular enlargement. Other chambers "
          "are less prominent.", "CARD+", sev="mild", w=0.5),
        T("card.d7", "Portable view of the chest demonstrates mild cardiomegaly.", "CARD+", sev="mild", views="AP"),
        T("card.d8", "The heart is moderately enlarged.", "CARD+", sev="moderate"),
        T("card.d9", "Moderately enlarged cardiac silhouette{chg}.", "CARD+", sev="moderate"),
        T("card.d10", "Persistent severe cardiomegaly.", "CARD+", sev="severe", chg="stable", w=2),
        T("card.d11", "Marked cardiomegaly{chg}.", "CARD+", sev="severe"),
        T("card.d12", "Redemonstration of cardiomegaly.", "CARD+", chg="stable"),
        T("card.d13", "Cardiomegaly unchanged.", "CARD+", chg="stable"),
        T("card.d14", "Cardiomegaly which is unchanged.", "CARD+", chg="stable"),
        T("card.d15", "Portable view of the chest demonstrates stable cardiomegaly.", "CARD+", chg="stable",
          views="AP"),
        T("card.d16", "Persistent cardiomegaly with prominent upper lobe vessels.", "CARD+", chg="stable", w=0.5),
        T("card.u1", "Heart size is borderline enlarged.", "CARD?", cert=U),
        T("card.u2", "Heart size is at the upper limits of normal.", "CARD?", cert=U),
        T("card.u3", "Cardiac silhouette size is upper limits of normal.", "CARD?", cert=U),
        T("card.u4", "AP erect chest radiograph demonstrates the heart size is the upper limits of normal.",
          "CARD?", cert=U, views="AP"),
        T("card.u5", "Top-normal heart size.", "CARD?", cert=U),
        T("card.u6", "Borderline cardiomegaly.", "CARD?", cert=U),
    ],
    "widened_mediastinum": [
        T("wm.d1", "The mediastinum is widened{chg}.", "ECM+"),
        T("wm.d2", "Widening of the superior mediastinum{chg}.", "ECM+"),
        T("wm.d3", "Mediastinal widening is noted{chg}.", "ECM+"),
        T("wm.d4", "There is widening of the mediastinum.", "ECM+"),
        T("wm.d5", "Widened mediastinal contour{chg}.", "ECM+"),
        T("wm.u1", "Possible mediastinal widening.", "ECM?", cert=U),
        T("wm.u2", "Mediastinal widening cannot be excluded.", "ECM?", cert=U),
        T("wm.u3", "Questionable widening of the superior mediastinum.", "ECM?", cert=U),
        T("wm.u4", "Possible widening of the superior mediastinum.", "ECM?", cert=U),
        T("wm.u5", "Widening of the mediastinum cannot be excluded.", "ECM?", cert=U),
    ],
    "rib_fracture": [
        T("fx.d1", "Acute fracture of the {side} {ord} posterior rib.", "FX+", chg=("none", "new")),
        T("fx.d2", "{side} {ord} rib fracture{chg}.", "FX+"),
        T("fx.d3", "Nondisplaced fracture of the {side} {ord} rib.", "FX+"),
        T("fx.d4", "There is a minimally displaced {side} {ord} posterior rib fracture.", "FX+"),
        T("fx.d5", "Healing fracture of the {side} {ord} rib{chg}.", "FX+", chg=("none", "stable")),
        T("fx.u1", "Possible nondisplaced fracture of the {side} {ord} rib.", "FX?", cert=U),
        T("fx.u2", "A subtle {side} {ord} rib fracture cannot be excluded.", "FX?", cert=U),
        T("fx.u3", "Questionable cortical irregularity of the {side} {ord} rib may represent a fracture.", "FX?",
          cert=U),
        T("fx.u4", "Possible {side} rib fracture.", "FX?", cert=U),
        T("fx.u5", "Cortical irregularity of the {side} {ord} rib, possibly a nondisplaced fracture.", "FX?", cert=U),
    ],
    "pleural_thickening": [
        T("pt.d1", "{ptsev} {side} lateral pleural thickening{chg}.", "PO+"),
        T("pt.d2", "Pleural thickening along the {side} lateral chest wall.", "PO+"),
        T("pt.d3", "{side} pleural thickening, likely chronic.", "PO+"),
        T("pt.d4", "There is mild {side} pleural thickening.", "PO+", sev=("mild", "moderate")),
        T("pt.d5", "Stable {side} pleural thickening.", "PO+", chg="stable"),
        T("pt.u1", "Possible {side} pleural thickening.", "PO?", cert=U),
        T("pt.u2", "Questionable {side} lateral pleural thickening.", "PO?", cert=U),
        T("pt.u3", "{side} pleural thickening cannot be excluded.", "PO?", cert=U),
        T("pt.u4", "Possible mild {side} lateral pleural thickening.", "PO?", cert=U),
        T("pt.u5", "Findings suggestive of {side} pleural thickening.", "PO?", cert=U),
    ],
    "ecm": [  # extra sentence when cardiomegaly carries the "enlarged cardiomediastinum" flag
        T("ecm.d1", "The cardiomediastinal silhouette is enlarged.", "ECM+"),
        T("ecm.d2", "Enlarged cardiomediastinal silhouette.", "ECM+"),
        T("ecm.d3", "Cardiomediastinal silhouette is enlarged{chg}.", "ECM+"),
        T("ecm.d4", "The enlarged cardiomediastinal silhouette is again noted.", "ECM+"),
    ],
}

# Impression noun phrases (no final period; definite first, pre-cue hedges only
# so that they can be merged into one sentence safely).
PHRASES: dict[str, list[Template]] = {
    "effusion": [
        T("np.eff.d1", "{sev} {side} pleural effusion", "PE+", sides=UNI),
        T("np.eff.d2", "{chgw} {sev} {side} pleural effusion", "PE+", sides=UNI, chg=CHANGED),
        T("np.effb.d1", "{sev} bilateral pleural effusions", "PE+", sides=BI),
        T("np.effb.d2", "{chgw} bilateral pleural effusions", "PE+", sides=BI, chg=CHANGED),
        T("np.eff.u1", "possible {sev} {side} pleural effusion", "PE?", cert=U, sides=UNI),
        T("np.effb.u1", "possible {sev} bilateral pleural effusions", "PE?", cert=U, sides=BI),
    ],
    "consolidation": [
        T("np.cons.d1", "{loc_adj} pneumonia", "PNA+"),
        T("np.cons.d2", "{cons} {loc_adj} consolidation", "CONS+"),
        T("np.cons.d3", "{loc_adj} consolidation concerning for pneumonia", "CONS+ PNA+"),
        T("np.cons.u1", "possible {loc_adj} pneumonia", "PNA?", cert=U),
        T("np.cons.u2", "possible {loc_adj} consolidation", "CONS?", cert=U),
    ],
    "ground_glass": [
        T("np.gg.d1", "bilateral peripheral ground-glass opacities", "LO+"),
        T("np.gg.d2", "multifocal pneumonia", "PNA+"),
        T("np.gg.d3", "bilateral opacities compatible with viral pneumonia", "LO+ PNA+"),
        T("np.gg.u1", "possible bilateral ground-glass opacities", "LO?", cert=U),
        T("np.gg.u2", "possible atypical infection", "PNA?", cert=U),
    ],
    "atelectasis": [
        T("np.atel.d1", "{loc_adj} atelectasis", "ATEL+", sides=UNI),
        T("np.atel.d2", "{atype} {loc_adj} atelectasis", "ATEL+", sides=UNI),
        T("np.atelb.d1", "bibasilar atelectasis", "ATEL+", sides=BI),
        T("np.atel.u1", "possible {loc_adj} atelectasis", "ATEL?", cert=U, sides=UNI),
        T("np.atelb.u1", "possible bibasilar atelectasis", "ATEL?", cert=U, sides=BI),
    ],
    "edema": [
        T("np.ed.d1", "{sev} pulmonary edema", "EDEMA+"),
        T("np.ed.d2", "mild pulmonary vascular congestion", "EDEMA+", sev="mild"),
        T("np.ed.d3", "{sev} interstitial edema", "EDEMA+", sev=("mild", "moderate")),
        T("np.ed.u1", "possible mild pulmonary edema", "EDEMA?", cert=U),
    ],
    "nodule": [
        T("np.nod.d1", "{n} mm {loc_adj} nodule", "LL+", req=["nodule", "single"]),
        T("np.nod.d2", "{side} pulmonary nodules", "LL+", req=["nodule", "multi"]),
        T("np.mass.d1", "{loc_adj} mass", "LL+", req=["mass"]),
        T("np.gran.d1", "calcified granuloma", "LL+", req=["granuloma"]),
        T("np.nod.u1", "possible {loc_adj} nodule", "LL?", cert=U, exc=["mass"]),
        T("np.mass.u1", "possible {loc_adj} mass", "LL?", cert=U, req=["mass"]),
    ],
    "pneumothorax": [
        T("np.ptx.d1", "{sev} {side} pneumothorax", "PTX+"),
        T("np.ptx.d2", "{sev} {side} apical pneumothorax", "PTX+"),
        T("np.ptx.d3", "{side} tension pneumothorax", "PTX+", req=["tension"], w=4),
        T("np.ptx.u1", "possible {side} apical pneumothorax", "PTX?", cert=U),
    ],
    "cardiomegaly": [
        T("np.card.d1", "{sev} cardiomegaly", "CARD+"),
        T("np.card.d2", "cardiomegaly", "CARD+"),
        T("np.card.d3", "stable cardiomegaly", "CARD+", chg="stable"),
        T("np.card.u1", "borderline cardiomegaly", "CARD?", cert=U),
    ],
    "widened_mediastinum": [
        T("np.wm.d1", "mediastinal widening", "ECM+"),
        T("np.wm.d2", "widened mediastinum", "ECM+"),
        T("np.wm.u1", "possible mediastinal widening", "ECM?", cert=U),
    ],
    "rib_fracture": [
        T("np.fx.d1", "{side} {ord} rib fracture", "FX+"),
        T("np.fx.u1", "possible {side} {ord} rib fracture", "FX?", cert=U),
    ],
    "pleural_thickening": [
        T("np.pt.d1", "{side} pleural thickening", "PO+"),
        T("np.pt.u1", "possible {side} pleural thickening", "PO?", cert=U),
    ],
}

# ------------------------------------------------------------------- devices
DEVICE_SENTENCES: dict[str, list[Template]] = {
    "ett": [
        T("ett.1", "Endotracheal tube terminates {n} cm above the carina.", "SD+"),
        T("ett.2", "The endotracheal tube tip is {n} cm above the carina.", "SD+"),
        T("ett.3", "ET tube in standard position, {n} cm above the carina.", "SD+"),
        T("ett.4", "Endotracheal tube is in appropriate position.", "SD+"),
        T("ett.5", "An endotracheal tube ends approximately {n} cm above the carina.", "SD+"),
    ],
    "enteric_tube": [
        T("ent.1", "Enteric tube courses below the diaphragm, tip in the stomach.", "SD+", exc=["malpositioned"]),
        T("ent.2", "Nasogastric tube tip is in the stomach.", "SD+", exc=["malpositioned"]),
        T("ent.3", "An orogastric tube extends into the stomach.", "SD+", exc=["malpositioned"]),
        T("ent.4", "The enteric tube terminates below the left hemidiaphragm.", "SD+", exc=["malpositioned"]),
        T("ent.5", "Feeding tube tip projects over the stomach.", "SD+", exc=["malpositioned"]),
        T("ent.m1", "Enteric tube tip projects over the right lower lobe bronchus; recommend repositioning.", "SD+",
          req=["malpositioned"]),
        T("ent.m2", "The nasogastric tube is malpositioned, with its tip in the right bronchial tree.", "SD+",
          req=["malpositioned"]),
    ],
    "cvc": [
        T("cvc.r1", "Right internal jugular catheter ends in the {svc}.", "SD+", req=["right_ij"]),
        T("cvc.r2", "Right IJ central venous catheter terminates in the {svc}.", "SD+", req=["right_ij"]),
        T("cvc.r3", "Right internal jugular central venous catheter tip projects over the {svc}.", "SD+",
          req=["right_ij"]),
        T("cvc.l1", "Left subclavian catheter terminates in the {svc}.", "SD+", req=["left_subclavian"]),
        T("cvc.l2", "Left subclavian central venous catheter with tip in the {svc}.", "SD+", req=["left_subclavian"]),
    ],
    "pacemaker": [
        T("pm.1", "Left-sided pacemaker with leads in the right atrium and ventricle.", "SD+", req=["two_leads"]),
        T("pm.2", "Left chest wall pacemaker with a single lead in the right ventricle.", "SD+", req=["one_lead"]),
        T("pm.3", "Left-sided dual-chamber pacemaker, leads in standard position.", "SD+", req=["two_leads"]),
        T("pm.4", "Left chest wall pacer device with leads terminating in the right heart.", "SD+"),
        T("pm.5", "A left-sided ICD is present with a lead in the right ventricle.", "SD+", req=["one_lead"]),
    ],
    "sternotomy": [
        T("st.1", "Median sternotomy wires are intact.", "SD+"),
        T("st.2", "Sternotomy wires are present.", "SD+"),
        T("st.3", "Intact median sternotomy wires.", "SD+"),
        T("st.4", "The patient is status post median sternotomy.", "SD+"),
        T("st.5", "Median sternotomy wires and mediastinal clips are noted.", "SD+"),
    ],
    "chest_tube": [
        T("ct.1", "{side} chest tube in place.", "SD+"),
        T("ct.2", "A {side}-sided chest tube is present with tip at the apex.", "SD+"),
        T("ct.3", "{side} pigtail catheter in the pleural space.", "SD+"),
        T("ct.4", "{side} chest tube terminates near the apex.", "SD+"),
        T("ct.5", "{side} chest tube with its tip projecting over the apex.", "SD+"),
    ],
}

OBJECT_SENTENCES: dict[str, list[Template]] = {
    "button": [T("obj.button1", "A button projects over the {side} hemithorax, likely external to the patient."),
               T("obj.button2", "External button overlies the {side} hemithorax.")],
    "coin": [T("obj.coin1", "A coin-shaped metallic density overlies the {side} hemithorax."),
             T("obj.coin2", "Round metallic density projects over the {side} chest, likely external.")],
    "clip": [T("obj.clip1", "External metallic clip projects over the {side} hemithorax."),
             T("obj.clip2", "A small metallic clip overlies the {side} chest.")],
    "necklace": [T("obj.neck1", "A necklace overlies the {side} hemithorax."),
                 T("obj.neck2", "Beaded external object, likely jewelry, projects over the {side} chest.")],
    "hair_tie": [T("obj.tie1", "A ring-shaped external object projects over the {side} hemithorax."),
                 T("obj.tie2", "External hair tie overlies the {side} chest.")],
}

# ------------------------------------------------------- negations and normals
@dataclass(frozen=True)
class Statement:
    """Normal / negated statement: ``covers`` = finding kinds whose absence it
    states, ``requires_absent`` = kinds that must not be positive in the text."""

    template: Template
    system: str
    covers: frozenset
    requires_absent: frozenset
    generic: bool = False


LUNG_KINDS = frozenset({"consolidation", "ground_glass", "nodule", "atelectasis", "edema"})
PLEURA_KINDS = frozenset({"effusion", "pneumothorax", "pleural_thickening"})
HEART_KINDS = frozenset({"cardiomegaly", "widened_mediastinum"})
BONE_KINDS = frozenset({"rib_fracture"})
SYSTEMS = (("lungs", LUNG_KINDS), ("pleura", PLEURA_KINDS), ("heart", HEART_KINDS), ("bones", BONE_KINDS))


def S(id, text, asserts, system, covers=(), requires_absent=None, generic=False, w=1.0) -> Statement:
    covers = frozenset(covers)
    req = frozenset(requires_absent) if requires_absent is not None else covers
    return Statement(T(id, text, asserts, cert="any", w=w), system, covers, req, generic)


_CLEAR = "CONS0 LO0 LL0 EDEMA0"
STATEMENTS: list[Statement] = [
    S("neg.l1", "The lungs are clear.", _CLEAR, "lungs", (), LUNG_KINDS, generic=True),
    S("neg.l2", "The lungs are well expanded and clear.", _CLEAR, "lungs", (), LUNG_KINDS, generic=True),
    S("neg.l3", "Lungs are clear bilaterally.", _CLEAR, "lungs", (), LUNG_KINDS, generic=True),
    S("neg.l4", "The lungs are clear without focal consolidation.", _CLEAR, "lungs", ["consolidation"], LUNG_KINDS,
      generic=True),
    S("neg.l5", "There is no focal consolidation.", "CONS0", "lungs", ["consolidation"]),
    S("neg.l6", "No focal consolidation is seen.", "CONS0", "lungs", ["consolidation"]),
    S("neg.l7", "No focal airspace consolidation.", "CONS0", "lungs", ["consolidation"]),
    S("neg.l8", "No pulmonary edema.", "EDEMA0", "lungs", ["edema"]),
    S("neg.l9", "There is no pulmonary vascular congestion or edema.", "EDEMA0", "lungs", ["edema"]),
    S("neg.l10", "No focal consolidation or pulmonary edema.", "CONS0 EDEMA0", "lungs", ["consolidation", "edema"]),
    S("neg.l11", "No suspicious pulmonary nodules.", "LL0", "lungs", ["nodule"]),
    S("neg.l12", "There is no focal airspace opacity to suggest pneumonia.", "LO0 PNA0", "lungs", ["consolidation"],
      ["consolidation", "ground_glass", "atelectasis", "nodule"]),
    S("neg.l13", "Previously noted {loc} consolidation has resolved.", "CONS0", "lungs", ["consolidation"], w=0.15),
    S("neg.lp1", "The lungs are clear without focal consolidation, effusion, or pneumothorax.",
      _CLEAR + " PE0 PTX0", "lungs", ["consolidation", "effusion", "pneumothorax"],
      LUNG_KINDS | {"effusion", "pneumothorax"}, generic=True),
    S("neg.lp2", "Lungs are clear, without consolidation, effusion, or pneumothorax.",
      _CLEAR + " PE0 PTX0", "lungs", ["consolidation", "effusion", "pneumothorax"],
      LUNG_KINDS | {"effusion", "pneumothorax"}, generic=True),
    S("neg.p1", "No pleural effusion or pneumothorax.", "PE0 PTX0", "pleura", ["effusion", "pneumothorax"], w=2),
    S("neg.p2", "There is no pleural effusion or pneumothorax.", "PE0 PTX0", "pleura", ["effusion", "pneumothorax"]),
    S("neg.p3", "No pleural effusion.", "PE0", "pleura", ["effusion"]),
    S("neg.p4", "No pneumothorax.", "PTX0", "pleura", ["pneumothorax"]),
    S("neg.p5", "There is no evidence of pneumothorax.", "PTX0", "pleura", ["pneumothorax"]),
    S("neg.p6", "Without evidence of pneumothorax.", "PTX0", "pleura", ["pneumothorax"], w=0.5),
    S("neg.p7", "The costophrenic angles are sharp.", "PE0", "pleura", ["effusion"], generic=True),
    S("neg.p8", "No pleural effusion, pneumothorax, or pleural thickening.", "PE0 PTX0 PO0", "pleura",
      ["effusion", "pneumothorax", "pleural_thickening"], w=0.3),
    S("neg.p9", "Previously seen {side} pleural effusion has resolved.", "PE0", "pleura", ["effusion"], w=0.15),
    S("neg.p10", "Previously seen {side} pneumothorax has resolved.", "PTX0", "pleura", ["pneumothorax"], w=0.15),
    S("neg.p11", "No pleural abnormality.", "", "pleura", (), PLEURA_KINDS, generic=True, w=0.5),
    S("neg.h1", "Heart size is normal.", "CARD0", "heart", ["cardiomegaly"], generic=True, w=2),
    S("neg.h2", "The cardiomediastinal silhouette is within normal limits.", "CARD0 ECM0", "heart",
      ["cardiomegaly"], HEART_KINDS, generic=True),
    S("neg.h3", "Normal heart size.", "CARD0", "heart", ["cardiomegaly"], generic=True),
    S("neg.h4", "The mediastinal and hilar contours are unremarkable.", "ECM0", "heart", (),
      ["widened_mediastinum"], generic=True),
    S("neg.h5", "The cardiac and mediastinal silhouettes are unremarkable.", "CARD0 ECM0", "heart",
      ["cardiomegaly"], HEART_KINDS, generic=True),
    S("neg.h6", "The heart is normal in size.", "CARD0", "heart", ["cardiomegaly"], generic=True),
    S("neg.h7", "No cardiomegaly.", "CARD0", "heart", ["cardiomegaly"]),
    S("neg.h8", "Heart size and mediastinal contours are normal.", "CARD0 ECM0", "heart", ["cardiomegaly"],
      HEART_KINDS, generic=True),
    S("neg.h9", "The mediastinum is unremarkable.", "ECM0", "heart", (), ["widened_mediastinum"], generic=True),
    S("neg.h10", "There is no mediastinal widening.", "ECM0", "heart", ["widened_mediastinum"]),
    S("neg.b1", "No acute osseous abnormality.", "FX0", "bones", ["rib_fracture"], generic=True),
    S("neg.b2", "Osseous structures are intact.", "FX0", "bones", ["rib_fracture"], generic=True),
    S("neg.b3", "The visualized osseous structures are unremarkable.", "FX0", "bones", ["rib_fracture"], generic=True),
    S("neg.b4", "No displaced rib fracture is identified.", "FX0", "bones", ["rib_fracture"]),
]

NORMAL_IMPRESSIONS = [
    T("imp.n1", "No acute cardiopulmonary process.", "CONS0 PNA0 LO0 EDEMA0 PE0 PTX0", cert="any"),
    T("imp.n2", "No acute intrathoracic abnormality.", "CONS0 PNA0 LO0 EDEMA0 PE0 PTX0", cert="any"),
    T("imp.n3", "Normal chest radiograph.", "CONS0 PNA0 LO0 EDEMA0 PE0 PTX0 CARD0", cert="any"),
]
DEVICE_IMPRESSIONS = [
    T("imp.dev1", "Lines and tubes as described.", "SD+", cert="any"),
    T("imp.dev2", "Support devices as above.", "SD+", cert="any"),
    T("imp.dev3", "Tubes and lines in standard position.", "SD+", cert="any"),
]
MALPOSITION_IMPRESSION = T("imp.dev.m", "Malpositioned enteric tube, recommend repositioning.", "SD+", cert="any")

# Negation sampling rates for absent findings (§4.5); others only via normals.
NEGATION_RATES = {
    "effusion": 0.7, "pneumothorax": 0.7, "consolidation": 0.6, "edema": 0.3, "cardiomegaly": 0.5,
    "nodule": 0.1, "widened_mediastinum": 0.1, "pleural_thickening": 0.03, "rib_fracture": 0.2,
}
SALIENCE = ("pneumothorax", "consolidation", "ground_glass", "edema", "effusion", "cardiomegaly",
            "widened_mediastinum", "nodule", "rib_fracture", "atelectasis", "pleural_thickening")

# ------------------------------------------------------------------ slot words
SEV_WORDS = {
    "effusion": {"mild": ("small", "trace", "tiny"), "moderate": ("moderate", "moderate-sized"), "severe": ("large",)},
    "pneumothorax": {"mild": ("tiny", "small"), "moderate": ("moderate", "moderate-sized"), "severe": ("large",)},
    "edema": {"mild": ("mild",), "moderate": ("moderate",), "severe": ("severe",)},
    "cardiomegaly": {"mild": ("mild",), "moderate": ("moderate",), "severe": ("severe", "marked")},
}
SEV_ADVERB = {"mild": "mildly", "moderate": "moderately", "severe": "markedly"}
CONS_WORDS = {"mild": ("patchy", "focal", "partial"), "moderate": ("dense", "multifocal", "patchy"),
              "severe": ("lobar", "dense")}
PATCHY_WORDS = {"mild": ("patchy",), "moderate": ("patchy", "dense"), "severe": ("dense",)}
ATYPE_WORDS = ("linear", "plate-like", "subsegmental", "bandlike", "streaky")
ATSEV_WORDS = {"mild": ("minimal", "mild"), "moderate": ("mild", "moderate"), "severe": ("moderate", "extensive")}
GGSEV_WORDS = {"mild": ("faint", "patchy"), "moderate": ("patchy", "multifocal"), "severe": ("extensive", "diffuse")}
PTSEV_WORDS = {"mild": ("mild", "minimal"), "moderate": ("moderate",), "severe": ("marked",)}
CHG_SUFFIX = {
    "none": ("",),
    "new": (", new since the prior study", ", new compared to prior"),
    "stable": (", unchanged", ", unchanged from prior", ", stable"),
    "increased": (", increased since prior", ", increased"),
    "decreased": (", slightly decreased", ", decreased since prior"),
}
CHG_WORD = {"new": "new", "stable": "stable", "increased": "increased", "decreased": "decreased"}
CHG_WORD_CONSOLIDATION = {"new": "new", "stable": "unchanged", "increased": "increased", "decreased": "improved"}
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}

LOC_IN = {
    ("right", "upper"): ("right upper lobe", "right upper lung", "upper lung zone on the right"),
    ("right", "middle"): ("right middle lobe", "right mid lung", "mid lung zone on the right"),
    ("right", "lower"): ("right lower lobe", "right lung base", "right base", "lower lung zone on the right"),
    ("left", "upper"): ("left upper lobe", "left upper lung", "upper lung zone on the left"),
    ("left", "middle"): ("lingula", "left mid lung", "mid lung zone on the left"),
    ("left", "lower"): ("left lower lobe", "left lung base", "left base", "lower lung zone on the left"),
    ("left", "retrocardiac"): ("retrocardiac region", "left retrocardiac region"),
    ("right", "apical"): ("right apex", "right lung apex"),
    ("left", "apical"): ("left apex", "left lung apex"),
    ("right", "perihilar"): ("right perihilar region",),
    ("left", "perihilar"): ("left perihilar region",),
    ("right", "lateral"): ("right lateral lung", "periphery of the right lung"),
    ("left", "lateral"): ("left lateral lung", "periphery of the left lung"),
    ("bilateral", "lower"): ("lung bases", "bilateral lung bases"),
}
LOC_ADJ = {
    ("right", "upper"): ("right upper lobe",),
    ("right", "middle"): ("right middle lobe",),
    ("right", "lower"): ("right lower lobe", "right basilar"),
    ("left", "upper"): ("left upper lobe",),
    ("left", "middle"): ("lingular",),
    ("left", "lower"): ("left lower lobe", "left basilar"),
    ("left", "retrocardiac"): ("retrocardiac", "left retrocardiac"),
    ("right", "apical"): ("right apical",),
    ("left", "apical"): ("left apical",),
    ("right", "perihilar"): ("right perihilar",),
    ("left", "perihilar"): ("left perihilar",),
    ("right", "lateral"): ("right peripheral",),
    ("left", "lateral"): ("left peripheral",),
    ("bilateral", "lower"): ("bibasilar",),
}

INDICATIONS = {
    "consolidation": ("fever, cough", "cough and fever, evaluate for pneumonia", "productive cough"),
    "ground_glass": ("fever, hypoxia", "cough, fever, positive viral test"),
    "chf": ("shortness of breath", "dyspnea, history of CHF", "lower extremity swelling and dyspnea"),
    "pneumothorax": ("chest pain", "sudden onset dyspnea"),
    "rib_fracture": ("trauma", "fall, chest wall pain"),
    "devices": ("line placement", "intubated patient", "NG tube placement"),
    "nodule": ("chronic cough", "follow-up of known nodule"),
    "default": ("chest pain", "cough", "preoperative evaluation", "dyspnea", "weakness"),
}
LEAK_PHRASES = {
    "effusion": "?pleural effusion", "consolidation": "?pneumonia", "pneumothorax": "?pneumothorax",
    "edema": "?CHF", "cardiomegaly": "?cardiomegaly", "rib_fracture": "?fracture",
}

# Phrases of the GLoRIA CheXpert prompt vocabulary that must appear in context.
GLORIA_PHRASES = (
    "subsegmental atelectasis", "linear atelectasis", "trace atelectasis", "bibasilar atelectasis",
    "retrocardiac atelectasis", "bandlike atelectasis", "residual atelectasis", "at the mid lung zone",
    "at the upper lung zone", "at the lung bases", "at the bilateral lung bases", "lung zone",
    "cardiac silhouette size is upper limits of normal", "cardiomegaly which is unchanged",
    "mildly prominent cardiac silhouette", "portable view of the chest demonstrates stable cardiomegaly",
    "portable view of the chest demonstrates mild cardiomegaly", "persistent severe cardiomegaly",
    "heart size is borderline enlarged", "cardiomegaly unchanged", "heart size is at the upper limits of normal",
    "redemonstration of cardiomegaly",
    "ap erect chest radiograph demonstrates the heart size is the upper limits of normal",
    "cardiac silhouette size is mildly enlarged",
    "mildly enlarged cardiac silhouette, likely left ventricular enlargement. other chambers are less prominent",
    "heart size remains at mildly enlarged", "persistent cardiomegaly with prominent upper lobe vessels",
    "bilateral consolidation", "reticular consolidation", "retrocardiac consolidation", "patchy consolidation",
    "airspace consolidation", "partial consolidation", "at the lower lung zone", "apperance of",
    "pulmonary edema", "trace interstitial edema", "pulmonary interstitial edema", "improvement in",
    "presistent", "bilateral pleural effusion", "subpulmonic pleural effusion",
)
