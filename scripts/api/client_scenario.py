"""One live-ops scenario through a client generated from the served OpenAPI document.

usage: client_scenario.py BASE_URL ADMIN_PASSWORD   (the generated package on PYTHONPATH)

An admin makes an operator and an auditor; the operator creates and activates an event; a
player claims its reward; the auditor reads the claim and the audit log. Every call goes
through the generated code, unedited (enums generated as string literals); any unexpected
answer fails the run.
"""

import datetime
import sys
import uuid

from bestow_client import AuthenticatedClient, Client
from bestow_client.api.audit import list_audit_logs
from bestow_client.api.auth import login, register
from bestow_client.api.claims import get_claim, submit_claim
from bestow_client.api.events import create_event, set_status
from bestow_client.api.users import set_roles
from bestow_client.models import (
    ClaimBody,
    ClaimStatus,
    ClaimView,
    EventInput,
    EventStatus,
    EventView,
    LoginRequest,
    PageAuditEntry,
    RegisterRequest,
    PointReward,
    PointRewardDetails,
    PointRewardRewardType,
    Role,
    SessionView,
    SetRolesRequest,
    StatusChange,
    UserView,
)


def expect(value, kind, what):
    if not isinstance(value, kind):
        sys.exit(f"client scenario: {what}: expected {kind.__name__}, got {value!r}")
    return value


def main(base, admin_password):
    anonymous = Client(base_url=base, raise_on_unexpected_status=True)

    def session(username, password):
        body = LoginRequest(username=username, password=password)
        answer = expect(login.sync(client=anonymous, body=body), SessionView, f"login of {username}")
        return AuthenticatedClient(base_url=base, token=answer.access_token, raise_on_unexpected_status=True)

    def newcomer(username, roles):
        body = RegisterRequest(username=username, password="scenario-password")
        user = expect(register.sync(client=anonymous, body=body), UserView, f"registration of {username}")
        if roles:
            granted = set_roles.sync(user.id, client=admin, body=SetRolesRequest(roles=roles))
            expect(granted, UserView, f"roles of {username}")
        return session(username, "scenario-password")

    admin = session("admin", admin_password)
    tag = uuid.uuid4().hex[:8]
    operator = newcomer(f"operator-{tag}", [Role.OPERATOR])
    auditor = newcomer(f"auditor-{tag}", [Role.AUDITOR])
    player = newcomer(f"player-{tag}", [])

    now = datetime.datetime.now(datetime.timezone.utc)
    event = EventInput(
        event_name=f"Generated client week {tag}",
        start_date=now - datetime.timedelta(hours=1),
        end_date=now + datetime.timedelta(days=7),
        description="made through the generated client",
        rewards=[
            PointReward(
                reward_type=PointRewardRewardType.POINT,
                reward_name="500 points",
                details=PointRewardDetails(points=500),
                quantity_per_user=1,
                total_stock=10,
            )
        ],
    )
    created = expect(create_event.sync(client=operator, body=event), EventView, "event creation")
    active = set_status.sync(created.id, client=operator, body=StatusChange(status=EventStatus.ACTIVE))
    active = expect(active, EventView, "event activation")
    assert active.status == EventStatus.ACTIVE, active.status

    key = str(uuid.uuid4())
    claim = submit_claim.sync(created.id, client=player, body=ClaimBody(), idempotency_key=key)
    claim = expect(claim, ClaimView, "claim")
    assert claim.request_id == key, claim.request_id

    read = expect(get_claim.sync(key, client=auditor), ClaimView, "the auditor's read of the claim")
    assert read.status == ClaimStatus.SUCCESS_ALL_GRANTED, read.status
    trail = list_audit_logs.sync(client=auditor, target_id=created.id)
    trail = expect(trail, PageAuditEntry, "the audit log")
    actions = sorted({entry.action for entry in trail.items})
    assert "event.create" in actions and "event.status" in actions, actions
    print(f"client scenario: event {created.id} claimed as {key} ({read.status}); audit actions {actions}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
