"""A real browser on the real server: `nextchar serve` on a free port, Debian's Chromium driven
headless through Selenium and chromedriver; type into the box and check that the bars, the
streamed continuation, the cell heatmap and the surprise view show the API's numbers.
Skipped, with the reason, where no Chromium + chromedriver can be had (.ci/run installs them
with apt where it can)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest
import torch

from nextchar.core.commands import SampleConfig
from nextchar.core.config import model_config
from nextchar.inference.generate import sample
from nextchar.models import build_model, load
from nextchar.models.checkpoint import save_checkpoint
from nextchar.text.tokenizers import CharTokenizer

TEXT = 'ROMEO: "But soft!" what light through yonder window breaks?\nJULIET: Ay me!\n' * 3
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

webdriver = pytest.importorskip("selenium.webdriver")
if not (CHROMIUM and DRIVER):
    pytest.skip(
        "no Chromium + chromedriver on this machine (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    tok = CharTokenizer.build(TEXT)
    torch.manual_seed(0)
    model = build_model(model_config(vocab_size=tok.vocab_size, cell="lstm", hidden_size=24))
    ckpt = save_checkpoint(root / "plays" / "best", model.eval(), tok).parent
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nextchar", "serve", str(ckpt), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"nextchar serve did not start: {proc.stdout.read() if proc.stdout else ''}")
    yield url, ckpt
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.mark.slow
def test_typing_shows_bars_continuation_heatmap_and_surprise(server, browser, tmp_path) -> None:
    url, ckpt = server
    wait = WebDriverWait(browser, 30)
    browser.get(url)
    box = browser.find_element(By.ID, "text")
    wait.until(lambda d: d.find_element(By.ID, "model").get_attribute("value") == "plays")
    box.clear()
    box.send_keys("ROMEO: Bu")
    expected = httpx.post(
        f"{url}/api/predict", json={"model": "plays", "text": "ROMEO: Bu", "k": 10}
    ).json()
    want = [f"{100 * c['p']:.1f}%" for c in expected["candidates"]]

    def bars_show_the_prediction(driver) -> bool:
        shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#bars .bar .p")]
        return shown == want

    wait.until(bars_show_the_prediction)
    entropy = browser.find_element(By.ID, "entropy").text
    assert entropy == f"entropy {expected['entropy_bits']:.2f} bits"

    # the continuation, streamed: what the library samples with the page's settings
    browser.find_element(By.ID, "length").clear()
    browser.find_element(By.ID, "length").send_keys("60")
    browser.find_element(By.ID, "continue").click()
    model, tok = load(ckpt, "cpu")
    text = sample(model, tok, "ROMEO: Bu", SampleConfig(length=60, temperature=0.8, seed=0))[0]
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#output .new").text == text.strip())

    # the cell heatmap: one coloured span per character, unit 0's values
    browser.find_element(By.ID, "show-cells").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#heatmap .cell-tok")) == 9)
    spans = browser.find_elements(By.CSS_SELECTOR, "#heatmap .cell-tok")
    acts = httpx.post(
        f"{url}/api/activations", json={"model": "plays", "text": "ROMEO: Bu", "state": "h"}
    ).json()
    assert [s.text or " " for s in spans] == list("ROMEO: Bu")
    assert [float(s.get_attribute("data-value")) for s in spans] == pytest.approx(
        [row[0] for row in acts["values"]], abs=1e-4
    )
    assert all("rgba" in s.get_attribute("style") for s in spans)
    browser.find_element(By.ID, "find").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#units button")) == 10)

    # surprise: bits on every character after the first
    browser.find_element(By.ID, "tab-surprise").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#surprise [data-bits]")) == 8)
    assert browser.find_element(By.ID, "bpc").text.endswith("bits per character")
    assert browser.find_element(By.ID, "error").text == ""
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_a_bad_character_shows_the_error_on_the_page(server, browser) -> None:
    url, _ = server
    browser.get(url)
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys("ROMEO 한")
    WebDriverWait(browser, 30).until(lambda d: "한" in d.find_element(By.ID, "error").text)
