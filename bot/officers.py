"""Officer button presses: ``case:ack:<ref>``, ``case:called:<ref>``,
``case:resolve:<ref>[:<outcome>]``.

They come from the inline keyboards / reply buttons under officer alerts (outbox rows written by
the loan API, delivered by the notifier). The gateway routes every payload starting with
``case:`` here and never to Rasa: a borrower typing or forging one gets "for officers only". The
loan API decides who may act on which case (the assigned officer or the branch manager); this
module calls it and confirms to the officer in their language.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bot.channels.base import Button, InboundMessage, OutboundMessage
from bot.http import POOL_LIMITS
from i18n import nested, render
from i18n.messages.common import TRY_AGAIN_KEY

logger = logging.getLogger(__name__)

PREFIX = "case:"
OUTCOMES = ("plan_agreed", "payment_holiday", "restructure_requested", "no_action")
_ACTIONS = {"ack": "acknowledge", "called": "called", "resolve": "resolve"}
_DONE_KEYS = {
    "acknowledge": "officer.done.acknowledged",
    "called": "officer.done.called",
    "resolve": "officer.done.resolved",
}
_ERROR_KEYS = {
    "case_not_found": "officer.case_not_found",
    "officer_not_found": "officer.not_an_officer",
    "not_case_officer": "officer.case_not_yours",
    "case_closed": "officer.case_closed",
}


def is_officer_action(inbound: InboundMessage) -> bool:
    return (inbound.text or "").startswith(PREFIX)


def parse(payload: str) -> tuple[str, str, str | None] | None:
    """``(api action, reference, outcome)`` from a button payload, or None when malformed."""
    parts = payload.split(":")
    if len(parts) < 3 or parts[0] != "case" or parts[1] not in _ACTIONS or not parts[2]:
        return None
    action = _ACTIONS[parts[1]]
    outcome = parts[3] if len(parts) > 3 else None
    if len(parts) > 4 or (outcome is not None and (action != "resolve" or outcome not in OUTCOMES)):
        return None
    return action, parts[2], outcome


class OfficerDesk:
    """Calls the loan API's officer endpoints on behalf of a button press."""

    def __init__(
        self,
        api_url: str,
        service_token: str,
        *,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=api_url.rstrip("/"),
            headers={"Authorization": f"Bearer {service_token}"},
            timeout=timeout or httpx.Timeout(5.0, connect=2.0),
            transport=transport,
            limits=POOL_LIMITS,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def handle(self, inbound: InboundMessage) -> list[OutboundMessage]:
        """Act on one button press and answer the officer (never raises)."""
        locale = inbound.locale_hint

        def reply(key: str, buttons: tuple[Button, ...] = (), **args: Any) -> list[OutboundMessage]:
            text = render(key, locale, **args)
            return [
                OutboundMessage(
                    channel=inbound.channel, recipient=inbound.chat_id, text=text, buttons=buttons
                )
            ]

        try:
            officer = await self._officer(inbound)
        except httpx.HTTPError as exc:
            logger.warning("officer lookup failed: %s", type(exc).__name__)
            return reply(TRY_AGAIN_KEY)
        if officer is None:
            logger.info("a %s chat that is not an officer's pressed a case button", inbound.channel)
            return reply("officer.not_an_officer")
        locale = str(officer.get("locale") or locale)
        parsed = parse(inbound.text or "")
        if parsed is None:
            return reply("officer.not_an_officer")
        action, reference, outcome = parsed
        if action == "resolve" and outcome is None:
            buttons = tuple(
                Button(
                    title=render(f"officer.outcome.{name}", locale),
                    payload=f"case:resolve:{reference}:{name}",
                )
                for name in OUTCOMES
            )
            return reply("officer.choose_outcome", buttons, reference=reference)
        body: dict[str, Any] = {
            "officer_chat_id": inbound.chat_id,
            "officer_channel": inbound.channel,
        }
        if outcome is not None:
            body["outcome"] = outcome
        try:
            response = await self._client.post(f"/v1/cases/{reference}/{action}", json=body)
        except httpx.HTTPError as exc:
            logger.warning("officer %s failed: %s", action, type(exc).__name__)
            return reply(TRY_AGAIN_KEY)
        if response.status_code == 200:
            case = response.json()
            done_args: dict[str, Any] = {"reference": case.get("reference", reference)}
            if action == "resolve":
                done_args["outcome"] = nested(f"officer.outcome.{outcome}")
            return reply(_DONE_KEYS[action], **done_args)
        code = _error_code(response)
        logger.info("officer %s refused: %s %s", action, response.status_code, code)
        key = _ERROR_KEYS.get(code or "")
        return reply(key, reference=reference) if key else reply(TRY_AGAIN_KEY)

    async def _officer(self, inbound: InboundMessage) -> dict[str, Any] | None:
        response = await self._client.get(
            f"/v1/officers/by-chat/{inbound.channel}/{inbound.chat_id}"
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data = response.json()
        return data if isinstance(data, dict) else None

    async def open_cases(self) -> list[dict[str, Any]]:
        """Open cases ordered by SLA (``kopa cases``)."""
        response = await self._client.get("/v1/cases", params={"status": "open"})
        response.raise_for_status()
        cases = response.json()
        return cases if isinstance(cases, list) else []


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return str(code) if code else None
