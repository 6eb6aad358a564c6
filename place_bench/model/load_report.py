"""What a foreign-checkpoint load did, key by key, and when it must be refused.

Key conventions: *suite keys* are the state-dict keys of the suite model
(``image_encoder.model.conv1.weight``, ``text_encoder.model.embeddings...``,
``image_projection.layers.0.weight``); *file keys* are the foreign checkpoint's keys after the
adapter stripped its prefixes.

A load is refused (:class:`ImportRefusedError`) when

* any suite key is missing (not in the file and not filled by a rule the adapter declares),
  unless ``allow_missing``: those keys then keep their seeded initial values;
* any file key is unexpected (mapped by no rule and dropped by no declared reason), unless
  ``allow_unexpected``;
* any tensor's shape differs from the model's (never overridable).

Every override is recorded: in the card, in :meth:`LoadReport.summary` (which result records
carry), and the method label gets ``[partial load]`` when missing keys were allowed.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from place_bench.model.weights import PartialLoadError

ENCODER_PREFIXES = ("image_encoder.", "text_encoder.")


@dataclasses.dataclass
class LoadReport:
    """Keys loaded, filled, dropped, missing and unexpected in one foreign load.

    ``loaded``: suite keys taken from the file; ``filled``: suite key -> the declared rule that
    produced it (an expected-missing key); ``transformed``: suite key -> the declared tensor
    transform applied; ``dropped``: file key -> declared reason (an expected-unexpected key);
    ``missing``: suite keys nothing provides; ``unexpected``: file keys nothing explains (with
    the suite key a rule mapped them to, if any); ``mismatched``: ``"key: file (..) vs model (..)"``.
    """

    adapter: str
    loaded: list[str] = dataclasses.field(default_factory=list)
    filled: dict[str, str] = dataclasses.field(default_factory=dict)
    transformed: dict[str, str] = dataclasses.field(default_factory=dict)
    dropped: dict[str, str] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    mismatched: list[str] = dataclasses.field(default_factory=list)
    allow_missing: bool = False
    allow_unexpected: bool = False

    @property
    def missing_encoder(self) -> list[str]:
        return [k for k in self.missing if k.startswith(ENCODER_PREFIXES)]

    @property
    def missing_other(self) -> list[str]:
        return [k for k in self.missing if not k.startswith(ENCODER_PREFIXES)]

    @property
    def overrides(self) -> list[str]:
        """The overrides that changed the outcome (a flag with nothing to override is not one)."""
        out = []
        if self.allow_missing and self.missing:
            out.append("allow_missing")
        if self.allow_unexpected and self.unexpected:
            out.append("allow_unexpected")
        return out

    def counts(self) -> dict[str, int]:
        return {"loaded": len(self.loaded), "filled": len(self.filled), "transformed": len(self.transformed),
                "dropped": len(self.dropped), "missing": len(self.missing), "missing_encoder": len(self.missing_encoder),
                "unexpected": len(self.unexpected), "mismatched": len(self.mismatched)}

    def problems(self) -> list[str]:
        """Why the load must be refused (empty: it may proceed)."""
        out = []
        if self.mismatched:
            out.append(f"{len(self.mismatched)} shape mismatches: {_listing(self.mismatched)}")
        if self.missing_encoder and not self.allow_missing:
            out.append(f"{len(self.missing_encoder)} encoder weights missing: {_listing(self.missing_encoder)}")
        if self.missing_other and not self.allow_missing:
            out.append(f"{len(self.missing_other)} head weights missing: {_listing(self.missing_other)}")
        if self.unexpected and not self.allow_unexpected:
            out.append(f"{len(self.unexpected)} unexpected file keys: {_listing(self.unexpected)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """Everything, for the card."""
        return {"adapter": self.adapter, "counts": self.counts(), "loaded": list(self.loaded),
                "filled": dict(self.filled), "transformed": dict(self.transformed), "dropped": dict(self.dropped),
                "missing": list(self.missing), "unexpected": list(self.unexpected), "mismatched": list(self.mismatched),
                "allow_missing": self.allow_missing, "allow_unexpected": self.allow_unexpected,
                "overrides": self.overrides}

    def summary(self) -> dict[str, Any]:
        """The part result records carry: counts, every missing / unexpected / filled key, the
        dropped keys counted by reason, and the overrides (the loaded list stays in the card)."""
        return {"adapter": self.adapter, "counts": self.counts(), "missing": list(self.missing),
                "unexpected": list(self.unexpected), "filled": dict(self.filled),
                "transformed": sorted(set(self.transformed.values())),
                "dropped_by_reason": dict(Counter(self.dropped.values())),
                "allow_missing": self.allow_missing, "allow_unexpected": self.allow_unexpected,
                "overrides": self.overrides}


class ImportRefusedError(PartialLoadError):
    """A foreign load that would leave weights unset or ignore file contents; ``.report`` says which."""

    def __init__(self, message: str, report: LoadReport):
        super().__init__(message)
        self.report = report


def refuse_if_needed(report: LoadReport, source: str) -> None:
    """Raise :class:`ImportRefusedError` naming ``source`` and the offending keys, if any."""
    problems = report.problems()
    if not problems:
        return
    hints = []
    if (report.missing_encoder or report.missing_other) and not report.allow_missing:
        hints.append("--allow-missing keeps missing weights at their initial values and is recorded in the card "
                     "and every result")
    if report.unexpected and not report.allow_unexpected:
        hints.append("unexpected keys usually mean another format or architecture (--format / --arch); "
                     "--allow-unexpected ignores them and is recorded")
    raise ImportRefusedError(
        f"refusing a partial load of '{source}' with adapter {report.adapter!r}: " + "; ".join(problems)
        + (" (" + "; ".join(hints) + ")" if hints else ""),
        report,
    )


def _listing(keys: list[str], n: int = 20) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... {len(keys) - n} more" if len(keys) > n else "")
