"""Checking a claimed derivative: each entry proved, agrees, partly or wrong, and why.

:func:`prepare` reads the claim before any engine runs (so a claim of the wrong shape, or
with a variable F does not have, is bad input at once); :meth:`Claims.decide` then compares
every claimed entry with F's true derivative (from the exact F: decimals as written) at
sampled points at high precision, tries to prove the equal ones, finds a re-verified
counterexample for the others, where a claim holds on part of the domain says where, and
names the mistake.

>>> import diffcheck as dc
>>> r = dc.check_expression("x*y*z", claim="[y*z, x*z, x*y]")
>>> [e.verdict for e in r.claims[0].entries]
['proved', 'proved', 'proved']
>>> r = dc.check_expression("sin(x**2)", claim="cos(x**2)")
>>> entry = r.claims[0].entries[0]
>>> entry.verdict, entry.diagnosis.kind
('wrong', 'missing-chain-factor')
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
from mpmath import libmp

from ..engines import symbolic
from ..errors import UnsupportedError, UsageError
from .budget import Budget
from .diagnoses import Case, Diagnosis, diagnose
from .highprec import Plan
from .numeric import (
    FAIL,
    HOLD,
    Reading,
    in_domain,
    nice_points,
    persists,
    point_count,
    read_point,
    sample,
    verify,
)
from .proof import prove_zero, tree_size
from .reading import (
    Entry,
    Spec,
    check_constants,
    check_variables,
    exact_sympy,
    first_derivatives,
    hessian,
    parse_exact,
    read_claim,
)
from .region import describe

PROVED, AGREES, PARTLY, WRONG = "proved", "agrees", "partly", "wrong"
PROOF_SECONDS = 2.0  #: total time for symbolic proofs of one check
DIAGNOSIS_SECONDS = 3.0  #: total time for diagnoses of one check
NUMERIC_SECONDS = 20.0  #: time after which no more points are read nor digits added
MAX_DIAGNOSED = 30  #: wrong entries diagnosed (the rest get none)
DIAGNOSIS_POINTS = 6  #: failing points a diagnosis must fit
MIN_DIAGNOSIS_POINTS = 3  #: ... and at least this many (one point fits any constant factor)
SMALL = 200  #: F and claim nodes up to which diagnoses run without a timer (other threads)


@dataclass
class ClaimedEntry:
    """The verdict on one claimed entry (the JSON fields, plus the region in words)."""

    index: list[int]
    name: str
    claimed: str
    true: str
    verdict: str
    counterexample: dict[str, Any] | None = None
    diagnosis: Diagnosis | None = None
    region: str | None = None  # where a partly right claim holds, e.g. "x > 0"
    difference: float | None = None  # claimed - true at the counterexample (high precision)
    how: str = ""  # how the verdict was reached, in words

    @property
    def ok(self) -> bool:
        return self.verdict in (PROVED, AGREES)

    def to_dict(self) -> dict[str, Any]:
        return {"index": list(self.index), "name": self.name, "claimed": self.claimed,
                "true": self.true, "verdict": self.verdict,
                "counterexample": self.counterexample,
                "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None}


@dataclass
class ClaimResult:
    """One claim (``--claim`` or ``--claim-hessian``): its kind and its entries."""

    kind: str  # derivative | gradient | jacobian | hessian
    entries: list[ClaimedEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ok": self.ok, "entries": [e.to_dict() for e in self.entries]}


def prepare(expr: Any, fn: Any, claim: Any, claim_hessian: Any) -> Claims:
    """Read and place the claims against F (``fn``: a :class:`diffcheck.check.Function`).

    Raises:
        ParseError: a claim's text is malformed or breaks a limit.
        UsageError: a claim does not fit F's shape or uses a variable F does not have.
    """
    if not fn.wrt:
        raise UsageError("F has no variables, so there is no derivative to claim")
    specs = []
    if claim is not None:
        specs.append(first_derivatives(read_claim(claim, fn.variables), len(fn.exprs), fn.wrt,
                                       fn.vector))
    if claim_hessian is not None:
        specs.append(hessian(read_claim(claim_hessian, fn.variables), fn.wrt, fn.vector))
    check_variables(specs, fn.variables)
    check_constants(specs)
    exact = parse_exact(expr, fn.variables) if isinstance(expr, str) else expr
    rows = exact if isinstance(exact, list) else [exact]
    return Claims(fn, [exact_sympy(e) for e in rows], specs)


@dataclass
class Claims:
    """Claims read and placed, waiting for :meth:`decide`."""

    fn: Any
    exprs: list[Any]  # F's rows, exact
    specs: list[Spec]

    @property
    def hessian(self) -> bool:
        return any(s.kind == "hessian" for s in self.specs)

    def decide(self, formulas: dict[str, Any], user: np.ndarray | None, seed: int
               ) -> list[ClaimResult]:
        """Verdicts for every claimed entry; ``formulas`` are the report's texts of the
        true derivatives, ``user`` the ``--at`` points (or None)."""
        return _Decision(self, formulas, user, seed).run()


class _Decision:
    """The work of :meth:`Claims.decide`, entry by entry."""

    def __init__(self, claims: Claims, formulas: dict[str, Any], user: np.ndarray | None,
                 seed: int):
        self.c, self.fn, self.formulas = claims, claims.fn, formulas
        self.entries = [(s, e) for s in claims.specs for e in s.entries]
        self.true = symbolic.derive(claims.exprs, self.fn.variables, hessian=claims.hessian)
        self.pairs = [(e.item.expr, self._true(s, e)) for s, e in self.entries]
        self.plan = Plan([x for pair in self.pairs for x in pair], self.fn.variables)
        self.X, self.n_user = sample(self.fn, user, point_count(self.plan), seed)
        self.R = self._read_all(time.perf_counter() + NUMERIC_SECONDS)
        self.rng = np.random.default_rng([seed, 2])
        self.proofs = Budget(PROOF_SECONDS)
        self.diagnoses = Budget(DIAGNOSIS_SECONDS)
        self.diagnosed = 0
        self._nice: tuple[np.ndarray, list[list[Reading]]] | None = None
        self._plans: dict[int, Plan] = {}

    def _read_all(self, deadline: float) -> list[list[Reading]]:
        """Readings at every point; past the deadline, only the user's points and two more
        are read (and without extra digits)."""
        out = []
        for p, x in enumerate(self.X):
            if p >= self.n_user + 2 and time.perf_counter() > deadline:
                self.X = self.X[:p]
                break
            out.append(read_point(self.plan, x, len(self.entries), deadline=deadline))
        return out

    def _true(self, spec: Spec, e: Entry) -> Any:
        if spec.kind == "hessian":
            return self.true.hessian[e.row][e.cols[0]][e.cols[1]]
        return self.true.jacobian[e.row][e.cols[0]]

    def run(self) -> list[ClaimResult]:
        results: dict[int, ClaimResult] = {}
        for k, (spec, e) in enumerate(self.entries):
            res = results.setdefault(id(spec), ClaimResult(spec.kind))
            res.entries.append(self.entry(k, spec, e))
        return list(results.values())

    # -- one entry ----------------------------------------------------------------------
    def entry(self, k: int, spec: Spec, e: Entry) -> ClaimedEntry:
        out = ClaimedEntry(e.index, self._name(spec, e), e.item.text, self._true_text(spec, e),
                           AGREES)
        holds = [p for p, r in enumerate(self.R) if r[k].status == HOLD]
        fails = [p for p, r in enumerate(self.R) if r[k].status == FAIL]
        if not holds and not fails:
            return self._undecided(k, out)
        if not fails:
            return self._equal(k, out, len(holds))
        return self._mismatch(k, spec, e, out, holds, fails)

    def _mismatch(self, k: int, spec: Spec, e: Entry, out: ClaimedEntry, holds: list[int],
                  fails: list[int]) -> ClaimedEntry:
        """A failing entry: partly (it holds on a region too) or wrong, with a re-verified
        counterexample, the region in words and the diagnosis."""
        found = self._counterexample(k, fails)
        if found is None:  # no failure survives re-verification
            return self._equal(k, out, len(holds))
        # A difference near the last digit of the first reading holds at some points by
        # rounding; with more digits those points fail too (then the claim is not partly).
        recheck = [verify(self._plan_of(k), self.X[p], 0, 1).status for p in holds]
        fails = sorted(fails + [p for p, s in zip(holds, recheck, strict=True) if s == FAIL])
        holds = [p for p, s in zip(holds, recheck, strict=True) if s == HOLD]
        regional = any(persists(self._plan_of(k), self.fn, self.X[p], 0, 1, self.rng)
                       for p in holds[:3])
        x, reading = found
        out.verdict = PARTLY if regional else WRONG
        out.counterexample = _counterexample(self.fn.variables, x, reading)
        if reading.claimed is not None:
            with mpmath.workdps(60):
                out.difference = float(reading.claimed - reading.true)
        if regional:
            out.region = describe(self._region_exprs(k, e), self.fn.variables,
                                  self.X[holds], self.X[fails])
        out.diagnosis = self._diagnose(k, spec, e, fails)
        if out.diagnosis is not None and regional:  # the JSON carries the region this way
            where = f"for {out.region}" if out.region else "on part of the domain"
            out.diagnosis = Diagnosis(out.diagnosis.kind, f"it holds {where}; where it "
                                      f"fails, {out.diagnosis.text}")
        out.how = f"fails at {len(fails)} of {len(holds) + len(fails)} sampled points"
        return out

    def _undecided(self, k: int, out: ClaimedEntry) -> ClaimedEntry:
        """No point decided (values beyond 2**4000, or undefined): only a proof can help."""
        claimed, true = self.pairs[k]
        route = prove_zero(claimed - true, self.proofs)
        if route is None:
            raise UnsupportedError(
                f"could not compare the claimed {out.name} with the true one at any sampled "
                "point (their values are undefined there, or too large to compute: beyond "
                "about 1e1200), and no symbolic proof was found; give points with --at")
        out.verdict, out.how = PROVED, f"claimed - true simplifies to 0 ({route})"
        return out

    def _equal(self, k: int, out: ClaimedEntry, n: int) -> ClaimedEntry:
        claimed, true = self.pairs[k]
        route = prove_zero(claimed - true, self.proofs)
        if route is not None:
            out.verdict, out.how = PROVED, f"claimed - true simplifies to 0 ({route})"
        else:
            out.verdict = AGREES
            out.how = (f"equal at all {n} sampled points (compared at 50+ digits); not proved "
                       "symbolically")
        return out

    def _counterexample(self, k: int, fails: list[int]) -> tuple[np.ndarray, Reading] | None:
        """A failing point, re-verified at 50 and 100 digits: the user's, a readable one,
        or a sampled one (claim defined there first)."""
        user = [self.X[p] for p in fails if p < self.n_user]
        X, R = self._nice_points()
        nice = [X[q] for q, r in enumerate(R) if r[k].status == FAIL]
        rest = sorted(fails, key=lambda p: (self.R[p][k].claimed is None,
                                            float(np.max(np.abs(self.X[p]), initial=0))))
        first = None
        for x in (user + nice + [self.X[p] for p in rest])[:8]:
            reading = verify(self._plan_of(k), x, 0, 1)
            if reading.status != FAIL:
                continue
            if _float(reading.claimed) != _float(reading.true) or reading.claimed is None:
                return x, reading
            first = first or (x, reading)  # float64 shows both values alike (-0 and -0)
        return first

    def _plan_of(self, k: int) -> Plan:
        """Entry k's own plan (claimed, true), for work on one entry only."""
        if k not in self._plans:
            self._plans[k] = Plan(list(self.pairs[k]), self.fn.variables)
        return self._plans[k]

    def _nice_points(self) -> tuple[np.ndarray, list[list[Reading]]]:
        if self._nice is None:
            X = nice_points(self.fn) if len(self.plan) < 5000 else np.zeros((0, 0))
            self._nice = X, [read_point(self.plan, x, len(self.entries)) for x in X]
        return self._nice

    def _region_exprs(self, k: int, e: Entry) -> list[Any]:
        return [self.c.exprs[e.row], *self.pairs[k]]

    def _diagnose(self, k: int, spec: Spec, e: Entry, fails: list[int]) -> Diagnosis | None:
        if self.diagnosed >= MAX_DIAGNOSED:
            return None
        self.diagnosed += 1
        X = self._diagnosis_points(k, fails)
        if len(X) < MIN_DIAGNOSIS_POINTS:
            return None
        case = self._case(spec, e, k, X)
        small = tree_size(case.f, SMALL) + tree_size(case.D, SMALL) <= SMALL
        done, found = self.diagnoses.run(lambda: diagnose(case), 1.5, small=small)
        return found if done else None

    def _diagnosis_points(self, k: int, fails: list[int]) -> np.ndarray:
        """Failing points where the claim is defined, for a diagnosis to fit: the sampled
        ones, topped up with points near them (also failing, claim defined) where fewer than
        :data:`MIN_DIAGNOSIS_POINTS` were sampled (a claim defined on a small part of F's
        domain); empty when there are still too few."""
        usable = [self.X[p] for p in fails if self.R[p][k].claimed is not None]
        found = usable[:DIAGNOSIS_POINTS]
        for x in usable[:3] * 4:
            if len(found) >= MIN_DIAGNOSIS_POINTS:
                break
            y = x + self.rng.normal(size=x.shape) * 1e-2 * (1 + np.abs(x))
            if in_domain(self.fn, y[None, :])[0]:
                r = read_point(self._plan_of(k), y, 1)[0]
                if r.status == FAIL and r.claimed is not None:
                    found.append(y)
        n = len(self.fn.variables)
        return np.array(found).reshape(-1, n) if found else np.zeros((0, n))

    def _case(self, spec: Spec, e: Entry, k: int, X: np.ndarray) -> Case:
        wrt = tuple(self.fn.wrt[j] for j in e.cols)
        claimed, true = self.pairs[k]
        case = Case(self.c.exprs[e.row], claimed, true, self.fn.variables, wrt, X,
                    others=[v for v in self.fn.variables if v not in wrt])
        swapped = self._swapped(spec, e)
        if swapped is not None:
            case.transposed = self._true(spec, swapped)
            case.transposed_name = self._name(spec, swapped)
        return case

    def _swapped(self, spec: Spec, e: Entry) -> Entry | None:
        """The mirror entry (j, i) of a square Jacobian or a Hessian, off the diagonal."""
        if spec.kind not in ("jacobian", "hessian") or e.index[0] == e.index[1]:
            return None
        i, j = e.index
        if spec.kind == "hessian":
            return Entry([j, i], 0, (j, i), e.item)
        if len(self.c.exprs) != len(self.fn.wrt):
            return None
        return Entry([j, i], j, (i,), e.item)

    # -- names and texts ------------------------------------------------------------------
    def _name(self, spec: Spec, e: Entry) -> str:
        from ..render import entry_name

        if spec.kind == "hessian":
            return entry_name("hessian", (0, *e.cols), self.fn.wrt, False)
        return entry_name("jacobian", (e.row, e.cols[0]), self.fn.wrt, self.fn.vector)

    def _true_text(self, spec: Spec, e: Entry) -> str:
        if spec.kind == "hessian":
            return self.formulas["hessian"][e.row][e.cols[0]][e.cols[1]]
        return self.formulas["jacobian"][e.row][e.cols[0]]


def _counterexample(variables: list[str], x: np.ndarray, r: Reading) -> dict[str, Any]:
    return {"at": {v: float(val) for v, val in zip(variables, x, strict=True)},
            "claimed": _float(r.claimed), "true": _float(r.true)}


def _float(v: Any) -> float | None:
    if v is None:
        return None
    f = libmp.to_float(v._mpf_, rnd=libmp.round_nearest)  # the closest float, always
    return f if math.isfinite(f) else None
