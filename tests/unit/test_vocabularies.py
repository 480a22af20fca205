"""The vocabularies are StrEnums, and the SQL that cannot take them as parameters (a migration's
CHECK or partial index, the predicate ON CONFLICT infers an index from) says the same as they do."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.casework import domain as casework_domain
from services.matching.hsds.model import STATUSES, ServiceStatus
from services.notify import repository as notify_repository
from services.notify.lifecycle import OPEN
from services.signals import metrics as signals_metrics
from services.signals.domain import PROGRESS, STAGE_RANK, Stage
from shared.contracts import DeliveryStatus, NotificationSent, RecipientRole, ReferralStatus, utcnow

SERVICES = Path(__file__).resolve().parents[2] / "services"


def quoted(sql: str) -> set[str]:
    return set(re.findall(r"'([^']*)'", sql))


def test_the_open_referral_statuses_are_one_list_in_python_sql_and_the_migration():
    migration = (SERVICES / "notify" / "migrations" / "002_referrals.sql").read_text()
    index = re.search(
        r"referrals_open_per_service ON referrals \(case_id, service_id\)\s+WHERE status IN \(([^)]*)\)", migration
    )
    assert index is not None
    assert quoted(index.group(1)) == {status.value for status in OPEN}
    assert quoted(notify_repository._OPEN_SQL) == {status.value for status in OPEN}
    # Only the statuses with a way forward are open.
    assert {
        ReferralStatus.REQUESTED,
        ReferralStatus.ACCEPTED,
        ReferralStatus.IN_PROGRESS,
        ReferralStatus.ON_HOLD,
    } == OPEN


def test_every_status_literal_left_in_the_referral_and_notification_sql_is_a_member():
    notify = SERVICES / "notify"
    # The referrals table and its indexes (the same migration also makes follow_ups, with statuses of their own).
    statements = (notify / "migrations" / "002_referrals.sql").read_text().split(";")
    referral_sql = "".join(s for s in statements if re.search(r"(TABLE|ON) referrals\b", s))
    referral_sql += "".join(
        re.findall(r"FROM referrals WHERE status = '[^']*'", (notify / "repository.py").read_text())
    )
    literals = re.findall(r"status (?:=|IN \() ?'([^']*)'|DEFAULT '([^']*)'", referral_sql)
    assert len(literals) >= 5
    for found in literals:
        assert "".join(found) in set(ReferralStatus), found
    notification_sql = "".join(
        (notify / "migrations" / name).read_text() for name in ("001_notifications.sql", "003_delivery_leases.sql")
    )
    literals = re.findall(r"status (?:=|<>) '([^']*)'|DEFAULT '([^']*)'", notification_sql)
    assert literals
    for found in literals:
        assert "".join(found) in set(DeliveryStatus), found
    assert set(ReferralStatus) >= casework_domain._UNANSWERED


def test_the_hsds_service_statuses_and_the_check_constraint_agree():
    migration = (SERVICES / "matching" / "migrations" / "001_social_map.sql").read_text()
    check = re.search(r"CHECK \(status IN \(([^)]*)\)\)", migration)
    assert check is not None and quoted(check.group(1)) == set(STATUSES) == {s.value for s in ServiceStatus}


def test_stages_rank_the_pipeline_and_the_funnel_is_derived_from_them():
    assert set(STAGE_RANK) == set(Stage)
    assert [STAGE_RANK[stage] for stage in PROGRESS] == list(range(len(PROGRESS)))
    assert all(STAGE_RANK[stage] < 0 for stage in Stage if stage not in PROGRESS)
    assert signals_metrics.FUNNEL == ("received", "screened", "escalated", "matched", "notified")
    # Stages read back from the database are plain text; they still find their rank.
    assert STAGE_RANK["notified"] == STAGE_RANK[Stage.NOTIFIED]  # type: ignore[index]


def test_a_notification_event_carries_a_known_role_and_status_only():
    sent = {
        "signal_id": uuid4(),
        "case_id": uuid4(),
        "notification_id": uuid4(),
        "channel": "email",
        "template": "caregiver_proposals",
        "sent_at": utcnow(),
    }
    event = NotificationSent(**sent, recipient_role="caregiver", status="delivered")
    assert (event.recipient_role, event.status) == (RecipientRole.CAREGIVER, DeliveryStatus.DELIVERED)
    assert event.model_dump(mode="json")["recipient_role"] == "caregiver"
    with pytest.raises(ValidationError, match="recipient_role"):
        NotificationSent(**sent, recipient_role="neighbour", status="delivered")
    with pytest.raises(ValidationError, match="status"):
        NotificationSent(**sent, recipient_role="caregiver", status="lost")
