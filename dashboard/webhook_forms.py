"""The forms of the webhook pages: an endpoint (its URL, description and event types, ticked
from the event catalogue by resource), enabling it, recovering failed deliveries, and the
delivery log's filter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from django import forms

from dashboard.promotion_views import LocalDateTimeField
from nordkestrel import events
from nordkestrel.errors import DomainError
from staff.auth import Actor
from webhooks.models import Delivery


@dataclass(frozen=True)
class EventOption:
    """One event type as a checkbox."""

    name: str
    description: str
    checked: bool
    input_id: str


@dataclass(frozen=True)
class EventGroup:
    resource: str
    options: list[EventOption]


def visible_types(actor: Actor) -> list[events.EventType]:
    """The catalogue's types the member's scopes can see (the others cannot be chosen)."""
    return [entry for entry in events.catalogue() if entry.scope in actor.scopes]


def _resource(name: str) -> str:
    return name.partition(".")[0].replace("_", " ").capitalize()


class DomainErrorForm(forms.Form):
    def show(self, error: DomainError) -> None:
        """A service's refusal next to the field it names (``event_types.2`` is the event
        types), else above the form."""
        field = (error.attr or "").partition(".")[0]
        self.add_error(field if field in self.fields else None, error.detail)


class EndpointForm(DomainErrorForm):
    url = forms.CharField(
        max_length=2000,
        label="URL",
        help_text="The https address that receives the events, e.g. "
        "https://example.com/webhooks/nordkestrel.",
        widget=forms.URLInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "inputmode": "url"}
        ),
    )
    description = forms.CharField(
        max_length=200,
        required=False,
        help_text="What receives them, e.g. the till or the delivery app.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    event_types = forms.MultipleChoiceField(
        required=False, label="Event types", widget=forms.CheckboxSelectMultiple
    )

    def __init__(
        self,
        *args: Any,
        actor: Actor,
        chosen: Sequence[str] = (),
        prefix_id: str = "new",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.catalogue = visible_types(actor)
        names = [entry.name for entry in self.catalogue]
        # A type already chosen stays on the form even beyond this member's scopes (set by
        # someone else): saving it is the service's decision, not a silent drop.
        hidden = [name for name in chosen if name not in names]
        self.descriptions = {entry.name: entry.description for entry in self.catalogue}
        self.event_names = [*names, *hidden]
        types_field = cast(forms.MultipleChoiceField, self.fields["event_types"])
        types_field.choices = [(name, name) for name in self.event_names]
        self.input_prefix = prefix_id
        for name, length in (("url", 2000), ("description", 200)):
            self.fields[name].widget.attrs["maxlength"] = length

    def ticked(self) -> set[str]:
        value = self["event_types"].value() or []
        return {str(name) for name in value}

    def event_groups(self) -> list[EventGroup]:
        ticked = self.ticked()
        groups: dict[str, list[EventOption]] = {}
        for index, name in enumerate(self.event_names):
            groups.setdefault(_resource(name), []).append(
                EventOption(
                    name=name,
                    description=self.descriptions.get(name, ""),
                    checked=name in ticked,
                    input_id=f"{self.input_prefix}-event-type-{index}",
                )
            )
        return [EventGroup(resource, options) for resource, options in groups.items()]


class EndpointCreateForm(EndpointForm):
    enabled = forms.BooleanField(
        required=False,
        initial=True,
        label="Enabled",
        help_text="Untick to add it switched off: nothing is sent until it is enabled.",
        widget=forms.CheckboxInput(attrs={"aria-describedby": "id_enabled-hint"}),
    )

    def arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "url": data["url"].strip(),
            "description": data["description"],
            "event_types": data["event_types"],
            "enabled": data["enabled"],
        }


class EndpointEditForm(EndpointForm):
    def changes(self, current: dict[str, Any]) -> dict[str, Any]:
        """Only what differs: whoever sets the URL or the event types sets the scopes the
        endpoint receives with, so a new description alone leaves them as they are."""
        data = self.cleaned_data
        wanted = {
            "url": data["url"].strip(),
            "description": data["description"],
            "event_types": list(data["event_types"]),
        }
        changed = {name: v for name, v in wanted.items() if current.get(name) != v}
        if set(wanted["event_types"]) == set(current.get("event_types") or []):
            changed.pop("event_types", None)
        return changed


class StateForm(forms.Form):
    enabled = forms.TypedChoiceField(
        choices=[("true", "Enable"), ("false", "Disable")],
        coerce=lambda value: value == "true",
    )


class RecoverForm(DomainErrorForm):
    def __init__(self, *args: Any, zone: ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["since"] = LocalDateTimeField(
            zone,
            label="Failed since",
            help_text=f"Local time ({zone.key}). Deliveries are kept 30 days.",
        )


class LogFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        label="Status",
        choices=[("", "All"), *Delivery.Status.choices],
    )
