from __future__ import annotations

from pydantic import BaseModel, Field

from api.borrowers.models import Channel
from api.borrowers.service import Factor, IdentityStatus


class IdentityOut(BaseModel):
    status: IdentityStatus
    locale: str
    first_name: str | None = None


class VerificationStartIn(BaseModel):
    phone: str | None = Field(
        default=None,
        max_length=32,
        description="The phone the channel proved; optional when this chat proved one before.",
    )


class ChatAliasIn(BaseModel):
    phone: str | None = Field(
        default=None,
        max_length=32,
        description="The phone the channel proved with this message, if it proved one.",
    )


class ChatAliasOut(BaseModel):
    pseudonym: str = Field(description="The sender id Rasa knows this chat by (after the prefix).")


class VerificationStartOut(BaseModel):
    factor: Factor


class VerificationCompleteIn(BaseModel):
    factor: Factor
    value: str = Field(min_length=1, max_length=64)


class VerificationCompleteOut(BaseModel):
    status: IdentityStatus
    locale: str


class ConsentIn(BaseModel):
    opted_in: bool


class ConsentOut(BaseModel):
    channel: Channel
    opted_in: bool


class LanguageIn(BaseModel):
    locale: str = Field(min_length=2, max_length=16)


class LanguageOut(BaseModel):
    locale: str
