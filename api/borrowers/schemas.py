from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from api.borrowers.models import Channel
from api.borrowers.service import IdentityStatus
from api.borrowers.verification import Factor


class IdentityOut(BaseModel):
    status: IdentityStatus
    locale: str
    first_name: str | None = None
    timezone: str | None = Field(
        default=None,
        description="IANA zone of the chat's borrower (verified, or owning the proven phone).",
    )


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
    factor: Factor = Field(description="The first of ``factors`` (for older clients).")
    factors: list[Factor] = Field(description="Offer all: the borrower answers any of them.")


class VerificationCompleteIn(BaseModel):
    """One answer (``factor`` and ``value``) or several (``answers``), each to an offered factor."""

    factor: Factor | None = None
    value: str | None = Field(default=None, min_length=1, max_length=64)
    answers: dict[Factor, Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=dict, max_length=2
    )

    @model_validator(mode="after")
    def _one_form(self) -> VerificationCompleteIn:
        if (self.factor is None) != (self.value is None) or (self.factor is None) == (
            not self.answers
        ):
            raise ValueError("give either factor and value, or answers")
        return self

    def all_answers(self) -> dict[Factor, str]:
        if self.factor is not None and self.value is not None:
            return {self.factor: self.value}
        return dict(self.answers)


class VerificationCompleteOut(BaseModel):
    status: IdentityStatus
    locale: str
    timezone: str | None = None


class ConsentIn(BaseModel):
    opted_in: bool


class ConsentOut(BaseModel):
    channel: Channel
    opted_in: bool


class LanguageIn(BaseModel):
    locale: str = Field(min_length=2, max_length=16)


class LanguageOut(BaseModel):
    locale: str


class CallbackIn(BaseModel):
    phone: str | None = Field(
        default=None,
        max_length=32,
        description="The phone the channel proved; optional when this chat proved one before.",
    )
    hardship: bool = Field(default=False, description="The borrower told of hardship.")
    borrower_words: str | None = Field(default=None, max_length=500)


class CallbackOut(BaseModel):
    status: str = Field(description="Always ``requested``, whoever owns the phone.")
