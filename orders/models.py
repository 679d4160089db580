"""Orders: what a diner bought, priced and snapshotted at checkout, and its way through the
kitchen."""

from __future__ import annotations

import uuid

from django.db import models

from tenants.models import TenantModel


class Status(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Waiting for payment"
    PLACED = "placed", "Placed"
    ACCEPTED = "accepted", "Accepted"
    PREPARING = "preparing", "Preparing"
    READY = "ready", "Ready"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


# The kitchen's queue: orders someone still has to act on.
ACTIVE_STATUSES = (Status.PLACED, Status.ACCEPTED, Status.PREPARING, Status.READY)
# Orders that count for the customer's history and the capacity of their slot.
COUNTED_STATUSES = (*ACTIVE_STATUSES, Status.COMPLETED)


class Fulfilment(models.TextChoices):
    PICKUP = "pickup", "Pickup"
    DELIVERY = "delivery", "Delivery"


class PaymentMethod(models.TextChoices):
    IN_PERSON = "in_person", "Pay at pickup"
    CARD = "card", "Card"


class Order(TenantModel):
    # The diner's handle on the order (status page): unguessable, never the sequential id.
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    # Per-restaurant order number shown to staff and diners. Checkout writes the order with 0
    # and numbers it last, just before its commit (orders.placement._number): the uniqueness is
    # checked at commit, and the restaurant's number row is locked for as short as possible.
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices)
    fulfilment = models.CharField(max_length=10, choices=Fulfilment.choices)
    payment_method = models.CharField(max_length=10, choices=PaymentMethod.choices)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="orders"
    )
    contact_name = models.CharField(max_length=120)
    contact_email = models.EmailField(max_length=254)
    contact_phone = models.CharField(max_length=32)
    # The diner ticked "email me news" at this checkout: its confirmation email asks them to
    # confirm (double opt-in); the tick alone is never consent.
    consent_requested = models.BooleanField(default=False)
    delivery_address = models.JSONField(default=dict, blank=True)  # line1, line2, postal, city
    delivery_notes = models.CharField(max_length=300, blank=True)
    # None when the diner asked for "as soon as possible".
    scheduled_for = models.DateTimeField(null=True, blank=True)
    promised_at = models.DateTimeField()
    slot_start = models.DateTimeField()
    currency = models.CharField(max_length=3)
    subtotal = models.PositiveIntegerField()
    discount = models.PositiveIntegerField(default=0)
    tax = models.PositiveIntegerField(default=0)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3)
    prices_include_tax = models.BooleanField()
    delivery_fee = models.PositiveIntegerField(default=0)
    tip = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField()
    promotion_code = models.CharField(max_length=32, blank=True)
    menu_version = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=100)
    # A digest of what the checkout asked for: a reused key with another request is refused.
    request_fingerprint = models.CharField(max_length=64)
    cancel_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    preparing_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["created_at", "id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant", "number"],
                name="orders_number_unique",
                deferrable=models.Deferrable.DEFERRED,
            ),
            models.UniqueConstraint(
                fields=["restaurant", "idempotency_key"], name="orders_idempotency_key_unique"
            ),
            models.UniqueConstraint(
                fields=["restaurant", "public_id"], name="orders_public_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["restaurant", "status", "created_at"], name="orders_queue"),
            models.Index(fields=["restaurant", "slot_start"], name="orders_by_slot"),
            models.Index(fields=["restaurant", "created_at"], name="orders_by_date"),
        ]

    def __str__(self) -> str:
        return f"Order #{self.number}"


class OrderLine(TenantModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    item_id = models.BigIntegerField()  # the menu item's id at the time; items may go away
    name = models.CharField(max_length=120)
    # [{"id", "group", "name", "price_delta"}]
    modifiers = models.JSONField(default=list)
    unit_price = models.PositiveIntegerField(help_text="Item price plus modifier deltas.")
    quantity = models.PositiveSmallIntegerField()
    line_total = models.PositiveIntegerField()
    note = models.CharField(max_length=200, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["order", "position"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant", "order", "position"], name="order_lines_position_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.name}"


class StatusChange(TenantModel):
    """Every transition of an order, with who made it and when."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    # A staff member's label, "diner" or "system" (payments); a snapshot, as staff may leave.
    actor_label = models.CharField(max_length=200)
    staff_id = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField()

    class Meta(TenantModel.Meta):
        ordering = ["order", "at", "id"]
        indexes = [models.Index(fields=["restaurant", "order"], name="status_changes_by_order")]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"


class OrderSequence(TenantModel):
    """The last order number handed out in a restaurant."""

    last_number = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant"], name="order_sequence_one_per_restaurant"
            ),
        ]
