"""One router per resource; app.py mounts them all under /v1."""
from . import decisions, departments, eligibility, lifecycle, rebuilds, records, rulebooks, subjects

ALL = (eligibility.router, subjects.router, departments.router, records.router, decisions.router, rulebooks.router,
       rebuilds.router, lifecycle.router)

__all__ = ["ALL"]
