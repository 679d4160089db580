"""API for the restaurant's Stripe account: its status (Owner and Admin), connecting it and
onboarding links (Owner). Refunds, payouts and disputes live in ``payments/money_api.py``."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from nordkestrel.serializers import NoInput, StrictSerializer
from payments import onboarding
from staff.api_base import TenantAPIView
from staff.roles import Scope


class AccountStatusSerializer(serializers.Serializer):
    configured = serializers.BooleanField(help_text="Whether card payments are set up here.")
    connected = serializers.BooleanField()
    disconnected = serializers.BooleanField()
    account_id = serializers.CharField(allow_blank=True)
    details_submitted = serializers.BooleanField()
    charges_enabled = serializers.BooleanField()
    payouts_enabled = serializers.BooleanField()
    requirements_due = serializers.ListField(child=serializers.CharField())
    disabled_reason = serializers.CharField(allow_blank=True)
    connected_at = serializers.DateTimeField(allow_null=True)
    platform_fee_percent = serializers.DecimalField(max_digits=6, decimal_places=2)
    platform_fee_fixed = serializers.IntegerField(help_text="Minor units of the currency.")


class OnboardingLinkSerializer(StrictSerializer):
    """Both URLs are optional; omitted, Stripe sends the Owner to the dashboard's pages."""

    refresh_url = serializers.CharField(max_length=onboarding.MAX_URL_LENGTH, required=False)
    return_url = serializers.CharField(max_length=onboarding.MAX_URL_LENGTH, required=False)

    def _own(self, value: str) -> str:
        if not onboarding.is_own_url(value, hosts=self.context["hosts"]):
            raise serializers.ValidationError(
                "Use an https URL on this app's own origin.", code="invalid_url"
            )
        return value

    def validate_refresh_url(self, value: str) -> str:
        return self._own(value)

    def validate_return_url(self, value: str) -> str:
        return self._own(value)


def _status_body() -> dict[str, Any]:
    return dict(AccountStatusSerializer(onboarding.account_status()).data)


class PaymentAccountView(TenantAPIView):
    """The connected account's status, and connecting one (once per restaurant)."""

    scopes = {"get": Scope.RESTAURANT_WRITE, "post": Scope.PAYMENTS_CONNECT}

    @extend_schema(operation_id="payments_account_status", responses=AccountStatusSerializer)
    def get(self, request: Request) -> Response:
        return Response(_status_body())

    @extend_schema(
        operation_id="payments_account_connect",
        request=None,
        responses={201: AccountStatusSerializer, 200: AccountStatusSerializer},
    )
    def post(self, request: Request) -> Response:
        self.parse(NoInput)
        _, created = onboarding.account_connect(actor=self.actor)
        return Response(
            _status_body(), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class OnboardingLinkView(TenantAPIView):
    """A fresh Account Link to continue onboarding at Stripe."""

    scopes = {"post": Scope.PAYMENTS_CONNECT}

    @extend_schema(
        operation_id="payments_onboarding_link",
        request=OnboardingLinkSerializer,
        responses=inline_serializer("OnboardingLinkUrl", {"url": serializers.URLField()}),
    )
    def post(self, request: Request) -> Response:
        urls = self.parse(OnboardingLinkSerializer, hosts=onboarding.own_hosts(request.get_host()))
        url = onboarding.account_onboarding_link(
            actor=self.actor,
            refresh_url=urls.get("refresh_url")
            or request.build_absolute_uri(reverse("dashboard:payments-refresh")),
            return_url=urls.get("return_url")
            or request.build_absolute_uri(reverse("dashboard:payments-return")),
        )
        return Response({"url": url})
