"""Remake docs/notebook_views.png: how `nextchar.lab()` and a prediction show in Jupyter (their
_repr_html_, rendered by headless Chromium).

    python docs/notebook_views.py RUN_DIR     # a character model, e.g. runs/shakespeare

Chromium needs a Hangul font on the machine (fonts-nanum, or NanumGothic.ttf in ~/.fonts).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import nextchar

HERE = Path(__file__).resolve().parent


def main() -> None:
    run = sys.argv[1] if len(sys.argv) > 1 else "runs/shakespeare"
    lab = nextchar.lab(" 서울은 대한민국의 수도이다", epochs=240, every=40)
    prediction = nextchar.predict(run, "To be, or not to b", k=6)
    page = (
        '<html><body style="font-family: sans-serif; margin: 16px; background: white">'
        '<h4>nextchar.lab(" 서울은 대한민국의 수도이다", epochs=240, every=40)</h4>'
        f"{lab._repr_html_()}"
        f'<h4>nextchar.predict("{run}", "To be, or not to b", k=6)</h4>'
        f"{prediction._repr_html_()}</body></html>"
    )
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "views.html"
        html.write_text(page, encoding="utf-8")
        subprocess.run(
            [
                "chromium", "--headless", "--no-sandbox", "--hide-scrollbars",
                f"--screenshot={HERE / 'notebook_views.png'}", "--window-size=1100,760",
                html.as_uri(),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    print(HERE / "notebook_views.png")


if __name__ == "__main__":
    main()
