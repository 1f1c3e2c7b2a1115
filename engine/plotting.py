"""Matplotlib set up safely for figures whose labels come from the data (report.md's plots, the economic
figures): the Agg backend, and no label ever parsed as mathtext or TeX — SPEC §4: "$...$" is drawn
literally (a facet value "$\\nonexistentcmd$" used to crash the outputs stage)."""
from __future__ import annotations

import io

DPI = 100


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "svg.hashsalt": "clio-engine", "path.simplify": True,
                         "text.parse_math": False, "text.usetex": False})
    return plt


def png_bytes(fig, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes (no software metadata, so the same figure gives the same bytes); closes it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
