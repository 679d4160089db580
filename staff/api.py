"""API: who am I, and the staff roster."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from nordkestrel.serializers import StrictSerializer
from staff import selectors, services
from staff.api_base import TenantAPIView
from staff.models import StaffMember
from staff.roles import Role, Scope


class StaffMemberSerializer(serializers.ModelSerializer):
    pending = serializers.BooleanField(source="is_pending", read_only=True)

    class Meta:
        model = StaffMember
        fields = [
            "id",
            "email",
            "name",
            "role",
            "active",
            "pending",
            "clerk_user_id",
            "invited_at",
            "joined_at",
        ]
        read_only_fields = fields


class InviteSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=Role.choices)


class StaffUpdateSerializer(StrictSerializer):
    """Writable fields, explicitly: anything else in the body is rejected."""

    role = serializers.ChoiceField(choices=Role.choices, required=False)
    name = serializers.CharField(max_length=120, required=False, allow_blank=True)


class MembershipSerializer(serializers.Serializer):
    restaurant_id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()


class MeSerializer(serializers.Serializer):
    user = serializers.DictField()
    restaurant = serializers.DictField()
    role = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    memberships = MembershipSerializer(many=True)


class MeView(TenantAPIView):
    scopes = {"get": Scope.RESTAURANT_READ}

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        actor = self.actor
        member, restaurant = actor.member, actor.restaurant
        return Response(
            {
                # A key says which key it is; its creator's own details stay with the staff.
                "user": actor.identity(),
                "restaurant": {
                    "id": restaurant.pk,
                    "slug": restaurant.slug,
                    "name": restaurant.name,
                },
                "role": member.role,
                "scopes": sorted(actor.scopes),
                # A key speaks for one restaurant: it tells nothing of its creator's others.
                "memberships": []
                if actor.via_api_key
                else selectors.memberships_for_user(member.clerk_user_id or ""),
            }
        )


class StaffListView(TenantAPIView):
    model = StaffMember
    serializer_class = StaffMemberSerializer
    scopes = {"get": Scope.STAFF_READ, "post": Scope.STAFF_WRITE}

    def scope_queryset(self, queryset: Any) -> Any:
        active = self.request.query_params.get("active")
        if active in ("true", "false"):
            queryset = queryset.filter(active=active == "true")
        return queryset

    @extend_schema(operation_id="staff_list", responses=StaffMemberSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.paginated(self.get_queryset(), StaffMemberSerializer)

    @extend_schema(request=InviteSerializer, responses={201: StaffMemberSerializer})
    def post(self, request: Request) -> Response:
        member = services.staff_invite(actor=self.actor, **self.parse(InviteSerializer))
        return Response(StaffMemberSerializer(member).data, status=status.HTTP_201_CREATED)


class StaffDetailView(TenantAPIView):
    model = StaffMember
    serializer_class = StaffMemberSerializer
    scopes = {"get": Scope.STAFF_READ, "patch": Scope.STAFF_WRITE}

    def get(self, request: Request, pk: int) -> Response:
        return Response(StaffMemberSerializer(self.get_object()).data)

    @extend_schema(request=StaffUpdateSerializer, responses=StaffMemberSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        member = self.get_object()
        changes = self.parse(StaffUpdateSerializer, partial=True)
        member = services.staff_update(actor=self.actor, member=member, **changes)
        return Response(StaffMemberSerializer(member).data)


class StaffDeactivateView(TenantAPIView):
    model = StaffMember
    serializer_class = StaffMemberSerializer
    scopes = {"post": Scope.STAFF_WRITE}

    @extend_schema(request=None, responses=StaffMemberSerializer)
    def post(self, request: Request, pk: int) -> Response:
        member = services.staff_deactivate(actor=self.actor, member=self.get_object())
        return Response(StaffMemberSerializer(member).data)
