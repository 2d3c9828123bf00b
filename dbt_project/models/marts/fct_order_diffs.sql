-- The diff history: one row per (as_of_date, order_id, diff_type, system) that fires as of D and is not
-- suppressed by a stale source. Incremental: a run of D replaces exactly D's rows.
{{ day_history() }}

with

diffs as (

    select * from {{ ref('int_order_diffs_classified') }}
    where not is_suppressed

),

{%- if is_incremental() %}

history as (

    select
        order_id,
        diff_type,
        system,
        min(as_of_date) as first_seen_date
    from {{ this }}
    where as_of_date < {{ as_of_date() }}
        and (order_id, diff_type, system) in (select order_id, diff_type, system from diffs)
    group by order_id, diff_type, system

),
{%- endif %}

final as (

    select
        {{ as_of_date() }} as as_of_date,
        {{ dbt.hash("'" ~ as_of_date_value().isoformat() ~ "' || '|' || diffs.order_id || '|' || diffs.diff_type || '|' || diffs.system") }} as diff_id,
        diffs.order_id,
        diffs.customer_id,
        diffs.diff_type,
        diffs.system,
        diffs.role,
        {{ diff_severity('diffs.diff_type', 'diffs.amount_at_risk') }} as severity,
        diffs.systems_involved,
        diffs.expected_value,
        diffs.actual_value,
        diffs.amount_at_risk,
        diffs.currency,
        {{ diff_owner('diffs.diff_type', 'diffs.role') }} as owner,
        {%- if is_incremental() %}
        coalesce(history.first_seen_date, {{ as_of_date() }}) as first_seen_date,
        {%- else %}
        {{ as_of_date() }} as first_seen_date,
        {%- endif %}
        diffs.rule,
        'select * from {{ this.schema }}.{{ this.identifier }} where as_of_date = date '
            || '''{{ as_of_date_value().isoformat() }}'' and order_id = '''
            || replace(diffs.order_id, '''', '''''') || '''' as reproduce_sql,
        'recon order ' || {{ shell_quote('diffs.order_id') }} || ' --as-of {{ as_of_date_value().isoformat() }}'
            as reproduce_command
    from diffs
    {%- if is_incremental() %}
    left join history
        on diffs.order_id = history.order_id
        and diffs.diff_type = history.diff_type
        and diffs.system = history.system
    {%- endif %}

)

select * from final
