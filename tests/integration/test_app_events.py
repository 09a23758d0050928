"""The running hotline asks Asterisk not to send the per-call events nobody reads."""

from __future__ import annotations

from ari import AriClient
from hotline import asterisk
from hotline.app import UNREAD_EVENTS, App
from hotline.settings import Settings


async def test_unread_event_types_are_filtered_out_at_the_source(app: App, settings: Settings) -> None:
    async with AriClient(
        settings.ari.url, settings.ari.user, asterisk.ari_password(settings), "observer"
    ) as client:
        ours = await client.applications.get(settings.ari.app)
    assert {e["type"] for e in ours.events_disallowed} == set(UNREAD_EVENTS)
    assert ours.events_allowed == []
