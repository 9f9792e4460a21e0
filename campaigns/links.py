"""Signed links in messages: one-click unsubscribe and raffle entry.

A link carries the message id signed with the secret key (django.core.signing), so it needs
no lookup table, can't be forged for another member, and works for as long as the message
exists. Each purpose has its own salt: an unsubscribe token is no raffle ticket.
"""

from __future__ import annotations

from django.core import signing
from django.urls import reverse

from core.public import public_url

from .errors import InvalidLink

UNSUBSCRIBE = "campaigns.unsubscribe"
RAFFLE = "campaigns.raffle"


def message_token(message_id: int, purpose: str) -> str:
    return signing.Signer(salt=purpose).sign(str(message_id))


def message_id_from_token(token: str, purpose: str) -> int:
    try:
        return int(signing.Signer(salt=purpose).unsign(token))
    except (signing.BadSignature, ValueError):
        raise InvalidLink() from None


def absolute_url(path: str) -> str:
    return public_url(path)


def unsubscribe_url(message_id: int) -> str:
    return absolute_url(reverse("campaigns:unsubscribe", args=[message_token(message_id, UNSUBSCRIBE)]))


def raffle_url(message_id: int) -> str:
    return absolute_url(reverse("campaigns:raffle", args=[message_token(message_id, RAFFLE)]))


def raffle_proof_url(campaign_id: int) -> str:
    """The raffle's public page: its seed commitment, and after the draw the proof."""
    return absolute_url(reverse("campaigns:raffle_proof", args=[campaign_id]))
