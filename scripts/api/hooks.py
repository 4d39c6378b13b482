"""Schemathesis hooks of scripts/check-api: rules the OpenAPI document states in its
descriptions but JSON Schema cannot express, because they compare one field with another.
Generated cases that break them are dropped from the positive phases, so that "schema-valid
but refused" means a real contract failure."""

import schemathesis


def _dates_in_order(body):
    if not isinstance(body, dict):
        return True
    start, end = body.get("startDate"), body.get("endDate")
    return not (isinstance(start, str) and isinstance(end, str)) or start < end


@schemathesis.hook("filter_body").apply_to(path="/api/v1/events", method="POST")
def event_ends_after_it_starts(ctx, body):
    return _dates_in_order(body)
