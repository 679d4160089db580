"""Stripe's webhook endpoints (under ``/webhooks/stripe/``): one per signing secret."""

from django.urls import path

from payments import webhooks

urlpatterns = [
    path("platform", webhooks.platform_webhook, name="stripe-webhook-platform"),
    path("connect", webhooks.connect_webhook, name="stripe-webhook-connect"),
]
