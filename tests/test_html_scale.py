"""The HTML report at real sizes (1,200 queries per row, two models), rendered by headless Chromium: the rank plot
becomes a density strip instead of a smear of dots, no SVG label is clipped by its plot, wide tables scroll
inside their frame instead of widening the page. Checked on element bounds that Chromium computes."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from clbias.api import audit_corpus, load_model
from clbias.report.html.plot_twins import DOTS_MAX
from clbias.report.model import Report
from clbias.report.render_html import to_html
from large_report import UNITS, large_corpus

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="headless Chromium not installed (apt-get install -y chromium); CI installs it")

# Runs in the page after layout and writes what Chromium measured into <pre id="bounds"> for --dump-dom.
BOUNDS_SCRIPT = """<script>
(() => {
  const out = {texts: [], wraps: [], page: {}, twins: []};
  for (const svg of document.querySelectorAll('figure svg')) {
    const box = svg.getBoundingClientRect();
    const plot = svg.closest('figure').getAttribute('data-plot');
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      if (r.width === 0) continue;
      const own = Array.from(t.childNodes).filter(n => n.nodeType === 3).map(n => n.nodeValue).join('');
      out.texts.push({plot, text: own, left: r.left - box.left, right: box.right - r.right,
                      top: r.top - box.top, bottom: box.bottom - r.bottom});
    }
    if (plot === 'rank-of-twins') out.twins.push({circles: svg.querySelectorAll('circle').length,
                                                  rects: svg.querySelectorAll('rect').length});
  }
  for (const w of document.querySelectorAll('.tablewrap')) {
    const r = w.getBoundingClientRect();
    out.wraps.push({table: w.querySelector('table').getAttribute('data-table'), overflowX: getComputedStyle(w).overflowX,
                    scrollWidth: w.scrollWidth, clientWidth: w.clientWidth, right: r.right});
  }
  out.page = {scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth};
  const pre = document.createElement('pre'); pre.id = 'bounds'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def browser(args: list[str], work: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={work / 'profile'}", *args], capture_output=True,
                          text=True, timeout=180)


def screenshot(page: Path, out: Path, work: Path, anchor: str | None = None, size: tuple[int, int] = (1400, 1500)
               ) -> subprocess.CompletedProcess[str]:
    url = page.as_uri() + (f"#{anchor}" if anchor else "")
    return browser([f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", "--hide-scrollbars", url], work)


def measure(page_html: str, work: Path, width: int) -> dict:
    page = work / f"measure-{width}.html"
    page.write_text(page_html.replace("</body>", BOUNDS_SCRIPT + "</body>"), encoding="utf-8")
    dom = browser([f"--window-size={width},1200", "--dump-dom", page.as_uri()], work).stdout
    found = re.search(r'<pre id="bounds">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def large(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Report:
    corpus = large_corpus(tmp_path_factory.mktemp("large") / "corpus")
    models = [load_model(tiny_model_dir), load_model(tiny_model_dir, onnx="model.int8.onnx")]
    return audit_corpus(corpus, models, bootstrap=50, cache_dir=tmp_path_factory.mktemp("large-cache"),
                        scenarios=["multi", "mono-same"])


def rank_plots(page: str) -> list[str]:
    return re.findall(r'<figure data-plot="rank-of-twins"[^>]*>(.*?)</figure>', page, re.S)


def test_rows_of_many_queries_become_density_strips(large: Report) -> None:
    rows = [r for r in large.scenarios if r.kind == "multi"]
    assert rows and all(r.n_queries == UNITS > DOTS_MAX for r in rows)
    for plot in rank_plots(to_html(large)):
        assert plot.count("<circle") <= 2  # the legend's two dots; no per-query dots at this size
        strips = re.findall(r'<rect[^>]*fill-opacity="([\d.]+)"[^>]*><title>[^<]*: (\d+) of (\d+) queries', plot)
        assert strips, plot[:500]
        assert {int(total) for _, _, total in strips} == {UNITS}
        assert max(float(o) for o, _, _ in strips) == 1.0  # the fullest bin is opaque, the others lighter
        assert len({o for o, _, _ in strips}) > 3


def test_small_rows_keep_one_pair_of_dots_per_query(large: Report) -> None:
    from dataclasses import replace

    small = replace(large, scenarios=[replace(r, by_model={m: replace(s, per_query={k: v[:40] for k, v in
                                                                                      s.per_query.items()})
                                                          for m, s in r.by_model.items()})
                                      for r in large.scenarios])
    plot = rank_plots(to_html(small))[0]
    assert plot.count("<circle") >= 2 * 40 * 2  # 2 dots per query, 40 queries, in each of the two rows of de


@needs_chromium
@pytest.mark.parametrize("width", [1400, 900])
def test_chromium_bounds_at_real_size(large: Report, tmp_path: Path, width: int) -> None:
    found = measure(to_html(large), tmp_path, width)
    clipped = [t for t in found["texts"] if min(t["left"], t["right"], t["top"], t["bottom"]) < -0.5]
    assert not clipped, clipped[:5]
    counts = [t for t in found["texts"] if t["plot"] == "rank-of-twins" and re.fullmatch(r"\d+/\d+", t["text"])]
    assert counts and all(0 < int(t["text"].split("/")[1]) <= UNITS for t in counts)  # drawn, and not clipped
    assert found["page"]["scrollWidth"] <= found["page"]["clientWidth"]  # the page itself never scrolls sideways
    for wrap in found["wraps"]:
        assert wrap["right"] <= found["page"]["clientWidth"] + 0.5, wrap
        if wrap["scrollWidth"] > wrap["clientWidth"]:
            assert wrap["overflowX"] in ("auto", "scroll"), wrap
    if width == 900:
        assert any(w["scrollWidth"] > w["clientWidth"] for w in found["wraps"])  # the scrolling path was exercised
    assert found["twins"] and all(t["circles"] <= 2 and t["rects"] > 50 for t in found["twins"])


@needs_chromium
def test_chromium_screenshot_of_the_large_report(large: Report, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(to_html(large), encoding="utf-8")
    shot = tmp_path / "report.png"
    done = screenshot(page, shot, tmp_path)
    assert shot.exists(), done.stderr[-2000:]
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")) == (1400, 1500)
    assert shot.stat().st_size > 30_000
