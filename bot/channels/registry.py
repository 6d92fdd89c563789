"""The one place that builds channel gateways from settings.

The gateway web app (``bot.app``) uses them to receive and answer; the notifier uses the same
gateways to send outbox rows (``build_channels(settings)`` then ``await channels.start(
receive=False)`` and ``channels.gateways[row.channel].send(...)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.channels.base import ChannelGateway
from bot.channels.telegram import TelegramGateway
from bot.channels.whatsapp import WhatsAppGateway
from bot.config import BotSettings


@dataclass
class Channels:
    telegram: TelegramGateway | None = None
    whatsapp: WhatsAppGateway | None = None
    gateways: dict[str, ChannelGateway] = field(default_factory=dict)

    async def start(self, *, receive: bool = True) -> None:
        """Connect the gateways; ``receive=False`` for senders only (no update processing)."""
        if self.telegram is not None:
            await self.telegram.start(receive=receive)

    async def aclose(self) -> None:
        if self.telegram is not None:
            await self.telegram.aclose()
        if self.whatsapp is not None:
            await self.whatsapp.aclose()


def build_channels(settings: BotSettings, *, telegram_polling: bool = False) -> Channels:
    channels = Channels()
    if settings.telegram.enabled:
        channels.telegram = TelegramGateway(settings.telegram, polling=telegram_polling)
        channels.gateways[channels.telegram.name] = channels.telegram
    if settings.whatsapp.enabled:
        channels.whatsapp = WhatsAppGateway(settings.whatsapp)
        channels.gateways[channels.whatsapp.name] = channels.whatsapp
    return channels
