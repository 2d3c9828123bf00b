{#
  The lineage columns every staged row carries, (name, SQL type), in order.
#}
{% macro lineage_columns() -%}
    {%- do return([
        ('source_system', 'varchar'), ('source_stream', 'varchar'), ('_airbyte_raw_id', 'varchar'),
        ('_airbyte_extracted_at', 'timestamp'), ('available_at', 'timestamp'), ('_recon_loaded_at', 'timestamp')]) -%}
{%- endmacro %}
