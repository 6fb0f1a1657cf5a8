"""End to end: uvicorn in a subprocess on loopback, settings from the environment, demo data
loaded on first start, a key made with the store beforehand, one check over real HTTP."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx

from store.db import make_engine, migrate
from store.decisions import DecisionLog
from store.keys import KeyStore

from servers import HOST, ROOT, free_port, wait_for_docs


def test_a_real_server_answers_an_eligibility_check(tmp_path):
    url = f"sqlite:///{tmp_path / 'served.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    key = KeyStore(engine).create("system", "e2e-platform")
    auditor = KeyStore(engine).create("auditor", "e2e-audit")
    engine.dispose()

    port = free_port()
    env = {**os.environ, "JOINTCREDIT_DATABASE_URL": url, "JOINTCREDIT_LOAD_DEMO": "1"}
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
                                   "--host", HOST, "--port", str(port)], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        base = f"http://{HOST}:{port}"
        wait_for_docs(base, server, log)
        body = {"subject": "91511702MA62X8Q157", "activity": "government_procurement", "as_of": "2025-06-30"}
        with httpx.Client(base_url=base, timeout=30) as http:
            response = http.post("/v1/eligibility", json=body, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["eligible"] is False and answer["known"] is True
            assert [r["measure"] for r in answer["restrictions"]] == ["tax.procurement_ban"]
            logged = http.get(f"/v1/decisions/{answer['decision_id']}", headers={"Authorization": f"Bearer {key}"})
            assert logged.status_code == 200 and logged.json()["caller"] == "system:e2e-platform"
            refused = http.post("/v1/eligibility", json=body)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        # checks in flight together: each answered and logged under its own request
        answers = asyncio.run(_concurrent_checks(base, key, 40))
        assert len({a["decision_id"] for a in answers}) == 40
        with httpx.Client(base_url=base, timeout=30) as http:
            for i in (0, 17, 39):
                logged = http.get(f"/v1/decisions/{answers[i]['decision_id']}", headers={"Authorization": f"Bearer {key}"})
                assert logged.json()["request"]["activity"] == ACTIVITIES[i % len(ACTIVITIES)]
            verified = http.get("/v1/decisions/verify", headers={"Authorization": f"Bearer {auditor}"}).json()
            assert verified["ok"] is True and verified["checked"] == 41
    except AssertionError as exc:  # the server's own account is what explains a wrong answer
        raise AssertionError(f"{exc}\n--- server log ---\n{log.read_text()}") from exc
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
    assert server.returncode is not None
    check = make_engine(url)  # every answer given is in the log after the shutdown
    assert DecisionLog(check).verify() == {"ok": True, "checked": 41, "broken_at": None}
    check.dispose()


ACTIVITIES = ("government_procurement", "public_bidding", "senior_management", "honours")


async def _concurrent_checks(base: str, key: str, count: int) -> list[dict]:
    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
        responses = await asyncio.gather(*(
            http.post("/v1/eligibility", json={"subject": "91511702MA62X8Q157", "as_of": "2025-06-30",
                                               "activity": ACTIVITIES[i % len(ACTIVITIES)]})
            for i in range(count)))
    assert [r.status_code for r in responses] == [200] * count, [r.text for r in responses if r.status_code != 200]
    answers = [r.json() for r in responses]
    assert [a["activity"] for a in answers] == [ACTIVITIES[i % len(ACTIVITIES)] for i in range(count)]
    return answers
