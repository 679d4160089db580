"""Card payments through Stripe Connect: the restaurant's connected account, the payment of
each card order, refunds, disputes, payouts, and the webhook inbox.

Stripe is the source of truth for money; these rows are what we know of it, kept current by
webhooks (and by the synchronous checkout return, which races them on purpose).
"""

from __future__ import annotations

import uuid

from django.db import models

from tenants.models import Restaurant, TenantModel


class StripeAccount(TenantModel):
    """The restaurant's connected account. Its flags change only from ``account.updated``."""

    account_id = models.CharField(max_length=64)
    details_submitted = models.BooleanField(default=False)
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    requirements_due = models.JSONField(default=list, blank=True)
    disabled_reason = models.CharField(max_length=100, blank=True)
    # ``created`` of the newest account.updated applied: an older event arriving late is ignored.
    state_as_of = models.BigIntegerField(default=0)
    connected_at = models.DateTimeField(auto_now_add=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant"], name="stripe_account_one_per_restaurant"
            ),
            models.UniqueConstraint(
                fields=["restaurant", "account_id"], name="stripe_account_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.account_id

    @property
    def can_take_cards(self) -> bool:
        return self.charges_enabled and self.disconnected_at is None


class AccountRoute(models.Model):
    """Which restaurant a connected account belongs to: how Connect webhooks find their
    tenant (a platform table, read only by webhook routing)."""

    account_id = models.CharField(max_length=64, unique=True)
    restaurant = models.ForeignKey(Restaurant, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return self.account_id


class Payment(TenantModel):
    """The PaymentIntent of one card order (a direct charge on the connected account)."""

    class Status(models.TextChoices):
        REQUIRES_PAYMENT = "requires_payment", "Waiting for the diner"
        PROCESSING = "processing", "Processing"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payments")
    account_id = models.CharField(max_length=64)
    payment_intent_id = models.CharField(max_length=64)
    client_secret = models.CharField(max_length=200)
    charge_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.REQUIRES_PAYMENT
    )
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    application_fee_amount = models.PositiveIntegerField()
    # What Stripe counts as refunded on the charge, as we know it now (``payments.refunds``
    # derives it from the newest charge event and our own refunds' fates).
    amount_refunded = models.PositiveIntegerField(default=0)
    # The newest charge event applied: the charge's ``amount_refunded`` and the event's
    # ``created``.
    charge_refunded = models.PositiveIntegerField(default=0)
    charge_refunded_as_of = models.BigIntegerField(default=0)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["restaurant", "order"], name="payment_one_per_order"),
            models.UniqueConstraint(
                fields=["restaurant", "payment_intent_id"], name="payment_intent_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.payment_intent_id

    @property
    def refundable(self) -> int:
        return self.amount - self.amount_refunded if self.status == self.Status.SUCCEEDED else 0


class Refund(TenantModel):
    """A refund we asked Stripe for. Reserved (pending, no ``refund_id``) before Stripe is
    asked; ``refund_id`` is set once Stripe's answer or webhook tells us of it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    # Derived from the caller's operation id (per restaurant): the idempotency key of the
    # refund's POST to Stripe, so a retried operation finds its refund and repeats nothing.
    key = models.UUIDField(default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    refund_id = models.CharField(max_length=64, blank=True)
    amount = models.PositiveIntegerField()
    reason = models.CharField(max_length=300)
    refund_application_fee = models.BooleanField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    failure_message = models.CharField(max_length=300, blank=True)
    # Who asked (audited as theirs whoever learns Stripe's answer); none for automatic ones.
    staff = models.ForeignKey(
        "staff.StaffMember", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    staff_label = models.CharField(max_length=200)
    # Stripe's ``created`` of the refund (0 until Stripe tells us of it) and the time of the
    # event that reported its failure: which charge events already count them.
    stripe_created = models.BigIntegerField(default=0)
    failed_as_of = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["created_at", "id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["restaurant", "key"], name="refund_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} of {self.payment_id}"


class Dispute(TenantModel):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    dispute_id = models.CharField(max_length=64)
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=40)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    # ``created`` of the newest event applied, so a late "created" never reopens a closed one.
    state_as_of = models.BigIntegerField(default=0)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-opened_at", "-id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["restaurant", "dispute_id"], name="dispute_unique"),
        ]

    def __str__(self) -> str:
        return self.dispute_id


class Payout(TenantModel):
    payout_id = models.CharField(max_length=64)
    # The operation (a form's or a client's Idempotency-Key) that asked for this payout here;
    # blank for payouts Stripe made on its schedule. Set once, by the first request that
    # claims the payout, which is the one audited.
    operation_id = models.CharField(max_length=64, blank=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=20, default="standard")
    status = models.CharField(max_length=20)
    arrival_date = models.DateTimeField(null=True, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    state_as_of = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["restaurant", "payout_id"], name="payout_unique"),
            models.UniqueConstraint(
                fields=["restaurant", "operation_id"],
                condition=~models.Q(operation_id=""),
                name="payout_operation_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.payout_id


class WebhookEvent(models.Model):
    """Every Stripe event received, stored before it is processed (exactly once).

    A platform table, not a tenant one: an event is stored before we know (from its
    ``account``) which restaurant it concerns, and unknown or unroutable events are kept too.
    Only webhook code reads it.
    """

    class Endpoint(models.TextChoices):
        PLATFORM = "platform", "Platform"
        CONNECT = "connect", "Connect"

    event_id = models.CharField(max_length=64, unique=True)
    endpoint = models.CharField(max_length=10, choices=Endpoint.choices)
    type = models.CharField(max_length=100)
    account_id = models.CharField(max_length=64, blank=True)
    livemode = models.BooleanField()
    created = models.BigIntegerField()  # Stripe's event timestamp (epoch seconds)
    payload = models.JSONField()
    restaurant = models.ForeignKey(
        Restaurant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # What came of it, or why it was not applied (livemode mismatch, unhandled type).
    outcome = models.CharField(max_length=200, blank=True)
    # While unprocessed: the row it waits for ("payment:<PaymentIntent id>", "account:<id>"),
    # which is not here yet; ``payments.inbox`` applies it when that row appears.
    waiting_for = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [
            models.Index(
                fields=["waiting_for"],
                condition=models.Q(processed_at__isnull=True) & ~models.Q(waiting_for=""),
                name="webhook_event_waiting",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
