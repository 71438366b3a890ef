"""Time budgets for SymPy work that may be slow on adversarial input.

SymPy is pure Python, so a step can be abandoned from a timer signal (``SIGALRM`` through
``setitimer``): :meth:`Budget.run` arms the timer, runs the step and returns ``(False, None)``
when the time ran out. The exception the handler raises derives from ``BaseException`` (so
SymPy's ``except Exception`` blocks cannot swallow it) and the timer repeats until the step
is left. Where no timer is available (a thread other than the main one, a platform without
``setitimer``, or a timer the program already uses), only steps the caller marks as small
are run: size limits bound them instead.

>>> b = Budget(1.0)
>>> b.run(lambda: 2 + 2, 0.5, small=True)
(True, 4)
>>> b.run(lambda: [0 for _ in iter(int, 1)], 0.05)[0]  # an endless loop is abandoned
False
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


class _OutOfTime(BaseException):
    """Raised by the timer signal inside a step that ran out of time."""


def _handler(signum: int, frame: Any) -> None:
    raise _OutOfTime


def timer_available() -> bool:
    """True where a step can be interrupted by :meth:`Budget.run`."""
    return (hasattr(signal, "setitimer") and threading.current_thread() is
            threading.main_thread() and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
            and signal.getsignal(signal.SIGALRM) is not None)


class Budget:
    """Seconds to spend in total; each step also gets its own limit."""

    def __init__(self, seconds: float):
        self.deadline = time.perf_counter() + seconds
        self.interruptible = timer_available()

    def left(self) -> float:
        return max(0.0, self.deadline - time.perf_counter())

    def run(self, step: Callable[[], Any], seconds: float, *, small: bool = False
            ) -> tuple[bool, Any]:
        """``(True, step())`` if it finishes within ``seconds`` (and the budget), else
        ``(False, None)``. Without a timer only a ``small`` step runs."""
        limit = min(seconds, self.left())
        if limit <= 0.001 or not (self.interruptible or small):
            return False, None
        if not self.interruptible:
            return True, step()
        previous = signal.signal(signal.SIGALRM, _handler)
        hook = sys.unraisablehook
        sys.unraisablehook = _quiet(hook)
        outcome: tuple[bool, Any] = (False, None)
        try:
            try:
                signal.setitimer(signal.ITIMER_REAL, limit, 0.02)
                outcome = (True, step())
            finally:
                _cancel_timer()
        except (_OutOfTime, RecursionError):
            pass
        finally:
            signal.signal(signal.SIGALRM, previous)
            sys.unraisablehook = hook
        return outcome


def _quiet(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """An unraisable-exception hook that drops the timer's own exception: a tick that lands
    in a finaliser or a garbage-collector callback is ignored there (the next tick stops the
    step) and must not print a message."""
    def quiet(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, _OutOfTime):
            hook(unraisable)
    return quiet


def _cancel_timer() -> None:
    """Stop the repeating timer; a tick that lands while stopping it is absorbed."""
    while True:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.0)
            return
        except _OutOfTime:
            continue
