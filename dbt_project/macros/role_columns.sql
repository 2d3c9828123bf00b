{#
  The canonical staged columns of each role (name, SQL type), in order; see docs/reconciliation-rules.md.
  Lineage columns (lineage_columns()) come first in every staged row. dagster_project/lib/dbt_codegen.py
  documents the same list; tests/test_dbt_models.py checks the two agree.
#}
{% macro role_columns(role) -%}
    {%- set money = 'decimal(20,4)' -%}
    {%- set columns = {
        'orders': [
            ('order_id', 'varchar'), ('customer_id', 'varchar'), ('status', 'varchar'), ('currency', 'varchar'),
            ('total_amount', money), ('line_count', 'bigint'), ('ordered_at', 'timestamp'), ('updated_at', 'timestamp')],
        'payments': [
            ('payment_id', 'varchar'), ('order_id', 'varchar'), ('customer_id', 'varchar'), ('kind', 'varchar'),
            ('status', 'varchar'), ('currency', 'varchar'), ('amount', money), ('refunded_amount', money),
            ('captured_at', 'timestamp'),
            ('updated_at', 'timestamp')],
        'invoices': [
            ('invoice_id', 'varchar'), ('order_id', 'varchar'), ('customer_id', 'varchar'), ('kind', 'varchar'),
            ('status', 'varchar'), ('currency', 'varchar'), ('amount', money), ('credited_amount', money),
            ('issued_at', 'timestamp'),
            ('updated_at', 'timestamp')],
        'fulfillments': [
            ('fulfillment_id', 'varchar'), ('order_id', 'varchar'), ('kind', 'varchar'), ('status', 'varchar'),
            ('line_count', 'bigint'), ('fulfilled_at', 'timestamp'), ('updated_at', 'timestamp')],
        'customers': [
            ('customer_id', 'varchar'), ('segment', 'varchar'), ('plan', 'varchar'), ('account_owner', 'varchar'),
            ('updated_at', 'timestamp')],
    } -%}
    {%- if role not in columns -%}
        {{ exceptions.raise_compiler_error("unknown role '" ~ role ~ "' (expected one of " ~ (columns.keys() | list | join(', ')) ~ ")") }}
    {%- endif -%}
    {%- do return(columns[role]) -%}
{%- endmacro %}
