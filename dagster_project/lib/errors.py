"""Errors that tell a user what to do: the CLI prints them as one message, never as a stack trace."""

from __future__ import annotations


class PlainError(RuntimeError):
    """An error whose message is the whole story (what went wrong, where, what to do)."""


def without_traceback(message: str) -> str:
    """An error message for the terminal: what went wrong, without the stack trace quoted in it.

    dbt's and Dagster's messages can carry a traceback (dbt's own, quoted from its log); the run's
    event log in the Dagster UI keeps the whole message.
    """
    kept = [line for line in message.split("Traceback (most recent call last):")[0].splitlines() if line.strip()]
    return "\n".join(kept).strip()
