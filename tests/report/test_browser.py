"""The run report in a real headless Chromium: it loads with no console message, no request
beyond the file itself and no failure; every image decodes to pixels; the funnel it shows is
the one in the run's Parquet. A screenshot is kept as a test artifact."""

import os
from pathlib import Path

import pytest

from curate.report import write_run_report
from report_browser import chromium_binary, open_report
from report_truth import expected_funnel

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed (make test installs it)")]
ARTIFACTS = Path(os.environ.get("CURATE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))

DECODED = """async () => Promise.all([...document.images].map(async image => {
  try { await image.decode(); } catch (error) { return [image.alt, 0, 0]; }
  const canvas = document.createElement('canvas');
  canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let opaque = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) opaque++;
  return [image.alt, image.naturalWidth, opaque];
}))"""

FUNNEL = """() => [...document.querySelectorAll('#funnel-table tr[data-stage]')].map(row => {
  const cell = name => row.querySelector(`[data-field=${name}]`);
  const shown = name => Number(cell(name).textContent.replace(/,/g, ''));
  return [row.dataset.stage, Number(cell('alive_in').dataset.value), shown('alive_in'),
          Number(cell('kept').dataset.value), shown('kept')];
})"""


def test_report_loads_clean_decodes_every_image_and_shows_the_parquet_funnel(small_run):
    report = write_run_report(small_run).report
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open_report(report) as (page, log):
        images = page.evaluate(DECODED)
        funnel = page.evaluate(FUNNEL)
        shown = {key: int(page.locator(f"#{key}").get_attribute("data-value")) for key in ("ingested", "curated")}
        page.screenshot(path=str(ARTIFACTS / "report-small-run.png"), full_page=True)
    assert log.console == [] and log.errors == [] and log.failed == []
    assert log.requests == [report.resolve().as_uri()]  # nothing but the file itself
    assert len(images) > 20
    undecoded = [alt for alt, width, opaque in images if width == 0 or opaque == 0]
    assert undecoded == []
    expected = expected_funnel(small_run)
    assert [(stage, alive, kept) for stage, alive, _, kept, _ in funnel] == expected
    assert all(alive == alive_text and kept == kept_text for _, alive, alive_text, kept, kept_text in funnel)
    assert shown == {"ingested": expected[0][1], "curated": expected[-1][2]}
    assert (ARTIFACTS / "report-small-run.png").read_bytes()[:4] == b"\x89PNG"
