"""SciPy's special functions on traced values.

The ufuncs (``expit``, ``log_expit``, ``erf``, ``erfc``, ``gammaln``, ``digamma``/``psi``,
the Hurwitz ``zeta`` behind ``polygamma``, ``xlogy``, ``xlog1py``) get rows of the rule table
(:func:`diffcheck.primitives.scipy_special_rows`), registered when a ufunc unknown to the
dispatch first meets a traced value while SciPy is imported: diffcheck itself never imports
SciPy, and a SciPy ufunc can only come from code that did. ``logsumexp``, ``softmax`` and
``log_softmax`` are Python functions written for the array API: they run unchanged on traced
values (which answer ``__array_namespace__`` and pass through ``np.asarray`` while traced), so
``from scipy.special import logsumexp`` works as well as ``scipy.special.logsumexp``.

>>> import numpy as np, scipy.special as sp
>>> import diffcheck as dc
>>> dc.gradient(lambda x: np.sum(sp.expit(x)) + sp.logsumexp(x), np.zeros(2)).tolist()
[0.75, 0.75]
"""

from __future__ import annotations

import sys

from ...primitives import UFUNC_ROWS, scipy_special_rows
from .core import EXTENSIONS

#: names of the SciPy functions that traced values support (for the documentation)
SCIPY_FUNCTIONS = ("logsumexp", "softmax", "log_softmax")


def load_scipy_rows() -> bool:
    """Register the SciPy rows if SciPy's special module is imported (True then)."""
    special = sys.modules.get("scipy.special")
    if special is None:
        return False
    for row in scipy_special_rows(special):
        UFUNC_ROWS[row.ufunc] = row
    return True


EXTENSIONS.append(load_scipy_rows)
