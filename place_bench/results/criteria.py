"""Pass criteria of a controlled experiment over its arms (the alignment control, datasets.md 4.9).

An *arm* is a list of methods trained alike but for one factor (aligned vs shuffled pairs, ...),
usually one method per pretraining seed. A *criterion* names one metric of one (task, dataset)
-- optionally one label fraction and one result variant -- and a list of checks. Each method's
value is the mean of that metric over its records' evaluation seeds; an arm is summarized by the
mean and the sample standard deviation (``ddof=1``) of its methods' values. Checks::

    dict(arm="A", min=0.45)                  mean(A) >= 0.45
    dict(arm="B", max=0.30)                  mean(B) <= 0.30
    dict(arm="B", near=0.20, tol=0.05)       |mean(B) - 0.20| <= 0.05
    dict(exceeds=("A", "B"), by=0.08)        mean(A) - mean(B) >= 0.08   (by=0: strictly greater)
    dict(separates=("A", "B"), k=2.0)        mean(A) - k sd(A) > mean(B) + k sd(B)

A check whose arms have no values, or a separation with fewer than two values in an arm (no
s.d.), is ``undetermined``, never ``pass``. Everything here is pure: records in, report out.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, Sequence

CHECK_KINDS = ("min", "max", "near", "exceeds", "separates")


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One metric of one evaluation and the checks on it (see the module docstring)."""

    name: str
    task: str
    dataset: str
    metric: str
    checks: tuple[dict, ...]
    fraction: float | None = None
    variant: str | None = None

    @staticmethod
    def from_config(entry: Mapping[str, Any], arms: Iterable[str]) -> "Criterion":
        from place_bench.config import ConfigError

        entry = dict(entry)
        where = f"control.criteria[{entry.get('name', '?')}]"
        missing = [k for k in ("name", "task", "dataset", "metric", "checks") if not entry.get(k)]
        if missing:
            raise ConfigError(f"{where}: missing key(s) {missing}")
        unknown = sorted(set(entry) - {f.name for f in dataclasses.fields(Criterion)})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}")
        arms = set(arms)
        for check in entry["checks"]:
            kind = _kind(check, where)
            named = [check["arm"]] if kind in ("min", "max", "near") else list(check[kind])
            if kind in ("exceeds", "separates") and len(named) != 2:
                raise ConfigError(f"{where}: {kind} takes two arms, got {named}")
            if kind == "near" and "tol" not in check:
                raise ConfigError(f"{where}: a near check needs tol=")
            for arm in named:
                if arm not in arms:
                    raise ConfigError(f"{where}: unknown arm {arm!r}; arms: {sorted(arms)}")
        fraction = entry.get("fraction")
        return Criterion(name=str(entry["name"]), task=str(entry["task"]), dataset=str(entry["dataset"]),
                         metric=str(entry["metric"]), checks=tuple(dict(c) for c in entry["checks"]),
                         fraction=None if fraction is None else float(fraction), variant=entry.get("variant"))

    def matches(self, record: Mapping[str, Any]) -> bool:
        if record.get("task") != self.task or record.get("dataset") != self.dataset:
            return False
        if self.variant is not None and record.get("variant") != self.variant:
            return False
        if self.fraction is not None and (record.get("fraction") is None
                                          or not math.isclose(float(record["fraction"]), self.fraction)):
            return False
        return True


def _kind(check: Mapping[str, Any], where: str = "control") -> str:
    from place_bench.config import ConfigError

    kinds = [k for k in CHECK_KINDS if k in check]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: a check names exactly one of {CHECK_KINDS}: {dict(check)}")
    if kinds[0] in ("min", "max", "near") and "arm" not in check:
        raise ConfigError(f"{where}: a {kinds[0]} check needs arm=: {dict(check)}")
    return kinds[0]


@dataclasses.dataclass(frozen=True)
class ArmSummary:
    """Values of one arm (one per method, in the arm's method order; None: no record)."""

    values: tuple[float | None, ...]

    @property
    def present(self) -> list[float]:
        return [v for v in self.values if v is not None]

    @property
    def mean(self) -> float:
        vals = self.present
        return sum(vals) / len(vals) if vals else math.nan

    @property
    def sd(self) -> float:
        vals = self.present
        if len(vals) < 2:
            return math.nan
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))

    def text(self) -> str:
        if not self.present:
            return "no records"
        sd = "" if math.isnan(self.sd) else f" ± {self.sd:.3f}"
        return f"{self.mean:.3f}{sd} (n={len(self.present)})"


@dataclasses.dataclass
class CheckResult:
    criterion: str
    check: str          # the rule in words, e.g. "A - 2sd > B + 2sd"
    observed: str       # the figures the verdict rests on
    verdict: str        # pass | fail | undetermined
    margin: float | None = None   # how far past (>0) or short of (<0) the threshold


@dataclasses.dataclass
class ControlReport:
    arms: dict[str, dict[str, Any]]                  # arm -> {label, methods}
    values: dict[str, dict[str, ArmSummary]]         # criterion -> arm -> summary
    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.verdict == "pass" for c in self.checks)

    def count(self, verdict: str) -> int:
        return sum(1 for c in self.checks if c.verdict == verdict)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "counts": {v: self.count(v) for v in ("pass", "fail", "undetermined")},
            "arms": self.arms,
            "values": {c: {a: {"values": list(s.values), "mean": _finite(s.mean), "sd": _finite(s.sd)}
                           for a, s in per.items()} for c, per in self.values.items()},
            "checks": [dataclasses.asdict(c) for c in self.checks],
        }


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def method_value(records: Sequence[Mapping[str, Any]], criterion: Criterion) -> float | None:
    """Mean over evaluation seeds of ``criterion.metric`` in the ok records that match it."""
    vals = []
    for rec in records:
        if rec.get("status") != "ok" or not criterion.matches(rec):
            continue
        value = ((rec.get("metrics") or {}).get(criterion.metric) or {}).get("value")
        if value is not None:
            vals.append(float(value))
    return sum(vals) / len(vals) if vals else None


def summarize(records_by_method: Mapping[str, Sequence[Mapping[str, Any]]], arms: Mapping[str, Sequence[str]],
              criterion: Criterion) -> dict[str, ArmSummary]:
    """Arm -> summary of ``criterion`` (``records_by_method``: method name -> its records)."""
    return {arm: ArmSummary(tuple(method_value(records_by_method.get(m, ()), criterion) for m in methods))
            for arm, methods in arms.items()}


def judge(check: Mapping[str, Any], summaries: Mapping[str, ArmSummary], criterion: str) -> CheckResult:
    """The verdict of one check on the arms' summaries."""
    kind = _kind(check)
    if kind in ("min", "max", "near"):
        arm = check["arm"]
        s = summaries[arm]
        observed = f"{arm} {s.text()}"
        if not s.present:
            return CheckResult(criterion, _rule_text(check), observed, "undetermined")
        if kind == "min":
            margin = s.mean - float(check["min"])
        elif kind == "max":
            margin = float(check["max"]) - s.mean
        else:
            margin = float(check["tol"]) - abs(s.mean - float(check["near"]))
        return CheckResult(criterion, _rule_text(check), observed, "pass" if margin >= 0 else "fail", margin)
    a, b = check[kind]
    sa, sb = summaries[a], summaries[b]
    observed = f"{a} {sa.text()}; {b} {sb.text()}"
    if kind == "exceeds":
        if not sa.present or not sb.present:
            return CheckResult(criterion, _rule_text(check), observed, "undetermined")
        by = float(check.get("by", 0.0))
        margin = (sa.mean - sb.mean) - by
        ok = margin > 0 if by == 0 else margin >= 0
        return CheckResult(criterion, _rule_text(check), observed, "pass" if ok else "fail", margin)
    k = float(check.get("k", 2.0))
    if len(sa.present) < 2 or len(sb.present) < 2:
        return CheckResult(criterion, _rule_text(check), observed + " (a separation needs >= 2 seeds per arm)",
                           "undetermined")
    margin = (sa.mean - k * sa.sd) - (sb.mean + k * sb.sd)
    return CheckResult(criterion, _rule_text(check), observed, "pass" if margin > 0 else "fail", margin)


def _rule_text(check: Mapping[str, Any]) -> str:
    kind = _kind(check)
    if kind == "min":
        return f"{check['arm']} >= {check['min']}"
    if kind == "max":
        return f"{check['arm']} <= {check['max']}"
    if kind == "near":
        return f"{check['arm']} within {check['near']} ± {check['tol']}"
    a, b = check[kind]
    if kind == "exceeds":
        by = float(check.get("by", 0.0))
        return f"{a} - {b} >= {by}" if by else f"{a} > {b}"
    k = float(check.get("k", 2.0))
    return f"{a} - {k:g}sd > {b} + {k:g}sd"


def evaluate_control(control: Mapping[str, Any], records_by_method: Mapping[str, Sequence[Mapping[str, Any]]]
                     ) -> ControlReport:
    """Judge every criterion of a ``control`` section (``arms`` and ``criteria``)."""
    arms_cfg = parse_arms(control)
    arms = {name: arm["methods"] for name, arm in arms_cfg.items()}
    criteria = [Criterion.from_config(c, arms) for c in control.get("criteria") or []]
    values, checks = {}, []
    for criterion in criteria:
        per_arm = summarize(records_by_method, arms, criterion)
        values[criterion.name] = per_arm
        checks += [judge(check, per_arm, criterion.name) for check in criterion.checks]
    return ControlReport(arms=arms_cfg, values=values, checks=checks)


CONTROL_KEYS = ("title", "arms", "criteria", "out")


def parse_arms(control: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``control.arms``: arm -> ``dict(label=..., methods=[...])`` (validated)."""
    from place_bench.config import ConfigError

    arms = control.get("arms")
    if not isinstance(arms, Mapping) or not arms:
        raise ConfigError("control.arms: name the arms, e.g. dict(A=dict(label='aligned', methods=[...]))")
    out = {}
    for name, arm in arms.items():
        if not isinstance(arm, Mapping) or not arm.get("methods"):
            raise ConfigError(f"control.arms[{name}]: needs methods=[...]")
        unknown = sorted(set(arm) - {"label", "methods"})
        if unknown:
            raise ConfigError(f"control.arms[{name}]: unknown key(s) {unknown}")
        out[str(name)] = {"label": str(arm.get("label", name)), "methods": [str(m) for m in arm["methods"]]}
    return out


def format_report(report: ControlReport, title: str = "control") -> str:
    """A plain-text table: arms, then one line per check with its verdict."""
    lines = [f"{title}: " + "; ".join(f"{a} = {arm['label']} ({len(arm['methods'])} runs)"
                                               for a, arm in report.arms.items())]
    width = max([len(c.criterion) for c in report.checks] + [9])
    rule_w = max([len(c.check) for c in report.checks] + [4])
    for c in report.checks:
        margin = "" if c.margin is None else f"  margin {c.margin:+.3f}"
        lines.append(f"  {c.verdict.upper():<12} {c.criterion:<{width}}  {c.check:<{rule_w}}  {c.observed}{margin}")
    verdict = "PASS" if report.passed else "FAIL"
    lines.append(f"{title}: {verdict} ({report.count('pass')} pass, {report.count('fail')} fail, "
                 f"{report.count('undetermined')} undetermined of {len(report.checks)} checks)")
    return "\n".join(lines)
