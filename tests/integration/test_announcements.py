"""What a waiting caller hears: their place in the queue, then the estimated wait, in their language."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hotline.app import create_app
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.conftest import QUICK_QUEUES, calls_and_events, ended, quick


async def test_a_waiting_caller_hears_their_place_in_the_queue_again_and_again(
    settings: Settings, tmp_path: Path
) -> None:
    nobody = quick(settings, tmp_path, agents=[])  # no agent: the caller can only wait
    Path(nobody.queues.file).write_text(
        QUICK_QUEUES.replace("[queues.help]\n", "[queues.help]\nannounce_period = 1.5\n"), encoding="utf-8"
    )
    app = create_app(nobody)
    await app.start(serve_web=False)
    try:
        done = ended(app)
        result = await sipp.call(settings, "183", digits="21", hold=10)  # English, help; then gives up
        assert result.ok and result.hung_up_by == "local", result.errors
        await asyncio.wait_for(done, 30)
        [(call, events)] = await calls_and_events(app)
    finally:
        await app.close()
    assert call.outcome == "abandoned" and call.language == "en"
    heard = [e.data["prompts"] for e in events if e.kind == "announced"]
    assert heard[:2] == [["queue_position_1"], ["queue_position_1"]]  # no answered call yet: no wait
    queued = next(e.at for e in events if e.kind == "queued")
    first = next(e.at for e in events if e.kind == "announced")
    assert (first - queued).total_seconds() >= 1.5
