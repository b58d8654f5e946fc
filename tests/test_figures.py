"""Figures: Hangul is drawn with a font that has it (no missing-glyph warning, which is what
an empty box is), and drawing never touches pyplot's backend or the user's settings."""

from __future__ import annotations

import io
import sys
import warnings

import matplotlib
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from nextchar.display.figures import figure, hangul_fonts

KOREAN = "서울은 대한민국의 수도"


def _draw(title: str) -> list[str]:
    """Render a figure with `title` and a Korean axis label; the glyph warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = figure(figsize=(3, 2), dpi=50)
        ax = fig.subplots()
        ax.set_title(title)
        ax.set_xlabel("글자 수 (characters)")
        ax.plot([1, 2, 3], [3, 1, 2])
        fig.savefig(io.BytesIO(), format="png")
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_default_font_lacks_hangul_so_the_check_can_fail() -> None:
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        missing = _draw(KOREAN)
    assert missing and "HANGUL" in missing[0]


def test_korean_text_renders_without_missing_glyphs() -> None:
    with hangul_fonts() as family:
        assert family is not None, "the test extra installs koreanize-matplotlib"
        assert _draw(KOREAN) == []
    path = font_manager.findfont(
        font_manager.FontProperties(family=family), fallback_to_default=False
    )
    font = FT2Font(path)
    assert all(font.get_char_index(ord(ch)) for ch in KOREAN if ch != " ")


def test_the_context_leaves_settings_and_backend_alone() -> None:
    before = (list(matplotlib.rcParams["font.family"]), matplotlib.get_backend())
    with hangul_fonts():
        pass
    assert (list(matplotlib.rcParams["font.family"]), matplotlib.get_backend()) == before
    assert "koreanize_matplotlib" not in sys.modules  # importing it would set a global font


def test_run_curves_with_a_korean_run_name_show_hangul(tmp_path) -> None:
    from nextchar.training.listeners import Metrics, plot_curves

    metrics = Metrics(tmp_path / "metrics.jsonl", 0)
    metrics.train, metrics.val = [(1, 2.0), (2, 1.5)], [(2, 2.5)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_curves(metrics, tmp_path / "curves.png", "한국어 실험: GRU")
    assert not [w for w in caught if "missing from" in str(w.message)]
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_latin_text_keeps_the_default_font() -> None:
    with hangul_fonts() as family:
        families = list(matplotlib.rcParams["font.family"])
        assert families[-1] == family and families[0] != family
