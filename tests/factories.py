"""Test data that keeps related objects in one restaurant."""

from __future__ import annotations

import itertools

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.test import Client

from nordkestrel.devkeys import development_private_key_pem, key_id
from staff.clerk import sign_session_token
from staff.dev import mint_token
from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_context
from tenants.models import Restaurant

_counter = itertools.count(1)


def make_restaurant(slug: str | None = None, **fields) -> Restaurant:
    n = next(_counter)
    slug = slug or f"restaurant-{n}"
    return Restaurant.objects.create(
        name=fields.pop("name", slug.replace("-", " ").title()),
        slug=slug,
        clerk_organization_id=fields.pop("clerk_organization_id", f"org_{slug}"),
        **fields,
    )


def make_staff(restaurant: Restaurant, role: str = Role.OWNER, **fields) -> StaffMember:
    n = next(_counter)
    with tenant_context(restaurant):
        return StaffMember.objects.create(
            clerk_user_id=fields.pop("clerk_user_id", f"user_{restaurant.slug}_{role}_{n}"),
            email=fields.pop("email", f"{role}{n}@{restaurant.slug}.example.com"),
            name=fields.pop("name", f"{Role(role).label} {n}"),
            role=role,
            **fields,
        )


def token_for(member: StaffMember, **claims) -> str:
    assert member.clerk_user_id and member.restaurant.clerk_organization_id
    return mint_token(
        clerk_user_id=member.clerk_user_id,
        organization_id=member.restaurant.clerk_organization_id,
        email=member.email,
        **claims,
    )


def api_client(member: StaffMember | None) -> Client:
    """A client that presents the member's Bearer token (or none, for anonymous)."""
    if member is None:
        return Client(raise_request_exception=False)
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token_for(member)}")


def rsa_key_pair() -> tuple[str, str]:
    """A fresh RSA key pair as (private PKCS8 PEM, public SubjectPublicKeyInfo PEM)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def signed_token(member: StaffMember, *, fva=(0, 0), org_role: str = "member") -> str:
    """A development token for ``member`` with chosen second-factor age and token role."""
    return sign_session_token(
        development_private_key_pem(settings.DATA_DIR),
        kid=key_id(settings.DATA_DIR),
        issuer=settings.CLERK_ISSUER,
        azp=settings.CLERK_AUTHORIZED_PARTIES[0],
        user_id=member.clerk_user_id or "",
        org_id=member.restaurant.clerk_organization_id,
        org_role=org_role,
        fva=fva,
    )


def run_concurrently(*calls):
    """Run each callable in its own thread (own database connection); return, in order, what
    each returned or raised."""
    import threading

    from django.db import connection

    results: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            results[index] = call()
        except Exception as error:  # handed back to the test to assert on
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def open_all_week(restaurant: Restaurant, opens: str = "08:00", closes: str = "22:00") -> None:
    from datetime import time

    from tenants.models import OpeningHours

    start, end = time.fromisoformat(opens), time.fromisoformat(closes)
    with tenant_context(restaurant):
        OpeningHours.objects.bulk_create(
            [OpeningHours(weekday=day, opens=start, closes=end) for day in range(7)]
        )


def make_shop(restaurant: Restaurant, **publish_fields) -> dict:
    """A published menu to order from: a burger with a required size and optional extras,
    fries and a soda. Returns the ids by name."""
    from menus import services as menus
    from menus.models import (
        Category,
        CategoryItem,
        Item,
        ItemModifierGroup,
        Menu,
        Modifier,
        ModifierGroup,
    )
    from staff.auth import Actor

    with tenant_context(restaurant):
        owner = StaffMember.objects.filter(role=Role.OWNER).first()
    owner = owner or make_staff(restaurant, Role.OWNER)
    with tenant_context(restaurant):
        menu = Menu.objects.create(name="All day")
        mains = Category.objects.create(menu=menu, name="Mains")
        ids: dict = {}
        for position, (name, price) in enumerate([("Burger", 1200), ("Fries", 450), ("Soda", 300)]):
            item = Item.objects.create(name=name, price=price)
            CategoryItem.objects.create(category=mains, item=item, position=position)
            ids[name.lower()] = item.pk
        size = ModifierGroup.objects.create(
            name="Size", min_selections=1, max_selections=1, required=True
        )
        extras = ModifierGroup.objects.create(name="Extras", min_selections=0, max_selections=2)
        for group, name, delta in [
            (size, "Regular", 0), (size, "Large", 300),
            (extras, "Cheese", 150), (extras, "Bacon", 200), (extras, "Egg", 100),
        ]:  # fmt: skip
            ids[name.lower()] = Modifier.objects.create(
                group=group, name=name, price_delta=delta
            ).pk
        ItemModifierGroup.objects.create(item_id=ids["burger"], group=size, position=0)
        ItemModifierGroup.objects.create(item_id=ids["burger"], group=extras, position=1)
        menus.publish(actor=Actor(member=owner))
    ids["owner"] = owner
    return ids


def make_api_key(member: StaffMember, grants: dict[str, str] | None = None, **fields) -> str:
    """A key created by ``member`` (an Owner or Admin); returns its secret."""
    from apikeys import services as apikey_services
    from staff.auth import Actor

    with tenant_context(member.restaurant):
        issued = apikey_services.key_create(
            actor=Actor(member=member),
            name=fields.pop("name", "Integration"),
            grants=grants if grants is not None else {"orders": "read"},
            **fields,
        )
    return issued.secret


def key_client(secret: str | None) -> Client:
    """A client that presents an API key as its Bearer credential."""
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {secret}")
