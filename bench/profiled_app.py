"""The real app with cProfile in every thread, for the service benchmark's server profile.

    JC_BENCH_PROFILE=out.prof python -m uvicorn bench.profiled_app:create_app --factory ...

Each thread (the event loop's and every thread-pool worker's) gets its own profiler timed by
`time.thread_time`, i.e. the CPU the thread itself used, so a thread waiting for the GIL or
for SQLite's lock does not count. At exit (uvicorn's graceful shutdown on SIGINT) the
profiles are merged and written to $JC_BENCH_PROFILE. `POST /_bench/profile/reset` (this app
only) forgets what was profiled so far, so start-up and warm-up can be left out. The figures are inflated by the
profiler's own cost; the shares are what they are for.
"""
from __future__ import annotations

import atexit
import cProfile
import os
import pstats
import sys
import threading
import time

__all__ = ["create_app"]

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _start_profile() -> None:
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(profile)
    profile.enable()


def _bootstrap(frame, event, arg):  # the first event in a new thread: swap in a profiler
    sys.setprofile(None)
    _start_profile()


def _dump() -> None:
    out = os.environ.get("JC_BENCH_PROFILE")
    if not out:
        return
    stats = None
    for profile in list(_profiles):
        try:
            profile.create_stats()
        except Exception:  # noqa: BLE001 - a thread that never ran
            continue
        if not profile.stats:
            continue
        if stats is None:
            stats = pstats.Stats(profile)
        else:
            stats.add(profile)
    if stats is not None:
        stats.dump_stats(out)


def create_app():
    from api.app import create_app as real

    threading.setprofile(_bootstrap)
    _start_profile()  # this thread runs the event loop
    atexit.register(_dump)
    app = real()

    @app.post("/_bench/profile/reset", include_in_schema=False)
    async def reset():
        """Forget what was profiled so far (start-up, warm-up): only the checks after this count."""
        with _lock:
            for profile in _profiles:
                profile.clear()
        return {"profiles": len(_profiles)}

    return app
