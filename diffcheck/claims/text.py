"""The claims in the text report: one line per claimed entry, and a closing verdict line.

>>> import diffcheck as dc
>>> r = dc.check_expression("x**3", claim="x**2")
>>> lines = claim_lines(r)
>>> lines[0]
'claimed derivative:'
>>> print(lines[1].replace("; ", ";\\n    "))
  df/dx = x**2   WRONG at x=1: claimed 1, true 3 (difference -2);
    constant-factor: the claim is 1/3 times the true derivative 3*x**2 (a factor 3 is missing)
>>> summary_line(r)
'CLAIM WRONG: df/dx is wrong (0 of 1 claimed entries right).'
"""

from __future__ import annotations

from typing import Any

from .core import AGREES, PARTLY, PROVED, WRONG, ClaimedEntry
from .words import number, point

TITLES = {"derivative": "derivative", "gradient": "gradient", "jacobian": "Jacobian",
          "hessian": "Hessian"}


def claim_lines(report: Any) -> list[str]:
    """A block per claim: its title, then one line per entry."""
    lines: list[str] = []
    for claim in report.claims:
        lines.append(f"claimed {TITLES[claim.kind]}:")
        width = max(len(f"{e.name} = {e.claimed}") for e in claim.entries)
        for e in claim.entries:
            lines.append(f"  {f'{e.name} = {e.claimed}'.ljust(width)}   {entry_words(e)}")
        lines.append("")
    return lines


def entry_words(e: ClaimedEntry) -> str:
    """The verdict of one entry in words."""
    if e.verdict == PROVED:
        return f"proved: {e.how}"
    if e.verdict == AGREES:
        return f"agrees: {e.how}"
    if e.verdict == WRONG:
        words = f"WRONG at {_counterexample(e)}"
    elif e.diagnosis is not None:  # its text says where the claim holds
        words = f"PARTLY RIGHT, fails at {_counterexample(e)}"
    else:
        where = f"for {e.region}" if e.region else "on part of the domain"
        words = f"PARTLY RIGHT: holds {where}, but fails at {_counterexample(e)}"
    if e.diagnosis is not None:
        words += f"; {e.diagnosis}"
    return words


def _counterexample(e: ClaimedEntry) -> str:
    ce = e.counterexample
    text = f"{point(ce['at'])}: claimed {number(ce['claimed'])}, true {number(ce['true'])}"
    if e.difference is not None:
        d = e.difference
        text += f" (difference {number(d) if abs(d) >= 1e-3 else f'{d:.3g}'})"
    return text


def summary_line(report: Any) -> str | None:
    """``CLAIM OK: ...`` or ``CLAIM WRONG: ...`` naming the entries that are not right."""
    if not report.claims:
        return None
    entries = [e for c in report.claims for e in c.entries]
    right = sum(e.ok for e in entries)
    if right == len(entries):
        proved = sum(e.verdict == PROVED for e in entries)
        how = [f"{proved} proved"] if proved else []
        if proved < right:
            how.append(f"{right - proved} agree{'s' if right - proved == 1 else ''} at every "
                       "sampled point")
        what = "the claimed entry is" if right == 1 else f"all {right} claimed entries are"
        return f"CLAIM OK: {what} right ({', '.join(how)})."
    parts = []
    for verdict, words in ((WRONG, "wrong"), (PARTLY, "right only on part of the domain")):
        names = [e.name for e in entries if e.verdict == verdict]
        if names:
            parts.append(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} {words}")
    head = "CLAIM WRONG" if any(e.verdict == WRONG for e in entries) else "CLAIM PARTLY RIGHT"
    return f"{head}: {'; '.join(parts)} ({right} of {len(entries)} claimed entries right)."
