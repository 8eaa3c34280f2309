"""Matplotlib set-up for our figures: the Agg backend and a font that has Chinese glyphs.

Looks for a CJK font in this order: ``P2MED_CJK_FONT`` (a font file), fonts matplotlib already knows
(WenQuanYi, Noto Sans CJK, Source Han, SimHei, ...), then ``.cache/fonts/`` in the project (the Makefile
unpacks Debian's fonts-wqy-microhei there without root). Without one, Chinese labels would draw as boxes: a
warning says so once. Example: ``plt = pyplot()``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
CJK_NAMES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC")
PROJECT_FONTS = Path(__file__).resolve().parents[3] / ".cache" / "fonts"
_ready = False


def pyplot():
    """matplotlib.pyplot on Agg with a CJK-capable font selected when one exists."""
    global _ready
    from ..common.optional import require
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    if not _ready:
        _ready = True
        files = [os.environ.get("P2MED_CJK_FONT", "")] + [str(p) for p in sorted(PROJECT_FONTS.glob("*.tt[cf]"))]
        for f in files:
            if f and Path(f).is_file():
                font_manager.fontManager.addfont(f)
        known = {f.name for f in font_manager.fontManager.ttflist}
        found = [n for n in CJK_NAMES if n in known]
        if found:
            plt.rcParams["font.sans-serif"] = found + list(plt.rcParams["font.sans-serif"])
            plt.rcParams["axes.unicode_minus"] = False
        else:   # one warning here instead of one per missing glyph from matplotlib
            import warnings
            warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
            log.warning("no font with Chinese glyphs found: Chinese labels in figures will show as boxes "
                        "(run `make fonts` or set P2MED_CJK_FONT to a .ttf/.ttc file)")
    return plt
