"""Regenerate the table of bad inputs and their messages in docs/errors.md.

Run: ``python scripts/make_errors_table.py`` (each case runs the real CLI; every one must
exit with status 2).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LONG_SUM = "+".join(f"x{i}" for i in range(200_000))

# (class of bad input, CLI arguments, text on standard input or None)
CASES = [
    ("Code injection", ["expr", "__import__(os).system(ls)"], None),
    ("Code with quotes", ["expr", "open('x', 'w')"], None),
    ("Statements", ["expr", "x = 3"], None),
    ("Several statements", ["expr", "x; y"], None),
    ("Attribute access", ["expr", "x.__class__"], None),
    ("Conditional expressions, lambdas", ["expr", "x if y else z"], None),
    ("Comparisons", ["expr", "x < y"], None),
    ("SymPy constructors", ["expr", "Symbol('x')"], None),
    ("Dunder names", ["expr", "__class__ + 1"], None),
    ("Unknown function", ["expr", "foo(x)"], None),
    ("Huge argument of the gamma family", ["expr", "factorial(10**8)"], None),
    ("Bad logarithm base", ["expr", "log(x, 1)"], None),
    ("Too many arguments of max", ["expr", "max(" + ", ".join(f"x{i}" for i in range(65)) + ")"],
     None),
    ("Letter that only looks Latin (Cyrillic х)", ["expr", "х + 1"], None),
    ("Ambiguous root", ["expr", "√x²"], None),
    ("Long superscript", ["expr", "x" + "²" * 30], None),
    ("Huge power of numbers", ["expr", "9**9**9**9"], None),
    ("Huge exponent", ["expr", "x**(9**9**9)"], None),
    ("Number with too many digits", ["expr", "99**9999"], None),
    ("Deep nesting", ["expr", "(" * 3000 + "x" + ")" * 3000], None),
    ("Too many tokens (200 000-term sum, on stdin)", ["expr", "-"], LONG_SUM),
    ("Float overflow", ["expr", "1e999"], None),
    ("Long integer literal", ["expr", "1" * 400], None),
    ("Null byte (on stdin)", ["expr", "-"], "x\x00"),
    ("Empty", ["expr", ""], None),
    ("Unbalanced parentheses", ["expr", "(x + y"], None),
    ("Trailing operator", ["expr", "x +"], None),
    ("Implicit multiplication", ["expr", "2x"], None),
    ("Function used as a variable", ["expr", "sin + 1"], None),
    ("Function name as an undeclared variable", ["expr", "gamma*x"], None),
    ("Wrong number of arguments", ["expr", "atan2(x)"], None),
    ("Point value not a number", ["expr", "x+y", "--at", "x=abc,y=1"], None),
    ("Point value not a constant", ["expr", "x+y", "--at", "x=2*y,y=1"], None),
    ("Point value that overflows", ["expr", "x", "--at", "x=exp(1000)"], None),
    ("Missing variable", ["expr", "x+y", "--at", "x=1"], None),
    ("Extra variable", ["expr", "x+y", "--at", "x=1,y=2,z=3"], None),
    ("Non-finite point", ["expr", "x", "--at", "x=nan"], None),
    ("Point outside the domain", ["expr", "log(x)", "--at", "x=-1"], None),
    ("Point outside the domain", ["expr", "x*log(1-y)", "--at", "x=1,y=2"], None),
    ("Point outside the domain", ["expr", "sqrt(x)", "--at", "x=-4"], None),
    ("Negative base, varying exponent", ["expr", "x**y", "--at", "x=-2,y=2"], None),
    ("Division by zero at the point", ["expr", "1/x", "--at", "x=0"], None),
    ("Kink at the point", ["expr", "abs(x)", "--at", "x=0"], None),
    ("Jump at the point", ["expr", "floor(x)", "--at", "x=2"], None),
    ("Pole at the point", ["expr", "gamma(x)", "--at", "x=-1"], None),
    ("Overflow at the point", ["expr", "exp(exp(exp(x)))", "--at", "x=10"], None),
    ("Undefined everywhere", ["expr", "log(-x**2-1)"], None),
    ("Unknown engine", ["expr", "x", "--engines", "magic"], None),
    ("Nothing to compare", ["expr", "x", "--engines", "finite"], None),
    ("Negative tolerance", ["expr", "x", "--rtol", "-1"], None),
    ("No points", ["expr", "x", "--points", "0"], None),
    ("Unknown option", ["expr", "x", "--bogus"], None),
]


def row(name: str, argv: list[str], stdin: str | None) -> str:
    r = subprocess.run([sys.executable, "-m", "diffcheck", *argv], input=stdin,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (argv[:3], r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    msg = " ".join(r.stderr.strip().split("\n  ")[0].split())
    example = " ".join(a if " " not in a else f'"{a}"' for a in argv[1:])
    if len(example) > 40:
        example = example[:32] + " …"
    example = example.replace("\x00", "\\x00").replace("|", "\\|")
    if len(msg) > 230:
        msg = msg[:220] + " …"
    msg = msg.replace("|", "\\|")
    return f"| {name} | `{example}` | {msg} |"


def main() -> None:
    page = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
    head = page.read_text().split("<!-- table -->")[0]
    rows = ["| Bad input | Example | What you see on stderr (exit status 2) |",
            "| --- | --- | --- |"] + [row(*c) for c in CASES]
    page.write_text(head + "<!-- table -->\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
