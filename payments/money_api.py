"""API for money after the sale: an order's refunds (Owner, Admin, Manager), the connected
account's balance and instant payouts (Owner), and disputes with the order's evidence
(Owner, Admin). Amounts are integer minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import models
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from nordkestrel.errors import InvalidInput
from nordkestrel.serializers import AsSent, StrictSerializer
from orders.models import Order
from payments.evidence import Evidence, dispute_evidence, evidence_text
from payments.models import Dispute, Payment, Payout, Refund
from payments.money_common import operation, payment_of
from payments.payouts import payout_instant, payouts_overview
from payments.refunds import REASON_MAX, refund_create, refund_remaining, refunds_of
from staff.api_base import TenantAPIView
from staff.roles import Scope


class RefundInputSerializer(StrictSerializer):
    """What a refund request may carry; the service checks the values."""

    amount = AsSent()
    reason = AsSent()


class PayoutInputSerializer(StrictSerializer):
    """What a payout request may carry; the service checks the amount."""

    amount = AsSent()


class RefundSerializer(serializers.ModelSerializer):
    currency = serializers.CharField(source="payment.currency", read_only=True)
    staff = serializers.CharField(source="staff_label", read_only=True)

    class Meta:
        model = Refund
        fields = [
            "id", "amount", "currency", "reason", "status", "failure_message",
            "refund_application_fee", "refund_id", "staff", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class RefundRequestSerializer(serializers.Serializer):
    amount = serializers.IntegerField(help_text="Minor units; at most what remains.")
    reason = serializers.CharField(max_length=REASON_MAX)


def _payment_body(payment: Payment | None) -> dict[str, Any] | None:
    if payment is None:
        return None
    return {
        "status": payment.status,
        "currency": payment.currency,
        "amount": payment.amount,
        "amount_refunded": payment.amount_refunded,
        "remaining": refund_remaining(payment),
    }


PAYMENT_SCHEMA = inline_serializer(
    "RefundablePayment",
    {
        "status": serializers.CharField(),
        "currency": serializers.CharField(),
        "amount": serializers.IntegerField(),
        "amount_refunded": serializers.IntegerField(),
        "remaining": serializers.IntegerField(),
    },
    allow_null=True,
)


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="Your id for this operation (8-64 letters, digits, - or _). Sending the "
    "request again with the same key repeats nothing and answers 200 with what it made.",
)


def _operation(request: Request) -> str:
    value = request.headers.get("Idempotency-Key")
    if not value:
        raise InvalidInput(
            "Send an Idempotency-Key header, so that a retry cannot do this twice.",
            attr="idempotency_key",
        )
    return operation(value)


REFUND_MADE = inline_serializer(
    "RefundCreated",
    {
        "refund": RefundSerializer(),
        "order_status": serializers.CharField(),
        "payment": PAYMENT_SCHEMA,
    },
)


class OrderRefundsView(TenantAPIView):
    """An order's card payment and its refunds; ``POST {"amount", "reason"}`` with an
    ``Idempotency-Key`` refunds all or part of what remains (audited). Stripe's refusal
    answers 502 with its message; no answer from Stripe answers 502 ``refund_unconfirmed``
    and keeps the refund pending: the same key asks again and never refunds twice.

    Not one transaction: the refund is reserved and committed before Stripe is asked (see
    ``payments.refunds``), so each step here enters the tenant itself."""

    model = Order
    scopes = {"get": Scope.PAYMENTS_REFUND, "post": Scope.PAYMENTS_REFUND}
    atomic_request = False

    def _body(self, order: Order) -> dict[str, Any]:
        order.refresh_from_db(fields=["status"])
        return {
            "order": order.pk,
            "order_status": order.status,
            "payment": _payment_body(payment_of(order)),
            "refunds": RefundSerializer(refunds_of(order), many=True).data,
        }

    @extend_schema(
        operation_id="order_refunds_list",
        responses=inline_serializer(
            "OrderRefunds",
            {
                "order": serializers.IntegerField(),
                "order_status": serializers.CharField(),
                "payment": PAYMENT_SCHEMA,
                "refunds": RefundSerializer(many=True),
            },
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        with self.tenant():
            return Response(self._body(self.get_object()))

    @extend_schema(
        operation_id="order_refunds_create",
        request=RefundRequestSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: REFUND_MADE, 200: REFUND_MADE},
    )
    def post(self, request: Request, pk: int) -> Response:
        with self.tenant():
            order = self.get_object()
        data = self.parse(RefundInputSerializer)
        if "amount" not in data:
            raise InvalidInput("Give the amount to refund.", attr="amount")
        refund, replayed = refund_create(
            actor=self.actor,
            order_id=order.pk,
            amount=data["amount"],
            reason=data.get("reason"),
            operation_id=_operation(request),
        )
        with self.tenant():
            body = self._body(order)
            made = RefundSerializer(refund).data
        return Response(
            {"refund": made, "order_status": body["order_status"], "payment": body["payment"]},
            status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED,
        )


# --- Payouts ---------------------------------------------------------------------------------


class FundsSerializer(serializers.Serializer):
    currency = serializers.CharField()
    available = serializers.IntegerField()
    pending = serializers.IntegerField()
    instant_available = serializers.IntegerField()


class PayoutInfoSerializer(serializers.Serializer):
    id = serializers.CharField(source="payout_id")
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    method = serializers.CharField()
    status = serializers.CharField()
    arrival_date = serializers.DateTimeField(allow_null=True)
    created = serializers.DateTimeField(allow_null=True)
    failure_message = serializers.CharField(allow_blank=True)


class PayoutOverviewSerializer(serializers.Serializer):
    connected = serializers.BooleanField(help_text="False while no Stripe account is connected.")
    account_id = serializers.CharField()
    payouts_enabled = serializers.BooleanField()
    balance = FundsSerializer(source="funds", many=True)
    payouts = PayoutInfoSerializer(many=True)


class PayoutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payout
        fields = [
            "id", "payout_id", "amount", "currency", "method", "status", "arrival_date",
            "failure_message", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class PayoutRequestSerializer(serializers.Serializer):
    amount = serializers.IntegerField(help_text="Minor units; at most the instant balance.")


class PayoutsView(TenantAPIView):
    """The connected account's balance and recent payouts (from Stripe), and an instant
    payout (``POST {"amount"}`` with an ``Idempotency-Key``: the same key again pays out
    nothing more and answers 200 with the payout)."""

    model = Payout
    scopes = {"get": Scope.PAYOUTS_READ, "post": Scope.PAYOUTS_TRIGGER}

    @extend_schema(operation_id="payouts_overview", responses=PayoutOverviewSerializer)
    def get(self, request: Request) -> Response:
        overview = payouts_overview(actor=self.actor)
        return Response(PayoutOverviewSerializer(overview).data)

    @extend_schema(
        operation_id="payouts_instant",
        request=PayoutRequestSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: PayoutSerializer, 201: PayoutSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.parse(PayoutInputSerializer)
        if "amount" not in data:
            raise InvalidInput("Give the amount to pay out.", attr="amount")
        payout, replayed = payout_instant(
            actor=self.actor, amount=data["amount"], operation_id=_operation(request)
        )
        return Response(
            PayoutSerializer(payout).data,
            status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED,
        )


# --- Disputes --------------------------------------------------------------------------------


class DisputeSerializer(serializers.ModelSerializer):
    order = serializers.IntegerField(source="payment.order_id", read_only=True)
    order_number = serializers.IntegerField(source="payment.order.number", read_only=True)
    open = serializers.SerializerMethodField()

    class Meta:
        model = Dispute
        fields = [
            "id", "dispute_id", "order", "order_number", "amount", "currency", "reason",
            "status", "open", "evidence_due_by", "opened_at", "closed_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_open(self, dispute: Dispute) -> bool:
        return dispute.closed_at is None


def _local(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return moment.astimezone(zone).isoformat() if moment is not None else None


def evidence_body(evidence: Evidence) -> dict[str, Any]:
    zone = evidence.zone
    return {
        "timezone": zone.key,
        "order": {
            "id": evidence.order_id,
            "number": evidence.order_number,
            "status": evidence.status,
            "fulfilment": evidence.fulfilment,
            "delivery_address": evidence.delivery_address,
            **{name: _local(moment, zone) for name, moment in evidence.times.items()},
        },
        "amounts": {
            "currency": evidence.currency,
            "subtotal": evidence.subtotal,
            "discount": evidence.discount,
            "tax": evidence.tax,
            "delivery_fee": evidence.delivery_fee,
            "tip": evidence.tip,
            "total": evidence.total,
            "refunded": evidence.amount_refunded,
        },
        "payment": {
            "payment_intent_id": evidence.payment_intent_id,
            "charge_id": evidence.charge_id,
        },
        "lines": [
            {
                "quantity": line.quantity,
                "name": line.name,
                "options": line.options,
                "note": line.note,
                "unit_price": line.unit_price,
                "line_total": line.line_total,
            }
            for line in evidence.lines
        ],
        "history": [
            {
                "from": step.from_status or None,
                "to": step.to_status,
                "at": _local(step.at, zone),
                "actor_label": step.actor_label,
            }
            for step in evidence.history
        ],
        "customer": {
            "name": evidence.customer_name,
            "email": evidence.customer_email,
            "order_count": evidence.customer_order_count,
            "first_order_at": _local(evidence.customer_first_order_at, zone),
        },
    }


class DisputeListView(TenantAPIView):
    """Card disputes (chargebacks) as Stripe reported them, newest first."""

    model = Dispute
    scopes = {"get": Scope.PAYMENTS_DISPUTES}

    def scope_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        return queryset.select_related("payment__order")

    @extend_schema(operation_id="disputes_list", responses=DisputeSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.paginated(self.get_queryset(), DisputeSerializer)


class DisputeDetailView(TenantAPIView):
    """One dispute with the order's evidence, as data and as plain text to paste into
    Stripe's response form."""

    model = Dispute
    scopes = {"get": Scope.PAYMENTS_DISPUTES}

    def scope_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        return queryset.select_related("payment__order")

    @extend_schema(
        operation_id="dispute_detail",
        responses=inline_serializer(
            "DisputeWithEvidence",
            {
                "dispute": DisputeSerializer(),
                "evidence": serializers.DictField(),
                "summary": serializers.CharField(),
            },
        ),
    )
    def get(self, request: Request, pk: int) -> Response:
        dispute = self.get_object()
        evidence = dispute_evidence(dispute)
        return Response(
            {
                "dispute": DisputeSerializer(dispute).data,
                "evidence": evidence_body(evidence),
                "summary": evidence_text(evidence, dispute),
            }
        )
