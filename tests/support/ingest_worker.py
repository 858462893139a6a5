"""One ingesting process: ``python -m tests.support.ingest_worker URL KEY FILE`` posts
each batch of FILE (a JSON list of event lists) to ``URL/api/v1/events``, one request
each, and prints how many events were accepted. Imports only the HTTP client, so that
starting several is quick."""

from __future__ import annotations

import sys

import httpx2 as httpx
import orjson


def main(url: str, key: str, path: str) -> int:
    with open(path, "rb") as source:
        batches = orjson.loads(source.read())
    accepted = 0
    with httpx.Client(timeout=120) as client:
        for batch in batches:
            answer = client.post(
                f"{url}/api/v1/events",
                json={"events": batch},
                headers={"Authorization": f"Bearer {key}"},
            )
            if answer.status_code != 200:
                print(answer.status_code, answer.text, file=sys.stderr)
                return 1
            accepted += answer.json()["accepted"]
    print(accepted)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
