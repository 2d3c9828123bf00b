{#
  The relation schema.identifier of the target database when it exists, else none; at parse time
  (execute is false) always none. For tables written outside dbt that a model reads when present:
  recon.manual_matches (the owners' CLI), recon_meta.contract_quarantined_ids (the contract checks).
#}
{% macro existing_relation(schema, identifier) -%}
    {%- if not execute -%}{%- do return(none) -%}{%- endif -%}
    {%- do return(adapter.get_relation(database=target.database, schema=schema, identifier=identifier)) -%}
{%- endmacro %}
