"""The storefront API's answers, as its OpenAPI document declares them.

The views in ``storefront/api.py`` build their answers by hand (the status page is polled,
the quote is priced in one pass); these serializers only describe those shapes, field for
field, for the document and the clients generated from it. A test checks each answer against
them (tests/storefront/test_api.py). What a request may carry is validated by the serializers
of ``storefront/checkout_input.py``.
"""

from __future__ import annotations

from rest_framework import serializers

from orders.models import Fulfilment, PaymentMethod, Status


class PaymentMethodOfferSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=PaymentMethod.choices)
    label = serializers.CharField()  # type: ignore[assignment]  # a body key, not Field.label


class CheckoutOptionsSerializer(serializers.Serializer):
    open_now = serializers.BooleanField()
    next_opening = serializers.DateTimeField(allow_null=True)
    asap = serializers.DateTimeField(allow_null=True, help_text="Null when ASAP is not offered.")
    times = serializers.ListField(child=serializers.DateTimeField())
    fulfilments = serializers.ListField(child=serializers.ChoiceField(choices=Fulfilment.choices))
    payment_methods = PaymentMethodOfferSerializer(many=True)
    delivery_minimum = serializers.IntegerField(help_text="Minor units.")
    delivery_fee = serializers.IntegerField(help_text="Minor units.")
    currency = serializers.CharField()
    prep_time_minutes = serializers.IntegerField()


class PricedOptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    group = serializers.CharField()
    name = serializers.CharField()
    price_delta = serializers.IntegerField()


class QuoteLineSerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    name = serializers.CharField()
    modifiers = PricedOptionSerializer(many=True)
    modifier_ids = serializers.ListField(child=serializers.IntegerField())
    unit_price = serializers.IntegerField()
    quantity = serializers.IntegerField()
    line_total = serializers.IntegerField()
    note = serializers.CharField(allow_blank=True)


class CartProblemSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="The line's index in the request.")
    item_id = serializers.IntegerField()
    code = serializers.CharField(
        help_text="unavailable, sold_out, invalid_quantity, invalid_options, price_changed."
    )
    detail = serializers.CharField()


class QuoteSerializer(serializers.Serializer):
    currency = serializers.CharField()
    menu_version = serializers.IntegerField()
    lines = QuoteLineSerializer(many=True)
    subtotal = serializers.IntegerField()
    discount = serializers.IntegerField()
    promotion_code = serializers.CharField(allow_blank=True)
    tax = serializers.IntegerField()
    tax_rate = serializers.DecimalField(max_digits=6, decimal_places=3)
    prices_include_tax = serializers.BooleanField()
    delivery_fee = serializers.IntegerField()
    tip = serializers.IntegerField()
    total = serializers.IntegerField()
    problems = CartProblemSerializer(many=True)


class PublicOptionSerializer(serializers.Serializer):
    group = serializers.CharField()
    name = serializers.CharField()
    price_delta = serializers.IntegerField()


class PublicLineSerializer(serializers.Serializer):
    name = serializers.CharField()
    options = PublicOptionSerializer(many=True)
    quantity = serializers.IntegerField()
    unit_price = serializers.IntegerField()
    line_total = serializers.IntegerField()


class PublicTotalsSerializer(serializers.Serializer):
    subtotal = serializers.IntegerField()
    discount = serializers.IntegerField()
    tax = serializers.IntegerField()
    delivery_fee = serializers.IntegerField()
    tip = serializers.IntegerField()
    total = serializers.IntegerField()
    currency = serializers.CharField()


class PublicOrderSerializer(serializers.Serializer):
    """What a diner may see of an order: never the contact details or the address."""

    public_id = serializers.UUIDField()
    number = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Status.choices)
    status_label = serializers.CharField()
    fulfilment = serializers.ChoiceField(choices=Fulfilment.choices)
    promised_at = serializers.DateTimeField(allow_null=True)
    placed_at = serializers.DateTimeField(allow_null=True)
    accepted_at = serializers.DateTimeField(allow_null=True)
    preparing_at = serializers.DateTimeField(allow_null=True)
    ready_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    lines = PublicLineSerializer(many=True)
    totals = PublicTotalsSerializer()
    updated_at = serializers.DateTimeField()


class CardPaymentDetailsSerializer(serializers.Serializer):
    client_secret = serializers.CharField()
    publishable_key = serializers.CharField()
    stripe_account = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()


class CardPaymentSerializer(serializers.Serializer):
    payment = CardPaymentDetailsSerializer()
