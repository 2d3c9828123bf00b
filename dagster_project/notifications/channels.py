"""Channel senders: Slack incoming webhook, SMTP email, generic JSON webhook.

Secrets (webhook URLs, tokens, SMTP passwords) are read from the environment variables the config
names, only when the senders are built, and never appear in errors, logs or ``repr``: every error
text passes through :func:`redact`.
"""

from __future__ import annotations

import json
import os
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

import requests

from dagster_project.config.exceptions import EmailChannel, SlackChannel, WebhookChannel
from dagster_project.notifications import render


class DeliveryError(Exception):
    """A channel did not accept a message.

    ``retry_after`` (seconds) when the channel said so; ``channel_down`` when the failure is the
    channel's (unreachable, timed out, rate-limited, unavailable) rather than this message's, so
    the flush stops sending to it until the next one.
    """

    def __init__(self, message: str, retry_after: float | None = None, channel_down: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.channel_down = channel_down


# HTTP answers that mean "the channel cannot take anything now", not "this message is wrong".
_CHANNEL_DOWN_HTTP = frozenset({408, 429, 502, 503, 504})


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
    """POST a JSON body (with requests, as the REST connector does); raise DeliveryError unless 2xx.

    The error texts never carry requests' own message: it names the URL's host and path, which for a
    Slack or webhook URL is the secret. Redirects are not followed: a receiver that moved is an error.
    """
    data = json.dumps(body, default=str).encode()
    try:
        response = requests.post(url, data=data, headers={"Content-Type": "application/json", **headers},
                                 timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        raise DeliveryError("connection failed: timed out", channel_down=True) from None
    except requests.RequestException as exc:
        raise DeliveryError(f"connection failed: {type(exc).__name__}", channel_down=True) from None
    if not 200 <= response.status_code < 300:
        retry_after = response.headers.get("Retry-After")
        try:
            seconds = float(retry_after) if retry_after else None
        except ValueError:
            seconds = None
        raise DeliveryError(f"HTTP {response.status_code}", retry_after=seconds,
                            channel_down=response.status_code in _CHANNEL_DOWN_HTTP)


def _idempotency_headers(message: dict[str, Any]) -> dict[str, str]:
    """The stable message id, as ``Idempotency-Key`` (what receivers dedupe on) and ``X-Recon-Message-Id``.

    A retry of the same outbox row carries the same key, so a receiver that got a request whose
    answer we never saw (a timeout after it accepted) can drop the repeat.
    """
    return {"Idempotency-Key": message["message_id"], "X-Recon-Message-Id": message["message_id"]}


class SlackSender:
    """Posts Block Kit messages to a Slack incoming webhook, with an ``Idempotency-Key`` header."""

    def __init__(self, name: str, url: str, timeout: float) -> None:
        self.name, self._url, self._timeout = name, url, timeout
        self.secrets = (url,)

    def __repr__(self) -> str:
        return f"SlackSender({self.name!r}, url=***)"

    def send(self, message: dict[str, Any]) -> None:
        _post_json(self._url, render.slack_payload(message), _idempotency_headers(message), self._timeout)


class WebhookSender:
    """Posts the generic JSON payload, with an ``Idempotency-Key`` so the receiver can drop repeats."""

    def __init__(self, name: str, url: str, token: str | None, timeout: float) -> None:
        self.name, self._url, self._token, self._timeout = name, url, token, timeout
        self.secrets = tuple(s for s in (url, token) if s)

    def __repr__(self) -> str:
        return f"WebhookSender({self.name!r}, url=***)"

    def send(self, message: dict[str, Any]) -> None:
        headers = _idempotency_headers(message)
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
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            # The server is up and refused this message: the channel's other messages still go.
            raise DeliveryError(f"smtp refused the message: {type(exc).__name__}: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp failed: {type(exc).__name__}: {exc}", channel_down=True) from None


def missing_env(spec: Any, env: Mapping[str, str] | None = None) -> list[str]:
    """The environment variables a channel names that are unset or empty.

    The address (webhook URL, SMTP host) is always needed; a token, user name or password is
    needed when the config names its variable.

    Args:
        spec: a channel of ``notifications.channels``.
        env: the environment (default ``os.environ``).

    Returns:
        The variable names, in config order (empty: the channel can send).
    """
    env = os.environ if env is None else env
    if isinstance(spec, SlackChannel):
        names = [spec.webhook_url_env]
    elif isinstance(spec, WebhookChannel):
        names = [spec.url_env, spec.token_env]
    elif isinstance(spec, EmailChannel):
        names = [spec.smtp_host_env, spec.username_env, spec.password_env]
    else:
        raise TypeError(f"unknown channel type {type(spec).__name__}")
    return [name for name in names if name and not env.get(name)]


def channel_env_ready(spec: Any, env: Mapping[str, str] | None = None) -> bool:
    """Whether a channel is enabled and every environment variable it names is set."""
    return bool(spec.enabled) and not missing_env(spec, env)


def build_senders(config: Any, env: Mapping[str, str] | None = None) -> dict[str, Sender]:
    """A sender per enabled channel whose environment variables are set.

    The flush reports the others (``missing_env``) and keeps their messages for when the variables are set.
    """
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
