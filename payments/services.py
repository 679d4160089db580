"""Card payments: the card flow for checkout, starting a payment, and recording its success.

The browser's return from Stripe and the ``payment_intent.succeeded`` webhook race; both call
:func:`payment_record_intent`, which locks the payment row, so whichever comes second finds
the work done: one payment, one placed order, counted once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import SystemActor
from nordkestrel import events
from nordkestrel.errors import ConflictError
from orders.models import Order, PaymentMethod, Status
from orders.pricing import round_half_up
from orders.services import order_mark_paid
from payments import events as payment_events
from payments import gateway, inbox
from payments.handlers import payment_key
from payments.models import Payment, StripeAccount
from tenants.context import tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

STRIPE = SystemActor("stripe")


def application_fee(total: int) -> int:
    """The platform's cut of a card payment: a percentage plus a fixed part, never more than
    the payment itself."""
    percent = Decimal(settings.PLATFORM_FEE_PERCENT)
    fee = round_half_up(Decimal(total) * percent / Decimal(100)) + settings.PLATFORM_FEE_FIXED
    return max(0, min(total, fee))


def connected_account() -> StripeAccount | None:
    return StripeAccount.objects.filter(disconnected_at__isnull=True).first()


@dataclass(frozen=True)
class CardPayment:
    """Checkout by card: the order waits in ``pending_payment`` until Stripe says it is paid."""

    method: str = PaymentMethod.CARD
    label: str = "Card"
    initial_status: str = Status.PENDING_PAYMENT

    def offered(self, restaurant: Restaurant) -> bool:
        if not gateway.configured() or restaurant.status != Restaurant.Status.ACTIVE:
            return False
        account = connected_account()
        return account is not None and account.can_take_cards

    def on_cancelled(self, order: Order) -> None:
        payment_cancel_intent(order=order)

    def settle_unpaid(self, order: Order) -> str:
        return payment_settle_unpaid(order=order)


def payment_start(*, order: Order) -> Payment:
    """The order's PaymentIntent (a direct charge with the platform's fee), created once.

    Runs after the order committed: a failure leaves the order waiting and the diner may try
    again; the idempotency key (the order's public id) makes a retry return the same intent.
    """
    existing = Payment.objects.filter(order=order).first()
    if existing is not None:
        return existing
    if order.status != Status.PENDING_PAYMENT or order.payment_method != PaymentMethod.CARD:
        raise ConflictError("This order is not waiting for a card payment.", code="not_payable")
    account = connected_account()
    open_for_orders = Restaurant.objects.filter(
        pk=order.restaurant_id, status=Restaurant.Status.ACTIVE
    ).exists()
    if account is None or not account.can_take_cards or not open_for_orders:
        raise ConflictError(
            "This restaurant cannot take card payments right now.", code="cards_unavailable"
        )
    fee = application_fee(order.total)
    intent = gateway.create_payment_intent(
        account_id=account.account_id,
        amount=order.total,
        currency=order.currency,
        application_fee_amount=fee,
        metadata={
            "order_id": str(order.pk),
            "order_public_id": str(order.public_id),
            "order_number": str(order.number),
            "restaurant_id": str(order.restaurant_id),
        },
        operation_id=str(order.public_id),
    )
    with transaction.atomic():
        payment, created = Payment.objects.get_or_create(
            order=order,
            defaults={
                "account_id": account.account_id,
                "payment_intent_id": intent.id,
                "client_secret": intent.client_secret,
                "amount": intent.amount,
                "currency": intent.currency,
                "application_fee_amount": fee,
            },
        )
        if created:
            # Stripe may have reported on the intent before this row existed: those events
            # wait for it and are applied once it has committed.
            inbox.wake_on_commit(payment_key(payment.payment_intent_id))
    return payment


def _mark(payment: Payment, intent: gateway.Intent) -> bool:
    """Apply what Stripe says about the intent to a locked payment; True when it just
    succeeded (the caller then places the order)."""
    if payment.status == Payment.Status.SUCCEEDED:
        return False  # never goes back; a late "processing" or "failed" changes nothing
    if payment.status == Payment.Status.CANCELED and intent.status != "succeeded":
        # A canceled intent can no longer be paid: a late "processing" or "failed" changes
        # nothing. (Only money actually taken is recorded, to be refunded.)
        return False
    if intent.status == "succeeded":
        if intent.amount_received != payment.amount or intent.currency != payment.currency:
            raise ConflictError("The payment does not match the order.", code="amount_mismatch")
        payment.status = Payment.Status.SUCCEEDED
        payment.charge_id = intent.charge_id or payment.charge_id
        payment.succeeded_at = timezone.now()
        payment.save(update_fields=["status", "charge_id", "succeeded_at", "updated_at"])
        return True
    status = {
        "processing": Payment.Status.PROCESSING,
        "canceled": Payment.Status.CANCELED,
        "requires_payment_method": Payment.Status.REQUIRES_PAYMENT,
    }.get(intent.status)
    if status is not None and status != payment.status:
        payment.status = status
        payment.save(update_fields=["status", "updated_at"])
    return False


@transaction.atomic
def payment_record_intent(*, payment_intent_id: str, intent: gateway.Intent) -> Payment | None:
    """Record the intent's state (from the webhook or the browser's return); places the
    order the first time it succeeds. None when no payment of this restaurant has that id."""
    payment = (
        Payment.objects.select_for_update(no_key=True, of=("self",))
        .filter(payment_intent_id=payment_intent_id)
        .first()
    )
    if payment is None:
        return None
    if _mark(payment, intent):
        events.publish(payment_events.succeeded(payment))
        order_mark_paid(order_id=payment.order_id, actor=STRIPE)
    return payment


@transaction.atomic
def payment_record_failure(*, payment: Payment, message: str) -> None:
    """A declined attempt on a payment that is still payable: the reason is kept for staff."""
    payment.failure_message = message[:300]
    payment.save(update_fields=["failure_message", "updated_at"])
    events.publish(payment_events.failed(payment))


def payment_confirm_return(*, order: Order) -> Payment | None:
    """The diner came back from Stripe: ask Stripe (never the browser) how the payment went."""
    payment = Payment.objects.filter(order=order).first()
    if payment is None:
        return None
    if payment.status == Payment.Status.SUCCEEDED:
        return payment
    intent = gateway.retrieve_payment_intent(
        account_id=payment.account_id, payment_intent_id=payment.payment_intent_id
    )
    return payment_record_intent(payment_intent_id=payment.payment_intent_id, intent=intent)


def payment_cancel_intent(*, order: Order) -> None:
    """After the order was cancelled (committed): its PaymentIntent is cancelled at Stripe, so
    the diner can no longer pay for an order that will not be made.

    Runs outside any transaction and tenant context (``orders.payment_methods``). Nothing to
    do for an order without a payment or one already settled. Stripe refuses once the diner's
    payment went through or is processing: its ``payment_intent.succeeded`` then refunds it
    (``payments.refunds.refund_paid_cancelled_order``), so a refusal is only logged.
    """
    restaurant = Restaurant.objects.get(pk=order.restaurant_id)
    with tenant_context(restaurant):
        payment = Payment.objects.filter(order_id=order.pk).first()
    if payment is None or payment.status in (Payment.Status.SUCCEEDED, Payment.Status.CANCELED):
        return
    try:
        intent = gateway.cancel_payment_intent(
            account_id=payment.account_id,
            payment_intent_id=payment.payment_intent_id,
            operation_id=str(order.public_id),
        )
    except gateway.GatewayError as error:
        logger.warning(
            "The PaymentIntent of a cancelled order was not cancelled: %s",
            error.detail,
            extra={"payment_intent_id": payment.payment_intent_id},
        )
        return
    with tenant_context(restaurant):
        payment_record_intent(payment_intent_id=intent.id, intent=intent)


# What ``expire-unpaid-orders`` may do with an order that waited too long for its payment.
CANCEL, PAID, WAIT = "cancel", "paid", "wait"
# The intent's states in which nobody has paid, or is paying, yet.
UNPAID = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})


def _settle(restaurant: Restaurant, payment: Payment, intent: gateway.Intent) -> str:
    """Record what Stripe says of the intent; CANCEL, PAID, WAIT, or "" while it can still
    be paid."""
    try:
        with tenant_context(restaurant):
            payment_record_intent(payment_intent_id=payment.payment_intent_id, intent=intent)
    except ConflictError as error:
        if error.code != "amount_mismatch":
            raise
        logger.error(
            "An expired order's PaymentIntent succeeded with an amount that does not match "
            "the order: left for a person to check at Stripe",
            extra={"payment_intent_id": payment.payment_intent_id},
        )
        return WAIT
    if intent.status == "succeeded":
        return PAID
    if intent.status == "canceled":
        return CANCEL
    return "" if intent.status in UNPAID else WAIT


def _skipped(payment: Payment, error: gateway.GatewayError) -> str:
    logger.warning(
        "Stripe could not tell how an unpaid order's payment stands; it is left for the next "
        "run: %s",
        error.detail,
        extra={"payment_intent_id": payment.payment_intent_id, "order_id": payment.order_id},
    )
    return WAIT


def payment_settle_unpaid(*, order: Order) -> str:
    """Before an order that waited too long for its card payment is cancelled, ask Stripe
    (never our own record, which a lost webhook leaves behind) how its PaymentIntent stands.

    Succeeded: the success is recorded and the order placed (PAID). Processing or waiting for
    capture: left alone (WAIT). Still payable: the intent is cancelled at Stripe first (keyed
    by the order), so nobody can pay it any more, then the order may go (CANCEL); if Stripe
    refuses because the diner paid in between, it is asked again and the payment applied.
    Stripe unreachable: nothing is decided this run (WAIT). An order that never got an
    intent has nothing to pay (CANCEL). Runs outside any transaction; Stripe is never called
    with a lock held.
    """
    restaurant = Restaurant.objects.get(pk=order.restaurant_id)
    with tenant_context(restaurant):
        payment = Payment.objects.filter(order_id=order.pk).first()
    if payment is None:
        return CANCEL
    if payment.status == Payment.Status.CANCELED:
        return CANCEL
    ids = {"account_id": payment.account_id, "payment_intent_id": payment.payment_intent_id}
    try:
        verdict = _settle(restaurant, payment, gateway.retrieve_payment_intent(**ids))
    except gateway.GatewayError as error:
        return _skipped(payment, error)
    if verdict:
        return verdict
    try:
        intent = gateway.cancel_payment_intent(**ids, operation_id=str(order.public_id))
    except gateway.GatewayError as error:
        if error.undecided:
            return _skipped(payment, error)
        # Refused: the intent moved on since we looked (the diner paid just now).
        try:
            intent = gateway.retrieve_payment_intent(**ids)
        except gateway.GatewayError as again:
            return _skipped(payment, again)
    return _settle(restaurant, payment, intent) or WAIT
