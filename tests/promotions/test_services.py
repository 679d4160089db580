"""Managing promotion codes: every rule, the duplicate code (also under a race), the audit
trail, and where a code stands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from audit.models import AuditEvent
from nordkestrel.errors import ConflictError, InvalidInput, NotFoundError, PermissionDeniedError
from promotions import services
from promotions.models import Promotion
from promotions.services import PromotionStatus, promotion_status
from staff.auth import Actor
from tenants.context import tenant_context
from tests.factories import run_concurrently

from .conftest import NOW

pytestmark = pytest.mark.django_db

HELSINKI = ZoneInfo("Europe/Helsinki")


def manager(roster) -> Actor:
    return Actor(member=roster[("ours", "manager")])


def events(restaurant, action: str) -> list[AuditEvent]:
    with tenant_context(restaurant):
        return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def count(restaurant) -> int:
    with tenant_context(restaurant):
        return Promotion.objects.count()


class TestCreate:
    def test_a_code_with_every_field(self, create, restaurants):
        starts = datetime(2026, 6, 1, 9, 0, tzinfo=HELSINKI)
        promotion = create(
            code="Summer_2026-A", kind="fixed", value=500, description="  Summer  ",
            min_subtotal=2000, starts_at=starts, ends_at=starts + timedelta(days=30),
            max_redemptions=100, per_customer_limit=1, first_order_only=True, active=False,
        )  # fmt: skip
        with tenant_context(restaurants[0]):
            stored = Promotion.objects.get(pk=promotion.pk)
        assert stored.code == "Summer_2026-A"  # as entered
        assert stored.description == "Summer"
        assert (stored.kind, stored.value, stored.min_subtotal) == ("fixed", 500, 2000)
        assert stored.starts_at == datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
        assert stored.ends_at == datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
        assert (stored.max_redemptions, stored.per_customer_limit) == (100, 1)
        assert (stored.first_order_only, stored.active, stored.redemption_count) == (
            True,
            False,
            0,
        )
        assert stored.restaurant_id == restaurants[0].pk

    def test_defaults(self, create):
        promotion = create(code="abc", kind="percent", value=100)
        assert promotion.min_subtotal == 0
        assert promotion.starts_at is None and promotion.ends_at is None
        assert promotion.max_redemptions is None and promotion.per_customer_limit is None
        assert promotion.active and not promotion.first_order_only

    @pytest.mark.parametrize(
        ("fields", "attr"),
        [
            ({"code": "ab"}, "code"),
            ({"code": "A" * 33}, "code"),
            ({"code": "TEN OFF"}, "code"),
            ({"code": "TEN%"}, "code"),
            ({"code": "ÄÄKKÖNEN"}, "code"),
            ({"code": "TEN\x00"}, "code"),
            ({"code": 12345}, "code"),
            ({"kind": "bogof"}, "kind"),
            ({"kind": "percent", "value": 0}, "value"),
            ({"kind": "percent", "value": 101}, "value"),
            ({"kind": "fixed", "value": 0}, "value"),
            ({"kind": "fixed", "value": 10_000_001}, "value"),
            ({"value": True}, "value"),
            ({"value": "10"}, "value"),
            ({"min_subtotal": -1}, "min_subtotal"),
            ({"min_subtotal": 10_000_001}, "min_subtotal"),
            ({"starts_at": datetime(2026, 6, 2), "ends_at": None}, "starts_at"),  # noqa: DTZ001 - naive on purpose
            ({"starts_at": datetime(1999, 12, 31, tzinfo=UTC)}, "starts_at"),
            ({"ends_at": datetime(9001, 1, 1, tzinfo=UTC)}, "ends_at"),
            ({"starts_at": NOW, "ends_at": NOW}, "ends_at"),
            ({"starts_at": NOW, "ends_at": NOW - timedelta(minutes=1)}, "ends_at"),
            ({"max_redemptions": 0}, "max_redemptions"),
            ({"max_redemptions": 2**40}, "max_redemptions"),
            ({"per_customer_limit": 0}, "per_customer_limit"),
            ({"first_order_only": "yes"}, "first_order_only"),
            ({"active": None}, "active"),
            ({"description": "x" * 201}, "description"),
            ({"description": "\ud800"}, "description"),
            ({"redemption_count": 5}, "redemption_count"),
            ({"restaurant": 2}, "restaurant"),
        ],
    )
    def test_each_rule_refuses_with_the_field_and_saves_nothing(
        self, create, restaurants, fields, attr
    ):
        with pytest.raises(InvalidInput) as refused:
            create(**fields)
        assert refused.value.attr == attr
        assert refused.value.detail
        assert count(restaurants[0]) == 0
        assert events(restaurants[0], "promotion.created") == []

    @pytest.mark.parametrize("missing", ["code", "kind", "value"])
    def test_code_kind_and_value_are_required(self, roster, restaurants, missing):
        fields = {"code": "SPRING10", "kind": "percent", "value": 10}
        del fields[missing]
        with tenant_context(restaurants[0]), pytest.raises(InvalidInput) as refused:
            services.promotion_create(actor=manager(roster), **fields)
        assert refused.value.attr == missing

    def test_the_limits_themselves_are_accepted(self, create):
        create(code="one", kind="percent", value=1)
        create(code="hundred", kind="percent", value=100)
        create(code="cent", kind="fixed", value=1, min_subtotal=0, max_redemptions=1)
        create(code="x" * 32, kind="fixed", value=10_000_000, per_customer_limit=1)

    @pytest.mark.parametrize("spelling", ["spring10", "SPRING10", "Spring10"])
    def test_a_code_taken_in_any_case_is_refused(self, create, restaurants, spelling):
        create(code="SPRING10")
        with pytest.raises(ConflictError) as refused:
            create(code=spelling)
        assert (refused.value.code, refused.value.attr, refused.value.status) == (
            "code_taken",
            "code",
            409,
        )
        assert count(restaurants[0]) == 1

    def test_the_same_code_in_another_restaurant_is_fine(self, create, roster, restaurants):
        create(code="SPRING10")
        with tenant_context(restaurants[1]):
            services.promotion_create(
                actor=Actor(member=roster[("theirs", "owner")]),
                code="spring10",
                kind="fixed",
                value=100,
            )
        assert count(restaurants[1]) == 1

    @pytest.mark.parametrize("role", ["cashier", "kitchen"])
    def test_roles_without_the_scope_are_refused(self, roster, restaurants, role):
        with tenant_context(restaurants[0]), pytest.raises(PermissionDeniedError):
            services.promotion_create(
                actor=Actor(member=roster[("ours", role)]), code="SPRING10", kind="percent", value=5
            )
        assert count(restaurants[0]) == 0

    def test_creating_is_audited_once_with_every_field(self, create, roster, restaurants):
        promotion = create(code="Spring10", kind="fixed", value=250, max_redemptions=5)
        [event] = events(restaurants[0], "promotion.created")
        assert event.target_id == str(promotion.pk)
        assert event.target_label == "Spring10"
        assert event.actor_id == roster[("ours", "manager")].pk
        assert event.changes["code"] == {"before": None, "after": "Spring10"}
        assert event.changes["value"] == {"before": None, "after": 250}
        assert event.changes["max_redemptions"] == {"before": None, "after": 5}
        assert "starts_at" not in event.changes  # nothing to record: None before and after


@pytest.mark.django_db(transaction=True)
def test_two_requests_for_one_code_race_and_only_one_wins(roster, restaurants):
    ours = restaurants[0]

    def attempt(code):
        def run():
            with tenant_context(ours):
                return services.promotion_create(
                    actor=manager(roster), code=code, kind="percent", value=10
                )

        return run

    for round_ in range(5):
        results = run_concurrently(attempt(f"RACE{round_}"), attempt(f"race{round_}"))
        created = [r for r in results if isinstance(r, Promotion)]
        refused = [r for r in results if isinstance(r, ConflictError)]
        assert len(created) == 1, results
        assert len(refused) == 1 and refused[0].code == "code_taken", results
    assert count(ours) == 5
    assert len(events(ours, "promotion.created")) == 5


class TestUpdate:
    def update(self, roster, restaurants, promotion, **fields):
        with tenant_context(restaurants[0]):
            return services.promotion_update(actor=manager(roster), promotion=promotion, **fields)

    def test_changes_are_saved_and_audited_once_with_before_and_after(
        self, create, roster, restaurants
    ):
        promotion = create(code="SPRING10", value=10)
        updated = self.update(
            roster, restaurants, promotion, value=15, description="Spring", active=True
        )
        assert (updated.value, updated.description) == (15, "Spring")
        [event] = events(restaurants[0], "promotion.updated")
        assert event.changes == {
            "description": {"before": "", "after": "Spring"},
            "value": {"before": 10, "after": 15},
        }
        with tenant_context(restaurants[0]):
            assert Promotion.objects.get(pk=promotion.pk).value == 15

    def test_an_update_that_changes_nothing_records_nothing(self, create, roster, restaurants):
        promotion = create(starts_at=datetime(2026, 6, 1, 9, 0, tzinfo=HELSINKI))
        self.update(
            roster, restaurants, promotion, value=10,
            starts_at=datetime(2026, 6, 1, 6, 0, tzinfo=UTC),  # the same instant
        )  # fmt: skip
        assert events(restaurants[0], "promotion.updated") == []

    def test_rules_see_the_stored_fields_too(self, create, roster, restaurants):
        promotion = create(kind="fixed", value=500, ends_at=NOW)
        with pytest.raises(InvalidInput) as refused:
            self.update(roster, restaurants, promotion, starts_at=NOW + timedelta(hours=1))
        assert refused.value.attr == "ends_at"
        with pytest.raises(InvalidInput) as refused:
            self.update(roster, restaurants, promotion, kind="percent")  # 500 %
        assert refused.value.attr == "value"
        with tenant_context(restaurants[0]):
            stored = Promotion.objects.get(pk=promotion.pk)
        assert (stored.kind, stored.starts_at) == ("fixed", None)
        assert events(restaurants[0], "promotion.updated") == []

    def test_the_code_can_change_until_it_is_redeemed(self, create, redeem, roster, restaurants):
        promotion = create(code="SPRING10")
        promotion = self.update(roster, restaurants, promotion, code="SPRING15")
        assert promotion.code == "SPRING15"
        redeem("spring15")
        with pytest.raises(ConflictError) as refused:
            self.update(roster, restaurants, promotion, code="SPRING20")
        assert (refused.value.code, refused.value.attr) == ("code_in_use", "code")
        with pytest.raises(ConflictError):
            self.update(roster, restaurants, promotion, code="spring15")  # not even its case
        with tenant_context(restaurants[0]):
            assert Promotion.objects.get(pk=promotion.pk).code == "SPRING15"
        # The rest of a redeemed code stays editable, and sending its code unchanged is fine.
        self.update(roster, restaurants, promotion, code="SPRING15", active=False)

    def test_a_rename_onto_another_code_is_refused(self, create, roster, restaurants):
        create(code="SPRING10")
        other = create(code="SUMMER")
        with pytest.raises(ConflictError) as refused:
            self.update(roster, restaurants, other, code="Spring10")
        assert refused.value.code == "code_taken"
        # Its own code in another case is no clash.
        assert self.update(roster, restaurants, other, code="summer").code == "summer"

    def test_the_total_limit_cannot_go_below_the_uses(self, create, redeem, roster, restaurants):
        promotion = create(code="TWICE", max_redemptions=5)
        redeem("TWICE", email="a@example.com")
        redeem("TWICE", email="b@example.com")
        with pytest.raises(InvalidInput) as refused:
            self.update(roster, restaurants, promotion, max_redemptions=1)
        assert refused.value.attr == "max_redemptions"
        updated = self.update(roster, restaurants, promotion, max_redemptions=2)
        assert (updated.max_redemptions, updated.redemption_count) == (2, 2)

    def test_another_restaurants_promotion_is_not_found(self, roster, restaurants):
        with tenant_context(restaurants[1]):
            theirs = services.promotion_create(
                actor=Actor(member=roster[("theirs", "owner")]), code="THEIRS", kind="fixed",
                value=100,
            )  # fmt: skip
        with pytest.raises(NotFoundError):
            self.update(roster, restaurants, theirs, value=200)
        with tenant_context(restaurants[1]):
            assert Promotion.objects.get(pk=theirs.pk).value == 100

    @pytest.mark.parametrize("role", ["cashier", "kitchen"])
    def test_roles_without_the_scope_are_refused(self, create, roster, restaurants, role):
        promotion = create()
        with tenant_context(restaurants[0]), pytest.raises(PermissionDeniedError):
            services.promotion_update(
                actor=Actor(member=roster[("ours", role)]), promotion=promotion, value=50
            )

    def test_checkout_follows_the_edited_limit(self, create, redeem, roster, restaurants):
        promotion = create(code="CAP", max_redemptions=3)
        redeem("CAP", email="a@example.com")
        self.update(roster, restaurants, promotion, max_redemptions=1)
        with pytest.raises(InvalidInput) as refused:
            redeem("CAP", email="b@example.com")
        assert refused.value.code == "promotion_used_up"


def make(**fields) -> Promotion:
    return Promotion(code="X", kind="percent", value=10, **fields)


@pytest.mark.parametrize(
    ("promotion", "expected"),
    [
        (make(), PromotionStatus.ACTIVE),
        (make(starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=1)), "active"),
        (make(starts_at=NOW + timedelta(seconds=1)), PromotionStatus.SCHEDULED),
        (make(starts_at=NOW), PromotionStatus.ACTIVE),
        (make(ends_at=NOW), PromotionStatus.EXPIRED),
        (make(ends_at=NOW - timedelta(days=1)), PromotionStatus.EXPIRED),
        (make(max_redemptions=10, redemption_count=10), PromotionStatus.USED_UP),
        (make(max_redemptions=10, redemption_count=9), PromotionStatus.ACTIVE),
        (make(active=False), PromotionStatus.INACTIVE),
        (make(active=False, ends_at=NOW - timedelta(days=1)), PromotionStatus.INACTIVE),
        (make(ends_at=NOW, max_redemptions=1, redemption_count=1), PromotionStatus.EXPIRED),
    ],
)
def test_status_is_computed_from_the_fields_and_now(promotion, expected):
    assert promotion_status(promotion, NOW) == expected
