"""One object of each addressable kind, made in a given restaurant, for the matrices."""

from __future__ import annotations

import uuid

from django.forms.models import model_to_dict
from django.utils import timezone

from customers.models import Customer
from menus.models import Category, CategoryItem, Item, Menu, MenuVersion, Modifier, ModifierGroup
from promotions.models import Promotion
from staff.roles import SCOPES, Role
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_staff


def make_object(kind, restaurant):
    if kind == "staff":
        return make_staff(restaurant, Role.KITCHEN)
    with tenant_context(restaurant):
        if kind == "menu":
            return Menu.objects.create(name=f"{restaurant.slug} secret menu")
        if kind == "category":
            menu = Menu.objects.create(name=f"{restaurant.slug} menu")
            return Category.objects.create(menu=menu, name=f"{restaurant.slug} secret category")
        if kind == "item":
            menu = Menu.objects.create(name=f"{restaurant.slug} menu")
            category = Category.objects.create(menu=menu, name="c")
            item = Item.objects.create(name=f"{restaurant.slug} secret item", price=100)
            CategoryItem.objects.create(category=category, item=item)
            return item
        if kind == "group":
            return ModifierGroup.objects.create(name=f"{restaurant.slug} secret group")
        if kind == "modifier":
            group = ModifierGroup.objects.create(name="g")
            return Modifier.objects.create(group=group, name=f"{restaurant.slug} secret modifier")
        if kind == "order":
            return _placed_order(restaurant)
        if kind == "customer":
            return Customer.objects.create(
                email=f"secret-{uuid.uuid4().hex[:8]}@{restaurant.slug}.example.com",
                name=f"{restaurant.slug} secret customer", order_count=1, total_spent=1200,
                last_order_at=timezone.now(),
            )  # fmt: skip
        if kind == "promotion":
            return Promotion.objects.create(
                code=f"{restaurant.slug}-secret-{uuid.uuid4().hex[:6]}", kind="percent", value=10
            )
        if kind == "dispute":
            return _dispute(restaurant)
        if kind == "export":
            from datetime import timedelta

            from exports.models import Export

            return Export.objects.create(
                export_type="customers", requested_by_label=f"{restaurant.slug} secret exporter",
                expires_at=timezone.now() + timedelta(days=7),
            )  # fmt: skip
        if kind == "api_key":
            from datetime import timedelta

            from apikeys import tokens
            from apikeys.models import ApiKey
            from staff.models import StaffMember

            owner = StaffMember.objects.filter(role=Role.OWNER).first() or make_staff(restaurant)
            secret = tokens.generate()
            return ApiKey.objects.create(
                name=f"{restaurant.slug} secret key {uuid.uuid4().hex[:6]}",
                secret_hash=tokens.digest(secret), last4=secret[-4:], grants={"orders": "read"},
                created_by=owner, expires_at=timezone.now() + timedelta(days=30),
            )  # fmt: skip
        if kind == "webhook_endpoint":
            return _webhook_endpoint(restaurant)
        if kind == "webhook_delivery":
            return _webhook_delivery(restaurant)
        if kind == "event":
            from events.models import Event

            return Event.objects.create(
                type="item.sold_out_changed", version=1, occurred_at=timezone.now(),
                payload={"kind": "item", "id": 1, "name": f"{restaurant.slug} secret sold out",
                         "sold_out": True, "changed_at": timezone.now().isoformat()},
            )  # fmt: skip
        if kind == "version":
            return MenuVersion.objects.create(
                number=1, document={"menus": [], "items": {}, "modifier_groups": {}},
                content_hash="0" * 64, published_at=timezone.now(),
            )  # fmt: skip
    raise AssertionError(kind)


def _placed_order(restaurant):
    """A placed pickup order with one line, its diner's contact data the secret."""
    from customers.models import Customer
    from orders.models import Order, OrderLine, StatusChange

    email = f"secret-diner@{restaurant.slug}.example.com"
    customer, _ = Customer.objects.get_or_create(email=email, defaults={"name": "Diner"})
    now = timezone.now()
    order = Order.objects.create(
        number=Order.objects.count() + 1, status="placed", fulfilment="pickup",
        payment_method="in_person", customer=customer, contact_name="Secret Diner",
        contact_email=email, contact_phone="+358 40 555", promised_at=now, slot_start=now,
        currency=restaurant.currency, subtotal=1200, tax_rate=restaurant.tax_rate,
        prices_include_tax=restaurant.prices_include_tax, total=1200, menu_version=1,
        idempotency_key=f"matrix-{uuid.uuid4()}", request_fingerprint="0" * 64, placed_at=now,
    )  # fmt: skip
    OrderLine.objects.create(
        order=order, position=0, item_id=1, name=f"{restaurant.slug} secret burger",
        unit_price=1200, quantity=1, line_total=1200,
    )  # fmt: skip
    StatusChange.objects.create(order=order, to_status="placed", actor_label="diner", at=now)
    return order


def _dispute(restaurant):
    """A disputed card payment of a placed order."""
    from payments.models import Dispute, Payment

    order = _placed_order(restaurant)
    order.payment_method = "card"
    order.save(update_fields=["payment_method"])
    tag = uuid.uuid4().hex[:8]
    payment = Payment.objects.create(
        order=order, account_id=f"acct_{restaurant.slug}", payment_intent_id=f"pi_{tag}",
        client_secret=f"pi_{tag}_secret", charge_id=f"ch_{tag}", status="succeeded",
        amount=order.total, currency=order.currency, application_fee_amount=24,
    )  # fmt: skip
    return Dispute.objects.create(
        payment=payment, dispute_id=f"dp_{restaurant.slug}_secret_{tag}", amount=order.total,
        currency=order.currency, reason="fraudulent", status="needs_response",
        opened_at=timezone.now(),
    )  # fmt: skip


def _webhook_endpoint(restaurant):
    """An enabled endpoint of the restaurant's, its URL the secret (and its signing secret
    never shown after it was made)."""
    from webhooks import messages
    from webhooks.models import Endpoint

    return Endpoint.objects.create(
        url=f"https://{restaurant.slug}-secret-hooks.example.com/{uuid.uuid4().hex[:8]}",
        description=f"{restaurant.slug} secret receiver", secret=messages.new_secret(),
        scopes=sorted(str(scope) for scope in SCOPES[Role.OWNER]),
    )  # fmt: skip


def _webhook_delivery(restaurant):
    """A failed delivery (a test message) to a fresh endpoint, with one attempt logged: what
    the delivery log shows and what may be sent again."""
    from webhooks import messages
    from webhooks.models import Attempt, Delivery

    endpoint = _webhook_endpoint(restaurant)
    now = timezone.now()
    delivery = Delivery.objects.create(
        endpoint=endpoint, event_type=messages.TEST_EVENT_TYPE,
        message_id=f"msg_{restaurant.slug}_secret_{uuid.uuid4().hex[:8]}",
        test_payload=messages.test_payload(restaurant.pk), status=Delivery.Status.FAILED,
        attempts=1, last_attempt_at=now, last_status_code=500,
    )  # fmt: skip
    Attempt.objects.create(
        delivery=delivery, endpoint=endpoint, attempted_at=now, status_code=500,
        duration_ms=12, response_body=f"{restaurant.slug} secret answer",
    )  # fmt: skip
    return delivery


def secret_of(obj):
    """A string that must never appear in another restaurant's answers."""
    return (
        getattr(obj, "email", None)
        or getattr(obj, "contact_email", None)
        or getattr(obj, "name", None)
        or getattr(obj, "code", None)
        or getattr(obj, "dispute_id", None)
        or getattr(obj, "requested_by_label", None)
        or getattr(obj, "message_id", None)
        or getattr(obj, "url", None)
        or (obj.payload["name"] if hasattr(obj, "payload") else None)
        or obj.content_hash
    )


def snapshot(obj):
    with tenant_context(Restaurant.objects.get(pk=obj.restaurant_id)):
        fresh = type(obj).unscoped.filter(pk=obj.pk).first()
        return model_to_dict(fresh) if fresh else None
