"""Pass criteria of a controlled experiment: summaries and verdicts against hand computations."""

import math

import pytest

from place_bench.config import ConfigError
from place_bench.results.criteria import ArmSummary, Criterion, evaluate_control, format_report, judge


ARMS = dict(A=dict(label="aligned", methods=["a0", "a1", "a2"]), B=dict(label="shuffled", methods=["b0", "b1", "b2"]))


@pytest.fixture
def zs(make_measured):
    def make(value, seed=0, dataset="m5", **kw):
        return make_measured(task="zeroshot", dataset=dataset, fraction=None, seed=seed, value=value,
                             metric="accuracy", ci=None, **kw)
    return make


def test_arm_summary_mean_and_sample_sd_by_hand():
    s = ArmSummary((0.5, 0.6, None, 0.7))
    assert s.present == [0.5, 0.6, 0.7]
    assert s.mean == pytest.approx(0.6)
    assert s.sd == pytest.approx(0.1)          # sqrt((0.01 + 0 + 0.01) / 2)
    assert math.isnan(ArmSummary((0.4,)).sd) and math.isnan(ArmSummary(()).mean)


def test_verdicts_by_hand():
    a, b = ArmSummary((0.50, 0.60, 0.70)), ArmSummary((0.20, 0.21, 0.22))
    arms = {"A": a, "B": b}
    assert judge(dict(arm="A", min=0.6), arms, "c").verdict == "pass"           # 0.6 >= 0.6
    assert judge(dict(arm="A", min=0.61), arms, "c").verdict == "fail"
    r = judge(dict(arm="B", near=0.2, tol=0.05), arms, "c")
    assert r.verdict == "pass" and r.margin == pytest.approx(0.04)
    assert judge(dict(arm="B", max=0.20), arms, "c").verdict == "fail"
    r = judge(dict(exceeds=("A", "B"), by=0.39), arms, "c")
    assert r.verdict == "pass" and r.margin == pytest.approx(0.6 - 0.21 - 0.39)
    assert judge(dict(exceeds=("B", "A")), arms, "c").verdict == "fail"
    # separation: 0.6 - 2 * 0.1 = 0.4 > 0.21 + 2 * 0.01 = 0.23
    r = judge(dict(separates=("A", "B")), arms, "c")
    assert r.verdict == "pass" and r.margin == pytest.approx(0.4 - 0.23)
    # with k = 4: 0.6 - 0.4 = 0.2 < 0.21 + 0.04
    assert judge(dict(separates=("A", "B"), k=4), arms, "c").verdict == "fail"


def test_missing_values_are_undetermined_never_pass():
    arms = {"A": ArmSummary((0.9,)), "B": ArmSummary((None, None))}
    assert judge(dict(arm="B", min=0.0), arms, "c").verdict == "undetermined"
    assert judge(dict(exceeds=("A", "B")), arms, "c").verdict == "undetermined"
    assert judge(dict(separates=("A", "A")), arms, "c").verdict == "undetermined"   # one seed: no s.d.


def test_evaluate_control_averages_eval_seeds_and_filters_records(zs):
    records = {
        "a0": [zs(0.6, seed=0), zs(0.8, seed=1), zs(0.1, dataset="other")],   # 0.7 (other dataset ignored)
        "a1": [zs(0.7)],
        "a2": [zs(0.7), zs(0.0, status="failed")],                           # failed records ignored
        "b0": [zs(0.2)], "b1": [zs(0.25)], "b2": [zs(0.15)],
    }
    control = dict(arms=ARMS, criteria=[dict(name="zs", task="zeroshot", dataset="m5", metric="accuracy",
                                             checks=[dict(arm="A", min=0.45), dict(separates=("A", "B"))])])
    report = evaluate_control(control, records)
    assert report.values["zs"]["A"].values == pytest.approx((0.7, 0.7, 0.7))
    assert report.values["zs"]["B"].mean == pytest.approx(0.2)
    assert [c.verdict for c in report.checks] == ["pass", "pass"] and report.passed
    text = format_report(report, "alignment control")
    assert "PASS" in text and "A - 2sd > B + 2sd" in text
    js = report.to_json()
    assert js["passed"] and js["counts"] == {"pass": 2, "fail": 0, "undetermined": 0}


def test_fraction_and_variant_select_records(make_measured):
    measured = make_measured
    c = Criterion("x", "cls_linear", "chexpert", "auroc_macro", (dict(arm="A", min=0),), fraction=0.1)
    assert c.matches(measured(fraction=0.1)) and not c.matches(measured(fraction=1.0))
    v = Criterion("x", "probes", "p", "accuracy", (dict(arm="A", min=0),), variant="zeroshot")
    assert v.matches(measured(task="probes", dataset="p", variant="zeroshot"))
    assert not v.matches(measured(task="probes", dataset="p", variant="linear"))


@pytest.mark.parametrize("entry, message", [
    (dict(name="x", task="t", dataset="d", metric="m", checks=[dict(arm="Z", min=0)]), "unknown arm 'Z'"),
    (dict(name="x", task="t", dataset="d", metric="m", checks=[dict(arm="A", least=0)]), "exactly one of"),
    (dict(name="x", task="t", dataset="d", metric="m", checks=[dict(arm="A", near=0.5)]), "tol="),
    (dict(name="x", task="t", dataset="d", metric="m", checks=[dict(separates=("A",))]), "two arms"),
    (dict(name="x", task="t", dataset="d", checks=[dict(arm="A", min=0)]), "missing key"),
    (dict(name="x", task="t", dataset="d", metric="m", checks=[dict(arm="A", min=0)], split="test"), "unknown key"),
])
def test_bad_criteria_name_the_problem(entry, message):
    with pytest.raises(ConfigError, match=message):
        Criterion.from_config(entry, ARMS)
