"""Regenerate docs/cost.md and docs/figures/cost_sweep.png with this machine's numbers.

    python scripts/make_cost_docs.py            # measure everything (a few minutes)
    python scripts/make_cost_docs.py --replot   # reuse docs/figures/cost_sweep.json

Needs matplotlib (``pip install 'diffcheck[plot]'``) and JAX.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from diffcheck import cost
from diffcheck.commands.cost import sweep_text

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"

SUM_200 = " + ".join(f"sin(x{i})*x{i + 1}" for i in range(200))
EXP_60 = "[" + ", ".join(f"exp(t*{k})*sin(t)" for k in range(1, 61)) + "]"
EXAMPLES = [
    ("sum_{i<200} sin(x_i)*x_{i+1}", SUM_200,
     "diffcheck cost \"$(python -c \"print(' + '.join(f'sin(x{i})*x{i+1}' "
     "for i in range(200)))\")\" --jax"),
    ("[exp(t*k)*sin(t) for k=1..60]", EXP_60,
     "diffcheck cost \"$(python -c \"print('[' + ', '.join(f'exp(t*{k})*sin(t)' "
     "for k in range(1, 61)) + ']')\")\" --jax"),
]
SWEEP_SIZES = cost.SIZES  # the sizes `diffcheck cost --sweep` and cost.sweep() use by default
CHAINS = [["10x100", "100x100", "100x1"], ["1x100", "100x100", "100x10"],
          ["50x50", "50x1", "1x50", "50x50"]]


def machine() -> str:
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return (f"{datetime.date.today().isoformat()}, {platform.system()} {platform.machine()} "
            f"({cpu}), {os.cpu_count()} CPUs, load average {load} at the start; Python "
            f"{platform.python_version()}, NumPy {np.__version__}, JAX {jax.__version__}")


def example_section(title: str, text: str, command: str) -> str:
    report = cost.cost(text, points=64, repeat=15, jax=True)
    c, s, j = report.counts, report.seconds, report.jax
    rows = [
        ("function", c.function, s["function"], j["function"]),
        ("forward (whole Jacobian)", c.forward, s["forward"], j["jacfwd"]),
        ("reverse (whole Jacobian)", c.reverse, s["reverse"], j["jacrev"]),
    ]
    lines = [f"### `{title}`: R^{c.inputs} → R^{c.outputs}", "", "```", command, "```", "",
             "| | ops | ops / f | diffcheck seconds | time / f | JAX seconds | JAX time / f |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, ops, sec, jsec in rows:
        lines.append(f"| {name} | {ops:,} | {ops / c.function:.2f} | {sec:.3g} | "
                     f"{sec / s['function']:.2f} | {jsec:.3g} | {jsec / j['function']:.2f} |")
    lines += ["", f"One JAX `jvp`: {j['jvp'] / j['function']:.2f} × f; one `vjp`: "
              f"{j['vjp'] / j['function']:.2f} × f. Recommended: **{c.recommended}**. "
              f"Per direction: a tangent costs {c.tangent:,} ops, an adjoint {c.adjoint:,}; "
              f"the partials cost {c.partials:,} once.", ""]
    return "\n".join(lines)


def chain_section() -> str:
    lines = []
    for shapes in CHAINS:
        r = cost.chain_cost(shapes)
        lines += ["```", f"$ diffcheck chain {' '.join(shapes)}", str(r), "```", ""]
    return "\n".join(lines)


def slope_table(result: dict) -> str:
    fits = result["slopes"]
    lines = ["| sweep | mode | counted | diffcheck measured | JAX measured |",
             "|---|---|---:|---:|---:|"]
    for key, label in (("vary_n", f"n grows, m = {result['fixed']}"),
                       ("vary_m", f"m grows, n = {result['fixed']}")):
        f = fits[key]
        for mode, jmode in (("forward", "jacfwd"), ("reverse", "jacrev")):
            jax = f.get(f"jax {jmode}")
            lines.append(f"| {label} | {mode} | {f[f'ops {mode}']:.2f} | "
                         f"{f[f'time {mode}']:.2f} | "
                         f"{'-' if jax is None else f'{jax:.2f}'} |")
    return "\n".join(lines)


def crossover(rows: list[dict], block: str, size: str, fwd: str, rev: str) -> str:
    """The first size where the mode that loses at small sizes starts to win."""
    first = rows[0][block][fwd] < rows[0][block][rev]
    for r in rows[1:]:
        if (r[block][fwd] < r[block][rev]) != first:
            return f"{size} = {r[size]}"
    return "none in range"


def crossover_table(result: dict) -> str:
    lines = ["| sweep | counted | diffcheck measured | JAX measured |", "|---|---|---|---|"]
    for key, size in (("vary_n", "n"), ("vary_m", "m")):
        rows = result[key]
        cells = [crossover(rows, "ops", size, "forward", "reverse"),
                 crossover(rows, "seconds", size, "forward", "reverse")]
        cells.append(crossover(rows, "jax", size, "jacfwd", "jacrev") if "jax" in rows[0]
                     else "-")
        lines.append(f"| {size} grows, {'m' if size == 'n' else 'n'} = {result['fixed']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


TEMPLATE = """# Forward vs reverse mode: what the order of the chain rule costs

*Generated by `python scripts/make_cost_docs.py` on {machine}. Timings move from run to run
(the minimum over repeats is reported, but other processes share the CPUs); the operation
counts are exact and deterministic.*

The chain rule is a product of Jacobians. For `f = f_k ∘ … ∘ f_1 : Rⁿ → Rᵐ`,
`J = J_k ⋯ J_1`, and matrix multiplication is associative, so the product can be taken in
any order, with very different costs: three matrices `A (m×n)`, `B (n×p)`, `C (p×q)` cost
`mnp + mpq` multiply-adds as `(AB)C` and `mnq + npq` as `A(BC)`. Forward mode multiplies
from the input side: one tangent per input, about `n` passes. Reverse mode multiplies from
the output side: one adjoint per output, about `m` sweeps. A gradient (`m = 1`) is cheap in
reverse mode (a small constant times f, the *cheap-gradient principle*, whatever `n` is);
a curve `R → Rᵐ` is cheap in forward mode. diffcheck counts this, measures it, and
recommends a mode.

## Commands

```
diffcheck cost EXPR [--json] [--jax] [--points P] [--repeat R]
diffcheck cost --sweep [--fixed 16] [--sizes 1,2,4,8,16,32,64] [--out cost_sweep.png]
                       [--no-jax] [--no-plot] [--json]
diffcheck chain 10x100 100x100 100x1 [--json]
```

`diffcheck cost EXPR --json` prints `{{"inputs": n, "outputs": m, "ops": {{"function",
"forward", "reverse"}}, "seconds": {{"function", "forward", "reverse"}}, "recommended"}}`
plus `expression`, `points`, `model` (the per-direction costs) and, with `--jax`, a `jax`
block (`function`, `jvp`, `vjp`, `jacfwd`, `jacrev`, `compile`). `ops.forward` and
`ops.reverse` count the operations that form the *whole* gradient or Jacobian by that mode.
Seconds are one call of `program.evaluate`, `engines.ad.jacobian_forward` and
`engines.ad.jacobian_reverse` at `P` points at once (the engines are vectorised over points),
`time.perf_counter`, the minimum over `R` interleaved rounds. JAX timings are
`jax.jit(jax.vmap(...))` in float64 with compilation excluded. In Python:
`diffcheck.cost.count(program)`, `cost.cost(text)`, `cost.chain_cost(shapes)`,
`cost.sweep()`, `cost.plot_sweep(result, path)`.

## The flop model

Units are the rule table's `flops` column (`diffcheck/primitives.py`): an add, a multiply or
a negation costs 1, a division 4, `sqrt` 4, `sin`/`exp`/`log`/`pow` 10, `erf` 20.

* **function**: the sum of `flops` over the Program's operations.
* **partials**: each operation's local partial derivatives, formed once per node (in
  forward mode during the pass, in reverse mode while recording the tape). A row whose
  partials are constants or its own arguments (`add`: 1, 1; `mul`: y, x; `neg`: −1) costs
  0; any other row costs its `flops` once (`sin` needs a `cos`).
* **tangent** (per input direction): `y_dot = Σᵢ ∂ᵢ·x_dot_i` costs one multiply per argument
  that depends on the inputs (none where the partial is the constant 1) and one add per extra
  argument.
* **adjoint** (per output direction): `x_bar_i += ∂ᵢ·y_bar` costs the same multiplies, plus
  one add wherever adjoints meet: for every use of a node beyond its first.
* `forward = function + partials + n·tangent`, `reverse = function + partials + m·adjoint`.
  Both modes carry *dense* directions through every node that depends on the inputs, as
  vector-mode forward, JAX's `jacfwd`/`jacrev` and the textbook model do (no sparsity is
  exploited). `recommended` is the cheaper; forward on a tie, since it needs no tape.

Tangent and adjoint cost nearly the same per direction (the transposition principle: fan-in
adds in one are fan-out adds in the other), so the crossover is at `n ≈ m`. For one output
the model gives `reverse ≤ 5·function` (the worst case is a program made only of 1-flop
multiplies whose every value is reused; `≤ 6` if `maximum`/`minimum`, whose partials cost a
comparison, dominate; typical code lands between 2 and 3). diffcheck's own
reverse engine sweeps once per output and skips adjoints that are known to be zero, so for
outputs that depend on few nodes it does less arithmetic than the dense count; its loop still
visits the tape once per output.

## The two reference functions

{examples}
The counts carry the lesson exactly: the gradient of the 201-input sum costs about 2× f by
reverse mode and about 85× f by forward mode; the 60-output curve is the mirror image. The
measured times follow the same direction with different constants: diffcheck's engines are
Python interpreters, and a dual or tape operation costs several times a NumPy call on plain
arrays, so the cheap mode lands at several times f rather than about 2×. JAX runs
`Program.to_jax`, a scalar-unrolled translation of the same Program (the inputs are split
from `x` by one `unstack`, whose transpose is one `stack`), so its columns follow the counts
with XLA's much smaller constants. For the small curve, XLA's fusion decisions, not flop
counts, dominate.

## Matrix chains

Shapes are written in data-flow order, **input side first**: `a×b` is a stage that takes `a`
values to `b` values (so the product reads left to right like the computation; it is the
transposed Jacobian). `x ∈ R^(rows of A1)`, `y ∈ R^(cols of Ak)`. A product `(a×b)(b×c)`
costs `a·b·c` **multiply-adds** (the seeds' `mnp`; a flop count that counts multiplies and adds
separately is twice that). Forward mode = left to right `((A1 A2) A3)`, reverse mode = right
to left `(A1 (A2 A3))`, optimal = dynamic programming over all bracketings (checked against
brute-force enumeration of every bracketing of up to 8 matrices in `tests/test_chain.py`).

{chains}
`10x100 100x100 100x1` is a scalar function of 10 inputs: reverse wins by 9×.
`1x100 100x100 100x10` is the mirror (1 input, 10 outputs): forward wins. In the last chain
the narrow middle makes the optimal order, `((A1 A2) (A3 A4))`, beat both ends: neither pure
mode is optimal, which is what cross-country elimination in AD tools exploits.

## The sweep: cost against n and m

`diffcheck.cost.network(n, m)` is a narrow deep network `y = W_out·sin(W_16 ⋯ sin(W_1·(W_in·x)))`
of width 4 and depth 16 with fixed weights: every hidden node depends on every input and
feeds every output, so the Jacobian is dense and a core of fixed size dominates f. The sweep
holds one size at {fixed} and grows the other through {sizes}, timing every engine at
{points} points per call (enough that array arithmetic, not Python overhead, dominates the
forward engine at large n).

![cost of the whole Jacobian relative to f against n and m](figures/cost_sweep.png)

Lines: counted; filled circles: diffcheck's engines on the Program, measured; hollow
squares: JAX `jacfwd` and `jacrev` on the same network written in matrix form
(`cost.network_jax`), measured. The dashed line marks `n = m`. (JAX is not timed on the
Program's own scalar translation here: for this densely reused DAG, XLA's compile time
explodes with depth, about 160 s at depth 8 for `n = m = 2` on this machine, because fusion
duplicates shared work; `diffcheck cost EXPR --jax` does use `Program.to_jax`.)

Log-log slopes of cost/f against the growing size, fitted over the four largest sizes
(counted forward ∝ n gives slope ≈ 1, a mode that does not depend on the size gives ≈ 0):

{slopes}

Where the cheaper mode changes hands:

{crossovers}

```
{sweep_text}
```

**Reading it.** The counts cross exactly at `n = m`. The measurements agree in trend: in
each panel the mode whose number of directions grows is the one whose measured cost rises,
the other stays roughly flat, and past the crossover the measured order of the two modes is
the counted one. The slopes differ where fixed costs weigh in. diffcheck's reverse engine
first records a Python tape (a fixed cost of several f), which flattens its log-log slope at
these sizes although every extra output adds a roughly constant cost; its forward engine
pays a fixed Python cost per node that only `n × points` of array work outgrows, so it sits
above the count at small `n` and follows it at large `n`. JAX runs the network in matrix
form, where extra directions ride along as wider matrix products next to the primal `sin`
(which costs the same in both modes), so its slopes are lower than the count's. The measured
crossover can therefore sit off `n = m` by a factor of about 2. Regenerate on a quiet machine
for cleaner timings; the data behind the figure is in `figures/cost_sweep.json`.
"""


def restrict(result: dict, sizes: tuple[int, ...]) -> dict:
    """A measured sweep cut down to ``sizes`` (its slopes refitted), so the page shows the
    default sweep."""
    out = dict(result)
    out["vary_n"] = [r for r in result["vary_n"] if r["n"] in sizes]
    out["vary_m"] = [r for r in result["vary_m"] if r["m"] in sizes]
    missing = set(sizes) - {r["n"] for r in out["vary_n"]}
    if missing:
        raise SystemExit(f"the stored sweep lacks sizes {sorted(missing)}: measure it again "
                         "(run without --replot)")
    out["slopes"] = cost.slopes(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replot", action="store_true",
                        help="reuse docs/figures/cost_sweep.json instead of measuring the sweep")
    args = parser.parse_args(argv)
    FIGURES.mkdir(parents=True, exist_ok=True)
    data = FIGURES / "cost_sweep.json"
    info = machine()
    examples = "\n".join(example_section(*e) for e in EXAMPLES)
    if args.replot:
        result = restrict(json.loads(data.read_text()), SWEEP_SIZES)
        data.write_text(json.dumps(result, indent=1) + "\n")
    else:
        result = cost.sweep(sizes=SWEEP_SIZES, progress=lambda msg: print(msg, file=sys.stderr))
        data.write_text(json.dumps(result, indent=1) + "\n")
    cost.plot_sweep(result, str(FIGURES / "cost_sweep.png"))
    page = TEMPLATE.format(
        machine=info, examples=examples, chains=chain_section(), fixed=result["fixed"],
        sizes=", ".join(str(r["n"]) for r in result["vary_n"]), points=result["points"],
        slopes=slope_table(result), crossovers=crossover_table(result),
        sweep_text=sweep_text(result))
    (DOCS / "cost.md").write_text(page)
    print(sweep_text(result))
    print(f"wrote {DOCS / 'cost.md'} and {FIGURES / 'cost_sweep.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
