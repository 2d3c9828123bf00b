{#
  The lineage columns every staged row carries, (name, SQL type), in order. A delivery is one landed
  file (path and modification time) or one sync of a record connector: `delivery_id` names it (unique
  per landing: the same file landed twice is two deliveries), `delivered_at` orders deliveries (when it
  became known: the file's modification time, else the extraction time).
#}
{% macro lineage_columns() -%}
    {%- do return([
        ('source_system', type_text()), ('source_stream', type_text()), ('_airbyte_raw_id', type_text()),
        ('_airbyte_extracted_at', 'timestamp'), ('available_at', 'timestamp'), ('delivery_id', type_text()),
        ('delivered_at', 'timestamp')]) -%}
{%- endmacro %}
