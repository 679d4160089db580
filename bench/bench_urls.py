"""The project's URLs plus two bench-only views on the application host (bench/order_placement.py).

- ``bench/bare-order``: the baseline. It inserts a customer, an order and one line per cart
  line in one transaction, inside the tenant context (RLS setting), through the ORM, and
  nothing else: no pricing, no validation, no idempotency or rate-limit check.
- ``bench/place-order``: the checkout service (``parse_checkout`` + ``place_order``) behind the
  same bare view, to tell the service's cost from the API view's.

Both take the checkout's JSON body and ``Idempotency-Key``; the restaurant comes from the
``X-Bench-Restaurant`` header (a slug), looked up once per process.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from customers.models import Customer
from nordkestrel import urls as project_urls
from orders.checkout_request import parse_checkout, parse_idempotency_key
from orders.models import Order, OrderLine
from orders.placement import place_order
from tenants.context import tenant_context
from tenants.models import Restaurant

NUMBERS_FROM = 1_000_000_000
_restaurants: dict[str, Restaurant] = {}


def _restaurant(request: HttpRequest) -> Restaurant:
    slug = request.headers.get("X-Bench-Restaurant", "bench-orders-1")
    restaurant = _restaurants.get(slug)
    if restaurant is None:
        restaurant = _restaurants[slug] = Restaurant.objects.get(slug=slug)
    return restaurant


@csrf_exempt
def bare_order(request: HttpRequest) -> HttpResponse:
    body = json.loads(request.body)
    key = request.headers.get("Idempotency-Key", "")
    now = timezone.now()
    with tenant_context(_restaurant(request)):
        customer = Customer.objects.create(email=body["email"], name=body["name"])
        order = Order.objects.create(
            # Unique without an extra query, and far above the checkout's own numbers.
            number=NUMBERS_FROM + customer.pk,
            status="placed",
            fulfilment="pickup",
            payment_method="in_person",
            customer=customer,
            contact_name=body["name"],
            contact_email=body["email"],
            contact_phone="",
            promised_at=now + timedelta(minutes=20),
            slot_start=now,
            currency="EUR",
            subtotal=1000,
            tax_rate=Decimal("14.000"),
            prices_include_tax=True,
            tip=body.get("tip", 0),
            total=1100,
            menu_version=1,
            idempotency_key=key,
            request_fingerprint="",
            placed_at=now,
        )
        OrderLine.objects.bulk_create(
            [
                OrderLine(
                    order=order,
                    position=position,
                    item_id=line["item_id"],
                    name="Item",
                    modifiers=[{"id": m} for m in line.get("modifier_ids", [])],
                    unit_price=500,
                    quantity=line["quantity"],
                    line_total=500 * line["quantity"],
                )
                for position, line in enumerate(body["lines"])
            ]
        )
    return JsonResponse({"number": order.number}, status=201)


@csrf_exempt
def service_order(request: HttpRequest) -> HttpResponse:
    restaurant = _restaurant(request)
    checkout = parse_checkout(json.loads(request.body), restaurant.zone)
    key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
    order, created = place_order(restaurant=restaurant, request=checkout, idempotency_key=key)
    return JsonResponse({"number": order.number}, status=201 if created else 200)


urlpatterns: list[Any] = [
    path("bench/bare-order", bare_order, name="bench-bare-order"),
    path("bench/place-order", service_order, name="bench-place-order"),
    *project_urls.urlpatterns,
]

handler400 = project_urls.handler400
handler403 = project_urls.handler403
handler404 = project_urls.handler404
handler500 = project_urls.handler500
