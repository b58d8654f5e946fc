"""How figures are drawn. Without pyplot: a library that switched matplotlib's backend (to
Agg, say) would stop a notebook's own plots from showing; a `Figure` needs no backend to be
saved. And with Hangul: matplotlib's default font (DejaVu Sans) has no Hangul, so Korean titles,
labels and tick texts come out as empty boxes. `hangul_fonts()` draws a figure with a font
that has them: one installed on the machine, else NanumGothic from the optional
koreanize-matplotlib package (`pip install "nextchar[korean]"`).

Only inside the context: matplotlib's settings are left as the user had them, and Latin text
keeps its usual font (matplotlib >= 3.6 falls back per glyph along the family list).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Hangul fonts that come with an OS or its font packages, most common first: Noto CJK
# (fonts-noto-cjk), Nanum (fonts-nanum), Windows, macOS, older Linux distributions.
HANGUL_FAMILIES = (
    "Noto Sans CJK KR",
    "Noto Sans KR",
    "Source Han Sans KR",
    "NanumGothic",
    "NanumBarunGothic",
    "Malgun Gothic",
    "Apple SD Gothic Neo",
    "AppleGothic",
    "UnDotum",
    "Baekmuk Gulim",
)

HINT = (
    'no font with Hangul found: install one (pip install "nextchar[korean]", or your '
    "system's fonts-nanum / fonts-noto-cjk) for Korean text in figures"
)


def _packaged_font() -> Path | None:
    """koreanize-matplotlib's NanumGothic, found without importing the package: importing it
    changes matplotlib's global font for the whole process."""
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / "NanumGothic.ttf"
    return path if path.is_file() else None


def hangul_family() -> str | None:
    """The name of a font family with Hangul that matplotlib can use, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for family in HANGUL_FAMILIES:
        if family in installed:
            return family
    packaged = _packaged_font()
    if packaged is None:
        return None
    font_manager.fontManager.addfont(str(packaged))  # registers the file; changes no setting
    return font_manager.FontProperties(fname=str(packaged)).get_name()


@contextlib.contextmanager
def hangul_fonts() -> Iterator[str | None]:
    """Draw (and save) figures inside this context to have Hangul rendered; yields the
    family used, or None when the machine has no Hangul font (see HINT)."""
    import matplotlib

    family = hangul_family()
    if family is None:
        yield None
        return
    first = list(matplotlib.rcParams["font.sans-serif"])[:1] or ["DejaVu Sans"]
    with matplotlib.rc_context({"font.family": [*first, family], "axes.unicode_minus": False}):
        yield family


def figure(**kwargs: Any) -> Figure:
    """A matplotlib Figure that belongs to no pyplot state (kwargs: figsize, dpi, ...)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)
