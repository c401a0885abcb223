"""How runs and studies are named: short hashes of their settings as plain values.

A run's id (:attr:`~saddlescope.survey.config.RunSpec.run_id`) and a study's config hash are
SHA-256 prefixes of the canonical JSON of their settings, so the same settings name the same run
on any machine, in any process, with any library version. Keys added to the settings later are
left out of the hash while they hold their defaults: studies that do not use them keep the ids
their stored runs were saved under.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

__all__ = ["identity", "plain", "short_hash"]


def plain(obj: Any) -> Any:
    """Dataclasses as dicts and tuples as lists, recursively (JSON-able settings).

    Args:
        obj: a dataclass, a sequence or a plain value.
    """
    if dataclasses.is_dataclass(obj):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [plain(x) for x in obj]
    return obj


_LATER_SEARCH_KEYS = {"max_hvps": 0, "gradnorm_phase": 0}  # added after schema 2


def identity(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` without the search keys added later, where they hold their defaults.

    A study or run that does not use them keeps the id it had before they existed, so its
    stored runs are still found.

    Args:
        settings: a run's or a study's settings as :func:`plain` gives them.
    """
    search = {
        k: v
        for k, v in settings.get("search", {}).items()
        if _LATER_SEARCH_KEYS.get(k, object()) != v
    }
    return {**settings, "search": search} if "search" in settings else settings


def short_hash(obj: Any) -> str:
    """The first 16 hex digits of the SHA-256 of ``obj``'s canonical JSON.

    Args:
        obj: plain, JSON-able values.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
