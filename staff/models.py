from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower

from staff.roles import Role
from tenants.models import TenantModel


class StaffMember(TenantModel):
    """A restaurant's roster entry: the roster, not the token, decides who may do what."""

    # NULL until an invited person first signs in; unique per restaurant once set.
    clerk_user_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=120, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices)
    active = models.BooleanField(default=True)
    invited_at = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["name", "email"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint("restaurant", Lower("email"), name="staff_unique_email"),
            models.UniqueConstraint(
                fields=["restaurant", "clerk_user_id"],
                condition=models.Q(clerk_user_id__isnull=False),
                name="staff_unique_clerk_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.email} ({self.role})"

    @property
    def is_pending(self) -> bool:
        return self.clerk_user_id is None

    @property
    def label(self) -> str:
        return self.name or self.email
