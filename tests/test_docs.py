"""The documentation runs: every ```python block is executed and every ```console block
``$ diffcheck ...`` is run and compared with the output shown, in docs/*.md and README.md.

* A page's python blocks share one namespace, in order; a ```python block followed directly
  by a ```text block must print exactly that text.
* In a console block, each ``$ diffcheck ...`` line is a command and the lines after it (to
  the next ``$``) its expected stdout and stderr; a trailing ``; echo $?`` adds the exit
  status as a last line. Trailing whitespace and trailing blank lines are ignored.
* A block preceded by the line ``<!-- docs-test: skip -->`` is not run (only for output
  that depends on the machine, such as timings).

Regenerate the shown output after an intended change with
``python tests/test_docs.py --update docs/PAGE.md`` and review the diff.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [p for p in [ROOT / "README.md"] if p.exists()]
SKIP = "<!-- docs-test: skip -->"
FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(text: str) -> list[tuple[str, str, int, int, bool]]:
    """(language, body, start, end, skipped) of each fenced block."""
    out = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        out.append((m.group(1), m.group(2), m.start(2), m.end(2), before == SKIP))
    return out


def normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).rstrip()


def run_command(command: str) -> str:
    """Run one ``diffcheck ...`` command in-process; stdout, then stderr, then the status."""
    from diffcheck.cli import main

    status = command.endswith("; echo $?")
    argv = shlex.split(command.removesuffix("; echo $?"))
    assert argv[0] == "diffcheck", f"console blocks run only diffcheck commands: {command}"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv[1:])
        except SystemExit as exc:
            code = exc.code
    text = out.getvalue() + err.getvalue()
    return text + (f"{code}\n" if status else "")


def console_pairs(body: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:].strip(), []))
        elif pairs:
            pairs[-1][1].append(line)
    return [(c, "\n".join(lines)) for c, lines in pairs]


def run_python(body: str, namespace: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(body, "<docs>", "exec"), namespace)  # noqa: S102 - our own docs
    return out.getvalue()


def check_page(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    namespace: dict = {"__name__": "__docs__"}
    found = blocks(text)
    for i, (lang, body, _, _, skipped) in enumerate(found):
        if skipped:
            continue
        if lang == "python":
            printed = run_python(body, namespace)
            nxt = found[i + 1] if i + 1 < len(found) else None
            if nxt and nxt[0] == "text" and \
                    re.fullmatch(r"\n?```[ \t]*\n+```text[ \t]*\n", text[found[i][3]:nxt[2]]):
                assert normalise(printed) == normalise(nxt[1]), f"{page.name}: python block {i}"
        elif lang == "console":
            for command, expected in console_pairs(body):
                got = run_command(command)
                assert normalise(got) == normalise(expected), \
                    f"{page.name}: $ {command}\n--- got ---\n{got}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    check_page(page)


def test_readme_links_to_the_docs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\(docs/([\w-]+\.md)", text))
    for name in linked:
        assert (ROOT / "docs" / name).exists(), f"README links to missing docs/{name}"
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages the README does not link: {sorted(pages - linked)}"


def update(page: Path) -> None:
    """Rewrite the output shown under each console command with the real output."""
    import tempfile

    page = page.resolve()
    text = page.read_text(encoding="utf-8")
    cwd = tempfile.mkdtemp()  # files the commands write (graphs) land here
    pieces, last = [], 0
    for lang, body, start, end, skipped in blocks(text):
        if lang != "console" or skipped:
            continue
        new = []
        for command, _ in console_pairs(body):
            os.chdir(cwd)
            new.append(f"$ {command}\n{normalise(run_command(command))}\n")
        pieces.append(text[last:start] + "".join(new))
        last = end
    page.write_text("".join(pieces) + text[last:], encoding="utf-8")
    os.chdir(ROOT)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--update":
        for path in [Path(name).resolve() for name in sys.argv[2:]]:
            update(path)
    else:
        sys.exit("usage: python tests/test_docs.py --update docs/PAGE.md ...")
