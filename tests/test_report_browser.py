"""report.html in a real browser (Debian's chromium driven by playwright), opened from file://:
no console error, no request beyond file:// and data:, every internal link lands on an element,
every image loads, a timeline step opens on a click and shows its diff, and a planted script
never runs. Screenshots go to $TEST_ARTIFACTS (default .cache/test-artifacts/)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.test_report import make_report, toy_run  # noqa: F401 - `toy_run` is a fixture used here

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (apt-get install chromium): "
                                "the report's browser checks need a real browser")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or REPO / ".cache" / "test-artifacts")


@pytest.fixture(scope="module")
def browser() -> Any:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def check_in_browser(browser: Any, page_path: Path, name: str) -> dict[str, Any]:
    """Open the report, run every check, save screenshots; returns what was seen."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(page_path.resolve().as_uri(), wait_until="load")
    title = page.title()

    dangling = page.eval_on_selector_all(
        'a[href^="#"]', "els => els.map(a => a.getAttribute('href').slice(1))"
                        ".filter(id => !document.getElementById(decodeURIComponent(id)))")
    links = page.eval_on_selector_all('a[href^="#"]', "els => els.length")
    broken = page.eval_on_selector_all("img", "els => els.filter(i => !(i.complete && i.naturalWidth > 0))"
                                              ".map(i => i.alt || i.src.slice(0, 60))")
    images = page.eval_on_selector_all("img", "els => els.length")
    page.screenshot(path=str(ARTIFACTS / f"report_{name}_full.png"), full_page=True)

    # A step with replies and a diff: collapsed until its summary is clicked.
    step = page.locator("details.step:has(details.reply):has(pre.diff)").first
    step_id = step.get_attribute("id")
    assert step.evaluate("d => d.open") is False, "timeline steps start collapsed"
    assert not step.locator("pre.diff").is_visible()
    step.locator(":scope > summary").click()
    assert step.evaluate("d => d.open") is True
    assert step.locator("pre.diff").is_visible()
    step.screenshot(path=str(ARTIFACTS / f"report_{name}_step.png"))

    # The contents' link to another step opens it (the page's script; without it, it scrolls).
    other_id = page.locator("details.step:not([open])").first.get_attribute("id")
    other = page.locator(f"#{other_id}")  # a locator by state would move on once it opens
    page.locator(f'nav a[href="#{other_id}"]').click()
    assert other.evaluate("d => d.open") is True
    page.get_by_role("button", name="expand all").click()
    assert page.eval_on_selector_all("details.step", "els => els.every(d => d.open)")
    page.close()
    seen = {"errors": errors, "requests": [u for u in requests if not u.startswith(("file://", "data:"))],
            "dialogs": dialogs, "dangling": dangling, "broken": broken, "title": title, "links": links,
            "images": images, "step": step_id}
    assert not errors, errors
    assert not seen["requests"], f"the page reached beyond file:// and data: {seen['requests']}"
    assert not dangling, f"internal links to no element: {dangling}"
    assert not broken, f"images that did not load: {broken}"
    assert not dialogs and "pwned" not in title
    return seen


@pytest.mark.slow
def test_the_toy_report_works_in_a_browser(browser, toy_run, tmp_path):  # noqa: F811
    run_dir = tmp_path / toy_run.name
    shutil.copytree(toy_run, run_dir, symlinks=True)
    proc, _ = make_report(run_dir)
    assert proc.returncode == 0, proc.stderr
    seen = check_in_browser(browser, run_dir / "report.html", "toy")
    assert seen["images"] >= 1 and seen["links"] > 20


@pytest.mark.slow
def test_the_tiny_main_jobs_report_works_in_a_browser_from_a_clone(browser, tiny_main_job, tmp_path):
    _, run_dir = tiny_main_job
    clone = tmp_path / run_dir.name
    subprocess.run(["git", "clone", "-q", str(run_dir), str(clone)], check=True)
    proc, html = make_report(clone)
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout.strip())  # the report's path and size
    assert (clone / "paper.pdf").is_file() and 'href="paper.pdf"' in html
    seen = check_in_browser(browser, clone / "report.html", "tiny")
    assert seen["images"] >= 3  # the figures and the paper's first page


HOSTILE = "javascript:document.title='pwned'"


@pytest.mark.slow
def test_hostile_figure_names_link_nowhere_and_the_policy_blocks_a_missed_script(browser, toy_run, tmp_path):  # noqa: F811
    """A figure named like a script URL (too large to inline, so it would be linked; and declared
    but missing) is not linked; a script the escaping had missed would be refused by the policy."""
    run_dir = tmp_path / toy_run.name
    shutil.copytree(toy_run, run_dir, symlinks=True)
    (run_dir / f"{HOSTILE}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(9 * 2**20))
    toml = run_dir / "template.toml"
    text = toml.read_text()
    assert 'figures = ["loss.png"]' in text
    toml.write_text(text.replace('figures = ["loss.png"]', f'figures = ["loss.png", "{HOSTILE}"]'))
    proc, html = make_report(run_dir)
    assert proc.returncode == 0, proc.stderr
    shown = HOSTILE.replace("'", "&#39;")
    assert "href=\"javascript" not in html.lower() and f'<span class="mono">{shown}.png</span>' in html
    assert '<meta http-equiv="Content-Security-Policy"' in html
    check_in_browser(browser, run_dir / "report.html", "hostile")  # its own script still runs
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto((run_dir / "report.html").resolve().as_uri(), wait_until="load")
    for link in page.locator(f"a:has-text(\"{HOSTILE}\"), span:has-text(\"{HOSTILE}\")").all():
        link.click()
    assert "pwned" not in page.title() and not dialogs
    page.close()
    missed = run_dir / "missed.html"  # the same page with a script the escaping let through
    missed.write_text(html.replace("</body>", "<script>document.title='pwned'</script>"
                                   "<img src=x onerror=\"document.title='pwned'\"></body>"))
    page = browser.new_page()
    page.goto(missed.resolve().as_uri(), wait_until="load")
    assert "pwned" not in page.title()
    page.close()
