"""Checking a claimed derivative (``diffcheck expr F --claim G [--claim-hessian H]``).

See :mod:`diffcheck.claims.core` for the flow and docs/claims.md for a walk-through.
"""

from .core import AGREES, PARTLY, PROVED, WRONG, ClaimedEntry, ClaimResult, Claims, prepare
from .diagnoses import Diagnosis

__all__ = ["AGREES", "PARTLY", "PROVED", "WRONG", "ClaimedEntry", "ClaimResult", "Claims",
           "Diagnosis", "prepare"]
