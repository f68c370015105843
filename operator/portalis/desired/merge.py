"""JSON merge patches (RFC 7386), the way every status in Portalis is written, and whether one changes anything."""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with a JSON merge patch applied, as the API server applies it: objects merge key by key, null
    removes a key, anything else replaces. Neither argument is changed (parts of them may be shared)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def patch_changes(target: Any, patch: Any) -> bool:
    """Whether merge-patching ``patch`` onto ``target`` would change it: a null for a field that is already
    absent changes nothing, and neither does a field written again with the value it has."""
    if not isinstance(patch, dict):
        return bool(target != patch)
    if not isinstance(target, dict):
        return True
    return any(k in target if v is None else patch_changes(target.get(k), v) for k, v in patch.items())
