"""FastAPI's own OpenTelemetry instrumentation is off unless JOINTCREDIT_TELEMETRY asks for it
(store/settings.py): with a tracer provider configured, only the app that asked makes spans."""
from __future__ import annotations

from fastapi.testclient import TestClient
from opentelemetry import trace

from api.app import create_app
from store.settings import Settings

spans: list[str] = []


class _RecordingTracer(trace.NoOpTracer):
    def start_span(self, name, *args, **kwargs):
        spans.append(name)
        return super().start_span(name, *args, **kwargs)


class _RecordingProvider(trace.TracerProvider):  # not a NoOpTracerProvider, which FastAPI skips
    def get_tracer(self, *args, **kwargs):
        return _RecordingTracer()


def test_requests_make_spans_only_when_telemetry_is_asked_for(tmp_path):
    # the global provider can be set once per process; no other test sets one
    trace.set_tracer_provider(_RecordingProvider())
    assert type(trace.get_tracer_provider()) is _RecordingProvider
    seen = {}
    for on in (False, True):
        settings = Settings(database_url=f"sqlite:///{tmp_path / f'{on}.sqlite'}", load_demo=False, telemetry=on)
        with TestClient(create_app(settings)) as client:
            spans.clear()
            assert client.post("/v1/eligibility", json={}).status_code == 401
            seen[on] = list(spans)
    assert seen[False] == []
    assert "POST" in seen[True], seen[True]  # the server span of the request
