"""Text rendering of expression-check reports: a table per point and a one-line verdict.

>>> import diffcheck as dc
>>> print(render_report(dc.check_expression("x**2*y + y", at="x=2,y=3")).splitlines()[-1])
OK: all 4 engines agree at 1 point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .report import PointResult, Report

MAX_ROWS = 60  #: entries shown per table before eliding


def fmt(v: float) -> str:
    if v is None or not np.isfinite(v):
        return str(v)
    return f"{v:.12g}"


def entry_name(kind: str, idx: tuple[int, ...], variables: list[str], vector: bool) -> str:
    f = f"f{idx[0] + 1}" if vector else "f"
    if kind == "jacobian":
        return f"d{f}/d{variables[idx[1]]}"
    return f"d2{f}/d{variables[idx[1]]}d{variables[idx[2]]}"


def _cell(p: PointResult, engine: str, kind: str, idx: tuple[int, ...]) -> str:
    value = p.values[engine][kind][idx]
    if engine not in p.errors:
        return fmt(value)
    err = p.errors[engine][kind][idx]
    if not (np.isfinite(value) and np.isfinite(err)):
        return "not resolved"
    return f"{fmt(value)} ±{err:.1e}"


def _indices(report: Report, kind: str) -> list[tuple[int, ...]]:
    m, n = report.outputs, len(report.variables)
    if kind == "jacobian":
        return [(j, i) for j in range(m) for i in range(n)]
    return [(j, a, b) for j in range(m) for a in range(n) for b in range(a, n)]


def render_formulas(report: Report) -> list[str]:
    lines = []
    for kind in ("jacobian", "hessian") if report.hessian else ("jacobian",):
        title = {"jacobian": "Jacobian" if report.vector else "gradient",
                 "hessian": "Hessian"}[kind]
        lines.append(f"symbolic {title}:")
        for idx in _indices(report, kind)[:MAX_ROWS]:
            formula = report.formulas[kind]
            for i in idx:
                formula = formula[i]
            lines.append(f"  {entry_name(kind, idx, report.variables, report.vector)} = "
                         f"{formula}")
    return lines


def render_point(report: Report, p: PointResult, number: int) -> list[str]:
    at = ", ".join(f"{k}={fmt(v)}" for k, v in p.at.items())
    value = ", ".join(fmt(v) for v in p.value)
    lines = [f"point {number} of {len(report.points)}: {at}   f = "
             f"{'[' + value + ']' if report.vector else value}"]
    engines = list(p.values)
    rows = []
    for kind in p.values[engines[0]]:
        for idx in _indices(report, kind)[:MAX_ROWS]:
            cells = [entry_name(kind, idx, report.variables, report.vector)]
            cells += [_cell(p, e, kind, idx) for e in engines]
            rows.append(cells)
    table = [["entry", *engines], *rows]
    widths = [max(len(r[c]) for r in table) + 2 for c in range(len(table[0]))]
    for r in table:
        lines.append("  " + "".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    errs = ", ".join(f"{e} {v:.2g}" for e, v in p.verdict.errors.items()
                     if e != p.verdict.reference)
    lines.append(f"  max relative error vs {p.verdict.reference}: {errs}   "
                 f"{'OK' if p.ok else 'MISMATCH'}")
    lines += _conditioning_lines(report, p)
    for m in p.verdict.mismatches[:10]:
        name = entry_name(m.kind, m.index, report.variables, report.vector)
        lines.append(f"  ! {m.engine} {name}"
                     f" = {fmt(m.value)}, {p.verdict.reference} says {fmt(m.reference)} "
                     f"(difference {abs(m.value - m.reference):.3g}, allowed {m.allowed:.3g})")
    return lines


def _conditioning_lines(report: Report, p: PointResult) -> list[str]:
    """What float64 can be trusted with at this point, and what was not resolved."""
    lines = []
    if p.ill_conditioned:
        lost = "all" if p.digits_lost >= 15.95 else f"{p.digits_lost:.0f}"
        how = ("symbolic is evaluated with 50+ digits, the float64 engines carry the rounding "
               "shown as ±" if p.precise else
               "every engine computes in float64 and carries the rounding shown as ±")
        lines.append(f"  ill-conditioned: float64 loses {lost} of its 16 digits here "
                     "(cancellation, or overflow on the way);")
        lines.append(f"    {how}")
        if p.verdict.rounding_limited:
            who = ", ".join(p.verdict.rounding_limited)
            lines.append(f"  {who} agree{'s' if len(p.verdict.rounding_limited) == 1 else ''}"
                         f" with {p.verdict.reference} only within that rounding")
    names = [report.entry(kind, idx)
             for kind, idx in p.verdict.unresolved_by(finite=True).get("finite", [])]
    if names:
        lines.append(f"  not resolved by finite differences (not compared): "
                     f"{', '.join(names[:6])}{' ...' if len(names) > 6 else ''}")
    for engine, entries in p.verdict.unresolved_by(finite=False).items():
        names = [report.entry(kind, idx) for kind, idx in entries]
        lines.append(f"  not resolved by {engine} (float64 overflows or underflows on the way;"
                     f" not compared): {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}")
    return lines


def verdict_line(report: Report) -> str:
    n = len(report.points)
    pts = f"{n} point{'s' if n != 1 else ''}"
    if all(p.ok for p in report.points):
        return f"OK: all {len(report.engines)} engines agree at {pts}{_caveats(report)}."

    bad = [(i, p) for i, p in enumerate(report.points, 1) if not p.ok]
    i, p = bad[0]
    m = max(p.verdict.mismatches, key=lambda m: m.relative)
    who = ", ".join(p.verdict.disagreeing)
    entry = entry_name(m.kind, m.index, report.variables, report.vector)
    return (f"DISAGREE: {who} differ{'s' if len(p.verdict.disagreeing) == 1 else ''} from "
            f"{p.verdict.reference} at {len(bad)} of {pts}; worst at point {i}, {entry}: "
            f"{fmt(m.value)} vs {fmt(m.reference)} (relative error {m.relative:.2g}).")


def _caveats(report: Report) -> str:
    """What an OK verdict does not cover: float64 rounding at ill-conditioned points,
    entries finite differences could not resolve."""
    parts = []
    ill = [i for i, p in enumerate(report.points, 1) if p.ill_conditioned]
    if ill:
        limited = sorted({e for p in report.points for e in p.verdict.rounding_limited},
                         key=list(report.engines).index)
        where = f"point{'s' if len(ill) > 1 else ''} {', '.join(map(str, ill[:5]))}"
        lost = max(report.points[i - 1].digits_lost for i in ill)
        lost_text = "all 16" if lost >= 15.95 else f"{lost:.0f}"
        parts.append((f"{', '.join(limited)} only within their float64 rounding (±) at "
                      if limited else "float64 rounding shown (±) at ") +
                     f"{where}, where float64 loses {lost_text} digits")
    unresolved = sum(len(p.verdict.unresolved_by(finite=True).get("finite", []))
                     for p in report.points)
    if unresolved:
        parts.append(f"finite differences could not resolve {unresolved} "
                     f"entr{'ies' if unresolved > 1 else 'y'}, not compared")
    lost = sorted({e for p in report.points for e in p.verdict.unresolved_by(finite=False)},
                  key=list(report.engines).index)
    if lost:
        parts.append(f"{', '.join(lost)} not compared where float64 overflows on the way")
    return f"; {'; '.join(parts)}" if parts else ""


def render_report(report: Report) -> str:
    from .claims.text import claim_lines, summary_line

    lines: list[Any] = [f"expression: {report.expression}",
                        f"variables:  {', '.join(report.variables) or '(none)'}",
                        f"engines:    {', '.join(report.engines)}", ""]
    lines += claim_lines(report)
    lines += render_formulas(report)
    for i, p in enumerate(report.points, 1):
        lines.append("")
        lines += render_point(report, p, i)
    lines += [""] + [f"note: {n}" for n in report.notes]
    lines.append(verdict_line(report))
    lines.append(summary_line(report))
    return "\n".join(line for line in lines if line is not None)
