"""The built docs, rendered in headless Chromium in a 1280 px window: no code
block is clipped (scrolls sideways) and no page is wider than the window.

Each page is also screenshotted into the test's temp dir
(``docs-shots/<page>.png``), so a failure can be looked at.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html import unescape as html_unescape
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1280, 900
SKIP = {"genindex.html", "search.html", "py-modindex.html"}

# Runs after layout: every <pre> whose content is wider than its box, and
# whether the page scrolls sideways; the result goes into the DOM for --dump-dom.
CHECK = """<script>
window.addEventListener("load", () => {
  const clipped = [];
  for (const pre of document.querySelectorAll("pre")) {
    if (pre.scrollWidth > pre.clientWidth + 1) {
      const first = pre.textContent.trim().split("\\n")[0].slice(0, 80);
      clipped.push(`${first} (${pre.scrollWidth} px in ${pre.clientWidth} px)`);
    }
  }
  const check = document.createElement("pre");
  check.id = "render-check";
  check.textContent = JSON.stringify({
    clipped,
    pageWidth: document.documentElement.scrollWidth,
    windowWidth: window.innerWidth,
  });
  document.body.appendChild(check);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed (Debian package: chromium)")
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs-html")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out


def pages(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*.html")
        if p.name not in SKIP and not p.relative_to(root).parts[0].startswith("_")
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_no_code_block_is_clipped_at_1280_px(built: Path, tmp_path: Path) -> None:
    browser = chromium()
    shots = tmp_path / "docs-shots"
    shots.mkdir()
    problems: list[str] = []
    checked = 0
    for page in pages(built):
        name = str(page.relative_to(built))
        html = page.read_text()
        page.write_text(html.replace("</body>", CHECK + "</body>"))
        shot = shots / (name.replace("/", "_").removesuffix(".html") + ".png")
        result = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}",
                f"--window-size={WIDTH},{HEIGHT}",
                "--virtual-time-budget=3000",
                "--dump-dom",
                f"--screenshot={shot}",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        found = re.search(r'<pre id="render-check">(.*?)</pre>', result.stdout, re.S)
        assert found, f"{name}: the check did not run: {result.stderr[-2000:]}"
        check = json.loads(html_unescape(found.group(1)))
        assert check["windowWidth"] == WIDTH
        problems += [f"{name}: {clip}" for clip in check["clipped"]]
        if check["pageWidth"] > WIDTH:
            problems.append(f"{name}: the page is {check['pageWidth']} px wide")
        assert shot.stat().st_size > 10_000, f"{name}: empty screenshot"
        checked += 1
    assert checked >= 15, f"only {checked} pages found in {built}"
    assert not problems, "\n".join(problems)
