"""The storefront API: checkout options, quotes, checkout and an order's public status.

Public by design: the Host header picks the restaurant (``<slug>.<STOREFRONT_DOMAIN>``), and
an order is addressed only by its unguessable public id. Every view runs inside the
restaurant's tenant context. Rate limits apply to the write paths only.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef
from django.db.models.functions import JSONObject
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from menus.storefront import active_restaurant_with_live_menu
from nordkestrel.errors import ConflictError, DomainError, NotFoundError
from nordkestrel.openapi import ErrorSerializer
from nordkestrel.ratelimit import OnOutage, limit
from nordkestrel.serializers import StrictParsing
from orders.checkout_request import parse_idempotency_key
from orders.models import Order, OrderLine, PaymentMethod, Status
from orders.placement import place_order, quote
from orders.slots import checkout_options
from payments.gateway import GatewayError
from payments.services import CardPayment, payment_start
from storefront.api_schema import (
    CardPaymentSerializer,
    CheckoutOptionsSerializer,
    PublicOrderSerializer,
    QuoteSerializer,
)
from storefront.checkout_input import (
    PARSED,
    CheckoutRequestSerializer,
    QuoteRequest,
    QuoteRequestSerializer,
)
from tenants.context import tenant_context
from tenants.models import Restaurant
from tenants.selectors import active_restaurant_for_host, restaurant_id_for_host

PUBLIC_ORDER_FIELDS = (
    "public_id", "number", "status", "fulfilment", "promised_at", "placed_at", "accepted_at",
    "preparing_at", "ready_at", "completed_at", "cancelled_at", "subtotal", "discount", "tax",
    "delivery_fee", "tip", "total", "currency", "updated_at",
)  # fmt: skip
# The status page polls: the answer may never be stored by a shared cache, and a client
# revalidates with If-None-Match (304, no body).
ORDER_CACHE_CONTROL = "no-store"
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The same key with the same body returns the first order (200).",
)


def _iso(moment: datetime | None, zone: Any) -> str | None:
    return moment.astimezone(zone).isoformat() if moment else None


def _storefront_restaurant(request: Request) -> Restaurant:
    restaurant = active_restaurant_for_host(request.get_host())
    if restaurant is None:
        raise NotFoundError("No restaurant answers on this address.")
    return restaurant


class StorefrontAPIView(StrictParsing, APIView):
    """Public: no credentials are read, so no session or token can change what it answers."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]


# --- Reading the public order ----------------------------------------------------------------


def _public_order(public_id: UUID) -> Order | None:
    """The order with its lines, in one query (scoped to the current restaurant)."""
    lines = ArraySubquery(
        OrderLine.objects.filter(order_id=OuterRef("pk"))
        .order_by("position")
        .values(
            json=JSONObject(
                name="name",
                options="modifiers",
                quantity="quantity",
                unit_price="unit_price",
                line_total="line_total",
            )
        )
    )
    return (
        Order.objects.filter(public_id=public_id)
        .annotate(public_lines=lines)
        .only(*PUBLIC_ORDER_FIELDS)
        .first()
    )


def _fresh_order(order: Order) -> Order:
    """A just-placed order, answered from what checkout wrote (no read-back)."""
    order.public_lines = [  # type: ignore[attr-defined]
        {
            "name": line.name,
            "options": line.modifiers,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "line_total": line.line_total,
        }
        for line in order.created_lines  # type: ignore[attr-defined]
    ]
    return order


def _order_etag(order: Order) -> str:
    digest = hashlib.sha256(f"{order.updated_at.isoformat()}|{order.status}".encode())
    return f'W/"{digest.hexdigest()[:32]}"'


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match compares weakly: ``W/"x"`` and ``"x"`` are the same version."""
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def _order_body(order: Order, zone: Any) -> dict[str, Any]:
    """What a diner may see of an order: never the contact details or the address."""
    return {
        "public_id": str(order.public_id),
        "number": order.number,
        "status": order.status,
        "status_label": Status(order.status).label,
        "fulfilment": order.fulfilment,
        "promised_at": _iso(order.promised_at, zone),
        "placed_at": _iso(order.placed_at, zone),
        "accepted_at": _iso(order.accepted_at, zone),
        "preparing_at": _iso(order.preparing_at, zone),
        "ready_at": _iso(order.ready_at, zone),
        "completed_at": _iso(order.completed_at, zone),
        "cancelled_at": _iso(order.cancelled_at, zone),
        "lines": [
            {
                "name": line["name"],
                "options": [
                    {"group": m["group"], "name": m["name"], "price_delta": m["price_delta"]}
                    for m in line["options"]
                ],
                "quantity": line["quantity"],
                "unit_price": line["unit_price"],
                "line_total": line["line_total"],
            }
            for line in order.public_lines  # type: ignore[attr-defined]
        ],
        "totals": {
            "subtotal": order.subtotal,
            "discount": order.discount,
            "tax": order.tax,
            "delivery_fee": order.delivery_fee,
            "tip": order.tip,
            "total": order.total,
            "currency": order.currency,
        },
        "updated_at": _iso(order.updated_at, zone),
    }


def _order_response(order: Order, zone: Any, status: int) -> Response:
    response = Response(_order_body(order, zone), status=status)
    response["ETag"] = _order_etag(order)
    response["Cache-Control"] = ORDER_CACHE_CONTROL
    return response


def _has_code(data: Any) -> bool:
    return isinstance(data, dict) and bool(data.get("promotion_code"))


# --- Views -----------------------------------------------------------------------------------


class OptionsView(StorefrontAPIView):
    """What the checkout form can offer now: times, fulfilment, payment and charges."""

    @extend_schema(
        operation_id="storefront_checkout_options",
        responses={200: CheckoutOptionsSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        restaurant = _storefront_restaurant(request)
        now = timezone.now()
        with tenant_context(restaurant):
            options = checkout_options(restaurant, now=now)
        zone = restaurant.zone
        return Response(
            {
                "open_now": options.open_now,
                "next_opening": _iso(options.next_opening, zone),
                "asap": _iso(options.asap, zone),
                "times": [_iso(t, zone) for t in options.times],
                "fulfilments": options.fulfilments,
                "payment_methods": [
                    {"method": method, "label": label} for method, label in options.payment_methods
                ],
                "delivery_minimum": restaurant.delivery_minimum,
                "delivery_fee": restaurant.delivery_fee,
                "currency": restaurant.currency,
                "prep_time_minutes": restaurant.prep_time_minutes,
            }
        )


class QuoteView(StorefrontAPIView):
    """The cart priced on the server now; ``problems`` lists what changed or cannot be had."""

    @extend_schema(
        operation_id="storefront_quote",
        request=QuoteRequestSerializer,
        responses={200: QuoteSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        restaurant = _storefront_restaurant(request)
        if _has_code(request.data):
            # Guessing codes costs attempts, whether or not the rest of the body is valid.
            limit(
                request,
                group="promotion-redeem",
                rate=settings.PROMOTION_REDEEM_RATE,
                on_outage=OnOutage.ALLOW,
            )
        now = timezone.now()
        body = self.parse(QuoteRequestSerializer, zone=restaurant.zone, now=now)
        asked: QuoteRequest = body[PARSED]
        at = asked.scheduled_for or now + timedelta(minutes=restaurant.prep_time_minutes)
        with tenant_context(restaurant):
            priced = quote(
                restaurant, asked.lines, fulfilment=asked.fulfilment, at=at, tip=asked.tip,
                promotion_code=asked.promotion_code, now=now,
            )  # fmt: skip
        return Response({**priced.as_dict(), "problems": priced.problems})


class CheckoutView(StorefrontAPIView):
    """Place an order. The same ``Idempotency-Key`` with the same body places it once.

    A card order answers ``pending_payment``; ``orders/<public_id>/payment`` then gives what
    Stripe.js needs to take the payment."""

    @extend_schema(
        operation_id="storefront_checkout",
        parameters=[IDEMPOTENCY_HEADER],
        request=CheckoutRequestSerializer,
        responses={
            201: PublicOrderSerializer,
            200: PublicOrderSerializer,
            400: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        # The restaurant and its live menu in one query (the other views read the menu later).
        restaurant_id = restaurant_id_for_host(request.get_host())
        found = active_restaurant_with_live_menu(restaurant_id) if restaurant_id else None
        if found is None:
            raise NotFoundError("No restaurant answers on this address.")
        restaurant, menu = found
        limit(request, group="checkout", rate=settings.CHECKOUT_RATE, on_outage=OnOutage.ALLOW)
        if _has_code(request.data):
            limit(
                request,
                group="promotion-redeem",
                rate=settings.PROMOTION_REDEEM_RATE,
                on_outage=OnOutage.ALLOW,
            )
        checkout = self.parse(CheckoutRequestSerializer, zone=restaurant.zone)[PARSED]
        key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
        # In a transaction of its own: the new order is answered from what it wrote.
        order, created = place_order(
            restaurant=restaurant, request=checkout, idempotency_key=key, now=timezone.now(),
            menu=menu,
        )  # fmt: skip
        placed: Order | None
        if created:
            placed = _fresh_order(order)
        else:
            with tenant_context(restaurant):
                placed = _public_order(order.public_id)
        if placed is None:  # cannot happen: written or found in this restaurant just now
            raise NotFoundError("No such order.")
        return _order_response(placed, restaurant.zone, 201 if created else 200)


class OrderView(StorefrontAPIView):
    """An order's public status, polled by the status page: cheap, and 304 when unchanged."""

    @extend_schema(
        operation_id="storefront_order",
        responses={200: PublicOrderSerializer, 304: None, 404: ErrorSerializer},
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        restaurant = _storefront_restaurant(request)
        with tenant_context(restaurant):
            order = _public_order(public_id)
        if order is None:
            # Another restaurant's order answers exactly as a missing one.
            raise NotFoundError("No such order.")
        etag = _order_etag(order)
        if _etag_matches(request.headers.get("If-None-Match", ""), etag):
            response = Response(status=304)
            response["ETag"] = etag
            response["Cache-Control"] = ORDER_CACHE_CONTROL
            return response
        return _order_response(order, restaurant.zone, 200)


class PaymentUnavailable(DomainError):
    status = 503
    code = "payment_unavailable"


class OrderPaymentView(StorefrontAPIView):
    """What a client needs to confirm a card order's payment with Stripe.js (the Payment
    Element): the PaymentIntent's client secret, the publishable key and the connected
    account the charge is made on. The intent is created once per order; asking again
    returns the same one."""

    @extend_schema(
        operation_id="storefront_order_payment",
        request=None,
        responses={200: CardPaymentSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
    )
    def post(self, request: Request, public_id: UUID) -> Response:
        restaurant = _storefront_restaurant(request)
        limit(request, group="checkout", rate=settings.CHECKOUT_RATE, on_outage=OnOutage.ALLOW)
        with tenant_context(restaurant):
            order = Order.objects.filter(
                public_id=public_id, payment_method=PaymentMethod.CARD
            ).first()
            if order is None:
                raise NotFoundError("No such order.")
            if order.status != Status.PENDING_PAYMENT:
                raise ConflictError("This order is not waiting for a payment.", code="not_payable")
            if not (settings.STRIPE_PUBLISHABLE_KEY and CardPayment().offered(restaurant)):
                raise ConflictError(
                    f"{restaurant.name} cannot take card payments right now.",
                    code="cards_unavailable",
                )
            try:
                payment = payment_start(order=order)
            except GatewayError:
                raise PaymentUnavailable(
                    "The card payment provider cannot be reached. Try again."
                ) from None
        response = Response(
            {
                "payment": {
                    "client_secret": payment.client_secret,
                    "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
                    "stripe_account": payment.account_id,
                    "amount": payment.amount,
                    "currency": payment.currency,
                }
            }
        )
        response["Cache-Control"] = "no-store"
        return response
