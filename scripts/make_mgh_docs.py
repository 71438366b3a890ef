"""Regenerate the MGH benchmark section of docs/optim.md and docs/figures/mgh_profile.png.

    python scripts/make_mgh_docs.py            # run benchmarks/bench_mgh.py (tens of minutes)
    python scripts/make_mgh_docs.py --replot   # reuse docs/figures/mgh_profile.json

The section between the ``<!-- mgh:begin -->`` and ``<!-- mgh:end -->`` lines of docs/optim.md
is replaced by the solved/f-evals/false-success table and the figure. Needs matplotlib
(``pip install 'diffcheck[plot]'``) and, for the peers, the bench extras.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"
DATA = FIGURES / "mgh_profile.json"
BEGIN, END = "<!-- mgh:begin -->", "<!-- mgh:end -->"


def measure() -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_mgh
    from make_cost_docs import machine

    header = machine()
    out = str(DATA)
    bench_mgh.main(["--json", out])
    data = json.loads(DATA.read_text())
    data["machine"] = header
    DATA.write_text(json.dumps(data, indent=1))
    return data


def plot(data: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    taus = np.log2(np.asarray(data["taus"]))
    fig, ax = plt.subplots(figsize=(8, 5))
    ranked = sorted(data["profile"].items(), key=lambda kv: -kv[1][-1])
    colours = plt.get_cmap("tab20").colors  # one colour per solver (more than 10 of them)
    for i, (name, frac) in enumerate(ranked):
        style = "-" if name.startswith("diffcheck") else "--"
        ax.step(taus, frac, where="post", linestyle=style, label=name, linewidth=1.6,
                color=colours[i % len(colours)])
    ax.set_xlabel("log2 of f-evals relative to the best solver on the start")
    ax.set_ylabel("fraction of the 56 starts solved")
    ax.set_title("Moré–Garbow–Hillstrom set, float64: performance profile on f-evals")
    ax.set_ylim(0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(FIGURES / "mgh_profile.png", dpi=110)


def section(data: dict) -> str:
    return "\n".join([
        BEGIN,
        "",
        data["table"],
        "",
        f"Measured {data.get('machine', 'on this machine')}.",
        "",
        "![performance profile of every solver on the MGH set](figures/mgh_profile.png)",
        "",
        END,
    ])


def update_page(data: dict) -> None:
    page = DOCS / "optim.md"
    text = page.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    page.write_text(text[:start] + section(data) + text[end:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replot", action="store_true", help="reuse the stored measurements")
    args = ap.parse_args()
    data = json.loads(DATA.read_text()) if args.replot else measure()
    plot(data)
    update_page(data)
    print(f"wrote {FIGURES / 'mgh_profile.png'} and the MGH section of docs/optim.md")


if __name__ == "__main__":
    main()
