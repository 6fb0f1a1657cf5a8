"""A process learns of another's publication without being asked anything: the watcher
(LISTEN/NOTIFY on PostgreSQL, a look at the generation on SQLite) compiles it within a second."""
from __future__ import annotations

import time
from datetime import date

from store.editing import RulebookEditor
from store.service import Service
from store.settings import Settings


def test_the_watcher_loads_another_services_publication_within_a_second(database_url):
    settings = Settings(database_url=database_url, load_demo=False)
    publisher, watching = Service(settings), Service(settings)
    try:
        watching.watch_catalog()
        time.sleep(0.5)  # listening
        before = watching.history
        head = publisher.rulebook_store.head("taxation")
        text = head.text + "\n# a comment: a new revision\n"
        editor = RulebookEditor(publisher)
        draft = editor.save("taxation", text, head.revision, "test", "a new revision")
        editor.publish("taxation", draft.revision, date.today().isoformat(), "test")
        published = time.monotonic()
        while watching.history is before and time.monotonic() - published < 5:
            time.sleep(0.02)
        took = time.monotonic() - published
        assert watching.history is not before, "the watcher never loaded the publication"
        assert took < 1.0, f"loaded after {took:.2f} s"
        assert watching.history.latest.revisions["taxation"] == draft.revision
    finally:
        publisher.close()
        watching.close()
