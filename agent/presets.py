"""Choosing the experiment preset before anything is created.

A template lists its presets in `template.toml`; a template whose harness can tell which
presets this machine can run names a `presets_provider` module with `available()` (name ->
None when usable, else the reason and what to do) and optionally `default_name()`.

Whether a GPU is there is the provider's question; `harness.machine.cuda_present` asks torch,
never the driver (a CPU-only torch next to an NVIDIA driver cannot use the GPU).
"""

from __future__ import annotations

import importlib
from typing import Any

from agent.errors import UsageError
from agent.template import Template


def _provider(template: Template) -> Any:
    if not template.presets_provider:
        return None
    try:
        return importlib.import_module(template.presets_provider)
    except ImportError as exc:
        raise UsageError(f"template '{template.name}': presets_provider "
                         f"'{template.presets_provider}' cannot be imported ({exc})") from exc


def choose(template: Template, requested: str | None) -> str | None:
    """The preset to use: the requested one if this machine can run it, else the default."""
    if not template.presets:
        if requested:
            raise UsageError(f"template '{template.name}' has no presets; drop --preset {requested}")
        return None
    provider = _provider(template)
    status: dict[str, str | None] = provider.available() if provider else dict.fromkeys(template.presets)
    if requested:
        if requested not in template.presets:
            raise UsageError(f"unknown preset '{requested}' for template '{template.name}'; "
                             f"choose from {', '.join(template.presets)}")
        reason = status.get(requested)
        if reason:
            usable = [n for n in template.presets if not status.get(n)]
            instead = f" Use --preset {usable[0]} instead." if usable else ""
            raise UsageError(f"preset '{requested}' cannot run here: {reason}.{instead} "
                             f"Usable here: {', '.join(usable) or 'none'}")
        return requested
    usable = [n for n in template.presets if not status.get(n)]
    if provider is not None and hasattr(provider, "default_name"):
        default = str(provider.default_name())
        if default in usable:
            return default
        # A default the template lacks or this machine cannot run: fall back to a usable one.
    if not usable:
        raise UsageError(f"no preset of template '{template.name}' can run here: "
                         + "; ".join(f"{n}: {status.get(n)}" for n in template.presets))
    return usable[0]


def needs_network(template: Template, preset: str | None) -> bool:
    """Whether preparing `preset` downloads (the provider's `needs_network`; False without one)."""
    provider = _provider(template)
    return bool(provider.needs_network(preset)) if hasattr(provider, "needs_network") else False


def prepare_timeout_s(template: Template, preset: str | None) -> float | None:
    """The provider's bound on a first preparation of `preset` (`prepare_timeout_s`), if any."""
    provider = _provider(template)
    return float(provider.prepare_timeout_s(preset)) if hasattr(provider, "prepare_timeout_s") else None
