"""Where the shipped rulebooks live (the repository's rulebooks/ directory), overridable
with JOINTCREDIT_RULEBOOKS for installations that keep them elsewhere."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_rulebook_dir"]


def default_rulebook_dir() -> Path:
    configured = os.environ.get("JOINTCREDIT_RULEBOOKS")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent / "rulebooks"
