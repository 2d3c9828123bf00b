"""What ``recon config validate`` prints about a valid config: systems, each role's fields, suites.

Also :func:`check_buildable`, the checks of what would otherwise fail only later, in a run.
"""

from __future__ import annotations

from dagster_project.config.model import ConfigError, ReconConfig
from ingestion.catalogue import ROLE_FIELDS, ROLE_VALUES


def role_fields(role: str) -> tuple[list[str], list[str]]:
    """The canonical fields of a role.

    Args:
        role: one of ``ROLES``.

    Returns:
        (required field names, optional field names), in the catalogue's order.
    """
    fields = ROLE_FIELDS[role]
    return [n for n, (_, req) in fields.items() if req], [n for n, (_, req) in fields.items() if not req]


def _field_list(names: list[str], mapped: set[str], role: str) -> str:
    out = []
    for name in names:
        words = ROLE_VALUES.get(role, {}).get(name)
        label = f"{name} [{'|'.join(words)}]" if words else name
        out.append(label if name in mapped else f"{label} (not mapped)")
    return ", ".join(out) or "-"


def describe_config(config: ReconConfig) -> str:
    """The report of a valid config: one block per system with each stream's mapped fields.

    Args:
        config: the validated config.

    Returns:
        Text lines for the terminal.
    """
    from dagster_project.contracts.suites import expectations_dir_for, is_committed

    lines = []
    for name, system in sorted(config.systems.items()):
        fresh = "never stale" if system.freshness_hours is None else f"stale after {system.freshness_hours:g} h"
        lines.append(f"  {name:<10} {system.role:<13} {system.connector:<10} {fresh}")
        required, optional = role_fields(system.role)
        for stream_name, stream in sorted(system.streams.items()):
            mapped = set(stream.fields)
            lines.append(f"    {stream_name}: required {_field_list(required, mapped, system.role)}")
            lines.append(f"    {' ' * len(stream_name)}  optional {_field_list(optional, mapped, system.role)}")
    suites = expectations_dir_for(config)
    where = ("the project's committed demo suites" if is_committed(suites)
             else "this config's own; missing ones are generated on the first run")
    lines.append(f"  contract suites: {suites} ({where})")
    schedule = config.project.schedule
    lines.append(f"  schedule: '{schedule.cron}' in {schedule.timezone}; first as-of day {config.project.start_date}")
    lines.append(f"  duckdb: {config.duckdb_path}")
    if config.warehouse.engine != "duckdb":
        from dagster_project.warehouse import where_is

        lines.append(f"  warehouse: {config.warehouse.engine} at {where_is(config)}; the dbt project runs there")
    return "\n".join(lines)


def check_buildable(config: ReconConfig) -> None:
    """Build what a run builds from the config alone (each stream's contract), without data or dbt.

    Args:
        config: the validated config.

    Raises:
        ConfigError: naming the stream and what is wrong.
    """
    from dagster_project.contracts.rules import build_contract, load_overrides
    from dagster_project.contracts.suites import OVERRIDES_FILE, expectations_dir_for

    overrides_file = expectations_dir_for(config) / OVERRIDES_FILE
    try:
        overrides = load_overrides(overrides_file)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"invalid contract overrides: {exc}") from None
    for name, system in sorted(config.systems.items()):
        for stream in sorted(system.streams):
            try:
                build_contract(config, name, stream, overrides)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ConfigError(f"invalid config {config.source_file}: systems.{name}.streams.{stream}: "
                                  f"its contract cannot be built: {exc}") from None
    if config.warehouse.engine != "duckdb":  # Postgres reachable, logged into, sorting as DuckDB; Spark installed
        from dagster_project.warehouse import WarehouseError, check_engine

        try:
            check_engine(config)
        except WarehouseError as exc:
            raise ConfigError(f"invalid config {config.source_file}: warehouse: {exc}") from None
