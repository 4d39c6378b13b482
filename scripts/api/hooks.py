"""Schemathesis hooks of scripts/check-api: rules the OpenAPI document states in its
descriptions but JSON Schema cannot express, because they compare one field with another, with
the stored resource, or with the clock. Generated bodies that would break them are dropped or
adjusted, so that "schema-valid but refused" always means a real contract failure."""

import datetime
import functools
import re
import zoneinfo

import schemathesis

MAX_DEPTH = 5
MAX_NODES = 50
# The years the document allows in a date-time.
YEARS = r"^(19[7-9][0-9]|[2-9][0-9]{3})-"


def _only(method, path):
    """Applies a body hook to one operation; other bodies pass through untouched."""

    def wrap(hook):
        @functools.wraps(hook)
        def applied(ctx, body):
            operation = ctx.operation
            if operation is None or operation.method.upper() != method or operation.path != path:
                return True if hook.__name__.startswith("keep_") else body
            return hook(ctx, body)

        return applied

    return wrap


def _objects_only(hook):
    """A body filter that judges JSON objects only: any other body is kept, for the server's
    own 400 to answer it."""

    @functools.wraps(hook)
    def judged(ctx, body):
        return hook(ctx, body) if isinstance(body, dict) else True

    return judged


def _parse(text):
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def _tree_fits(node, depth=1):
    """(fits, nodes) of a condition tree: at most MAX_DEPTH levels and MAX_NODES nodes."""
    if not isinstance(node, dict):
        return True, 0
    if depth > MAX_DEPTH:
        return False, 1
    children = node.get("subConditions") or []
    if isinstance(node.get("condition"), dict):
        children = [node["condition"]]
    total, fits = 1, True
    for child in children if isinstance(children, list) else []:
        child_fits, count = _tree_fits(child, depth + 1)
        fits, total = fits and child_fits, total + count
    return fits and total <= MAX_NODES, total


def _stock_fits(reward):
    if not isinstance(reward, dict):
        return True
    total, quantity = reward.get("totalStock"), reward.get("quantityPerUser")
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (total, quantity))
    return not (numbers and total >= 1) or total >= quantity


# Zone names the server knows: the document states their shape, not the list (no generator
# copes with a 600-name enum); a made-up name of that shape is refused as its description says.
ZONES = zoneinfo.available_timezones() | {"UTC"}


def _zone_known(body):
    zone = body.get("timezone")
    return not isinstance(zone, str) or zone in ZONES


def _list(value):
    return value if isinstance(value, list) else []


def _tiers_fit(tiers):
    """Tier ids are unique; each tier's conditions and rewards fit like an event's."""
    tiers = [tier for tier in _list(tiers) if isinstance(tier, dict)]
    ids = [tier.get("tierId") for tier in tiers if isinstance(tier.get("tierId"), str)]
    return len(ids) == len(set(ids)) and all(
        _tree_fits(tier.get("conditions"))[0] and all(_stock_fits(reward) for reward in _list(tier.get("rewards")))
        for tier in tiers
    )


@schemathesis.hook("filter_body")
@_only("POST", "/api/v1/events")
@_objects_only
def keep_consistent_new_events(ctx, body):
    start, end = body.get("startDate"), body.get("endDate")
    start, end = _parse(start), _parse(end)
    if start is not None and end is not None and not start < end:
        return False
    rewards = _list(body.get("rewards"))
    return (
        _zone_known(body)
        and _tree_fits(body.get("conditions"))[0]
        and all(_stock_fits(reward) for reward in rewards)
        and _tiers_fit(body.get("tiers"))
    )


@schemathesis.hook("filter_body")
@_only("PATCH", "/api/v1/events/{eventId}")
@_objects_only
def keep_patches_that_leave_the_schedule_alone(ctx, body):
    # Whether new dates fit depends on the stored ones; the schedule is covered on creation.
    # Bodies are dropped, never edited: an edit could remove the very violation of a negative
    # case and turn it into a valid request.
    return (
        "startDate" not in body
        and "endDate" not in body
        and _zone_known(body)
        and _tree_fits(body.get("conditions"))[0]
        and _tiers_fit(body.get("tiers"))
    )


@schemathesis.hook("filter_body")
@_only("POST", "/api/v1/events/{eventId}/rewards")
def keep_rewards_with_enough_stock(ctx, body):
    return _stock_fits(body)


@schemathesis.hook("filter_body")
@_only("PATCH", "/api/v1/events/{eventId}/rewards/{rewardId}")
@_objects_only
def keep_redefinitions_without_type_bound_members(ctx, body):
    # `details` must fit the stored reward's type, `totalStock` its stored quantity, and
    # `quantityPerUser` its stored stock (a 400 the schema cannot express).
    total, quantity = body.get("totalStock"), body.get("quantityPerUser")
    too_many = isinstance(quantity, (int, float)) and not isinstance(quantity, bool) and quantity > 1
    return "details" not in body and not (isinstance(total, (int, float)) and total >= 1) and not too_many


@schemathesis.hook("map_body")
@_only("POST", "/api/v1/activities")
def move_activities_into_the_past(ctx, body):
    # At most 5 minutes in the future, by the server's clock.
    # Only dates the schema allows are moved, so that a negative case stays negative.
    now = datetime.datetime.now(datetime.timezone.utc)
    activities = body.get("activities") if isinstance(body, dict) else None
    for activity in activities if isinstance(activities, list) else []:
        text = activity.get("occurredAt") if isinstance(activity, dict) else None
        when = _parse(text) if isinstance(text, str) and re.match(YEARS, text) else None
        if when is not None and when.tzinfo is not None and when > now:
            activity["occurredAt"] = now.isoformat()
    return body


PROPERTY_VALUE_BYTES = 256


def _fits_bytes(value):
    """A property value's string is at most 256 bytes (the schema can count only characters)."""
    return not isinstance(value, str) or len(value.encode("utf-8", "surrogatepass")) <= PROPERTY_VALUE_BYTES


def _rule_fits(node):
    """An audience rule: depth and size like a condition tree; in every `PROPERTY` leaf each
    string value fits in 256 bytes; in every `ACCOUNT_AGE_DAYS` leaf `min <= max`."""
    if not _tree_fits(node)[0]:
        return False
    pending = [node]
    while pending:
        current = pending.pop()
        if not isinstance(current, dict):
            continue
        if current.get("type") == "PROPERTY":
            value = current.get("value")
            if not all(_fits_bytes(item) for item in (value if isinstance(value, list) else [value])):
                return False
        low, high = current.get("min"), current.get("max")
        if current.get("type") == "ACCOUNT_AGE_DAYS" and all(
            isinstance(x, int) and not isinstance(x, bool) for x in (low, high)
        ):
            if low > high:
                return False
        pending.extend(_list(current.get("subConditions")))
        pending.append(current.get("condition"))
    return True


@schemathesis.hook("filter_body")
@_only("POST", "/api/v1/audiences")
@_objects_only
def keep_audiences_whose_rule_fits_their_kind(ctx, body):
    # A RULE audience has a rule, a LIST one none (the description says so).
    rule = body.get("rule")
    kind_fits = (rule is not None) == (body.get("kind") == "RULE")
    return kind_fits and _rule_fits(rule)


@schemathesis.hook("filter_body")
@_only("PATCH", "/api/v1/audiences/{audienceId}")
@_objects_only
def keep_audience_patches_whose_rule_fits(ctx, body):
    return _rule_fits(body.get("rule"))


@schemathesis.hook("filter_body")
@_only("PATCH", "/api/v1/players/{userId}/properties")
@_objects_only
def keep_property_values_within_their_bytes(ctx, body):
    return all(_fits_bytes(value) for value in body.values())
