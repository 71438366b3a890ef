"""A corpus of claimed derivatives, with the verdict and diagnosis each should get.

Right claims written differently from SymPy's output, the common mistakes of calculus courses,
claims right on part of the domain only, tiny differences float64 cannot see, and bad input.
For every case the script runs ``dc.check_expression(F, claim=...)`` and prints a table; every
counterexample is re-verified independently of diffcheck's evaluator (SymPy ``evalf`` at 50
digits, exact point, exact decimals). The summary counts verdicts right, counterexamples
verified, and diagnosable mistakes diagnosed with the expected kind.

Run: ``python benchmarks/claims_corpus.py`` (``--quiet`` prints the summary only). Exit status
1 when a verdict is wrong, a counterexample fails re-verification or fewer than 80% of the
diagnosable mistakes get the expected diagnosis.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import sympy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import diffcheck as dc  # noqa: E402
from diffcheck.claims.reading import parse_exact  # noqa: E402

RIGHT = ("proved", "agrees")


@dataclass
class Case:
    f: str
    claim: str | None
    expect: tuple[str, ...] | str  # verdicts accepted for every entry, or "bad"
    diagnosis: str | None = None  # expected kind on the first wrong entry (None: none expected)
    hessian: str | None = None
    wrt: str | None = None
    at: str | None = None
    note: str = ""


CORPUS: list[Case] = [
    # -- right, written differently from SymPy's output ------------------------------------
    Case("x**2*y + (x+y)**2", "[2*x*y + 2*(x+y), x**2 + 2*(x+y)]", RIGHT, note="notes"),
    Case("x*y*z", "[y*z, x*z, x*y]", RIGHT),
    Case("sin(x)*cos(x)", "cos(2*x)", RIGHT, note="double angle"),
    Case("sin(x)**2", "sin(2*x)", RIGHT),
    Case("exp(2*x)", "2*exp(x)**2", RIGHT),
    Case("log(x**2)", "2/x", RIGHT),
    Case("sqrt(x**2 + 1)", "x/sqrt(x**2 + 1)", RIGHT),
    Case("tan(x)", "1/cos(x)**2", RIGHT),
    Case("tanh(x)", "1/cosh(x)**2", RIGHT),
    Case("sigmoid(x)", "exp(-x)/(1 + exp(-x))**2", RIGHT),
    Case("softplus(x)", "1/(1 + exp(-x))", RIGHT),
    Case("atan(x)", "1/(1 + x**2)", RIGHT),
    Case("x**x", "x**x*(1 + log(x))", RIGHT),
    Case("log(abs(x))", "1/x", RIGHT),
    Case("abs(x)", "x/abs(x)", RIGHT),
    Case("1/(1 + x**2)", "-2*x/(1 + x**2)**2", RIGHT),
    Case("(x + 1)/(x - 1)", "-2/(x - 1)**2", RIGHT, note="quotient rule"),
    Case("2.1*x**3", "6.3*x**2", RIGHT, note="decimals exact"),
    Case("(4 - 2.1*x1**2 + x1**4/3)*x1**2 + x1*x2 + (-4 + 4*x2**2)*x2**2", None, RIGHT,
         hessian="[[10*x1**4 - 25.2*x1**2 + 8, 1], [1, 48*x2**2 - 8]]", note="camel, notes"),
    Case("[2*x1 + x2**2, -x1**2 + 3*x2, 4*x1*x2]", "[[2, 2*x2], [-2*x1, 3], [4*x2, 4*x1]]",
         RIGHT, note="notes"),
    Case("x**2", "((x + 1e10)**2 - (x - 1e10)**2)/2e10", RIGHT, note="float64 cancels"),
    Case("(x1 + w1)**2*(x1*w1 + x2*w2)",
         "[2*(x1 + w1)*(x1*w1 + x2*w2) + (x1 + w1)**2*x1, (x1 + w1)**2*x2]", RIGHT,
         wrt="w1,w2", note="notes, --wrt"),
    Case("acos(x)", "-1/sqrt(1 - x**2)", RIGHT),
    Case("asinh(x)", "1/sqrt(x**2 + 1)", RIGHT),
    Case("erf(x)", "2*exp(-x**2)/sqrt(pi)", RIGHT),
    Case("3*x**2 + 2*x*y + 3*y**2", "[6*x + 2*y, 2*x + 6*y]", RIGHT,
         hessian="[[6, 2], [2, 6]]", note="notes"),
    Case("cosh(x)**2 - sinh(x)**2", "0", RIGHT),
    Case("sqrt(x**2 + 2*x + 1)", "sign(x + 1)", RIGHT),
    Case("atan(y/x)", "[-y/(x**2 + y**2), x/(x**2 + y**2)]", RIGHT),
    Case("x/(1 + x)", "1/(1 + x)**2", RIGHT),
    Case("x**2*y**3", "[2*x*y**3, 3*x**2*y**2]", RIGHT),
    Case("log(sin(x)**2 + 1)", "sin(2*x)/(sin(x)**2 + 1)", RIGHT),
    Case("exp(x)*sin(x)", "sqrt(2)*exp(x)*sin(x + pi/4)", RIGHT, note="phase form"),
    Case("x*log(x) - x", "log(x)", RIGHT),
    Case("(x - 1)/(x + 1)", "2/(x + 1)**2", RIGHT),
    Case("log(cos(x))", "-tan(x)", RIGHT),
    Case("x**3*y", None, RIGHT, hessian="[[6*x*y, 3*x**2], [3*x**2, 0]]"),
    Case("exp(x)/(exp(x) + exp(y))", "[exp(x)*exp(y)/(exp(x) + exp(y))**2, "
         "-exp(x)*exp(y)/(exp(x) + exp(y))**2]", RIGHT, note="softmax"),
    Case("sigmoid(w*x)", "x*sigmoid(w*x)*(1 - sigmoid(w*x))", RIGHT, wrt="w"),
    Case("(3*x)**2*x**2 + x**2", "2*x*(3*x)**2 + 6*(3*x)*x**2 + 2*x", RIGHT,
         note="notes: f(g, h)"),
    Case("sqrt(x**2 + exp(x**2)) + cos(x**2 + exp(x**2))",
         "(1/(2*sqrt(x**2 + exp(x**2))) - sin(x**2 + exp(x**2)))*(exp(x**2) + 1)*2*x", RIGHT,
         note="notes: AD example"),
    # -- wrong: the usual mistakes ---------------------------------------------------------
    Case("sin(x**2)", "cos(x**2)", ("wrong",), "missing-chain-factor"),
    Case("exp(3*x)", "exp(3*x)", ("wrong",), "missing-chain-factor"),
    Case("x**3", "x**2", ("wrong",), "constant-factor", note="power rule"),
    Case("x**3", "3*x**3", ("wrong",), None, note="exponent not lowered"),
    Case("cos(x)", "sin(x)", ("wrong",), "sign"),
    Case("x*sin(x)", "x*cos(x)", ("wrong",), "missing-term", note="product rule"),
    Case("exp(x)*sin(x)", "exp(x)*cos(x)", ("wrong",), "missing-term"),
    Case("sin(x)/x", "cos(x)/x", ("wrong",), "missing-term", note="quotient rule"),
    Case("(x**2 + 1)**3", "3*(x**2 + 1)**2", ("wrong",), "missing-chain-factor"),
    Case("log(x**2 + 1)", "1/(x**2 + 1)", ("wrong",), "missing-chain-factor"),
    Case("sqrt(x**2 + 1)", "1/(2*sqrt(x**2 + 1))", ("wrong",), "missing-chain-factor"),
    Case("x**2*y", "[2*x*y + x**2, x**2]", ("wrong", "proved"), "extra-term",
         note="y not constant"),
    Case("x**2 + 3*x", "2*x", ("wrong",), "missing-term"),
    Case("x**2", "2*x + 1", ("wrong",), "extra-term"),
    Case("2.1*x**3", "6.3*x**2 + 1e-9*x**3", ("wrong",), "extra-term", note="tiny term"),
    Case("x", "0.9999", ("wrong",), "constant-factor", note="tiny factor"),
    Case("x**2", "1.9999*x", ("wrong",), "constant-factor"),
    Case("x**2", "2*x + 1e-12", ("wrong",), "extra-term", note="below float64 rounding"),
    Case("[2*x1 + x2**2, -x1**2 + 3*x2]", "[[2, -2*x1], [2*x2, 3]]",
         ("proved", "wrong"), "transposed"),
    Case("tan(x)", "-1/cos(x)**2", ("wrong",), "sign"),
    Case("1/x", "1/x**2", ("wrong",), "sign"),
    Case("log(2*x)", "2/x", ("wrong",), "constant-factor"),
    Case("sin(2*x)", "cos(2*x)", ("wrong",), "missing-chain-factor"),
    Case("atan(x**2)", "1/(1 + x**4)", ("wrong",), "missing-chain-factor"),
    Case("exp(-x)", "exp(-x)", ("wrong",), "sign", note="sign beats chain factor -1"),
    Case("cos(x)*sin(y)", "[sin(x)*sin(y), cos(x)*cos(y)]", ("wrong", "proved"), "sign"),
    Case("x**2*y", None, ("proved", "wrong"), "constant-factor",
         hessian="[[2*y, x], [x, 0]]", note="Hessian"),
    Case("(4 - 2.1*x1**2 + x1**4/3)*x1**2 + x1*x2 + (-4 + 4*x2**2)*x2**2", None,
         ("wrong", "proved"), None, hessian="[[10*x1**4 - 25.1*x1**2 + 8, 1], "
                                            "[1, 48*x2**2 - 8]]", note="25.1 for 25.2"),
    Case("x*exp(x)", "exp(x)", ("wrong",), "missing-term"),
    Case("sin(x)*cos(x)", "cos(x)**2", ("wrong",), "missing-term"),
    Case("softplus(x)", "sigmoid(-x)", ("wrong",), None),
    Case("x*sin(x)", "sin(x) + cos(x)", ("wrong",), None),
    Case("exp(x**2)", "exp(x**2)", ("wrong",), "missing-chain-factor"),
    Case("sin(x)*y", "[cos(x)*y, sin(x) + cos(x)]", ("proved", "wrong"), "extra-term",
         note="x not constant in d/dy"),
    Case("[x*y, x + y]", "[[y, x], [1, 0]]", ("proved", "wrong"), "missing-term"),
    Case("exp(x)/x", "(exp(x)*x + exp(x))/x**2", ("wrong",), None, note="quotient sign"),
    Case("2**x", "x*2**(x - 1)", ("wrong",), None, note="power rule on a^x"),
    Case("sin(x)**2", "2*sin(x)", ("wrong",), "missing-chain-factor"),
    Case("log(cos(x))", "1/cos(x)", ("wrong",), "missing-chain-factor"),
    Case("log(x**2 + y**2)", "[1/(x**2 + y**2), 2*y/(x**2 + y**2)]", ("wrong", "proved"),
         "missing-chain-factor"),
    Case("[r*cos(t), r*sin(t)]", "[[cos(t), sin(t)], [-r*sin(t), r*cos(t)]]",
         ("proved", "wrong"), "transposed", wrt="r,t", note="polar"),
    Case("sigmoid(w*x)", "sigmoid(w*x)*(1 - sigmoid(w*x))", ("wrong",),
         "missing-chain-factor", wrt="w"),
    Case("acos(x)", "1/sqrt(1 - x**2)", ("wrong",), "sign"),
    Case("exp(x)", "2.718281828**x", ("wrong",), None, note="e to 10 digits"),
    Case("sqrt(x**2 + exp(x**2)) + cos(x**2 + exp(x**2))",
         "(1/(2*sqrt(x**2 + exp(x**2))) - sin(x**2 + exp(x**2)))*(exp(x**2) + 1)",
         ("wrong",), "missing-chain-factor", note="notes: AD, da/dx dropped"),
    Case("x**2*y + (x+y)**2", "[2*x*y + 2*(x+y), x**2 + 2*(x+y) + 2*x*y]",
         ("proved", "wrong"), "extra-term"),
    # -- right on part of the domain --------------------------------------------------------
    Case("sqrt(x**2)", "1", ("partly",), "sign"),
    Case("abs(x)", "1", ("partly",), "sign"),
    Case("log(abs(x))", "1/abs(x)", ("partly",), "sign"),
    Case("asin(sin(x))", "1", ("partly",), "sign"),
    Case("sqrt(x**2*y**2)", "abs(y)", ("partly",), "sign", wrt="x"),
    Case("acos(cos(x))", "1", ("partly",), "sign"),
    Case("x*abs(x)", "2*x", ("partly",), "sign"),
    Case("abs(x - 1)", "1", ("partly",), "sign"),
    Case("sqrt(x**2)**3", "3*x**2", ("partly",), "sign"),
    Case("log(x**2)/2", "1/abs(x)", ("partly",), "sign"),
    Case("abs(sin(x))", "cos(x)", ("partly",), "sign"),
    Case("(x + abs(x))/2", "1", ("partly",), None, note="relu"),
    # -- bad input ---------------------------------------------------------------------------
    Case("x*y", "2*x", "bad", note="scalar for 2 variables"),
    Case("x*y", "[y]", "bad", note="too short"),
    Case("[x, y]", "[1, 1]", "bad", note="flat for a Jacobian"),
    Case("x**2", "2*z", "bad", note="unknown variable"),
    Case("x**2", "2*x +", "bad", note="parse error"),
    Case("[x, y]", None, "bad", hessian="[[0, 0], [0, 0]]", note="Hessian of a vector"),
    Case("[x1, x2, x1*x2]", "[[1, 0, x2], [0, 1, x1]]", "bad", note="transposed shape"),
    Case("x", "9**9**9**9", "bad", note="number limit"),
    Case("x", "__import__('os')", "bad", note="injection"),
    Case("x*y", "[[y, x], [1, 0]]", "bad", note="list of lists for a gradient"),
    Case("x**2", "[2*x,]", "bad", note="empty entry"),
    Case("x**2", "", "bad", note="empty claim"),
]


def reverify(case: Case, entry: dict, wrt: list[str]) -> bool:
    """claimed and true differ at the counterexample, by SymPy's evalf at 50 digits (exact
    point, exact decimals), independently of diffcheck's evaluator."""
    ce = entry["counterexample"]
    syms = {v: sympy.Symbol(v, real=True) for v in ce["at"]}
    point = {syms[v]: sympy.Rational(val) for v, val in ce["at"].items()}
    f = parse_exact(case.f)
    f = f[entry["index"][0]] if isinstance(f, list) else f
    idx = entry["index"]
    if isinstance(parse_exact(case.f), list):
        true = sympy.diff(f, syms[wrt[idx[1]]])
    elif len(idx) == 2:
        true = sympy.diff(f, syms[wrt[idx[0]]], syms[wrt[idx[1]]])
    else:
        true = sympy.diff(f, syms[wrt[idx[0]]])
    t = true.evalf(50, subs=point)
    c = parse_exact(entry["claimed"]).evalf(50, subs=point)
    if ce["claimed"] is None:
        return not (c.is_real and c.is_finite)
    return bool(abs(c - t) > 1e-40 * max(abs(c), abs(t), 1)) and \
        abs(float(c) - ce["claimed"]) <= 1e-12 * max(1, abs(float(c))) and \
        abs(float(t) - ce["true"]) <= 1e-12 * max(1, abs(float(t)))


def run_case(case: Case) -> dict:
    t0 = time.perf_counter()
    try:
        r = dc.check_expression(case.f, claim=case.claim, claim_hessian=case.hessian,
                                wrt=case.wrt, at=case.at)
    except dc.DiffcheckError as exc:
        return {"verdicts": "bad", "diagnosis": None, "verified": None,
                "seconds": time.perf_counter() - t0, "error": str(exc).splitlines()[0]}
    seconds = time.perf_counter() - t0
    entries = [e for c in r.to_dict()["claims"] for e in c["entries"]]
    bad = [e for e in entries if e["verdict"] in ("wrong", "partly")]
    diagnosis = next((e["diagnosis"]["kind"] for e in bad if e["diagnosis"]), None)
    verified = all(reverify(case, e, r.variables) for e in bad) if bad else None
    return {"verdicts": [e["verdict"] for e in entries], "diagnosis": diagnosis,
            "verified": verified, "seconds": seconds, "report": r,
            "text": "; ".join(f"{e['name']}: {e['diagnosis']['text']}" for e in bad
                              if e["diagnosis"])}


def verdict_right(case: Case, got) -> bool:
    if case.expect == "bad" or got == "bad":
        return case.expect == got
    return all(v in case.expect for v in got) and (
        "wrong" not in case.expect and "partly" not in case.expect or
        any(v in ("wrong", "partly") for v in got))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    rows, right, checked, verified, diagnosable, diagnosed = [], 0, 0, 0, 0, 0
    proved = agreed = 0
    for i, case in enumerate(CORPUS, 1):
        res = run_case(case)
        ok = verdict_right(case, res["verdicts"])
        right += ok
        if res["verified"] is not None:
            checked += 1
            verified += res["verified"]
        if case.diagnosis is not None:
            diagnosable += 1
            diagnosed += res["diagnosis"] == case.diagnosis
        if res["verdicts"] != "bad":
            proved += res["verdicts"].count("proved")
            agreed += res["verdicts"].count("agrees")
        got = res["verdicts"] if res["verdicts"] == "bad" else \
            ",".join(sorted(set(res["verdicts"])))
        rows.append((i, case.f[:34], (case.claim or case.hessian or "")[:30],
                     "bad" if case.expect == "bad" else "|".join(case.expect), got,
                     "ok" if ok else "WRONG", case.diagnosis or "-", res["diagnosis"] or "-",
                     {None: "-", True: "yes", False: "NO"}[res["verified"]],
                     f"{res['seconds']:.2f}"))
    if not args.quiet:
        head = ("#", "F", "claim", "expected", "got", "verdict", "diagnosis expected",
                "diagnosis got", "ce 50-digit", "s")
        widths = [max(len(str(r[k])) for r in [head, *rows]) for k in range(len(head))]
        for r in [head, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        print()
    n = len(CORPUS)
    print(f"cases: {n}; verdicts right: {right}/{n}; entries proved: {proved}, agree: {agreed}")
    print(f"counterexamples re-verified at 50 digits (SymPy evalf): {verified}/{checked}")
    print(f"diagnosable mistakes diagnosed with the expected kind: {diagnosed}/{diagnosable} "
          f"({100 * diagnosed / max(diagnosable, 1):.0f}%)")
    good = right == n and verified == checked and diagnosed >= 0.8 * diagnosable
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
