"""The built-in export types: orders, order lines, customers, menus, promotions, redemptions.

Each query names the restaurant on every table it reads (the main table through
``tenant_column``, every join and subquery through ``%(restaurant_id)s``), besides the
row-level security the COPY runs under.
"""

# Queries here are built from constants and the models' table names; every value is a
# parameter (%(restaurant_id)s, %(currency)s, the filters).
# ruff: noqa: S608

from __future__ import annotations

from django.db import models

from customers.models import Customer
from exports.cells import (
    boolean,
    money,
    signed_major_units,
    text,
    text_list,
    timestamp,
)
from exports.registry import Column, ExportType, register
from menus.models import (
    Category,
    CategoryItem,
    Item,
    ItemModifierGroup,
    Menu,
    MenuVersion,
    Modifier,
    ModifierGroup,
    StorefrontMenuState,
)
from orders.models import Order, OrderLine, Status
from payments.models import Payment
from promotions.models import Promotion, Redemption
from staff.roles import Scope


def _table(model: type[models.Model]) -> str:
    return model._meta.db_table


ORDER_STATUSES = tuple(Status.values)

# "Street 5, Flat 2, 00100 Helsinki"
_ADDRESS = (
    "concat_ws(', ', NULLIF(o.delivery_address->>'line1', ''), "
    "NULLIF(o.delivery_address->>'line2', ''), NULLIF(concat_ws(' ', "
    "NULLIF(o.delivery_address->>'postal_code', ''), NULLIF(o.delivery_address->>'city', '')"
    "), ''))"
)

ORDERS = register(
    ExportType(
        name="orders",
        reads=(Scope.ORDERS_READ, Scope.ORDERS_CONTACT),
        label="Orders",
        description="One row per order: status, times, diner contact, amounts and payment.",
        columns=(
            Column("id", "o.id"),
            Column("number", "o.number", "The order number staff and diners see."),
            Column("status", "o.status"),
            Column("fulfilment", "o.fulfilment", "pickup or delivery"),
            Column("payment_method", "o.payment_method", "in_person or card"),
            Column("created_at", timestamp("o.created_at")),
            Column("placed_at", timestamp("o.placed_at")),
            Column("scheduled_for", timestamp("o.scheduled_for"), "Empty for as soon as possible."),
            Column("promised_at", timestamp("o.promised_at")),
            Column("accepted_at", timestamp("o.accepted_at")),
            Column("preparing_at", timestamp("o.preparing_at")),
            Column("ready_at", timestamp("o.ready_at")),
            Column("completed_at", timestamp("o.completed_at")),
            Column("cancelled_at", timestamp("o.cancelled_at")),
            Column("refunded_at", timestamp("o.refunded_at")),
            Column("customer_id", "o.customer_id"),
            Column("contact_name", text("o.contact_name")),
            Column("contact_email", text("o.contact_email")),
            Column("contact_phone", text("o.contact_phone")),
            Column("delivery_address", text(_ADDRESS)),
            Column("delivery_notes", text("o.delivery_notes")),
            Column("currency", "o.currency"),
            Column("subtotal", money("o.subtotal", "o.currency")),
            Column("discount", money("o.discount", "o.currency")),
            Column("delivery_fee", money("o.delivery_fee", "o.currency")),
            Column("tip", money("o.tip", "o.currency")),
            Column("tax", money("o.tax", "o.currency")),
            Column("tax_rate", "o.tax_rate", "Percent."),
            Column("prices_include_tax", boolean("o.prices_include_tax")),
            Column("total", money("o.total", "o.currency")),
            Column("promotion_code", text("o.promotion_code")),
            Column("payment_status", "p.status", "Card payments only."),
            Column("amount_refunded", money("p.amount_refunded", "o.currency")),
            Column("cancel_reason", text("o.cancel_reason")),
            Column("menu_version", "o.menu_version"),
        ),
        source=(
            f"FROM {_table(Order)} o LEFT JOIN {_table(Payment)} p "
            "ON p.order_id = o.id AND p.restaurant_id = %(restaurant_id)s"
        ),
        tenant_column="o.restaurant_id",
        order_by="o.created_at, o.id",
        date_column="o.created_at",
        status_column="o.status",
        statuses=ORDER_STATUSES,
    )
)

# "Size: Large (+3.00); Extras: Cheese (+1.50)", from the line's snapshot of its modifiers.
_LINE_MODIFIERS = (
    "(SELECT string_agg(concat(m->>'group', ': ', m->>'name', "
    "CASE WHEN (m->>'price_delta')::bigint <> 0 THEN ' (' || "
    f"{signed_major_units("m->>'price_delta'", 'o.currency')} || ')' END), "
    "'; ' ORDER BY position) FROM jsonb_array_elements(CASE WHEN jsonb_typeof(l.modifiers) = "
    "'array' THEN l.modifiers ELSE '[]'::jsonb END) WITH ORDINALITY AS modifiers(m, position))"
)

ORDER_LINES = register(
    ExportType(
        name="order_lines",
        reads=(Scope.ORDERS_READ,),
        label="Order lines",
        description="One row per line of an order, with its modifiers.",
        columns=(
            Column("order_id", "o.id"),
            Column("order_number", "o.number"),
            Column("order_status", "o.status"),
            Column("order_created_at", timestamp("o.created_at")),
            Column("position", "l.position + 1", "The line's place in the order, from 1."),
            Column("item_id", "l.item_id"),
            Column("item_name", text("l.name")),
            Column("modifiers", text(_LINE_MODIFIERS), "Group: choice (price change); ..."),
            Column("quantity", "l.quantity"),
            Column("unit_price", money("l.unit_price", "o.currency"), "Item plus modifiers."),
            Column("line_total", money("l.line_total", "o.currency")),
            Column("currency", "o.currency"),
            Column("note", text("l.note")),
        ),
        source=(
            f"FROM {_table(OrderLine)} l JOIN {_table(Order)} o "
            "ON o.id = l.order_id AND o.restaurant_id = %(restaurant_id)s"
        ),
        tenant_column="l.restaurant_id",
        order_by="o.created_at, o.id, l.position",
        date_column="o.created_at",
        status_column="o.status",
        statuses=ORDER_STATUSES,
    )
)

CUSTOMERS = register(
    ExportType(
        name="customers",
        reads=(Scope.CUSTOMERS_READ,),
        label="Customers",
        description="One row per diner, with their marketing consent.",
        columns=(
            Column("id", "c.id"),
            Column("email", text("c.email")),
            Column("name", text("c.name")),
            Column("phone", text("c.phone")),
            Column("order_count", "c.order_count"),
            Column("total_spent", money("c.total_spent")),
            Column("currency", "%(currency)s"),
            Column("first_order_at", timestamp("c.first_order_at")),
            Column("last_order_at", timestamp("c.last_order_at")),
            Column("marketing_consent", boolean("c.marketing_consent")),
            Column("consent_at", timestamp("c.consent_at")),
            Column("consent_source", "NULLIF(c.consent_source, '')"),
            Column(
                "consent_requested_at",
                timestamp("c.consent_requested_at"),
                "The latest checkout that asked for news (consent starts once confirmed).",
            ),
            Column("created_at", timestamp("c.created_at")),
        ),
        source=f"FROM {_table(Customer)} c",
        tenant_column="c.restaurant_id",
        order_by="c.id",
        date_column="c.created_at",
    )
)


def _group_summary(name: str, low: str, high: str, modifiers: str) -> str:
    """``Size [1-1]: Regular, Large +3.00``"""
    return f"concat({name}, ' [', {low}, '-', {high}, ']: ', {modifiers})"


def _choice(name: str, delta: str, currency: str) -> str:
    return (
        f"{name} || CASE WHEN ({delta})::bigint <> 0 THEN ' ' || "
        f"{signed_major_units(delta, currency)} ELSE '' END"
    )


# The live version's document: menus → categories → item ids; items and groups by id.
_PUBLISHED_GROUPS = (
    "(SELECT string_agg("
    + _group_summary(
        "g->>'name'",
        "g->>'min'",
        "g->>'max'",
        "(SELECT string_agg("
        + _choice("md->>'name'", "md->>'price_delta'", "doc_currency")
        + ", ', ' ORDER BY mo) FROM jsonb_array_elements(g->'modifiers') "
        "WITH ORDINALITY AS mods(md, mo))",
    )
    + ", '; ' ORDER BY go) FROM jsonb_array_elements_text(it->'modifier_groups') "
    "WITH ORDINALITY AS links(group_id, go) "
    "CROSS JOIN LATERAL (SELECT v.document->'modifier_groups'->links.group_id AS g) AS groups)"
)

_PUBLISHED = f"""
    SELECT s.restaurant_id, 0 AS version_sort, 'published' AS version,
        v.number AS version_number, v.published_at,
        ARRAY[menus.mo, 0, categories.co, 0, entries.io, 0] AS sort_key,
        (menu->>'id')::bigint AS menu_id, menu->>'name' AS menu_name,
        (category->>'id')::bigint AS category_id, category->>'name' AS category_name,
        entries.item_id::bigint AS item_id, it->>'name' AS item_name,
        it->>'description' AS item_description, (it->>'price')::bigint AS price, doc_currency,
        {_PUBLISHED_GROUPS} AS modifier_groups,
        it->'dietary_tags' AS dietary_tags,
        s.sold_out_items @> jsonb_build_array(entries.item_id::bigint) AS sold_out
    FROM {_table(StorefrontMenuState)} s
    JOIN {_table(MenuVersion)} v
        ON v.id = s.live_version_id AND v.restaurant_id = %(restaurant_id)s
    CROSS JOIN LATERAL (SELECT coalesce(v.document->'restaurant'->>'currency', %(currency)s)
        AS doc_currency) AS money
    CROSS JOIN LATERAL jsonb_array_elements(v.document->'menus')
        WITH ORDINALITY AS menus(menu, mo)
    CROSS JOIN LATERAL jsonb_array_elements(menu->'categories')
        WITH ORDINALITY AS categories(category, co)
    CROSS JOIN LATERAL jsonb_array_elements_text(category->'items')
        WITH ORDINALITY AS entries(item_id, io)
    CROSS JOIN LATERAL (SELECT v.document->'items'->entries.item_id AS it) AS items
    WHERE s.restaurant_id = %(restaurant_id)s
"""

_DRAFT_GROUPS = (
    "(SELECT string_agg("
    + _group_summary(
        "g.name",
        "g.min_selections",
        "g.max_selections",
        "(SELECT string_agg("
        + _choice("md.name", "md.price_delta", "%(currency)s")
        + f", ', ' ORDER BY md.position, md.id) FROM {_table(Modifier)} md "
        "WHERE md.group_id = g.id AND md.restaurant_id = %(restaurant_id)s)",
    )
    + f", '; ' ORDER BY link.position, link.id) FROM {_table(ItemModifierGroup)} link "
    f"JOIN {_table(ModifierGroup)} g ON g.id = link.group_id "
    "AND g.restaurant_id = %(restaurant_id)s "
    "WHERE link.item_id = i.id AND link.restaurant_id = %(restaurant_id)s)"
)

_DRAFT = f"""
    SELECT ci.restaurant_id, 1 AS version_sort, 'draft' AS version,
        NULL::bigint AS version_number, NULL::timestamptz AS published_at,
        ARRAY[m.position, m.id, c.position, c.id, ci.position, ci.id]::bigint[] AS sort_key,
        m.id AS menu_id, m.name AS menu_name, c.id AS category_id, c.name AS category_name,
        i.id AS item_id, i.name AS item_name, i.description AS item_description,
        i.price::bigint AS price, %(currency)s AS doc_currency,
        {_DRAFT_GROUPS} AS modifier_groups,
        i.dietary_tags AS dietary_tags, i.sold_out AS sold_out
    FROM {_table(CategoryItem)} ci
    JOIN {_table(Category)} c ON c.id = ci.category_id AND c.restaurant_id = %(restaurant_id)s
    JOIN {_table(Menu)} m ON m.id = c.menu_id AND m.restaurant_id = %(restaurant_id)s
    JOIN {_table(Item)} i ON i.id = ci.item_id AND i.restaurant_id = %(restaurant_id)s
    WHERE ci.restaurant_id = %(restaurant_id)s
"""

MENUS = register(
    ExportType(
        name="menus",
        reads=(Scope.MENUS_READ,),
        label="Menus",
        description=(
            "One row per item in each category: first the published version diners see "
            "(version = published), then the draft being edited (version = draft)."
        ),
        columns=(
            Column("version", "x.version", "published (what diners see) or draft"),
            Column("version_number", "x.version_number", "The published version's number."),
            Column("published_at", timestamp("x.published_at")),
            Column("menu_id", "x.menu_id"),
            Column("menu_name", text("x.menu_name")),
            Column("category_id", "x.category_id"),
            Column("category_name", text("x.category_name")),
            Column("item_id", "x.item_id"),
            Column("item_name", text("x.item_name")),
            Column("item_description", text("x.item_description")),
            Column("price", money("x.price", "x.doc_currency")),
            Column("currency", "x.doc_currency"),
            Column(
                "modifier_groups",
                text("x.modifier_groups"),
                "Group [min-max]: choice +price change, ...; next group",
            ),
            Column("dietary_tags", text(text_list("x.dietary_tags"))),
            Column("sold_out", boolean("x.sold_out")),
        ),
        source=f"FROM ({_PUBLISHED} UNION ALL {_DRAFT}) AS x",
        tenant_column="x.restaurant_id",
        order_by="x.version_sort, x.sort_key",
    )
)

PROMOTIONS = register(
    ExportType(
        name="promotions",
        reads=(Scope.PROMOTIONS_READ,),
        label="Promotions",
        description="One row per promotion code, with its rules and how often it was used.",
        columns=(
            Column("id", "pr.id"),
            Column("code", text("pr.code")),
            Column("description", text("pr.description")),
            Column("kind", "pr.kind", "percent or fixed"),
            Column("percent_off", "CASE WHEN pr.kind = 'percent' THEN pr.value END"),
            Column("amount_off", money("CASE WHEN pr.kind = 'fixed' THEN pr.value END")),
            Column("min_subtotal", money("pr.min_subtotal")),
            Column("currency", "%(currency)s"),
            Column("starts_at", timestamp("pr.starts_at")),
            Column("ends_at", timestamp("pr.ends_at")),
            Column("max_redemptions", "pr.max_redemptions"),
            Column("per_customer_limit", "pr.per_customer_limit"),
            Column("first_order_only", boolean("pr.first_order_only")),
            Column("active", boolean("pr.active")),
            Column("redemption_count", "pr.redemption_count"),
            Column("created_at", timestamp("pr.created_at")),
            Column("updated_at", timestamp("pr.updated_at")),
        ),
        source=f"FROM {_table(Promotion)} pr",
        tenant_column="pr.restaurant_id",
        order_by="pr.created_at, pr.id",
        date_column="pr.created_at",
    )
)

REDEMPTIONS = register(
    ExportType(
        name="redemptions",
        reads=(Scope.PROMOTIONS_READ, Scope.ORDERS_READ, Scope.CUSTOMERS_READ),
        label="Redemptions",
        description="One row per use of a promotion code on an order.",
        columns=(
            Column("id", "r.id"),
            Column("created_at", timestamp("r.created_at")),
            Column("promotion_id", "r.promotion_id"),
            Column("code", text("pr.code")),
            Column("order_id", "r.order_id"),
            Column("order_number", "o.number"),
            Column("order_status", "o.status"),
            Column("order_total", money("o.total", "o.currency")),
            Column("customer_id", "r.customer_id"),
            Column("customer_email", text("c.email")),
            Column("discount", money("r.discount", "o.currency")),
            Column("currency", "o.currency"),
            Column("counted", boolean("r.counted"), "false once the order was cancelled."),
        ),
        source=(
            f"FROM {_table(Redemption)} r "
            f"JOIN {_table(Promotion)} pr "
            "ON pr.id = r.promotion_id AND pr.restaurant_id = %(restaurant_id)s "
            f"JOIN {_table(Order)} o ON o.id = r.order_id AND o.restaurant_id = %(restaurant_id)s "
            f"JOIN {_table(Customer)} c "
            "ON c.id = r.customer_id AND c.restaurant_id = %(restaurant_id)s"
        ),
        tenant_column="r.restaurant_id",
        order_by="r.created_at, r.id",
        date_column="r.created_at",
    )
)
