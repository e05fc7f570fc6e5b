"""The README's dashboard picture: there is no Grafana to install here (Debian and PyPI ship none), so the
dashboard's queries are drawn by Prometheus' own graph page, in headless Chromium, after a minute of traffic through
a real `python -m gateway` (fake model) and the real vLLM on CPU of the end-to-end tests.

    python -m tests.dashboard_screenshot --screenshot docs/dashboard-prometheus.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.monitoring import STARTUP_DEADLINE_S, Prometheus, panel_queries, scraped_stack
from tests.servers import wait_for

SCREENSHOT_PANELS = ("Request rate by route", "Latency p50 / p99 by route", "Errors by code", "vLLM tokens")
SCREENSHOT_ROUNDS = 12


def graph_url(server: Prometheus) -> str:
    """Prometheus' graph page with one graph per chosen panel (its first query), over the last minute."""
    from urllib.parse import urlencode

    chosen = [query for query in panel_queries() if query.panel in SCREENSHOT_PANELS and query.ref_id == "A"]
    params: dict[str, str] = {}
    for index, query in enumerate(chosen):
        params |= {f"g{index}.expr": query.promql, f"g{index}.tab": "0", f"g{index}.range_input": "1m",
                   f"g{index}.stacked": "0", f"g{index}.show_exemplars": "0"}
    return f"{server.url}/graph?{urlencode(params)}"


def screenshot(server: Prometheus, out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--window-size=1000,3300", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
    try:
        driver.get(graph_url(server))
        # Debian's Prometheus serves its classic UI: each graph is an SVG drawn once its query answered.
        wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, ".graph_area svg")) >= len(SCREENSHOT_PANELS),
                 "the graphs", STARTUP_DEADLINE_S)
        driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
        driver.find_element(By.TAG_NAME, "body").screenshot(str(out))
    finally:
        driver.quit()
    _shrink(out)


def _shrink(png: Path) -> None:
    """A 64-colour palette: the page is flat colours and lines, and the README should not carry megabytes."""
    from PIL import Image

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=64)
    small.save(png, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.dashboard_screenshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--screenshot", type=Path, required=True, metavar="PNG")
    args = parser.parse_args()
    from tests.e2e.vllm_fixture import build_tiny_model, vllm_cpu_server

    with tempfile.TemporaryDirectory() as logs, vllm_cpu_server(build_tiny_model(), Path(logs)) as vllm, \
            scraped_stack(vllm.base_url, rounds=SCREENSHOT_ROUNDS) as (server, _, _):
        screenshot(server, args.screenshot)
    print(f"wrote {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
