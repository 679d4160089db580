"""Promotion codes and their redemptions."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Upper

from tenants.models import TenantModel


class Promotion(TenantModel):
    class Kind(models.TextChoices):
        PERCENT = "percent", "Percent off"
        FIXED = "fixed", "Fixed amount off"

    code = models.CharField(max_length=32)  # as entered; matched case-insensitively
    description = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Percent (1-100) for percent codes, minor units for fixed ones.
    value = models.PositiveIntegerField()
    min_subtotal = models.PositiveIntegerField(default=0, help_text="Minor units.")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    per_customer_limit = models.PositiveIntegerField(null=True, blank=True)
    first_order_only = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    # Incremented atomically against max_redemptions; released when an order is cancelled.
    redemption_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint("restaurant", Upper("code"), name="promotions_code_unique"),
            models.CheckConstraint(
                condition=models.Q(max_redemptions__isnull=True)
                | models.Q(redemption_count__lte=models.F("max_redemptions")),
                name="promotions_within_cap",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Redemption(TenantModel):
    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, related_name="redemptions")
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="redemptions")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="redemptions"
    )
    discount = models.PositiveIntegerField(help_text="Minor units.")
    # False once the order is cancelled: the use goes back to the code's caps.
    counted = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant", "order"], name="redemptions_one_per_order"
            ),
        ]
        indexes = [
            models.Index(
                fields=["restaurant", "promotion", "customer"], name="redemptions_by_customer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.promotion_id} on order {self.order_id}"
