"""Open a report in Debian's headless Chromium through Playwright, recording everything the page
logs or requests. Also a command: `python tests/report/report_browser.py REPORT.html SHOT.png [HEIGHT]` saves
a full-page screenshot (how docs/report-quickstart.png is made)."""

from __future__ import annotations

import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_binary() -> str | None:
    """Debian's Chromium (the real binary rather than its wrapper script), or None."""
    found = next((path for path in CANDIDATES if Path(path).is_file()), None)
    return found or shutil.which("chromium")


@dataclass
class PageLog:
    """What the page said and asked for while it loaded."""

    console: list[tuple[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def open_report(path: Path, width: int = 1280):
    """(page, log) of the report loaded from disk."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_binary(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            log = PageLog()
            page.on("console", lambda message: log.console.append((message.type, message.text)))
            page.on("request", lambda request: log.requests.append(request.url))
            page.on("requestfailed", lambda request: log.failed.append(request.url))
            page.on("pageerror", lambda error: log.errors.append(str(error)))
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            yield page, log
        finally:
            browser.close()


def screenshot(report: Path, out: Path, height: int | None = None) -> None:
    """A PNG of the whole report, or of its first `height` pixels."""
    with open_report(report) as (page, _):
        page.evaluate("document.querySelector('nav').style.position = 'static'")
        clip = {"x": 0, "y": 0, "width": 1280, "height": height} if height else None
        page.screenshot(path=str(out), full_page=True, clip=clip)


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
