"""Every URL report.html emits is an anchor, an inlined PNG or a file of the run directory;
anything else (a scheme, an absolute path, `..`, a link out) becomes `#`; and the page's policy
allows its own script by hash and nothing else."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from agent.report_urls import REFUSED, checked, policy


@pytest.fixture
def root(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "figs").mkdir(parents=True)
    (run / "paper.pdf").write_bytes(b"%PDF-1.5\n")
    (run / "figs" / "loss.png").write_bytes(b"\x89PNG")
    (tmp_path / "secret.txt").write_text("outside")
    (run / "out.png").symlink_to(tmp_path / "secret.txt")
    return run


@pytest.mark.parametrize("url", ["#metrics", "#step-12", "#", "data:image/png;base64,iVBORw0KGgo=",
                                 "paper.pdf", "figs/loss.png"])
def test_anchors_inlined_pngs_and_files_of_the_run_pass(root: Path, url: str) -> None:
    assert checked(url, root) == url


@pytest.mark.parametrize("url", [
    "javascript:document.title='pwned'", "JavaScript:alert(1)", " javascript:alert(1)",
    "vbscript:x", "data:text/html,<script>alert(1)</script>", "data:image/svg+xml;base64,PHN2Zz4=",
    "https://example.invalid/x.png", "//example.invalid/x.png", "file:///etc/passwd", "/etc/passwd",
    "../secret.txt", "figs/../../secret.txt", "%2e%2e/secret.txt", "out.png",  # a link leading out
    "missing.png", "figs", "figs\\loss.png", "paper.pdf?x=1", "#x\" onclick=\"alert(1)", "",
])
def test_every_other_url_goes_nowhere(root: Path, url: str) -> None:
    assert checked(url, root) == REFUSED


def test_the_policy_allows_exactly_the_pages_script() -> None:
    script = "document.body.dataset.ok = 1;\n"
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = policy(script)
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert "unsafe-eval" not in csp and "script-src 'unsafe-inline'" not in csp
    assert "img-src data:" in csp and "base-uri 'none'" in csp
