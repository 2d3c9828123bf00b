"""Config sections for exceptions as owned work: routing, SLAs, escalation and notifications.

All three sections are optional; their defaults are the seed's rules (DESIGN.md section 6). Secrets
are never in the config: a channel names the *environment variables* that hold its webhook URL,
token or password (``webhook_url_env: RECON_SLACK_WEBHOOK_URL``) and they are read only when a message
is sent. An enabled channel whose variable is unset keeps its messages in the outbox, with an error
naming the variable, until it is set. See docs/exceptions.md.

This module imports nothing from ``config.py`` (which imports it).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

Severity = Literal["low", "medium", "high", "critical"]
RoleName = Literal["orders", "payments", "invoices", "fulfillments", "customers"]

DEFAULT_SLA_HOURS: dict[str, float] = {"critical": 4, "high": 24, "medium": 72, "low": 168}
NOTIFY_EVENTS = ("opened", "reopened", "escalated", "reassigned", "assigned")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            "expected the NAME of an environment variable (such as RECON_SLACK_WEBHOOK_URL), "
            "never the secret itself"
        )
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


# ---- routing ------------------------------------------------------------------------------------


class RoutingRule(_Strict):
    """An explicit routing rule; the first rule whose conditions all match picks the owner.

    Empty lists match anything.
    """

    name: str
    owner: str
    diff_types: list[str] = Field(default_factory=list)
    systems: list[str] = Field(default_factory=list)
    roles: list[RoleName] = Field(default_factory=list)
    states: list[str] = Field(default_factory=list)
    severities: list[Severity] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    min_amount: float | None = Field(default=None, ge=0)


class EscalationStep(_Strict):
    """One step of an escalation chain: who owns a breached exception, hours after its due time."""

    owner: str
    after_hours: float = Field(default=0.0, ge=0)


class EscalationConfig(_Strict):
    """The fallback chain: ``by_owner[owner]`` when the owner has one, else ``default``."""

    default: list[EscalationStep] = Field(default_factory=list)
    by_owner: dict[str, list[EscalationStep]] = Field(default_factory=dict)

    @field_validator("default")
    @classmethod
    def _sorted_default(cls, value: list[EscalationStep]) -> list[EscalationStep]:
        return sorted(value, key=lambda s: s.after_hours)

    @field_validator("by_owner")
    @classmethod
    def _sorted_chains(cls, value: dict[str, list[EscalationStep]]) -> dict[str, list[EscalationStep]]:
        return {k: sorted(v, key=lambda s: s.after_hours) for k, v in value.items()}


class RoutingConfig(_Strict):
    """Who owns an exception when it opens (first match wins, in the order of the fields below)."""

    rules: list[RoutingRule] = Field(default_factory=list)
    # Any billing discrepancy (a diff about a system of these roles) goes to this owner at once.
    billing_owner: str | None = "revenue-ops"
    billing_roles: list[RoleName] = Field(default_factory=lambda: ["invoices"])
    # The system that last wrote the order owns resolution for this long (0 turns the rule off).
    last_writer_hours: float = Field(default=24.0, ge=0)
    # Owner of each source system (for the last-writer rule); default: owners.orphan_record_by_role.
    system_owners: dict[str, str] = Field(default_factory=dict)
    # Use the dbt model's owner (`meta.dagster.owners`, first, without `team:`) before owners.fallback.
    use_dbt_meta_owners: bool = True
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)


# ---- SLA ----------------------------------------------------------------------------------------


class SlaConfig(_Strict):
    """Due time per severity, in hours from the end of the as-of day the exception opened."""

    hours_by_severity: dict[Severity, float] = Field(default_factory=lambda: dict(DEFAULT_SLA_HOURS))

    @field_validator("hours_by_severity")
    @classmethod
    def _complete(cls, value: dict[str, float]) -> dict[str, float]:
        negative = sorted(k for k, v in value.items() if v < 0)
        if negative:
            raise ValueError(f"SLA hours must be >= 0, got negative values for {negative}")
        return {**DEFAULT_SLA_HOURS, **value}


# ---- notifications ------------------------------------------------------------------------------


class _ChannelBase(_Strict):
    enabled: bool = True
    owners: list[str] = Field(default_factory=list)          # empty: every owner
    severities: list[Severity] = Field(default_factory=list)  # empty: every severity
    timeout_seconds: float = Field(default=10.0, gt=0)


class SlackChannel(_ChannelBase):
    """Slack incoming webhook (Block Kit)."""

    type: Literal["slack"]
    webhook_url_env: EnvName = "RECON_SLACK_WEBHOOK_URL"


class WebhookChannel(_ChannelBase):
    """Generic JSON webhook for ticketing systems (POST, ``Idempotency-Key`` header)."""

    type: Literal["webhook"]
    url_env: EnvName = "RECON_WEBHOOK_URL"
    token_env: EnvName | None = None  # sent as `Authorization: Bearer <token>` when set


class EmailChannel(_ChannelBase):
    """SMTP email, HTML and plain text."""

    type: Literal["email"]
    smtp_host_env: EnvName = "RECON_SMTP_HOST"  # its value: "host" or "host:port"
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    starttls: bool = False
    sender: str = "recon@localhost"
    recipients: dict[str, list[str]] = Field(default_factory=dict)  # owner -> addresses
    default_recipients: list[str] = Field(default_factory=list)

    def recipients_for(self, owner: str) -> list[str]:
        return self.recipients.get(owner) or self.default_recipients


Channel = Annotated[SlackChannel | WebhookChannel | EmailChannel, Field(discriminator="type")]


class DigestConfig(_Strict):
    """Batch non-urgent notifications per owner and channel, so a bad night is one message per owner."""

    enabled: bool = True
    immediate_severities: list[Severity] = Field(default_factory=lambda: ["critical"])
    immediate_events: list[str] = Field(default_factory=lambda: ["escalated"])
    interval_minutes: float = Field(default=60.0, ge=0)  # at most one digest per owner and channel per interval
    max_items: int = Field(default=50, gt=0)               # items listed in one digest; the rest are counted


class RetryConfig(_Strict):
    """Exponential backoff: ``min(max_backoff, backoff * 2**(attempt-1))``; then dead-lettered."""

    max_attempts: int = Field(default=20, gt=0)
    backoff_seconds: float = Field(default=30.0, ge=0)
    max_backoff_seconds: float = Field(default=3600.0, ge=0)


class NotificationsConfig(_Strict):
    enabled: bool = True
    events: list[str] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    # Link to the timeline in a UI; `{order_id}` and `{exception_id}` are replaced. Without it messages carry
    # the command `recon exceptions show <short id>`.
    timeline_url: str | None = None
    channels: dict[str, Channel] = Field(default_factory=dict)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(NOTIFY_EVENTS))
        if unknown:
            raise ValueError(f"unknown event(s) {unknown}; expected some of {list(NOTIFY_EVENTS)}")
        return value

    @model_validator(mode="after")
    def _channel_names(self) -> NotificationsConfig:
        for name in self.channels:
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
                raise ValueError(f"channel name '{name}' must be lower-case letters, digits, '-' and '_'")
        return self
