"""Prompts are jinja2 files in `agent/prompts/`, rendered with StrictUndefined so a missing
variable is an error, never an empty string."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

PROMPTS = Path(__file__).parent / "prompts"


@lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROMPTS),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(name: str, **variables: Any) -> str:
    """Render `agent/prompts/<name>.j2`."""
    return str(_env().get_template(f"{name}.j2").render(**variables)).strip() + "\n"
