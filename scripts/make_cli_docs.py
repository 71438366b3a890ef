"""Regenerate the generated parts of docs/cli.md: the synopsis of every command (from the
argparse parsers) and the list of functions (from the rule table).

Run: ``python scripts/make_cli_docs.py`` after adding an option or a rule-table row;
tests/test_cli.py fails until the page matches.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffcheck.cli import synopsis  # noqa: E402
from diffcheck.parse import function_names  # noqa: E402

PAGE = ROOT / "docs" / "cli.md"


def blocks() -> dict[str, str]:
    """Marker name -> the text that belongs between its markers."""
    return {"synopsis": f"```\n{synopsis()}\n```",
            "functions": " ".join(f"`{n}`" for n in function_names())}


def fill(page: str) -> str:
    """``page`` with each ``<!-- NAME -->`` ... ``<!-- /NAME -->`` block regenerated."""
    for name, body in blocks().items():
        pattern = re.compile(rf"(<!-- {name}\b[^\n]*-->\n).*?(<!-- /{name} -->)", re.S)
        if not pattern.search(page):
            raise SystemExit(f"docs/cli.md has no <!-- {name} ... --> marker")
        page = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), page)
    return page


def main() -> None:
    PAGE.write_text(fill(PAGE.read_text()))
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
