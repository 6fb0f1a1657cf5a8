"""Load generator for the service benchmark: POSTs eligibility checks over keep-alive HTTP/1.1.

    python -m bench.loadgen --url http://127.0.0.1:8000/v1/eligibility --requests REQ.json \
        --checks 20000 --warmup 1000 --concurrency 8 [--key KEY] [--cpu 1] [--out OUT.json]

REQ.json is a list of {"subject", "activity", "as_of", "expect_eligible"?, "listed"?}; request i
uses entry i modulo its length. The warm-up requests are sent first and not recorded; then
`--checks` requests are timed, with `--concurrency` of them in flight (one keep-alive
connection each). Latency is perf_counter from just before the request is written to the
end of the response body. Every response must be 200; when an entry carries
`expect_eligible`, the answer's `eligible` is compared with it (`--sanity`).

Only loopback addresses are accepted, and every run is bounded in count and in time
(`--max-seconds`): a run that hits the time bound stops and says so (`truncated`).

Closed loop by default: each connection sends its next request when the previous answer is in,
so latency at `--concurrency` in flight is queueing at saturation (Little's law). With
`--rate R` the measured requests are sent open loop at R per second (the warm-up stays closed):
request k is due at start + k/R and its latency is counted from its due time, so a server that
falls behind is charged for the wait (no coordinated omission).

For a run whose length is not known in advance (bench.publish: checks while a rulebook is
published), `--until-signal` ends the measured run on SIGTERM or SIGINT, after the requests in
flight, and writes the result as usual (`--checks` and `--max-seconds` still bound it), and
`--timeline` puts every measured request in the result as [t0, latency, status], t0 on the
machine's monotonic clock, so that the caller can attribute each request to its own phases.

Two clients:
- `raw` (default): asyncio (uvloop when installed) with a minimal HTTP/1.1 client over
  keep-alive streams; it costs the client some 30-60 µs of CPU per request, so that on a
  2-core machine the client is not what limits a fast endpoint.
- `httpx`: one thread per connection with an httpx.Client (keep-alive); several times more
  client CPU per request.
The result carries the client's own CPU time, to show how close it came to being the limit.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import resource
import signal
import sys
import threading
import time
from urllib.parse import urlsplit

__all__ = ["run", "summarise", "main"]


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of sorted values."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def summarise(latencies_s: list[float], wall_s: float) -> dict:
    ordered = sorted(latencies_s)
    ms = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731
    n = len(ordered)
    return {
        "count": n,
        "wall_s": round(wall_s, 3),
        "per_s": round(n / wall_s, 1) if wall_s > 0 else None,
        "mean_ms": ms(sum(ordered) / n) if n else None,
        "p50_ms": ms(_percentile(ordered, 50)),
        "p90_ms": ms(_percentile(ordered, 90)),
        "p99_ms": ms(_percentile(ordered, 99)),
        "p999_ms": ms(_percentile(ordered, 99.9)),
        "max_ms": ms(ordered[-1]) if n else None,
        "min_ms": ms(ordered[0]) if n else None,
    }


def _check_loopback(host: str) -> None:
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = host == "localhost"
    if not ok:
        raise SystemExit(f"refusing to target {host!r}: only loopback addresses (127.0.0.1) are allowed")


class _Tally:
    """Statuses and sanity of the recorded responses."""

    def __init__(self, entries: list[dict], sanity: bool):
        self.entries, self.sanity = entries, sanity
        self.status: dict[int, int] = {}
        self.errors: list[str] = []
        self.listed = self.listed_ineligible = 0
        self.checked = self.mismatches = 0
        self.ineligible = 0
        self.mismatch_samples: list[dict] = []
        self.non_200_samples: list[str] = []

    def add(self, i: int, status: int, body: bytes) -> None:
        self.status[status] = self.status.get(status, 0) + 1
        if status != 200:
            if len(self.non_200_samples) < 5:
                self.non_200_samples.append(f"{status}: {body[:300]!r}")
            return
        if not self.sanity:
            return
        entry = self.entries[i % len(self.entries)]
        try:
            eligible = json.loads(body)["eligible"]
        except Exception as exc:  # noqa: BLE001 - counted
            self.errors.append(f"unreadable body: {exc!r}")
            return
        if not eligible:
            self.ineligible += 1
        if entry.get("listed"):
            self.listed += 1
            if not eligible:
                self.listed_ineligible += 1
        expected = entry.get("expect_eligible")
        if expected is not None:
            self.checked += 1
            if eligible != expected:
                self.mismatches += 1
                if len(self.mismatch_samples) < 10:
                    self.mismatch_samples.append({**entry, "got_eligible": eligible})

    def to_dict(self) -> dict:
        out = {"status": {str(k): v for k, v in sorted(self.status.items())},
               "non_200": sum(v for k, v in self.status.items() if k != 200),
               "transport_errors": len(self.errors), "error_samples": self.errors[:5],
               "non_200_samples": self.non_200_samples}
        if self.sanity:
            out.update({"ineligible": self.ineligible, "listed_checks": self.listed,
                        "listed_ineligible": self.listed_ineligible,
                        "listed_ineligible_pct": round(100 * self.listed_ineligible / self.listed, 2) if self.listed else None,
                        "compared_with_engine": self.checked, "mismatches": self.mismatches,
                        "mismatch_samples": self.mismatch_samples})
        return out


def _bodies(entries: list[dict]) -> list[bytes]:
    return [json.dumps({"subject": e["subject"], "activity": e["activity"], "as_of": e["as_of"]},
                       separators=(",", ":")).encode() for e in entries]


# -- raw asyncio client ---------------------------------------------------------------------
async def _raw_phase(host: str, port: int, path: str, key: str | None, bodies: list[bytes], offset: int, count: int,
                     concurrency: int, deadline: float, tally: _Tally | None, latencies: list[float],
                     rate: float | None = None, lags: list[float] | None = None,
                     timeline: list[tuple] | None = None, stop: threading.Event | None = None) -> tuple[float, bool]:
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            + (f"Authorization: Bearer {key}\r\n" if key else "") + "Content-Length: ").encode()
    requests = [head + str(len(b)).encode() + b"\r\n\r\n" + b for b in bodies]
    nreq = len(requests)
    state = {"next": 0, "truncated": False, "start": 0.0}
    perf = time.perf_counter

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                k = state["next"]
                if k >= count:
                    return
                if perf() > deadline:
                    state["truncated"] = True
                    return
                if stop is not None and stop.is_set():
                    return
                state["next"] = k + 1
                i = offset + k
                if rate:  # open loop: request k is due at start + k / rate, and its latency counts from then
                    t0 = state["start"] + k / rate
                    while (wait := t0 - perf()) > 0:  # uvloop's timers round to 1 ms and may fire early
                        await asyncio.sleep(wait)
                    if stop is not None and stop.is_set():  # told to stop while it waited: not sent
                        return
                    if lags is not None:  # how late the client itself sent it (counted in its latency)
                        lags.append(perf() - t0)
                else:
                    t0 = perf()
                writer.write(requests[i % nreq])
                header = await reader.readuntil(b"\r\n\r\n")
                status = int(header[9:12])
                lower = header.lower()
                at = lower.find(b"content-length:")
                if at < 0:
                    raise RuntimeError(f"response without Content-Length: {header[:200]!r}")
                end = lower.find(b"\r\n", at)
                body = await reader.readexactly(int(lower[at + 15:end]))
                t1 = perf()
                latencies.append(t1 - t0)
                if tally is not None:
                    tally.add(i, status, body)
                if timeline is not None:
                    timeline.append((t0, t1 - t0, status))
        finally:
            writer.close()

    # every connection is open before the clock starts: accepting `concurrency` new connections
    # is not what is measured (in open loop it delayed the first requests by several ms)
    connections = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in range(concurrency)))
    started = state["start"] = perf()
    await asyncio.gather(*(worker(reader, writer) for reader, writer in connections))
    return perf() - started, state["truncated"]


# -- httpx client (a thread per connection) -----------------------------------------------
def _httpx_phase(url: str, key: str | None, bodies: list[bytes], offset: int, count: int, concurrency: int,
                 deadline: float, tally: _Tally | None, latencies: list[float]) -> tuple[float, bool]:
    import httpx

    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    lock = threading.Lock()
    state = {"next": 0, "truncated": False}
    perf = time.perf_counter
    nreq = len(bodies)

    def worker() -> None:
        with httpx.Client(headers=headers, timeout=60) as client:
            local = []
            while True:
                with lock:
                    k = state["next"]
                    if k >= count:
                        break
                    if perf() > deadline:
                        state["truncated"] = True
                        break
                    state["next"] = k + 1
                i = offset + k
                t0 = perf()
                response = client.post(url, content=bodies[i % nreq])
                t1 = perf()
                local.append(t1 - t0)
                if tally is not None:
                    with lock:
                        tally.add(i, response.status_code, response.content)
            with lock:
                latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = perf()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return perf() - started, state["truncated"]


def run(url: str, entries: list[dict], checks: int, warmup: int, concurrency: int, key: str | None = None,
        client: str = "raw", max_seconds: float = 300.0, sanity: bool = True, offset: int = 0,
        rate: float | None = None, timeline: bool = False, stop: threading.Event | None = None) -> dict:
    """One warm-up plus one measured run; returns the summary (latencies in ms).

    `timeline`: the result carries every measured request as [due or send time, latency, status]
    (seconds, perf_counter: CLOCK_MONOTONIC on Linux, the same clock in every process), so that
    another process can tell which requests fell in which of its own time windows. `stop`: the
    measured run ends early, after the requests in flight, once the event is set (raw client)."""
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    _check_loopback(host)
    if checks <= 0 or concurrency <= 0:
        raise SystemExit("--checks and --concurrency must be positive")
    bodies = _bodies(entries)
    deadline_warm = time.perf_counter() + max_seconds
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)

    lags: list[float] = []
    records: list[tuple] | None = [] if timeline else None

    def phase(offset, count, deadline, tally, latencies):
        if client == "raw":
            try:
                import uvloop  # noqa: F401
                runner = uvloop.run
            except ImportError:
                runner = asyncio.run
            return runner(_raw_phase(host, port, path, key, bodies, offset, count, concurrency, deadline, tally,
                                     latencies, rate if tally is not None else None, lags,
                                     records if tally is not None else None, stop if tally is not None else None))
        if rate or timeline or stop is not None:
            raise SystemExit("--rate, --timeline and --until-signal need the raw client")
        return _httpx_phase(url, key, bodies, offset, count, concurrency, deadline, tally, latencies)

    warm_lat: list[float] = []
    warm_wall, warm_trunc = phase(offset, warmup, deadline_warm, None, warm_lat) if warmup else (0.0, False)
    tally = _Tally(entries, sanity)
    latencies: list[float] = []
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    wall, truncated = phase(offset + warmup, checks, time.perf_counter() + max_seconds, tally, latencies)
    cpu2 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (cpu2.ru_utime - cpu1.ru_utime) + (cpu2.ru_stime - cpu1.ru_stime)
    result = summarise(latencies, wall)
    result.update({
        "url": url, "client": client, "concurrency": concurrency, "rate": rate, "requested": checks, "warmup": warmup, "offset": offset,
        "warmup_wall_s": round(warm_wall, 3), "truncated": truncated or warm_trunc, "max_seconds": max_seconds,
        "client_cpu_s": round(client_cpu, 3),
        "client_cpu_us_per_request": round(client_cpu / len(latencies) * 1e6, 1) if latencies else None,
        "client_cpu_utilisation": round(client_cpu / wall, 3) if wall else None,
        "client_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "warmup_cpu_s": round((cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 3),
    })
    if rate and lags:  # the generator's own delay: on a shared core it may be part of the tail
        ordered = sorted(lags)
        result.update({"send_lag_p50_ms": round(_percentile(ordered, 50) * 1000, 3),
                       "send_lag_p99_ms": round(_percentile(ordered, 99) * 1000, 3),
                       "send_lag_max_ms": round(ordered[-1] * 1000, 3)})
    result.update(tally.to_dict())
    if stop is not None:
        result["stopped"] = stop.is_set()
    if records is not None:
        result["timeline"] = {
            "clock": "time.perf_counter (CLOCK_MONOTONIC on Linux: comparable across processes)",
            "monotonic_minus_perf_counter": time.monotonic() - time.perf_counter(),
            "fields": ["t0_s", "latency_s", "status"],
            "requests": [[round(t0, 6), round(lat, 6), status] for t0, lat, status in records]}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", required=True, help="JSON list of request entries")
    parser.add_argument("--key", default=os.environ.get("JC_BENCH_KEY"), help="bearer key (default $JC_BENCH_KEY)")
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--offset", type=int, default=0, help="start at this entry (after the warm-up's)")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop: send the measured requests at this many per second (at most --concurrency "
                             "in flight), latency counted from each request's due time")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time bound of each phase")
    parser.add_argument("--no-sanity", action="store_true", help="do not read `eligible` (the bare endpoint)")
    parser.add_argument("--timeline", action="store_true",
                        help="put every measured request in the result: [t0, latency, status] (raw client)")
    parser.add_argument("--until-signal", action="store_true",
                        help="SIGTERM or SIGINT ends the measured run (after the requests in flight) and the "
                             "result is written as usual; --checks and --max-seconds still bound it (raw client)")
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--out", default="-")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    with open(args.requests, encoding="utf-8") as handle:
        entries = json.load(handle)
    stop = None
    if args.until_signal:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    result = run(args.url, entries, args.checks, args.warmup, args.concurrency, key=args.key, client=args.client,
                 max_seconds=args.max_seconds, sanity=not args.no_sanity, offset=args.offset, rate=args.rate,
                 timeline=args.timeline, stop=stop)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
