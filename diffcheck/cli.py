"""The ``diffcheck`` command line.

Every :class:`~diffcheck.errors.DiffcheckError` becomes one paragraph on stderr and exit
status 2, without a traceback (``--debug`` shows one).

>>> main(["expr", "x**2*y + y", "--at", "x=2,y=3", "--json"]) # doctest: +ELLIPSIS
{...
0
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from collections.abc import Sequence

from .commands import COMMANDS
from .errors import DiffcheckError

EXIT_OK, EXIT_DISAGREE, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad options as one paragraph and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"diffcheck: error: {message}. See '{self.prog} --help'.\n")
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="diffcheck",
                     description="Check derivatives with symbolic, forward-mode, reverse-mode, "
                                 "finite-difference and JAX engines; optimise with them.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        mod = _load(module)
        if mod is None:
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def synopsis(width: int = 96) -> str:
    """The usage of every subcommand, as ``--help`` prints it at ``width`` columns
    (docs/cli.md shows it; ``python scripts/make_cli_docs.py`` writes it there).

    >>> synopsis().splitlines()[0]
    'usage: diffcheck [-h] [--debug] COMMAND ...'
    """
    def formatter(prog: str) -> argparse.HelpFormatter:
        return argparse.HelpFormatter(prog, width=width)

    parser = build_parser()
    parser.formatter_class = formatter
    parts = [parser.format_usage().strip()]
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for sub in commands.choices.values():
        sub.formatter_class = formatter
        parts.append(sub.format_usage().strip())
    return "\n".join(parts)


def _load(module: str):
    try:
        return importlib.import_module(f"diffcheck.commands.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"diffcheck.commands.{module}":
            return None
        raise


def _protect_expression(argv: list[str]) -> list[str]:
    """Let an expression start with '-' ('-x**2') without argparse reading it as an option
    (EXPR, and the values of options that take an expression, such as --claim)."""
    argv = _join_expression_options(argv)
    if len(argv) >= 2 and argv[0] in COMMANDS and argv[1].startswith("-") and \
            not argv[1].startswith("--") and argv[1] != "-h":
        return [argv[0], *argv[2:], "--", argv[1]]
    return argv


EXPRESSION_OPTIONS = ("--claim", "--claim-hessian")


def _join_expression_options(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        if argv[i] in EXPRESSION_OPTIONS and i + 1 < len(argv) and \
                argv[i + 1].startswith("-") and not argv[i + 1].startswith("--"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    argv = _protect_expression(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return EXIT_BAD_INPUT
        return args._module.run(args)
    except DiffcheckError as exc:
        if debug:
            raise
        _say(str(exc))
        return EXIT_BAD_INPUT
    except (RecursionError, MemoryError) as exc:
        if debug:
            raise
        _say(f"the input is too large to handle ({type(exc).__name__}); simplify it or split "
             "it into smaller expressions")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `diffcheck expr ... | head`: stop quietly, like other tools
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001  (last resort: never a raw traceback)
        if debug:
            raise
        _say(f"internal error ({type(exc).__name__}: {exc}). This is a bug in diffcheck; "
             "rerun with --debug for a traceback and report it.")
        return EXIT_INTERNAL


def _say(message: str) -> None:
    first, _, rest = message.partition("\n")
    sys.stderr.write(textwrap.fill(f"diffcheck: error: {first}", width=100) + "\n")
    if rest:
        sys.stderr.write(rest + "\n")
