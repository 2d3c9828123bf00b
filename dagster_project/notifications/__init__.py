"""Notifications for exceptions: a durable outbox in DuckDB, digests, and Slack/email/webhook senders.

Events that need a person (an exception opened, reopened, escalated or reassigned) are queued in
``recon.notification_outbox`` in the same transaction that writes the event, so a notification is
never lost. :func:`flush` sends what is due, one message at a time, marking each sent as soon as its
channel accepted it; a failure schedules a retry with exponential backoff (``next_attempt_at``).
Critical events go out at once; the rest wait for a digest per owner and channel.
"""

from dagster_project.notifications.channels import DeliveryError, build_senders
from dagster_project.notifications.outbox import (
    OUTBOX_TABLE,
    FlushStats,
    build_digests,
    enqueue_for_events,
    ensure_outbox,
    flush,
    outbox_summary,
)

__all__ = [
    "OUTBOX_TABLE",
    "DeliveryError",
    "FlushStats",
    "build_digests",
    "build_senders",
    "enqueue_for_events",
    "ensure_outbox",
    "flush",
    "outbox_summary",
]
