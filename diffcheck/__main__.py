"""``python -m diffcheck``: the same as the ``diffcheck`` command."""

from diffcheck.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
