"""Zero-shot prompt vocabularies and their seeded sampling (datasets.md 1.2, 2.3)."""

import itertools
import random

import pytest

from place_bench.plugins.tasks import prompts as P


def test_gloria_chexpert_vocabulary_matches_the_spec_table():
    v = P.CHEXPERT_CLASS_PROMPTS
    assert tuple(v) == P.CHEXPERT_CLASSES
    sizes = {c: tuple(len(values) for values in attrs.values()) for c, attrs in v.items()}
    assert sizes == {
        "Atelectasis": (3, 7, 10),
        "Cardiomegaly": (1, 15, 1),
        "Consolidation": (4, 6, 8),
        "Edema": (6, 3, 1),
        "Pleural Effusion": (6, 3, 3),
    }
    assert list(v["Pleural Effusion"]) == ["severity", "location", "subtype"]
    assert "apperance of" in v["Consolidation"]["severity"]
    assert "presistent" in v["Edema"]["severity"]
    assert "at the right uppper lobe" in v["Consolidation"]["location"]  # GLoRIA's typo
    assert v["Pleural Effusion"]["subtype"].count("bilateral pleural effusion") == 2
    assert "at the right upper lobe" in P.CHEXPERT_CLASS_PROMPTS_BENCHX["Consolidation"]["location"]


def test_rsna_vocabulary_is_benchx_times_normal_set():
    pneumonia = P.RSNA_PROMPTS["Pneumonia"]
    assert [len(x) for x in pneumonia.values()] == [6, 4, 13]
    assert len(P.class_prompt_product(pneumonia)) == 312
    assert list(P.PROMPT_SETS["rsna"].class_names) == ["Normal", "Pneumonia"]
    assert len(P.prompts_for("rsna")["Normal"]) == len(P.NORMAL_PROMPTS)


@pytest.mark.parametrize("procedure", P.PROCEDURES)
def test_generation_is_seeded_and_joins_one_value_per_list(procedure):
    a = P.generate_class_prompts(P.CHEXPERT_CLASS_PROMPTS, 5, seed=3, procedure=procedure)
    assert a == P.generate_class_prompts(P.CHEXPERT_CLASS_PROMPTS, 5, seed=3, procedure=procedure)
    assert a != P.generate_class_prompts(P.CHEXPERT_CLASS_PROMPTS, 5, seed=4, procedure=procedure)
    for cls, chosen in a.items():
        attrs = P.CHEXPERT_CLASS_PROMPTS[cls]
        allowed = {" ".join(parts) for parts in itertools.product(*attrs.values())}
        assert len(chosen) == 5 and set(chosen) <= allowed
    if procedure == "suite":
        assert all(len(set(chosen)) == 5 for chosen in a.values())


def test_gloria_procedure_is_one_python_random_stream_over_the_product():
    stream = random.Random(6)
    expected = {c: stream.sample(P.class_prompt_product(attrs), 5) for c, attrs in P.CHEXPERT_CLASS_PROMPTS.items()}
    assert P.prompts_for("chexpert_5x200", procedure="gloria") == expected


def test_class_order_and_subset_do_not_change_a_class_prompts():
    full = P.prompts_for("mimic_5x200", n_per_class=4, seed=1)
    sub = P.prompts_for("mimic_5x200", ["Edema", "Atelectasis"], n_per_class=4, seed=1)
    assert list(sub) == ["Edema", "Atelectasis"]
    assert sub["Edema"] == full["Edema"] and sub["Atelectasis"] == full["Atelectasis"]


def test_all_candidates_when_n_is_none_or_large():
    out = P.generate_class_prompts(P.CHEXPERT_CLASS_PROMPTS, None)
    assert len(out["Cardiomegaly"]) == 15
    assert len(out["Pleural Effusion"]) == 6 * 3 * 2  # distinct prompts only (suite)
    assert len(P.generate_class_prompts(P.CHEXPERT_CLASS_PROMPTS, 1000, procedure="gloria")["Pleural Effusion"]) == 54


def test_probe_prompt_sets_pair_the_probe_prompts():
    assert P.prompts_for("synthetic_probe_laterality_effusion") == {
        "left": ["left pleural effusion"], "right": ["right pleural effusion"]}
    assert P.prompts_for("synthetic_probe_negation_effusion") == {
        "present": ["pleural effusion"], "absent": ["no pleural effusion"]}


def test_unknown_dataset_or_class_fails_with_its_name():
    with pytest.raises(ValueError, match="'covidx'"):
        P.prompts_for("covidx")
    with pytest.raises(ValueError, match="Fracture"):
        P.prompts_for("chexpert_5x200", ["Edema", "Fracture"])
    with pytest.raises(ValueError, match="procedure"):
        P.generate_class_prompts(P.CHEXPERT_CLASS_PROMPTS, procedure="benchx")
