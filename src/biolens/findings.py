"""The result types of every doctor check: a ``Finding`` per check and a ``Report`` that collects them."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "warn", "fail"]
ORDER = {"pass": 0, "warn": 1, "fail": 2}


@dataclass
class Finding:
    """One check: ``name``, ``status`` (pass | warn | fail), what was seen (``detail``) and what to do (``fix``)."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in ORDER:
            raise ValueError(f"status {self.status!r}; expected pass, warn or fail")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/Inf → None, numpy scalars → Python, tuples → lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Report:
    """The findings of one doctor command, plus tables for display (e.g. per-stage shapes)."""

    kind: str  # data | model | run | checklist
    subject: str
    findings: list[Finding] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, finding: Finding) -> Finding:
        self.findings.append(finding)
        return finding

    @property
    def status(self) -> Status:
        worst = max((ORDER[f.status] for f in self.findings), default=0)
        return next(s for s, v in ORDER.items() if v == worst)  # type: ignore[return-value]

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "warn"]

    def get(self, name: str) -> Finding:
        for f in self.findings:
            if f.name == name:
                return f
        raise KeyError(f"no check named {name!r}; checks: {', '.join(f.name for f in self.findings)}")

    def exit_code(self) -> int:
        """0 when nothing failed, 1 when any check failed (DESIGN: doctor uses exit 1 for failed checks)."""
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return _clean({"kind": self.kind, "subject": self.subject, "status": self.status,
                       "findings": [asdict(f) for f in self.findings], "tables": self.tables})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
