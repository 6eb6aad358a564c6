"""Rule labeler (§4.6) against hand-written sentences and hand-computed labels."""

import pytest

from place_bench.plugins.datasets.synthetic.labeler import (
    clinical_efficacy,
    label_sections,
    label_text,
    split_sentences,
)
from place_bench.plugins.datasets.synthetic.lexicon import OBSERVATIONS, labels_to_vector


def mentioned(labels):
    return {k: v for k, v in labels.items() if v is not None}


@pytest.mark.parametrize("text, expected", [
    ("No pleural effusion or pneumothorax.", {"Pleural Effusion": 0, "Pneumothorax": 0, "No Finding": 1}),
    ("Possible small left pleural effusion.", {"Pleural Effusion": -1}),
    ("A small right pleural effusion cannot be excluded.", {"Pleural Effusion": -1}),
    ("Moderate right pleural effusion.", {"Pleural Effusion": 1}),
    ("Left basilar opacity, atelectasis versus consolidation.",
     {"Lung Opacity": 1, "Atelectasis": -1, "Consolidation": -1}),
    ("The lungs are clear.", {"Consolidation": 0, "Lung Opacity": 0, "Lung Lesion": 0, "Edema": 0,
                              "No Finding": 1}),
    ("Heart size is normal.", {"Cardiomegaly": 0, "No Finding": 1}),
    ("Moderate cardiomegaly.", {"Cardiomegaly": 1}),
    ("Heart size is borderline enlarged.", {"Cardiomegaly": -1}),
    ("Top-normal heart size.", {"Cardiomegaly": -1}),
    ("Borderline cardiomegaly.", {"Cardiomegaly": -1}),
    ("Previously seen left pleural effusion has resolved.", {"Pleural Effusion": 0, "No Finding": 1}),
    ("Hazy opacity in the left lower lobe may represent pneumonia.", {"Lung Opacity": 1, "Pneumonia": -1}),
    ("Moderate pulmonary edema and possible small right pleural effusion.",
     {"Edema": 1, "Pleural Effusion": -1}),
    ("Right lower lobe consolidation concerning for pneumonia.", {"Consolidation": 1, "Pneumonia": 1}),
    ("Left basilar opacity, likely atelectasis.", {"Lung Opacity": 1, "Atelectasis": 1}),
    ("The lungs are clear without focal consolidation, effusion, or pneumothorax.",
     {"Consolidation": 0, "Lung Opacity": 0, "Lung Lesion": 0, "Edema": 0, "Pleural Effusion": 0,
      "Pneumothorax": 0, "No Finding": 1}),
    ("No acute cardiopulmonary process.", {"Consolidation": 0, "Pneumonia": 0, "Lung Opacity": 0, "Edema": 0,
                                           "Pleural Effusion": 0, "Pneumothorax": 0, "No Finding": 1}),
    ("Mild pulmonary vascular congestion versus early edema.", {"Edema": -1}),
    ("No acute osseous abnormality.", {"Fracture": 0, "No Finding": 1}),
    ("Endotracheal tube terminates 4 cm above the carina.", {"Support Devices": 1, "No Finding": 1}),
    ("Cardiomegaly which is unchanged.", {"Cardiomegaly": 1}),
    ("There is no focal airspace opacity to suggest pneumonia.", {"Lung Opacity": 0, "Pneumonia": 0,
                                                                  "No Finding": 1}),
    # A clause break ends the negation scope.
    ("No pleural effusion, but there is a small right pneumothorax.", {"Pleural Effusion": 0, "Pneumothorax": 1}),
    ("Cannot exclude mild pulmonary edema.", {"Edema": -1}),
    ("Widening of the superior mediastinum.", {"Enlarged Cardiomediastinum": 1}),
    ("Right 5th rib fracture, unchanged.", {"Fracture": 1}),
])
def test_sentences(text, expected):
    assert mentioned(label_text(text)) == expected


def test_priority_across_sentences():
    # 1 beats -1 beats 0, regardless of order.
    assert label_text("No effusion. Small left effusion.")["Pleural Effusion"] == 1
    assert label_text("Small left effusion. No effusion.")["Pleural Effusion"] == 1
    assert label_text("Possible effusion. No effusion.")["Pleural Effusion"] == -1
    assert label_text("No effusion. Possible effusion.")["Pleural Effusion"] == -1


def test_no_finding_rules():
    assert label_text("")["No Finding"] is None
    assert all(v is None for v in label_text("").values())
    assert label_text("Heart size is normal. The lungs are clear.")["No Finding"] == 1
    # Support devices do not block No Finding; uncertain pathology does.
    assert label_text("Sternotomy wires are present. The lungs are clear.")["No Finding"] == 1
    assert label_text("Possible small left pleural effusion.")["No Finding"] is None
    assert label_text("Moderate cardiomegaly.")["No Finding"] is None


def test_numbered_items_and_xxxx_tokens():
    labels = label_text("1. Small right pleural effusion. 2. Possible left basilar atelectasis.")
    assert mentioned(labels) == {"Pleural Effusion": 1, "Atelectasis": -1}
    assert mentioned(label_text("XXXX right pleural effusion. The XXXX are clear.")) == {"Pleural Effusion": 1}


def test_split_sentences_keeps_decimals():
    assert split_sentences("Tip 4.5 cm above the carina. No effusion.") == ["tip 4.5 cm above the carina",
                                                                             "no effusion"]


def test_label_sections_ignores_indication():
    sections = {"indication": "?pleural effusion", "findings": "The lungs are clear.",
                "impression": "No acute cardiopulmonary process."}
    assert label_sections(sections)["Pleural Effusion"] == 0
    assert label_text(sections["indication"])["Pleural Effusion"] == 1


def test_labels_to_vector_order_and_blanks():
    vec = labels_to_vector(label_text("Moderate cardiomegaly. No pneumothorax."))
    assert vec.shape == (14,)
    assert vec[OBSERVATIONS.index("Cardiomegaly")] == 1.0
    assert vec[OBSERVATIONS.index("Pneumothorax")] == 0.0
    assert vec[OBSERVATIONS.index("Edema")] != vec[OBSERVATIONS.index("Edema")]  # NaN


def test_clinical_efficacy_hand_computed():
    ref = [{"Edema": 1}, {"Edema": 1}, {"Edema": 0}, {"Edema": None}]
    pred = [{"Edema": 1}, {"Edema": 0}, {"Edema": 1}, {"Edema": -1}]
    ce = clinical_efficacy(pred, ref, observations=["Edema"])["Edema"]
    # tp = 1, fp = 1, fn = 1
    assert ce["precision"] == pytest.approx(0.5)
    assert ce["recall"] == pytest.approx(0.5)
    assert ce["f1"] == pytest.approx(0.5)
    ce_u = clinical_efficacy(pred, ref, observations=["Edema"], uncertain_as_positive=True)["Edema"]
    assert ce_u["precision"] == pytest.approx(1 / 3)


def test_a_line_wrap_inside_a_sentence_keeps_its_negation():
    from place_bench.plugins.datasets.synthetic.labeler import label_text

    wrapped = label_text(" FINDINGS:\n \n No focal\n consolidation is seen.  Heart size is normal.")
    assert wrapped["Consolidation"] == 0
