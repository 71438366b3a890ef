"""Errors raised for bad input.

Every error diffcheck raises because of what a user gave it derives from
:class:`DiffcheckError`; the CLI turns each into one paragraph on stderr and
exit status 2.

>>> from diffcheck.errors import ParseError
>>> print(ParseError("unexpected ')'", text="x + )", column=4))
unexpected ')'
  x + )
      ^
"""

from __future__ import annotations


class DiffcheckError(Exception):
    """Base class of every error caused by bad input (parse, domain, usage, shapes)."""


class ParseError(DiffcheckError):
    """The expression text could not be parsed; shows the text with a caret under the column."""

    def __init__(self, message: str, *, text: str | None = None, column: int | None = None):
        self.message = message
        self.text = text
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        if self.text is None or self.column is None or "\n" in self.text or len(self.text) > 200:
            return self.message
        return f"{self.message}\n  {self.text}\n  {' ' * self.column}^"


class DomainError(DiffcheckError):
    """A point lies outside the domain where the function or its derivative is defined."""


class UnsupportedError(DiffcheckError):
    """An operation, function or NumPy call that diffcheck cannot differentiate."""


class UsageError(DiffcheckError):
    """A bad option or argument: unknown engine, negative tolerance, wrong shapes, ..."""


class ShapeError(UsageError):
    """An array of the wrong shape was passed or returned."""


class DerivativeError(DiffcheckError):
    """A derivative diffcheck was asked to trust is wrong (``minimize(check=True)``).

    ``result`` holds the check's full report (``str(error.result)`` renders it).
    """

    def __init__(self, message: str, *, result: object = None):
        super().__init__(message)
        self.result = result
