{#
  The canonical staged columns of each role (name, SQL type), in order; see docs/reconciliation-rules.md.
  Declared once, in ingestion/catalogue.py; the platform passes them in the dbt vars
  (`recon.catalogue.role_columns`). Lineage columns (lineage_columns()) come first in every staged row.
#}
{% macro role_columns(role) -%}
    {%- set columns = recon_config().catalogue.get('role_columns') or {} -%}
    {%- if role not in columns -%}
        {%- if not execute -%}{%- do return([]) -%}{%- endif -%}
        {{ exceptions.raise_compiler_error("unknown role '" ~ role ~ "' (expected one of " ~ (columns.keys() | list | join(', ')) ~ "; the dbt var recon.catalogue comes from the platform config)") }}
    {%- endif -%}
    {%- do return(columns[role]) -%}
{%- endmacro %}
