"""Restaurants (the tenants) and the base every tenant model inherits."""

from __future__ import annotations

import zoneinfo
from decimal import Decimal
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from tenants.context import TenantMismatch, bypass_active, current_restaurant
from tenants.rls import RowLevelSecurity

CURRENCY_VALIDATOR = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code, e.g. EUR.")
COUNTRY_VALIDATOR = RegexValidator(r"^[A-Z]{2}$", "Use a two-letter ISO 3166 code, e.g. FI.")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. Europe/Helsinki).")


class RestaurantManager(models.Manager["Restaurant"]):
    def locked(self, pk: int, *, key_change: bool = False) -> Restaurant:
        """The restaurant row, locked where the project's lock order puts it (level 3 in
        nordkestrel/locks.py): after the job locks, before any other row and the audit chain.

        ``FOR NO KEY UPDATE``: every other writer's new rows point at this row, and their
        COMMIT checks it ``FOR KEY SHARE``, which this mode does not block. ``key_change``
        (the slug or the organization changes) takes ``FOR UPDATE``, which does."""
        return self.select_for_update(no_key=not key_change).get(pk=pk)


class Restaurant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        PENDING_DELETION = "pending_deletion", "Pending deletion"
        # Purged: the row stays as a tombstone because the audit log (which outlives the
        # restaurant for its 12 months) refers to it; every operational row is gone.
        DELETED = "deleted", "Deleted"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=63, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    currency = models.CharField(max_length=3, default="EUR", validators=[CURRENCY_VALIDATOR])
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True, validators=[COUNTRY_VALIDATOR])
    phone = models.CharField(max_length=32, blank=True)
    # Storage key of the logo (menus/images.py writes it); empty when none was uploaded.
    logo = models.CharField(max_length=255, blank=True)
    # Percent, e.g. 14.000 for 14 %; applied to subtotals when orders are priced.
    tax_rate = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    # Menu prices already contain the tax (common for VAT); otherwise it is added on top.
    prices_include_tax = models.BooleanField(default=True)
    clerk_organization_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    # Account deletion (restaurants/deletion.py): set while the restaurant is pending deletion.
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    purge_after = models.DateTimeField(null=True, blank=True)
    # Set when the purge begins; from then on the deletion can no longer be cancelled.
    purge_started_at = models.DateTimeField(null=True, blank=True)
    require_mfa_for_sensitive_actions = models.BooleanField(default=False)
    pickup_enabled = models.BooleanField(default=True)
    delivery_enabled = models.BooleanField(default=False)
    delivery_minimum = models.PositiveIntegerField(default=0, help_text="Minor units.")
    delivery_fee = models.PositiveIntegerField(default=0, help_text="Minor units.")
    prep_time_minutes = models.PositiveSmallIntegerField(
        default=20, validators=[MaxValueValidator(24 * 60)]
    )
    orders_per_slot = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="At most this many orders per 15-minute slot."
    )
    # Changes with every change to the opening hours or exceptions (a database trigger takes
    # it from a sequence, and it never goes back, whatever a stale save writes): a schedule
    # built at one revision stays right until the next (tenants.hours).
    hours_revision = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestaurantManager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class TenantQuerySet(models.QuerySet):
    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> Any:
        objs = list(objs)
        for obj in objs:
            obj.assign_restaurant()
        return super().bulk_create(objs, *args, **kwargs)


class TenantManager(models.Manager):
    """Filters by the current restaurant and raises when none is set (fail closed)."""

    queryset_class: type[TenantQuerySet] = TenantQuerySet

    def get_queryset(self) -> models.QuerySet:
        queryset: models.QuerySet = self.queryset_class(self.model, using=self._db)
        if bypass_active():
            return queryset
        return queryset.filter(restaurant=current_restaurant())


class UnscopedManager(models.Manager):
    """Every restaurant's rows. Only meaningful inside tenant_bypass(); RLS still applies."""

    def get_queryset(self) -> models.QuerySet:
        return TenantQuerySet(self.model, using=self._db)


class TenantModel(models.Model):
    restaurant = models.ForeignKey(Restaurant, on_delete=models.CASCADE, related_name="+")

    objects: ClassVar[TenantManager] = TenantManager()
    unscoped: ClassVar[UnscopedManager] = UnscopedManager()
    # The account purge deletes every row of every tenant model unless the model says its
    # rows outlive the restaurant (the audit log, kept for its own retention).
    purged_with_restaurant: ClassVar[bool] = True

    class Meta:
        abstract = True
        constraints = [RowLevelSecurity(name="%(app_label)s_%(class)s_rls")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.assign_restaurant()
        super().save(*args, **kwargs)

    def assign_restaurant(self) -> None:
        """Fill ``restaurant`` from the context, and refuse another restaurant's object."""
        if bypass_active():
            if self.restaurant_id is None:
                raise TenantMismatch("Objects created under tenant_bypass() need a restaurant.")
            return
        restaurant = current_restaurant()
        if self.restaurant_id is None:
            self.restaurant = restaurant
        elif self.restaurant_id != restaurant.pk:
            raise TenantMismatch(
                f"{type(self).__name__} belongs to restaurant {self.restaurant_id}, "
                f"not the current restaurant {restaurant.pk}."
            )
        self._check_related_restaurants()

    def _check_related_restaurants(self) -> None:
        """A row never points at another restaurant's row (foreign keys to tenant models)."""
        for field in self._meta.concrete_fields:
            related = field.related_model
            if not (field.many_to_one and isinstance(related, type)):
                continue
            if not issubclass(related, TenantModel):
                continue
            value = getattr(self, field.attname)
            if value is None:
                continue
            cached = field.get_cached_value(self, default=None)  # type: ignore[attr-defined]
            if cached is not None and cached.pk == value:
                belongs = cached.restaurant_id == self.restaurant_id
            else:
                # The scoped manager sees only this restaurant's rows.
                belongs = related._default_manager.filter(pk=value).exists()
            if not belongs:
                raise TenantMismatch(
                    f"{type(self).__name__}.{field.name} points at another restaurant's row."
                )


class Weekday(models.IntegerChoices):
    MONDAY = 0
    TUESDAY = 1
    WEDNESDAY = 2
    THURSDAY = 3
    FRIDAY = 4
    SATURDAY = 5
    SUNDAY = 6


class OpeningHours(TenantModel):
    """A weekly opening period; ``closes`` before ``opens`` runs past midnight."""

    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta(TenantModel.Meta):
        ordering = ["weekday", "opens"]
        verbose_name_plural = "opening hours"
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant", "weekday", "opens"], name="opening_hours_unique_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"


class OpeningException(TenantModel):
    """A date with different hours (or closed), e.g. a public holiday."""

    date = models.DateField()
    closed = models.BooleanField(default=True)
    opens = models.TimeField(null=True, blank=True)
    closes = models.TimeField(null=True, blank=True)
    note = models.CharField(max_length=120, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["date"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["restaurant", "date"], name="opening_exception_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.date}: {'closed' if self.closed else f'{self.opens}-{self.closes}'}"


class DeletionRecord(models.Model):
    """What an account purge removed, and when: kept after the restaurant's data is gone.

    A platform table. It holds no personal data and no restaurant name: the id and slug say
    which restaurant it was, the counts say what was purged. The purge writes it when it
    begins and adds to its counts in the same transaction as each deleted batch, so an
    interrupted purge's record stays exact and is completed by the next run.
    """

    # Not a foreign key: the record stands on its own, whatever becomes of the restaurant row.
    restaurant_id = models.BigIntegerField(unique=True)
    slug = models.CharField(max_length=63)
    requested_at = models.DateTimeField()
    purge_after = models.DateTimeField()
    purge_started_at = models.DateTimeField()
    purged_at = models.DateTimeField(null=True, blank=True)
    # Rows deleted per table ("orders.order": 1200, ...) and stored files deleted.
    row_counts = models.JSONField(default=dict, blank=True)
    files_deleted = models.PositiveIntegerField(default=0)
    # What the purge steps outside the database did (e.g. the payment account's closure). A
    # step's outcome lists under PENDING what it could not do yet (its third party was down).
    outcomes = models.JSONField(default=dict, blank=True)

    PENDING = "pending"

    class Meta:
        ordering = ["-purge_started_at"]

    def __str__(self) -> str:
        state = f"purged {self.purged_at:%Y-%m-%d}" if self.purged_at else "purge in progress"
        if pending := self.pending_steps:
            state += f", {', '.join(pending)} pending"
        return f"restaurant {self.restaurant_id} ({self.slug}): {state}"

    @property
    def pending_steps(self) -> list[str]:
        """The purge steps whose work outside the database is still to be done (e.g. the
        Stripe account's closure while Stripe was down): later runs retry it alone."""
        return [
            name
            for name, outcome in self.outcomes.items()
            if isinstance(outcome, dict) and self.PENDING in outcome
        ]

    @property
    def rows_deleted(self) -> int:
        return sum(int(count) for count in self.row_counts.values())
