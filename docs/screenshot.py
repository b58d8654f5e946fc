"""Make docs/serve.png: `nextchar serve` on a checkpoint, driven by headless Chromium (Debian's
chromium + chromedriver, through Selenium) -- type a passage, stream a continuation, find the
unit that follows the position in the line, and take a picture of the page.

    python docs/screenshot.py runs/shakespeare [docs/serve.png]
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

PASSAGE = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\n"
    "It is the east, and Juliet is the sun.\n\nJULIET:\nO Romeo, Romeo! wherefore art thou R"
)


def main() -> None:
    ckpt = sys.argv[1]
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/serve.png")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "nextchar", "serve", ckpt, "--port", str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(url + "/api/models", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        options = Options()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--window-size=1400,1250"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        wait = WebDriverWait(driver, 60)
        driver.get(url)
        box = driver.find_element(By.ID, "text")
        box.clear()
        box.send_keys(PASSAGE)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#bars .bar")) == 10)
        for name, value in (("length", "160"), ("seed", "1")):
            driver.find_element(By.ID, name).clear()
            driver.find_element(By.ID, name).send_keys(value)
        driver.find_element(By.ID, "continue").click()
        wait.until(lambda d: not d.find_element(By.ID, "use").get_attribute("disabled"))
        Select(driver.find_element(By.ID, "state")).select_by_value("c")
        Select(driver.find_element(By.ID, "pattern")).select_by_value("line_position")
        driver.find_element(By.ID, "find").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#heatmap .cell-tok")) > 50)
        time.sleep(0.5)
        driver.save_screenshot(str(out))
        driver.quit()
        print(f"wrote {out}")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
