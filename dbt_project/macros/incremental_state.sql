{#
  Incremental processing of the per-record and per-order models (docs/performance.md).

  The current view of a record, the repeated keys of a record, and the per-order aggregates are pure
  functions of (the staged rows of that record or order, the as-of day D, the config). So a model
  built for day P at time T only needs to recompute, for day D, the keys whose inputs may differ:

    * rows staged after T                      (_recon_loaded_at > T: new raw rows, re-staged rows)
    * rows whose visibility flips between P and D
                                               (visible_from in [min(cutoff P, cutoff D), max(...)):
                                                forwards for the nightly run, backwards for a backfill)
    * rows removed from staging after T        (recon_meta.dbt_staging_removed: quarantined later,
                                                deleted from raw, or re-staged after a mapping change)
    * records under a manual match             (recon.manual_matches: few, always recomputed)

  and, for the per-order models, every order such a record belongs or belonged to, plus the orders
  of customers whose record changed. Everything else is left as it is. The change set is computed
  once per run (int_changed_records) against the oldest state of the models that read it. A model is
  rebuilt in full when it has no state yet, when its fingerprint (its SQL, the recon var, the project
  fingerprint in RECON_DBT_FINGERPRINT) changed, or when a staging table was created since T.

  The diff and state models downstream (int_order_diffs_candidates, int_orders_stated,
  fct_order_state_history) also depend on D through the grace windows: they recompute the "due"
  orders (due_orders_predicate): the changed orders plus the orders one of whose grace anchors
  (grace_anchors()) lies where a window ends between their last as-of day P and D. The canonical state
  also reads which systems are stale as of D: those models put the stale set in their fingerprint
  (config recon_follows_staleness), so a change of it recomputes every order.

  State lives in recon_meta.dbt_incremental_state (one row per model: as_of_date, built_at,
  fingerprint, mode; the change set adds its base; a staging table records when it was created),
  written by hooks inside each model's transaction.
#}

{% macro incremental_state_relation() -%}
    {%- do return(api.Relation.create(database=target.database, schema='recon_meta', identifier='dbt_incremental_state')) -%}
{%- endmacro %}

{% macro staging_removed_relation() -%}
    {%- do return(api.Relation.create(database=target.database, schema='recon_meta', identifier='dbt_staging_removed')) -%}
{%- endmacro %}

{#- on-run-start: the two bookkeeping tables (created once, before any thread runs), and the removal
    log pruned of entries every incremental model has already consumed. -#}
{% macro create_incremental_state_tables() -%}
create schema if not exists recon_meta;
create table if not exists {{ incremental_state_relation() }} (
    model varchar, as_of_date date, built_at timestamp, fingerprint varchar, mode varchar,
    base_built_at timestamp, base_from date, base_to date);
create table if not exists {{ staging_removed_relation() }} (
    role varchar, source_system varchar, source_stream varchar, record_id varchar, order_id varchar,
    removed_at timestamp);
delete from {{ staging_removed_relation() }}
where removed_at < (select min(built_at) from {{ incremental_state_relation() }})
{%- endmacro %}

{#- The invocation's start (UTC) as a SQL timestamp: the clock of _recon_loaded_at and built_at. -#}
{% macro run_started_literal() -%}
cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{#- When a staged row becomes visible: it is visible as of D iff this is before cutoff(D)
    (the same predicate as is_visible_as_of, written as one value). -#}
{% macro visible_from(alias=none) -%}
    {%- set p = (alias ~ '.') if alias else '' -%}
(case when {{ p }}available_at is not null and {{ p }}available_at > {{ p }}updated_at then {{ p }}available_at else {{ p }}updated_at end)
{%- endmacro %}

{#- The key column of a role's records, and the columns its current view is partitioned by. -#}
{% macro role_record_id(role) -%}
    {%- do return(role_columns(role)[0][0]) -%}
{%- endmacro %}

{% macro role_key_columns(role) -%}
    {%- if role in ('orders', 'customers') -%}
        {%- do return([role_record_id(role)]) -%}
    {%- endif -%}
    {%- do return(['source_system', 'source_stream', role_record_id(role)]) -%}
{%- endmacro %}

{#- What a consumer's rows depend on besides the staged rows and D: its SQL, the recon var, the project
    fingerprint; and, for a model configured `recon_follows_staleness=true` (it reads which systems
    are stale as of D), the stale systems: when they change, every order may change. -#}
{% macro incremental_fingerprint() -%}
    {#- Never read at parse time: an env_var() read while parsing ties the file's partial parse to the
        variable's value, and dbt would re-parse every consumer on each run. -#}
    {%- if not execute -%}{%- do return('') -%}{%- endif -%}
    {%- set parts = [model.raw_code, tojson(var('recon', {})), env_var('RECON_DBT_FINGERPRINT', '')] -%}
    {%- if config.get('recon_follows_staleness') -%}
        {%- do parts.append(stale_systems_signature()) -%}
    {%- endif -%}
    {%- do return(local_md5(parts | join('|'))) -%}
{%- endmacro %}

{#- The stale systems as of D ('stale:' system/role, ...), from int_system_freshness. -#}
{% macro stale_systems_signature() -%}
    {%- set freshness = ref('int_system_freshness') -%}
    {%- if not execute -%}{%- do return('') -%}{%- endif -%}
    {%- set rows = run_query("select system || '/' || role from " ~ freshness ~ " where is_stale order by 1").rows -%}
    {%- set stale = [] -%}
    {%- for row in rows -%}{%- do stale.append(row[0]) -%}{%- endfor -%}
    {%- do return('stale:' ~ (stale | join(','))) -%}
{%- endmacro %}

{#- The models that read the change set, from dbt's graph, as state keys ('schema.identifier'). -#}
{% macro incremental_consumers() -%}
    {%- set keys = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model'
            and model.unique_id in node.depends_on.nodes -%}
        {%- do keys.append(node.schema ~ '.' ~ (node.alias or node.name)) -%}
    {%- endfor -%}
    {%- do return(keys | sort) -%}
{%- endmacro %}

{#- The key of a relation's row in the state table: 'schema.identifier'. -#}
{% macro state_key(relation) -%}
    {%- do return(relation.schema ~ '.' ~ relation.identifier) -%}
{%- endmacro %}

{#- The configuration of a model that reads the change set: incremental, a pre-hook deleting the rows
    `changed` selects (the text of a predicate macro call over the plan, rendered at run time), a
    post-hook recording the build. Returns the build's plan (see incremental_plan). -#}
{% macro incremental_consumer(changed) -%}
    {%- do config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        pre_hook="{{ delete_changed_rows(" ~ changed ~ ") }}",
        post_hook="{{ record_incremental_state(incremental_plan()) }}",
    ) -%}
    {%- do ref('int_changed_records') -%}
    {%- do return(incremental_plan()) -%}
{%- endmacro %}

{#- The state rows of the given models (state keys 'schema.identifier'): {key: {'as_of_date', 'built_at',
    'fingerprint', 'base_built_at', 'base_from', 'base_to', 'built_this_run', 'mode'}} (dates and
    timestamps as text). -#}
{% macro incremental_states(keys) -%}
    {%- set found = {} -%}
    {%- set state = adapter.get_relation(database=target.database, schema='recon_meta', identifier='dbt_incremental_state') -%}
    {%- if state is none -%}{%- do return(found) -%}{%- endif -%}
    {%- set literals = [] -%}
    {%- for key in keys -%}{%- do literals.append(recon_literal(key)) -%}{%- endfor -%}
    {%- set rows = run_query(
        "select model, cast(as_of_date as varchar), cast(built_at as varchar), fingerprint, "
        ~ "cast(base_built_at as varchar), cast(base_from as varchar), cast(base_to as varchar), "
        ~ "built_at = " ~ run_started_literal() ~ ", mode from " ~ state
        ~ " where model in (" ~ (literals | join(', ')) ~ ")").rows -%}
    {%- for row in rows -%}
        {%- do found.update({row[0]: {'as_of_date': row[1], 'built_at': row[2], 'fingerprint': row[3],
                                                     'base_built_at': row[4], 'base_from': row[5], 'base_to': row[6],
                                                     'built_this_run': row[7], 'mode': row[8]}}) -%}
    {%- endfor -%}
    {%- do return(found) -%}
{%- endmacro %}

{#- The plan of this consumer's build: {'full': bool, 'reason': str}. Incremental when the table and its
    state exist, its fingerprint is unchanged, and a change set was built in this run that covers its
    state (base_built_at <= its built_at and its day within [base_from, base_to]; no change set is
    built when a staging table was created since). Deterministic between the model's compilation, its
    pre-hook and its post-hook. -#}
{% macro incremental_plan() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {%- do return({'full': true, 'reason': 'new table' if execute else 'parse'}) -%}
    {%- endif -%}
    {%- set own = incremental_states([state_key(this)]).get(state_key(this)) -%}
    {%- if own is none -%}
        {%- do return({'full': true, 'reason': 'no incremental state for this model'}) -%}
    {%- endif -%}
    {%- if own.fingerprint != incremental_fingerprint() -%}
        {%- do return({'full': true, 'reason': 'model, config or project changed'
                       ~ (', or the stale systems' if config.get('recon_follows_staleness') else '')}) -%}
    {%- endif -%}
    {%- set changes = ref('int_changed_records') -%}
    {%- set base = incremental_states([state_key(changes)]).get(state_key(changes)) -%}
    {%- if base is none or not base.built_this_run -%}
        {%- do return({'full': true, 'reason': 'no change set built in this run'}) -%}
    {%- endif -%}
    {%- if base.base_built_at is none -%}
        {%- do return({'full': true, 'reason': base.mode}) -%}
    {%- endif -%}
    {%- if base.base_built_at > own.built_at or own.as_of_date < base.base_from or own.as_of_date > base.base_to -%}
        {%- do return({'full': true, 'reason': 'the change set does not cover this model'}) -%}
    {%- endif -%}
    {%- do return({'full': false, 'as_of_date': own.as_of_date,
                   'reason': 'changes since ' ~ own.built_at ~ ' (as of ' ~ own.as_of_date ~ ')'}) -%}
{%- endmacro %}

{#- The base the change set is computed against: the oldest build and the span of as-of days of the
    consumers that have state ({'built_at', 'from', 'to'}); or {'none': why} when there is none: no
    consumer has state, or a staging table was created since (it cannot say which rows it lost). -#}
{% macro change_set_base() -%}
    {%- if not execute -%}{%- do return({'none': 'parse'}) -%}{%- endif -%}
    {%- set states = incremental_states(incremental_consumers()) -%}
    {%- if not states -%}{%- do return({'none': 'no consumer has state: they build in full'}) -%}{%- endif -%}
    {%- set built = [] -%}{%- set days = [as_of_date_value().isoformat()] -%}
    {%- for state in states.values() -%}
        {%- do built.append(state.built_at) -%}{%- do days.append(state.as_of_date) -%}
    {%- endfor -%}
    {%- set created = run_query(
        "select count(*) from " ~ incremental_state_relation() ~ " where mode = 'created' and built_at > "
        ~ incremental_timestamp(built | min)).rows[0][0] -%}
    {%- if created > 0 -%}
        {%- do return({'none': 'a staging table was created since the last build: consumers build in full'}) -%}
    {%- endif -%}
    {%- do return({'built_at': built | min, 'from': days | min, 'to': days | max}) -%}
{%- endmacro %}

{% macro incremental_timestamp(text) -%}
cast('{{ text }}' as timestamp)
{%- endmacro %}

{#- The staged rows of `role` that may change the role's records since `base`: staged after
    base.built_at, visibility flipping between base.from and base.to, under a manual match; plus the
    removed rows from the log. Columns: the role's key columns and order_id. -#}
{% macro changed_role_rows(role, base) -%}
    {%- set keys = role_key_columns(role) -%}
    {%- set lo = modules.datetime.datetime.strptime(base['from'], '%Y-%m-%d') + modules.datetime.timedelta(days=1) -%}
    {%- set hi = modules.datetime.datetime.strptime(base['to'], '%Y-%m-%d') + modules.datetime.timedelta(days=1) -%}
    {%- set matches = existing_relation('recon', 'manual_matches') if role in ('payments', 'invoices', 'fulfillments') else none -%}
select {{ keys | join(', ') }}, {{ 'order_id' if role != 'customers' else 'cast(null as varchar) as order_id' }}
from {{ ref('int_' ~ role ~ '_unioned') }} as staged
where staged._recon_loaded_at > {{ incremental_timestamp(base.built_at) }}
    {%- if lo != hi %}
    or ({{ visible_from('staged') }} >= cast('{{ lo.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
        and {{ visible_from('staged') }} < cast('{{ hi.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp))
    {%- endif %}
    {%- if matches is not none %}
    or (staged.source_system, staged.order_id) in (select system, matched_order_id from {{ matches }})
    {%- endif %}
union all
select
    {%- if role in ('orders', 'customers') %}
    record_id as {{ keys[0] }},
    {%- else %}
    source_system, source_stream, record_id as {{ keys[2] }},
    {%- endif %}
    order_id
from {{ staging_removed_relation() }}
where role = {{ recon_literal(role) }}
    and removed_at > {{ incremental_timestamp(base.built_at) }}
{%- endmacro %}

{#- A predicate keeping the rows of `role` (columns named as in the role, or `columns` given) whose
    key is in this run's change set; `true` for a full build. -#}
{% macro changed_keys_predicate(role, plan, columns=none) -%}
    {%- if plan.full -%}
true
    {%- else -%}
    {%- set keys = columns or role_key_columns(role) -%}
    {%- set changed = ['record_id'] if keys | length == 1 else ['source_system', 'source_stream', 'record_id'] -%}
({{ keys | join(', ') }}) in (select {{ changed | join(', ') }} from {{ ref('int_changed_records') }} where role = {{ recon_literal(role) }})
    {%- endif -%}
{%- endmacro %}

{#- The changed-orders predicate over a per-order model's order_id; `true` for a full build. -#}
{% macro changed_orders_predicate(plan) -%}
    {%- if plan.full -%}
true
    {%- else -%}
order_id in (select order_id from {{ ref('int_changed_records') }} where order_id is not null)
    {%- endif -%}
{%- endmacro %}

{#- The orders a per-order diff or state model must recompute: the changed orders, and the orders
    some grace window of which ends between the model's last as-of day and D (a rule may start or
    stop firing without any record changing); `true` for a full build. -#}
{% macro due_orders_predicate(plan) -%}
    {%- set aggregated = ref('int_orders_aggregated') -%}
    {%- set orphans = ref('int_records_orphaned') -%}
    {%- if plan.full -%}
true
    {%- else -%}
(
    {{ changed_orders_predicate(plan) }}
    or order_id in (
        select order_id from {{ aggregated }}
        where {{ grace_crossed('int_orders_aggregated', plan.as_of_date, as_of_date_value()) }})
    or order_id in (
        select order_id from {{ orphans }}
        where {{ grace_crossed('int_records_orphaned', plan.as_of_date, as_of_date_value()) }})
)
    {%- endif -%}
{%- endmacro %}

{#- The changed-keys predicate over int_source_keys_repeated's columns (role, source_system,
    source_stream, record_id). -#}
{% macro changed_repeated_keys_predicate(plan) -%}
    {%- if plan.full -%}
true
    {%- else -%}
(
    {%- for role in ['orders', 'payments', 'invoices', 'fulfillments'] %}
    {{ 'or ' if not loop.first }}(role = {{ recon_literal(role) }} and {{ changed_keys_predicate(role, plan, ['record_id'] if role == 'orders' else ['source_system', 'source_stream', 'record_id']) }})
    {%- endfor %}
)
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of an incremental model: delete the rows about to be recomputed (all of them for a full
    build). `predicate` is the changed-keys predicate over the model's own columns. -#}
{% macro delete_changed_rows(predicate) -%}
    {%- if is_incremental() -%}
delete from {{ this }} where {{ predicate }}
    {%- else -%}
select 1
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of int_changed_records: the base its change set was computed against. -#}
{% macro record_change_set_state() -%}
    {%- set base = change_set_base() -%}
delete from {{ incremental_state_relation() }} where model = {{ recon_literal(state_key(this)) }};
insert into {{ incremental_state_relation() }} (model, as_of_date, built_at, fingerprint, mode, base_built_at, base_from, base_to)
values ({{ recon_literal(state_key(this)) }}, {{ as_of_date() }}, {{ run_started_literal() }}, null,
    {%- if 'none' in base %}
        {{ recon_literal(base['none']) }}, null, null, null)
    {%- else %}
        'changes since the oldest consumer build', {{ incremental_timestamp(base.built_at) }},
        cast('{{ base['from'] }}' as date), cast('{{ base['to'] }}' as date))
    {%- endif %}
{%- endmacro %}

{#- Pre-hook of a staging table about to be created: the consumers cannot trust their state any more. -#}
{% macro record_staging_created() -%}
delete from {{ incremental_state_relation() }} where model = {{ recon_literal(state_key(this)) }};
insert into {{ incremental_state_relation() }} (model, as_of_date, built_at, mode)
values ({{ recon_literal(state_key(this)) }}, {{ as_of_date() }}, {{ run_started_literal() }}, 'created')
{%- endmacro %}

{#- Post-hook: the state this build leaves (read by the next build's incremental_plan). -#}
{% macro record_incremental_state(plan) -%}
delete from {{ incremental_state_relation() }} where model = {{ recon_literal(state_key(this)) }};
insert into {{ incremental_state_relation() }} (model, as_of_date, built_at, fingerprint, mode)
values ({{ recon_literal(state_key(this)) }}, {{ as_of_date() }}, {{ run_started_literal() }},
        {{ recon_literal(incremental_fingerprint()) }}, {{ recon_literal(('full: ' if plan.full else 'incremental: ') ~ plan.reason) }})
{%- endmacro %}



{#- The plan of a build of fct_order_state_history (an incremental_plan). Comparing only the orders due
    since its last build P (due_orders_predicate) is exact when nothing else can differ from P's
    comparison: D = P (a rerun: the other orders' rows of D stand), or D after P with no history rows
    between them (the other orders are as of D as they were as of P, which is their latest row before D:
    no row for D). Otherwise, a backfill before P or days built between P and D, every order of D is
    compared, as in a full build (the table is kept: it holds the other days). -#}
{% macro order_history_plan() -%}
    {%- set plan = incremental_plan() -%}
    {%- if plan.full -%}{%- do return(plan) -%}{%- endif -%}
    {%- set day = as_of_date_value() | string -%}
    {%- if plan.as_of_date > day -%}
        {%- do return({'full': true, 'reason': 'backfill before the last built day: every order compared'}) -%}
    {%- endif -%}
    {%- if plan.as_of_date < day -%}
        {%- set between = run_query("select count(*) from " ~ this ~ " where as_of_date > cast('" ~ plan.as_of_date
                                    ~ "' as date) and as_of_date < " ~ as_of_date()).rows[0][0] -%}
        {%- if between > 0 -%}
            {%- do return({'full': true, 'reason': 'days built between the last build and D: every order compared'}) -%}
        {%- endif -%}
    {%- endif -%}
    {%- do return(plan) -%}
{%- endmacro %}

{#- The rows of D a history build replaces: all of them, except on a rerun of the same day, where only
    the due orders' rows are recomputed. none = all. -#}
{% macro order_history_rows_to_replace(plan) -%}
    {%- if not plan.full and plan.as_of_date == (as_of_date_value() | string) -%}
        {%- do return(due_orders_predicate(plan)) -%}
    {%- endif -%}
    {%- do return(none) -%}
{%- endmacro %}
