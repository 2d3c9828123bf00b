"""Channel senders: Slack incoming webhook, SMTP email, generic JSON webhook.

Secrets (webhook URLs, tokens, SMTP passwords) are read from the environment variables the config
names, only when the senders are built, and never appear in errors, logs or ``repr``: every error
text passes through :func:`redact`.
"""

from __future__ import annotations

import json
import os
import smtplib
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

from dagster_project.lib.config_exceptions import EmailChannel, SlackChannel, WebhookChannel
from dagster_project.lib.notifications import render


class DeliveryError(Exception):
    """A channel did not accept a message; ``retry_after`` (seconds) when the channel said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Sender(Protocol):
    name: str
    secrets: tuple[str, ...]

    def send(self, message: dict[str, Any]) -> None: ...


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every secret (and its URL host part) in ``text`` with ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _post_json(url: str, body: dict[str, Any], headers: dict[str, str], timeout: float) -> None:
    data = json.dumps(body, default=str).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - configured URL
            response.read()
    except urllib.error.HTTPError as exc:
        retry_after = exc.headers.get("Retry-After") if exc.headers else None
        try:
            seconds = float(retry_after) if retry_after else None
        except ValueError:
            seconds = None
        raise DeliveryError(f"HTTP {exc.code}", retry_after=seconds) from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"connection failed: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise DeliveryError(f"connection failed: {type(exc).__name__}: {exc}") from None


class SlackSender:
    """Posts Block Kit messages to a Slack incoming webhook."""

    def __init__(self, name: str, url: str, timeout: float) -> None:
        self.name, self._url, self._timeout = name, url, timeout
        self.secrets = (url,)

    def __repr__(self) -> str:
        return f"SlackSender({self.name!r}, url=***)"

    def send(self, message: dict[str, Any]) -> None:
        _post_json(self._url, render.slack_payload(message),
                   {"X-Recon-Message-Id": message["message_id"]}, self._timeout)


class WebhookSender:
    """Posts the generic JSON payload, with an ``Idempotency-Key`` so the receiver can drop repeats."""

    def __init__(self, name: str, url: str, token: str | None, timeout: float) -> None:
        self.name, self._url, self._token, self._timeout = name, url, token, timeout
        self.secrets = tuple(s for s in (url, token) if s)

    def __repr__(self) -> str:
        return f"WebhookSender({self.name!r}, url=***)"

    def send(self, message: dict[str, Any]) -> None:
        headers = {"Idempotency-Key": message["message_id"], "X-Recon-Message-Id": message["message_id"]}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        _post_json(self._url, render.webhook_payload(message), headers, self._timeout)


class EmailSender:
    """Sends multipart (text + HTML) mail over SMTP; the Message-ID is the outbox idempotency key."""

    def __init__(self, name: str, spec: EmailChannel, host: str, port: int, username: str | None,
                 password: str | None) -> None:
        self.name, self._spec, self._host, self._port = name, spec, host, port
        self._username, self._password = username, password
        self.secrets = tuple(s for s in (password,) if s)

    def __repr__(self) -> str:
        return f"EmailSender({self.name!r}, host={self._host!r}, password=***)"

    def send(self, message: dict[str, Any]) -> None:
        recipients = self._spec.recipients_for(message["owner"])
        if not recipients:
            raise DeliveryError(f"no recipients for owner '{message['owner']}'")
        mail = EmailMessage()
        mail["Subject"] = render.subject(message)
        mail["From"] = self._spec.sender
        mail["To"] = ", ".join(recipients)
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = f"<{message['message_id']}@recon>"
        mail["X-Recon-Message-Id"] = message["message_id"]
        mail.set_content(render.text_body(message))
        mail.add_alternative(render.html_body(message), subtype="html")
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._spec.timeout_seconds) as smtp:
                if self._spec.starttls:
                    smtp.starttls()
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp failed: {type(exc).__name__}: {exc}") from None


def channel_env_ready(spec: Any, env: Mapping[str, str] | None = None) -> bool:
    """Whether a channel is enabled and the environment variable holding its address is set."""
    env = os.environ if env is None else env
    if not spec.enabled:
        return False
    if isinstance(spec, SlackChannel):
        return bool(env.get(spec.webhook_url_env))
    if isinstance(spec, WebhookChannel):
        return bool(env.get(spec.url_env))
    if isinstance(spec, EmailChannel):
        return bool(env.get(spec.smtp_host_env))
    return False


def build_senders(config: Any, env: Mapping[str, str] | None = None) -> dict[str, Sender]:
    """A sender per enabled channel whose environment variables are set; the others are skipped."""
    env = os.environ if env is None else env
    senders: dict[str, Sender] = {}
    for name, spec in sorted(config.notifications.channels.items()):
        if not channel_env_ready(spec, env):
            continue
        if isinstance(spec, SlackChannel):
            senders[name] = SlackSender(name, env[spec.webhook_url_env], spec.timeout_seconds)
        elif isinstance(spec, WebhookChannel):
            token = env.get(spec.token_env) if spec.token_env else None
            senders[name] = WebhookSender(name, env[spec.url_env], token or None, spec.timeout_seconds)
        elif isinstance(spec, EmailChannel):
            host, _, port = env[spec.smtp_host_env].partition(":")
            senders[name] = EmailSender(
                name, spec, host, int(port) if port else spec.smtp_port,
                env.get(spec.username_env) if spec.username_env else None,
                env.get(spec.password_env) if spec.password_env else None,
            )
    return senders
