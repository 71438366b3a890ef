"""Reports of expression checks: the JSON contract (``to_dict``) and the text table.

>>> import diffcheck as dc
>>> r = dc.check_expression("x**2*y + y", at={"x": 2, "y": 3})
>>> r.ok, r.to_dict()["points"][0]["engines"]["forward"]["gradient"]
(True, [12.0, 5.0])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .compare import Verdict

SUMMARY_CHARS = 400  #: formulas longer than this are summarised in text and JSON


@dataclass
class PointResult:
    """Everything computed at one point."""

    at: dict[str, float]
    value: np.ndarray  # (m,)
    values: dict[str, dict[str, np.ndarray]]  # engine -> kind -> array (m, n[, n])
    errors: dict[str, dict[str, np.ndarray]]  # engine -> kind -> estimated absolute error
    verdict: Verdict
    ill_conditioned: bool = False  # float64 loses more digits here than the tolerance allows
    digits_lost: float = 0.0  # decimal digits float64 loses in f or a derivative here
    precise: bool = False  # the symbolic values were computed with 50+ digits

    @property
    def ok(self) -> bool:
        return self.verdict.ok


@dataclass
class Report:
    """Result of :func:`diffcheck.check_expression`; ``bool(report)`` is ``report.ok``."""

    expression: str
    variables: list[str]
    vector: bool
    formulas: dict[str, Any]  # "jacobian": [[str]], "hessian": [[[str]]]
    engines: list[str]
    points: list[PointResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    claims: list[Any] = field(default_factory=list)  # claims.ClaimResult, one per claim

    @property
    def outputs(self) -> int:
        return len(self.formulas["jacobian"])

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.points) and all(c.ok for c in self.claims)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def hessian(self) -> bool:
        return "hessian" in self.formulas

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``diffcheck expr --json`` (see ARCHITECTURE.md)."""
        key = "jacobian" if self.vector else "gradient"
        sym: dict[str, Any] = {key: _shape_out(self.formulas["jacobian"], self.vector)}
        if self.hessian:
            sym["hessian"] = _shape_out(self.formulas["hessian"], self.vector)
        doc = {
            "expression": self.expression,
            "variables": list(self.variables),
            "outputs": self.outputs,
            "ok": self.ok,
            "symbolic": sym,
            "points": [self._point_dict(p) for p in self.points],
        }
        if self.claims:
            doc["claims"] = [c.to_dict() for c in self.claims]
        return doc

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    def _point_dict(self, p: PointResult) -> dict[str, Any]:
        key = "jacobian" if self.vector else "gradient"
        engines = {}
        for name, kinds in p.values.items():
            d = {key: _shape_out(_floats(kinds["jacobian"]), self.vector)}
            if "hessian" in kinds:
                d["hessian"] = _shape_out(_floats(kinds["hessian"]), self.vector)
            if name in p.errors:
                d[f"{key}_error"] = _shape_out(_floats(p.errors[name]["jacobian"]), self.vector)
                if "hessian" in p.errors[name]:
                    d["hessian_error"] = _shape_out(_floats(p.errors[name]["hessian"]),
                                                    self.vector)
            engines[name] = d
        value = _floats(p.value)
        out = {
            "at": {k: float(v) for k, v in p.at.items()},
            "value": value if self.vector else value[0],
            "ok": p.ok,
            "engines": engines,
            "errors": {k: _finite(v) for k, v in p.verdict.errors.items()},
            "reference": p.verdict.reference,
            "disagreeing": p.verdict.disagreeing,
        }
        if p.ill_conditioned:  # float64 cannot be trusted here: the keys appear only then
            out["ill_conditioned"] = True
            out["digits_lost"] = round(p.digits_lost, 1)
        finite = p.verdict.unresolved_by(finite=True).get("finite", [])
        if finite:
            out["unresolved"] = [self.entry(kind, idx) for kind, idx in finite]
        lost = p.verdict.unresolved_by(finite=False)
        if lost:  # float64 over/underflowed on the way: not compared
            out["unresolved_float64"] = {e: [self.entry(kind, idx) for kind, idx in v]
                                         for e, v in lost.items()}
        return out

    def entry(self, kind: str, idx: tuple[int, ...]) -> str:
        """An entry's name: ``df/dx``, ``df2/dy``, ``d2f/dxdy``."""
        f = f"f{idx[0] + 1}" if self.vector else "f"
        if kind == "jacobian":
            return f"d{f}/d{self.variables[idx[1]]}"
        return f"d2{f}/d{self.variables[idx[1]]}d{self.variables[idx[2]]}"

    # -- text ----------------------------------------------------------------------------------
    def __str__(self) -> str:
        from .render import render_report

        return render_report(self)


def _shape_out(x: Any, vector: bool) -> Any:
    """Scalar functions drop the output axis (gradient [n], hessian [n][n])."""
    return x if vector else x[0]


def _finite(v: float) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def _floats(a: Any) -> Any:
    arr = np.asarray(a, dtype=float)
    if np.all(np.isfinite(arr)):
        return arr.tolist()
    return np.where(np.isfinite(arr), arr, None).tolist()


def summarise(formula: str) -> str:
    """Long formulas are cut in the middle, keeping their size visible."""
    if len(formula) <= SUMMARY_CHARS:
        return formula
    half = SUMMARY_CHARS // 2
    return f"{formula[:half]} ... [{len(formula):,} characters] ... {formula[-half // 2:]}"
