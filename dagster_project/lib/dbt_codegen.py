"""Generate the config-dependent part of the dbt project: sources and staging models.

The staging layer has one model per configured source stream, so it cannot be committed: it is
rendered from the platform config into a per-config dbt project folder (``<state_dir>/dbt/project``,
laid out by :func:`lay_out_project`: links to the committed project plus ``generated/staging/``) before
dbt parses. Two configs never write the same files, so they can run (and be tested) at once. Each generated model is one line calling the committed ``stage_stream`` macro, which reads
the field mapping from the dbt var ``recon``; the YAML files carry the sources (keyed to the ingestion
assets ``raw/<system>/<stream>``) and the documentation of every generated model and column.

Everything here is a pure function of its arguments (the two writers write only what they are
given); nothing happens at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# A second model path of the dbt project (dbt_project.yml `model-paths`): files in it get the fqn
# order_recon.staging.<name>, so dbt_project.yml's `staging:` configs apply to them.
GENERATED_DIR = Path("generated") / "staging"
# What a per-config project never links from the committed one: dbt's own output and the generated part.
_NOT_LINKED = {"target", "logs", "dbt_packages", "generated", ".user.yml"}

LINEAGE_COLUMNS: list[tuple[str, str]] = [
    ("source_system", "Name of the configured source system the row came from."),
    ("source_stream", "Name of the source stream (raw table) the row came from."),
    ("_airbyte_raw_id", "Airbyte record id of the raw row (lineage back to raw_<system>.<stream>)."),
    ("_airbyte_extracted_at", "When the connector extracted the row (UTC)."),
    (
        "available_at",
        "When the row became known to us (UTC): the modification time of the file it came in "
        "(_ab_source_file_last_modified); null for sources without such a notion.",
    ),
    (
        "delivery_id",
        "The delivery the row came in: one landed file (path, landing) or one sync of a record connector. "
        "A key repeated inside one delivery with the same updated_at is a duplicate_record.",
    ),
    (
        "delivered_at",
        "When the delivery became known (UTC): available_at, else the extraction time. Orders the versions "
        "of a record and picks a snapshot stream's snapshot in force.",
    ),
]

# Canonical columns per role (docs/reconciliation-rules.md). Must match macros/role_columns.sql.
ROLE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "orders": [
        ("order_id", "Order identifier (the key of the canonical order)."),
        ("customer_id", "Customer the order belongs to."),
        ("status", "Order status: placed or cancelled (unmapped words kept lower-cased)."),
        ("currency", "ISO 4217 currency of the order, upper case."),
        ("total_amount", "Order total in its currency, DECIMAL(20,4)."),
        ("line_count", "Number of order lines."),
        ("ordered_at", "When the order was placed (UTC)."),
        ("updated_at", "When this version of the order was last changed in the source (UTC)."),
    ],
    "payments": [
        ("payment_id", "Payment (charge or refund) identifier."),
        ("order_id", "Order the payment belongs to."),
        ("customer_id", "Customer named on the payment."),
        ("kind", "charge or refund."),
        ("status", "succeeded, failed or pending (unmapped words kept lower-cased)."),
        ("currency", "ISO 4217 currency of the payment, upper case."),
        ("amount", "Payment amount, positive, in major units, DECIMAL(20,4)."),
        ("refunded_amount", "A charge's refunded total as the charge reports it (the amount-on-the-charge refund "
                            "shape); null when refunds come as records of their own."),
        ("captured_at", "When the charge was captured or the refund made (UTC)."),
        ("updated_at", "When this version of the payment was last changed in the source (UTC)."),
    ],
    "invoices": [
        ("invoice_id", "Billing document identifier."),
        ("order_id", "Order the document belongs to."),
        ("customer_id", "Customer named on the document."),
        ("kind", "invoice or credit_note."),
        ("status", "posted, draft or void (unmapped words kept lower-cased)."),
        ("currency", "ISO 4217 currency of the document, upper case."),
        ("amount", "Document amount, positive, DECIMAL(20,4)."),
        ("credited_amount", "An invoice's credited total as the invoice reports it (the amount-on-the-invoice "
                            "credit shape); null when credit notes come as documents of their own."),
        ("issued_at", "Document date (UTC)."),
        ("updated_at", "When this version of the document was last changed in the source (UTC)."),
    ],
    "fulfillments": [
        ("fulfillment_id", "Shipment or activation identifier."),
        ("order_id", "Order fulfilled."),
        ("kind", "shipment or activation."),
        ("status", "pending, shipped, delivered, activated, cancelled or returned."),
        ("line_count", "Number of order lines this fulfillment covers."),
        ("fulfilled_at", "When the goods shipped or the entitlement was activated (UTC)."),
        ("updated_at", "When this version of the fulfillment was last changed in the source (UTC)."),
    ],
    "customers": [
        ("customer_id", "Customer identifier."),
        ("segment", "Customer segment."),
        ("plan", "Entitlement or plan."),
        ("account_owner", "Account owner in the CRM."),
        ("updated_at", "When this version of the customer was last changed in the source (UTC)."),
    ],
}

_HEADER = "# Generated by dagster_project/lib/dbt_codegen.py from the platform config. Do not edit.\n"


def model_name(system: str, stream: str) -> str:
    """The dbt model name of a staged stream.

    Args:
        system: configured system name.
        stream: stream name within the system.

    Returns:
        ``stg_<system>__<stream>``.
    """
    return f"stg_{system}__{stream}"


def _systems(recon_vars: Mapping[str, Any]) -> dict[str, Any]:
    recon = recon_vars.get("recon", recon_vars)
    return dict(recon.get("systems") or {})


def _field_doc(name: str, base: str, spec: Any) -> str:
    if spec is None:
        return f"{base} Not mapped for this stream: always null."
    if isinstance(spec, str):
        spec = {"from": spec}
    if spec.get("value") is not None:
        return f"{base} Constant '{spec['value']}'."
    source = spec.get("from")
    extra = []
    for key in ("type", "unit", "sign", "timezone", "transform"):
        if spec.get(key):
            extra.append(f"{key} {spec[key]}")
    if spec.get("formats"):
        extra.append("formats " + ", ".join(spec["formats"]))
    if spec.get("values"):
        extra.append("values mapped from " + ", ".join(sorted(str(k) for k in spec["values"])))
    detail = f" ({'; '.join(extra)})" if extra else ""
    return f"{base} From `{source}`{detail}."


def render_files(recon_vars: Mapping[str, Any]) -> dict[str, str]:
    """Render the generated dbt files for a config.

    Args:
        recon_vars: the dbt vars dict (``{"recon": {...}, ...}``) or its ``recon`` value.

    Returns:
        File name (inside the generated folder) -> file content, deterministic for a given config.
    """
    systems = _systems(recon_vars)
    files: dict[str, str] = {}
    sources: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    for system in sorted(systems):
        cfg = systems[system] or {}
        role = cfg.get("role")
        if role not in ROLE_COLUMNS:
            raise ValueError(f"system '{system}': unknown role '{role}' (expected one of {sorted(ROLE_COLUMNS)})")
        streams = cfg.get("streams") or {}
        tables = []
        for stream in sorted(streams):
            scfg = streams[stream] or {}
            pk = ", ".join(scfg.get("primary_key") or []) or "none"
            tables.append(
                {
                    "name": stream,
                    "description": (
                        f"Raw `{stream}` records of {system} ({role} role) as landed by the "
                        f"{cfg.get('connector', 'configured')} connector (Airbyte v2 layout). "
                        f"Primary key: {pk}; cursor: {scfg.get('cursor_field') or 'none'}."
                    ),
                    "meta": {"dagster": {"asset_key": ["raw", system, stream]}},
                }
            )
            name = model_name(system, stream)
            files[f"{name}.sql"] = (
                "-- Generated by dagster_project/lib/dbt_codegen.py from the platform config. Do not edit.\n"
                f"{{{{ stage_stream('{system}', '{stream}') }}}}\n"
            )
            fields = scfg.get("fields") or {}
            columns = [{"name": n, "description": d} for n, d in LINEAGE_COLUMNS]
            for col, base in ROLE_COLUMNS[role]:
                columns.append({"name": col, "description": _field_doc(col, base, fields.get(col))})
            models.append(
                {
                    "name": name,
                    "description": (
                        f"{system}.{stream} staged into the canonical {role} columns: renamed, typed, "
                        "unit-converted, timestamps in UTC, plus lineage columns. One row per raw row "
                        f"(all versions; sync_mode {scfg.get('sync_mode') or 'append'}; the current version "
                        "as of D is chosen downstream: reconciliation rules, records and versions)."
                    ),
                    "meta": {"recon": {"system": system, "stream": stream, "role": role}},
                    "columns": columns,
                }
            )
        description = cfg.get("description") or f"Source system {system}."
        sources.append(
            {
                "name": f"raw_{system}",
                "schema": f"raw_{system}",
                "description": f"{description} Role: {role}. Raw tables written by the ingestion connector.",
                "tables": tables,
            }
        )
    dump = {"sort_keys": False, "default_flow_style": False, "allow_unicode": True, "width": 110}
    files["_sources.yml"] = _HEADER + yaml.safe_dump({"version": 2, "sources": sources}, **dump)
    files["_models.yml"] = _HEADER + yaml.safe_dump({"version": 2, "models": models}, **dump)
    return files


def write_generated_files(project_dir: Path, recon_vars: dict) -> bool:
    """Write the generated sources and staging models into the dbt project.

    Writes only files whose content differs and removes stale generated files (streams no longer
    configured), so an unchanged config leaves every file (and dbt's partial parse) untouched.

    Args:
        project_dir: the dbt project directory (holding dbt_project.yml).
        recon_vars: the dbt vars dict (``load_config(path).dbt_vars(...)``) or its ``recon`` value.

    Returns:
        True if any file was written or removed.
    """
    files = render_files(recon_vars)
    target = Path(project_dir) / GENERATED_DIR
    target.mkdir(parents=True, exist_ok=True)
    changed = False
    for name, content in files.items():
        path = target / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            changed = True
    for path in sorted(target.iterdir()):
        if path.is_file() and path.name not in files and path.suffix in {".sql", ".yml"}:
            path.unlink()
            changed = True
    return changed


def lay_out_project(project_dir: Path, committed_dir: Path, recon_vars: dict) -> bool:
    """Lay out a dbt project for one config: links to the committed project plus its generated staging.

    ``project_dir`` gets a symbolic link to every top-level entry of ``committed_dir`` (dbt_project.yml,
    profiles.yml, macros/, models/, tests/, ...), so edits to the committed models are seen at once,
    and a real ``generated/`` folder written by :func:`write_generated_files`. dbt's target and logs
    go wherever the caller points them; nothing is written into ``committed_dir``.

    Returns:
        True if any generated file or link was written or removed.
    """
    project_dir = Path(project_dir)
    committed_dir = Path(committed_dir).resolve()
    project_dir.mkdir(parents=True, exist_ok=True)
    changed = False
    wanted = {p.name: p for p in committed_dir.iterdir() if p.name not in _NOT_LINKED}
    for entry in project_dir.iterdir():
        if entry.is_symlink() and (entry.name not in wanted or entry.resolve() != wanted[entry.name]):
            entry.unlink()
            changed = True
    for name, source in sorted(wanted.items()):
        link = project_dir / name
        if not link.is_symlink():
            if link.exists():
                raise FileExistsError(f"{link} exists and is not a link to {source}: remove it")
            link.symlink_to(source, target_is_directory=source.is_dir())
            changed = True
    return write_generated_files(project_dir, recon_vars) or changed
