"""Hard points through the CLI: domain edges, poles, kinks, oscillation, cancellation, extremes.

Run: ``python benchmarks/hard_points.py`` (``--json`` for machine-readable rows). Each point
runs ``diffcheck expr EXPR --at POINT --json`` in-process (the CLI path, exit status
included) and prints one row per gradient entry: the verdict, the finite-difference value
and its bar, a 50-digit reference (the symbolic derivative evaluated with mpmath, separately
from the run), whether the bar covers it, and whether the point was flagged ill-conditioned.

Done when: no row says DISAGREE, and every resolved finite bar covers the reference.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diffcheck.check import Function  # noqa: E402
from diffcheck.cli import main  # noqa: E402
from diffcheck.engines import symbolic  # noqa: E402

#: (expression, point, what makes it hard)
POINTS = [
    # edges of every rule-table row with a domain (an edge 1e-4 .. 1e-300 away)
    ("sqrt(x)", "x=1e-4", "sqrt: edge at 0"),
    ("sqrt(x)", "x=1e-300", "sqrt: edge 1e-300 away"),
    ("log(x)", "x=1e-6", "log: edge at 0"),
    ("log(x)**2", "x=1e-300", "log: edge 1e-300 away"),
    ("asin(x)", "x=0.9999", "asin: edge at 1"),
    ("acos(x)", "x=-0.99999999", "acos: edge at -1"),
    ("acosh(x)", "x=1.0000000001", "acosh: edge at 1"),
    ("atanh(x)", "x=-0.999999", "atanh: edge at -1"),
    ("x**2.5", "x=1e-9", "pow: base > 0 (non-integer exponent)"),
    ("x**-0.5", "x=1e-200", "pow: negative exponent near 0"),
    ("x**(-2)", "x=3e-5", "pow: integer exponent, pole at 0"),
    ("x**y", "x=1e-8,y=1.5", "pow: varying exponent, base > 0"),
    ("1/x", "x=1e-150", "div: pole 1e-150 away"),
    ("1/(x - 2)", "x=2.0000001", "div: pole 1e-7 away"),
    ("tan(x)", "x=1.5707", "tan: pole 9.6e-5 away"),
    ("tan(x)", "x=1.5707963267948966", "tan: pole within one float"),
    ("atan2(y, x)", "x=-1,y=1e-9", "atan2: branch cut 1e-9 away"),
    ("abs(x)", "x=1e-12", "abs: kink 1e-12 away"),
    ("abs(x - 1)", "x=0.999999999999999", "abs: kink 9 floats away"),
    ("sign(x)*x**2", "x=-1e-9", "sign: jump 1e-9 away"),
    # kinks in combinations
    ("abs(sin(x))", "x=3.14159265358", "abs(sin): kink 9.8e-12 away"),
    ("abs(x)*x", "x=-1e-12", "abs*x: kink in f'' only"),
    ("sqrt(x**2 + y**2)", "x=1e-9,y=-2e-9", "norm: cone tip 2e-9 away"),
    # oscillation up to 1e6 rad per unit
    ("sin(3e4*x)", "x=0.3", "oscillation 3e4"),
    ("sin(1e6*x)", "x=0.3", "oscillation 1e6"),
    ("cos(1e5*x)*exp(x)", "x=-0.7", "oscillation 1e5 times exp"),
    ("sin(x**2)", "x=1000", "chirp: 2e3 rad per unit"),
    ("sin(x)", "x=1e6", "unit-scale oscillation at 1e6"),
    ("sin(x)", "x=1e300", "unit-scale oscillation at 1e300 (floats 1e284 apart)"),
    # cancellation
    ("(exp(x) - 1 - x)/x**2", "x=1e-5", "cancellation: 16 digits"),
    ("(1 - cos(x))/x**2", "x=1e-4", "cancellation: 16 digits"),
    ("(sqrt(1 + x) - 1)/x", "x=1e-12", "cancellation"),
    ("log(1 + x)/x", "x=1e-10", "cancellation"),
    ("(x - sin(x))/x**3", "x=1e-3", "cancellation"),
    ("exp(x) - exp(y)", "x=1,y=1.0000000000001", "cancellation in f only"),
    # |x| from 1e-300 to 1e300
    ("log(x)", "x=1e300", "large x"),
    ("x/(1 + x)", "x=1e300", "large x, f' = 1e-600 underflows"),
    ("atan(x)", "x=1e150", "large x, f' = 1e-300"),
    ("x**3", "x=1e100", "large f"),
    ("exp(x)", "x=700", "f near overflow"),
    ("sinh(x)/cosh(x)", "x=20", "saturation"),
    ("x*log(x)", "x=1e-300", "tiny x, large log"),
    ("exp(-1/x**2)", "x=0.05", "flat function, f = 1e-174"),
    ("sigmoid(x)", "x=-700", "tiny f, tiny f'"),
    ("softplus(x)", "x=800", "large x, no overflow"),
    ("erf(x)", "x=5", "f' = 1e-11"),
    # derivatives that overflow: bad input (exit 2)
    ("1/x", "x=1e-300", "df/dx = -1e600 overflows"),
]


def run(expr: str, at: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["expr", expr, "--at", at, "--json"])
    return code, out.getvalue(), err.getvalue()


def reference(expr: str, at: str) -> list[float]:
    """The gradient at 50 digits (the symbolic formulas, evaluated with mpmath)."""
    fn = Function.from_text(expr)
    point = dict(part.split("=") for part in at.split(","))
    X = np.array([[float(point[v]) for v in fn.variables]])
    d = symbolic.derive(fn.exprs, fn.variables)
    vals = symbolic.precise_values(d.jacobian[0], fn.variables, X)
    return [float(v) for v in vals[0]]


def rows() -> list[dict]:
    out = []
    for expr, at, why in POINTS:
        t0 = time.perf_counter()
        code, text, err = run(expr, at)
        seconds = time.perf_counter() - t0
        if code == 2:
            out.append({"expr": expr, "at": at, "why": why, "exit": code, "verdict": "bad input",
                        "message": err.strip().splitlines()[0], "seconds": seconds})
            continue
        doc = json.loads(text)
        point = doc["points"][0]
        fd = point["engines"]["finite"]
        want = reference(expr, at)
        for i, name in enumerate(doc["variables"]):
            value, bar = fd["gradient"][i], fd["gradient_error"][i]
            resolved = value is not None and bar is not None
            covered = (abs(value - want[i]) <= bar) if resolved else None
            out.append({"expr": expr, "at": at, "why": why, "exit": code,
                        "verdict": "OK" if point["ok"] else "DISAGREE",
                        "entry": f"df/d{name}", "finite": value, "bar": bar,
                        "reference": want[i], "covered": covered,
                        "ill": bool(point.get("ill_conditioned", False)),
                        "digits_lost": point.get("digits_lost"), "seconds": seconds})
    return out


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.10g}"


def table(rs: list[dict]) -> str:
    head = ["expression", "point", "exit", "verdict", "entry", "finite ± bar",
            "50-digit reference", "covered", "ill-cond."]
    lines = []
    for r in rs:
        if r["verdict"] == "bad input":
            lines.append([r["expr"], r["at"], str(r["exit"]), "bad input", "", "",
                          r["message"].removeprefix("diffcheck: error: ")[:60], "", ""])
            continue
        fd = "not resolved" if r["covered"] is None else f"{_num(r['finite'])} ± {r['bar']:.1e}"
        cov = "n/a" if r["covered"] is None else ("yes" if r["covered"] else "NO")
        ill = f"yes ({r['digits_lost']:.0f} digits)" if r["ill"] else "no"
        lines.append([r["expr"], r["at"], str(r["exit"]), r["verdict"], r["entry"], fd,
                      _num(r["reference"]), cov, ill])
    widths = [max(len(x[c]) for x in [head, *lines]) for c in range(len(head))]
    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(x) for x in lines])


def summary(rs: list[dict]) -> str:
    points = len(POINTS)
    disagree = sum(r["verdict"] == "DISAGREE" for r in rs)
    missed = sum(r.get("covered") is False for r in rs)
    unresolved = sum(r.get("covered") is None and r["verdict"] != "bad input" for r in rs)
    ill = len({(r["expr"], r["at"]) for r in rs if r.get("ill")})
    return (f"{points} points, {len(rs)} rows: {disagree} DISAGREE, {missed} bars that miss the "
            f"50-digit reference, {unresolved} entries not resolved (not compared), {ill} "
            f"points flagged ill-conditioned")


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rs = rows()
    if args.json:
        print(json.dumps(rs, indent=1))
    else:
        print(table(rs))
        print()
        print(summary(rs))
    bad = any(r["verdict"] == "DISAGREE" or r.get("covered") is False for r in rs)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main_())
