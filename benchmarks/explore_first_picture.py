"""How long the explorer page takes to show its first picture, in a real browser.

Starts ``mnistgan explore --run RUN`` (its start-up, TensorFlow's import included, is not
counted: the page is served once the run's latest generator is loaded), then opens the page in
headless chromium several times, each time in a new browser tab with an empty cache, and times
from the request of the page to the samples grid being drawn in the browser (the image loaded).
Optionally saves a screenshot of the page.

    python benchmarks/explore_first_picture.py --run out/ --times 5 --screenshot docs/images/explore.png

Needs the explore extra, selenium, and chromium with chromedriver on PATH.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--times", type=int, default=5)
    parser.add_argument("--screenshot", default=None, help="PNG of the page after the first picture")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "mnistgan", "explore", "--run", args.run, "--no-browser",
                               "--port", str(port)], stdout=subprocess.PIPE, text=True)
    url = server.stdout.readline().strip()
    print(f"served {url} after {time.perf_counter() - started:.1f} s (TensorFlow and the generator loaded)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("google-chrome")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={args.width},{args.height}"):
        options.add_argument(a)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    drawn = "const i = document.querySelector('#grid img'); return !!(i && i.complete && i.naturalWidth > 0);"
    seconds = []
    try:
        for k in range(args.times):
            driver.execute_cdp_cmd("Network.clearBrowserCache", {})
            t0 = time.perf_counter()
            driver.get(url)
            while not driver.execute_script(drawn):
                time.sleep(0.01)
            seconds.append(time.perf_counter() - t0)
            print(f"open {k + 1}: first picture after {seconds[-1]:.2f} s", flush=True)
            if k == 0 and args.screenshot:
                time.sleep(2)  # let the training tab's curves finish drawing before the picture
                driver.find_element(By.TAG_NAME, "body")
                driver.save_screenshot(args.screenshot)
                print(f"screenshot: {args.screenshot}")
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)
    print(f"first picture: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s over {len(seconds)} opens")


if __name__ == "__main__":
    main()
