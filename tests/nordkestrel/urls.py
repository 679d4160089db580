"""The real URLs plus a few views that raise each kind of error, for the error-shape tests."""

import time

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from nordkestrel.ratelimit import OnOutage, rate_limit
from nordkestrel.urls import urlpatterns as real_urlpatterns


class BearerChallenge(BaseAuthentication):
    """Authenticates nobody, but asks for a bearer token (so DRF answers 401, not 403)."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ItemSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=20)
    price = serializers.IntegerField(min_value=0)


class BasketSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=5)
    items = ItemSerializer(many=True)

    def validate(self, attrs):
        if attrs["note"] == "never":
            raise serializers.ValidationError("Not on a Sunday.")
        return attrs


class ValidatingView(APIView):
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = ItemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class ValidatingBasketView(APIView):
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = BasketSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class NeedsAuthView(APIView):
    authentication_classes = [BearerChallenge]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({})


class ForbiddenView(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise exceptions.PermissionDenied()


class BrokenApiView(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internal detail")


def broken_plain_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret internal detail")


@rate_limit(key="ip", rate="2/m", method="POST", on_outage=OnOutage.REFUSE)
def limited_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def _query(request: HttpRequest) -> None:
    """One statement, made slow or blocked on demand (``?slow``, ``?locked``), in a
    transaction; ``?idle`` leaves the transaction idle past its timeout before the commit."""
    with transaction.atomic(), connection.cursor() as cursor:
        if "slow" in request.GET:
            cursor.execute("SET LOCAL statement_timeout = '100ms'")
            cursor.execute("SELECT pg_sleep(5)")
        elif "locked" in request.GET:
            cursor.execute("SET LOCAL lock_timeout = '100ms'")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        elif "idle" in request.GET:
            cursor.execute("SET LOCAL idle_in_transaction_session_timeout = '100ms'")
            cursor.execute("SELECT 1")
            time.sleep(0.5)
        else:
            cursor.execute("SELECT 1")


LOCK_KEY = 7_7070_7070


class QueryApiView(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        _query(request._request)
        return Response({"ok": True})


def query_page(request: HttpRequest) -> HttpResponse:
    _query(request)
    return HttpResponse("ok")


NONCE_PAGE = engines["django"].from_string(
    '{% extends "base.html" %}{% block content %}'
    '<script nonce="{{ csp_nonce }}">document.title = "nonce";</script>{% endblock %}'
)


def nonce_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(NONCE_PAGE.render({}, request))


urlpatterns = [
    *real_urlpatterns,
    path("api/v1/test/validate", ValidatingView.as_view()),
    path("api/v1/test/validate-basket", ValidatingBasketView.as_view()),
    path("api/v1/test/needs-auth", NeedsAuthView.as_view()),
    path("api/v1/test/forbidden", ForbiddenView.as_view()),
    path("api/v1/test/broken", BrokenApiView.as_view()),
    path("api/v1/test/broken-plain", broken_plain_view),
    path("api/v1/test/limited", limited_view),
    path("test/limited", limited_view),
    path("test/nonce", nonce_page),
    path("api/v1/test/query", QueryApiView.as_view()),
    path("test/query", query_page),
]

handler400 = "nordkestrel.views.bad_request"
handler403 = "nordkestrel.views.permission_denied"
handler404 = "nordkestrel.views.page_not_found"
handler500 = "nordkestrel.views.server_error"
