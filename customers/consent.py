"""The signed link that turns a diner's request for news into consent (double opt-in).

The link goes to the address given at checkout, so following it shows that the owner of
the address wants news. The token is signed with a salt naming the restaurant and carries
the customer id and a digest of their email: a token from another restaurant, for a changed
email, altered or older than :data:`MAX_AGE` reads as no token at all. The email itself is
not in the token, because links end up in logs.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.core import signing
from django.utils.crypto import constant_time_compare

from customers.models import Customer
from customers.services import normalize_email
from tenants.context import current_restaurant

MAX_AGE = timedelta(days=30)


def _signer(restaurant_id: int) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"customers.consent.restaurant-{restaurant_id}")


def _email_digest(email: str) -> str:
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()[:32]


def consent_token(customer: Customer) -> str:
    return _signer(customer.restaurant_id).sign_object([customer.pk, _email_digest(customer.email)])


def customer_for_token(token: str) -> Customer | None:
    """The current restaurant's customer a valid token names, or None."""
    try:
        payload = _signer(current_restaurant().pk).unsign_object(token, max_age=MAX_AGE)
    except signing.BadSignature:  # also an expired one
        return None
    match payload:
        case [int() as customer_id, str() as digest]:
            pass
        case _:
            return None
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None or not constant_time_compare(digest, _email_digest(customer.email)):
        return None
    return customer
