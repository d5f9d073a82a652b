"""Every URL report.html emits, checked; and the page's content security policy.

Names on the page come from the run (figure names, file names the model's code chose): a name
such as `javascript:...` placed in a link would run when clicked. So a URL is emitted only if
it is one of three kinds, else the link goes nowhere (`#`):

- `#anchor`, an id on the page (letters, digits, `-`, `_`);
- `data:image/png;base64,...`, an inlined image;
- a relative path to a file of the run directory: no scheme, not absolute, no `..`, no `\\`,
  resolving (links included) to a file inside the directory.

The page also carries a policy that lets nothing load or run but its own inline script
(allowed by its hash), inline styles and `data:` images, so a URL or markup this check missed
still cannot run a script or reach the network.
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from pathlib import Path

REFUSED = "#"
_ANCHOR = re.compile(r"#[A-Za-z0-9_-]*")
_DATA_PNG = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]*={0,2}")


def checked(url: str, root: Path) -> str:
    """`url` if it is an anchor, an inlined PNG or a file of the run directory, else `#`."""
    if _ANCHOR.fullmatch(url) or _DATA_PNG.fullmatch(url):
        return url
    if not url or "\\" in url or ":" in url.split("/", 1)[0] or url.startswith("/"):
        return REFUSED
    parts = urllib.parse.unquote(url).split("/")
    if any(p in ("", ".", "..") for p in parts) or any(c in url for c in "?#\0"):
        return REFUSED
    try:
        target = (root / Path(*parts)).resolve(strict=True)
    except (OSError, RuntimeError):
        return REFUSED
    return url if target.is_file() and target.is_relative_to(root.resolve()) else REFUSED


def policy(script: str) -> str:
    """The Content-Security-Policy of a page whose only script is `script`."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
