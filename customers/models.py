"""Diners, one record per email per restaurant, kept up to date from their orders."""

from __future__ import annotations

from django.db import models

from tenants.models import TenantModel


class Customer(TenantModel):
    class ConsentSource(models.TextChoices):
        CHECKOUT = "checkout", "Storefront checkout"

    email = models.EmailField(max_length=254)  # stored lower-case
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=32, blank=True)
    # Counted over orders that were placed and not cancelled.
    order_count = models.PositiveIntegerField(default=0)
    total_spent = models.BigIntegerField(default=0, help_text="Minor units.")
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    marketing_consent = models.BooleanField(default=False)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_source = models.CharField(max_length=20, choices=ConsentSource.choices, blank=True)
    # The latest checkout that asked for news; consent starts only when the diner confirms
    # it from the link in their order email (double opt-in).
    consent_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-last_order_at", "-id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["restaurant", "email"], name="customers_one_per_email"),
        ]
        indexes = [models.Index(fields=["restaurant", "-last_order_at"], name="customers_recent")]

    def __str__(self) -> str:
        return self.email
