"""The dashboard bench's page timing: a load ends when the page has finished the work it queued
after its charts appeared, so that work is not charged to the next (warm) load."""

from urllib.parse import quote

import pytest

from bench.bench_dashboard import _load

pytestmark = pytest.mark.browser

BUSY_MS = 300
# A page that, 100 ms in, draws one "chart" and marks its script finished (the bench's DRAWN
# condition holds from then on), and that still has BUSY_MS of main-thread work to do in the next
# frame, as the dashboard's plotly charts had (0.16-0.27 s after every chart had its SVG, at 1M
# runs). The work is queued the moment the page is first read as drawn, so whether a load waits
# for it does not depend on when the bench's poll happens to run.
PAGE = f"""<!doctype html><html><body>
<div data-testid="stApp" data-test-script-state="running"></div>
<script>
const app = document.querySelector('[data-testid="stApp"]');
const read = app.getAttribute.bind(app);
let queued = false;
app.getAttribute = name => {{
  const value = read(name);
  if (value === "notRunning" && !queued) {{
    queued = true;
    requestAnimationFrame(() => {{
      const t = performance.now();
      while (performance.now() - t < {BUSY_MS}) {{}}
      window.doneAt = performance.now();
    }});
  }}
  return value;
}};
setTimeout(() => {{
  const plot = document.createElement("div");
  plot.className = "js-plotly-plot";
  plot.innerHTML = '<svg class="main-svg"></svg>';
  document.body.appendChild(plot);
  app.setAttribute("data-test-script-state", "notRunning");
}}, 100);
</script></body></html>"""


def test_a_load_ends_after_the_work_queued_behind_the_charts(browser):
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        url = "data:text/html," + quote(PAGE)
        for _ in range(2):  # a first load and one right after it, as the bench's cold and warm
            took = _load(page, url, 1)
            done_at = page.evaluate("window.doneAt")  # ms after this navigation started
            assert done_at is not None and done_at >= 100 + BUSY_MS
            # the timer started before the navigation, so a load that waited for the work is longer
            assert took * 1000 >= done_at
    finally:
        ctx.close()
