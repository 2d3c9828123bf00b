"""What a notification says, per channel: Slack Block Kit, email (text + HTML), generic JSON.

Every item carries the order id, the customer id, the diff per system (expected vs actual), the
amount at risk, the owner, the due time and the command (or link) to the order's timeline.
A message is either one item (``immediate``) or a digest of items for one owner.
"""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any

_TITLES = {
    "opened": "New exception",
    "reopened": "Exception reopened",
    "escalated": "Exception escalated",
    "reassigned": "Exception handed over",
    "assigned": "Exception assigned",
}
SLACK_MAX_ITEMS = 20  # Slack allows 50 blocks; each item takes two


def money(amount: Any, currency: str | None) -> str:
    """``EUR 1,234.50``; empty amounts read as 0."""
    value = Decimal(str(amount if amount is not None else 0))
    return f"{currency or ''} {value:,.2f}".strip()


def item_title(item: dict[str, Any]) -> str:
    if item.get("event_type") == "run_failed":
        return f"Run failed: {item.get('reason')} (see the run in the Dagster UI)"
    title = _TITLES.get(item.get("event_type", ""), "Exception")
    return (f"{title}: {item.get('diff_type')} on {item.get('system')} for order {item.get('order_id')} "
            f"({item.get('severity')}, {money(item.get('amount_at_risk'), item.get('currency'))} at risk)")


def subject(message: dict[str, Any]) -> str:
    items = message["items"]
    if message["kind"] == "digest":
        total = message.get("total_items", len(items))
        return f"[recon] {total} exception update(s) for {message['owner']}"
    return f"[recon] {items[0].get('severity')}: {item_title(items[0])}"


def _diff_lines(item: dict[str, Any]) -> list[str]:
    out = []
    for d in item.get("diffs") or []:
        out.append(f"{d.get('system')} {d.get('diff_type')}: expected {d.get('expected')}, actual {d.get('actual')}")
    return out


def _facts(item: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("Order", str(item.get("order_id"))),
        ("Customer", str(item.get("customer_id") or "-")),
        ("Amount at risk", money(item.get("amount_at_risk"), item.get("currency"))),
        ("Owner", str(item.get("owner"))),
        ("Due", f"{item.get('due_at')} UTC" if item.get("due_at") else "-"),
        ("Severity", str(item.get("severity"))),
        ("Exception", str(item.get("exception_id"))),
        ("Timeline", str(item.get("timeline"))),
    ]


def text_body(message: dict[str, Any]) -> str:
    """Plain-text body (email, Slack fallback)."""
    lines: list[str] = []
    if message["kind"] == "digest":
        lines.append(subject(message).removeprefix("[recon] "))
        lines.append("")
    for item in message["items"]:
        lines.append(item_title(item))
        if item.get("reason"):
            lines.append(f"  why: {item['reason']}")
        for name, value in _facts(item):
            lines.append(f"  {name}: {value}")
        for diff in _diff_lines(item):
            lines.append(f"  - {diff}")
        lines.append("")
    more = message.get("total_items", len(message["items"])) - len(message["items"])
    if more > 0:
        lines.append(f"... and {more} more: recon exceptions list --owner {message['owner']}")
    return "\n".join(lines).rstrip() + "\n"


def html_body(message: dict[str, Any]) -> str:
    """HTML body (email)."""
    esc = html.escape
    parts = ["<html><body style=\"font-family: sans-serif\">"]
    if message["kind"] == "digest":
        parts.append(f"<h2>{esc(subject(message).removeprefix('[recon] '))}</h2>")
    for item in message["items"]:
        parts.append(f"<h3>{esc(item_title(item))}</h3>")
        if item.get("reason"):
            parts.append(f"<p>{esc(str(item['reason']))}</p>")
        parts.append("<table>")
        for name, value in _facts(item):
            parts.append(f"<tr><th align=\"left\">{esc(name)}</th><td>{esc(value)}</td></tr>")
        parts.append("</table>")
        diffs = item.get("diffs") or []
        if diffs:
            parts.append("<table border=\"1\" cellpadding=\"4\"><tr><th>System</th><th>Diff</th>"
                         "<th>Expected</th><th>Actual</th></tr>")
            for d in diffs:
                parts.append("<tr>" + "".join(f"<td>{esc(str(d.get(k)))}</td>"
                                              for k in ("system", "diff_type", "expected", "actual")) + "</tr>")
            parts.append("</table>")
    more = message.get("total_items", len(message["items"])) - len(message["items"])
    if more > 0:
        parts.append(f"<p>... and {more} more: <code>recon exceptions list --owner "
                     f"{esc(message['owner'])}</code></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def slack_payload(message: dict[str, Any]) -> dict[str, Any]:
    """Block Kit payload for an incoming webhook."""
    blocks: list[dict[str, Any]] = []
    items = message["items"]
    if message["kind"] == "digest":
        blocks.append({"type": "header", "text": {"type": "plain_text",
                                                  "text": subject(message).removeprefix("[recon] ")[:150]}})
    for item in items[:SLACK_MAX_ITEMS]:
        diffs = "\n".join(f"• {line}" for line in _diff_lines(item))
        text = f"*{item_title(item)}*" + (f"\n_{item['reason']}_" if item.get("reason") else "")
        if diffs:
            text += "\n" + diffs
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]},
                       "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in _facts(item)[:6]]})
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"Timeline: `{item.get('timeline')}` · exception `{item.get('exception_id')}`"}]})
    more = message.get("total_items", len(items)) - min(len(items), SLACK_MAX_ITEMS)
    if more > 0:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"... and {more} more: `recon exceptions list --owner {message['owner']}`"}]})
    return {"text": subject(message), "blocks": blocks}


def webhook_payload(message: dict[str, Any]) -> dict[str, Any]:
    """The generic JSON body for ticketing systems."""
    return {
        "message_id": message["message_id"],
        "kind": message["kind"],
        "owner": message["owner"],
        "channel": message["channel"],
        "subject": subject(message),
        "total_items": message.get("total_items", len(message["items"])),
        "items": message["items"],
    }
