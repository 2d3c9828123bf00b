{#
  The body of a generated staging model stg_<system>__<stream>: selects the raw Airbyte table
  raw_<system>.<stream> and renders it into the lineage columns plus the canonical columns of the
  system's role, following the stream's `fields` mapping from var recon.systems:
    from       `col` (plain column) or `col.a.b` (column holding JSON, at path $.a.b); value: a constant
    type       string | decimal | integer | timestamp | json_array_length | boolean
    unit       minor: divide by the currency's minor-unit factor (uses the row's canonical currency)
    sign       abs | negate
    formats    timestamp patterns (strptime / epoch_seconds / epoch_millis); timezone for naive text
    values     case-insensitive vocabulary map; unmapped words kept lower-cased unless `default`
    transform  upper | lower | trim
  Casts go through text where the raw type is unknown (CSV varchar, JSONL json/varchar, Parquet native),
  using the raw column types when the relation exists. Empty strings are NULL. Only renaming, casting
  and unit conversion: no joins, no aggregation (the one filter leaves out rows that the contract
  checks quarantined, listed in recon_meta.contract_quarantined_ids). An unmapped canonical column is a typed NULL
  (`kind` defaults to charge / invoice / shipment for payments / invoices / fulfillments).

  Incremental: a staging table keeps every raw row it staged, with the mapping hash it was staged
  under (_recon_stage_hash) and when (_recon_loaded_at, the dbt invocation's start). Each build stages
  only the raw rows it has not seen; its pre-hook (stage_removals) first removes, and logs to
  recon_meta.dbt_staging_removed, the rows that are gone from raw, were quarantined since, or were
  staged under another mapping (those are re-staged by the same build). So a night parses only the
  night's new rows, and a mapping change re-stages its stream by itself.

  The common night only appends (a sync lands rows extracted after everything staged): the pre-hook
  checks that cheaply (stage_plan: the staged ids equal the landed, unquarantined ids extracted up to
  the newest staged extraction time, by count and an order-independent digest, and no row has a stale
  mapping hash) and then skips the removal pass and lets the build read only the rows extracted since
  (instead of two anti-joins over every raw id). Anything else (a deleted, late or quarantined row, a
  mapping change) fails the check and takes the full pass. The decision is made once, when the model is
  compiled (its SQL then compares the raw extraction time with a literal, which the database can use to
  skip the raw table's older row groups; a subquery there read the whole raw table), and handed to the
  pre-hook through a temporary table (recon_stage_plan__<model>): dbt compiles and runs a node on one
  connection, in that order.
#}
{% macro stage_stream(system, stream) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        pre_hook=["{{ stage_removals('" ~ system ~ "', '" ~ stream ~ "') }}"],
    ) }}
    {%- set cfg = recon_config() -%}
    {%- if system not in cfg.systems or stream not in (cfg.systems[system].get('streams') or {}) -%}
        {{ exceptions.raise_compiler_error("stage_stream: stream '" ~ system ~ "." ~ stream ~ "' is not in var recon.systems (regenerate the staging models)") }}
    {%- endif -%}
    {%- set role = cfg.systems[system].role -%}
    {%- set fields = cfg.systems[system].streams[stream].get('fields') or {} -%}
    {%- set relation = source('raw_' ~ system, stream) -%}
    {%- set types = raw_column_types(relation) -%}
    {%- set mapping_hash = stage_hash(system, stream, types) -%}
    {#- Rows the contract checks quarantined are left out of the reconciliation (they become
        contract_violation exceptions instead). The view exists once the contracts have run. -#}
    {%- set quarantine = existing_relation('recon_meta', 'contract_quarantined_ids') -%}
    {%- set kind_defaults = {'payments': 'charge', 'invoices': 'invoice', 'fulfillments': 'shipment'} -%}
    {%- set rendered = {} -%}
    {#- currency first: `unit: minor` amounts need the row's canonical currency -#}
    {%- set names = [] -%}
    {%- for name, type in role_columns(role) -%}{%- if name == 'currency' -%}{%- do names.insert(0, (name, type)) -%}{%- else -%}{%- do names.append((name, type)) -%}{%- endif -%}{%- endfor -%}
    {%- for name, canonical_type in names -%}
        {%- set spec = fields.get(name) -%}
        {%- if spec is string -%}{%- set spec = {'from': spec} -%}{%- endif -%}
        {%- if spec is none and name == 'kind' and role in kind_defaults -%}{%- set spec = {'value': kind_defaults[role]} -%}{%- endif -%}
        {%- if spec is none -%}
            {%- do rendered.update({name: 'cast(null as ' ~ canonical_type ~ ')'}) -%}
        {%- else -%}
            {%- do rendered.update({name: 'cast(' ~ stage_field_expression(system, stream, name, spec, types, rendered.get('currency')) ~ ' as ' ~ canonical_type ~ ')'}) -%}
        {%- endif -%}
    {%- endfor -%}
with

source as (

    select * from {{ relation }}
    {%- if quarantine is not none %}
    where not exists (
        select 1 from {{ quarantine }} as quarantined
        where quarantined.system = {{ recon_literal(system) }}
          and quarantined.stream = {{ recon_literal(stream) }}
          and quarantined._airbyte_raw_id = cast({{ relation }}._airbyte_raw_id as varchar)
    )
    {%- endif %}
    {%- if is_incremental() %}
    {%- set since = stage_plan_at_compile(system, stream, relation, quarantine, mapping_hash).since %}
    {%- if since is not none %}
    {{ 'and' if quarantine is not none else 'where' }} {{ extracted_after('_airbyte_extracted_at', since, types.get('_airbyte_extracted_at')) }}
    {%- endif %}
    {{ 'and' if quarantine is not none or since is not none else 'where' }} cast(_airbyte_raw_id as varchar) not in (
        select _airbyte_raw_id from {{ this }}
        {%- if since is not none %}
        where _airbyte_extracted_at > cast({{ recon_literal(since) }} as timestamp)
        {%- endif %})
    {%- endif %}

),

renamed as (

    select
        -- lineage
        {{ recon_literal(system) }} as source_system,
        {{ recon_literal(stream) }} as source_stream,
        cast(_airbyte_raw_id as varchar) as _airbyte_raw_id,
        {{ to_utc_timestamp('_airbyte_extracted_at') }} as _airbyte_extracted_at,
        {%- if not types or '_ab_source_file_last_modified' in types %}
        {{ to_utc_timestamp('_ab_source_file_last_modified') }} as available_at,
        {%- else %}
        cast(null as timestamp) as available_at,
        {%- endif %}
        {{ run_started_literal() }} as _recon_loaded_at,
        {{ recon_literal(mapping_hash) }} as _recon_stage_hash,

        -- canonical {{ role }} columns
        {%- for name, canonical_type in role_columns(role) %}
        {{ rendered[name] }} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}

    from source

)

select * from renamed
{%- endmacro %}

{#- The raw relation's column types ({name: type}, lower case); empty before it exists or at parse. -#}
{% macro raw_column_types(relation) -%}
    {%- set types = {} -%}
    {%- if execute -%}
        {%- set found = load_relation(relation) -%}
        {%- if found is not none -%}
            {%- for column in adapter.get_columns_in_relation(found) -%}
                {%- do types.update({column.name | lower: column.dtype | lower}) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {%- do return(types) -%}
{%- endmacro %}

{#- What a staged row depends on besides its raw row: the stream's config, the raw column types, the
    role's canonical columns and the staging code's version. Rows staged under another hash are re-staged. -#}
{% macro stage_hash(system, stream, types) -%}
    {%- set cfg = recon_config() -%}
    {%- set role = cfg.systems[system].role -%}
    {%- do return(local_md5('stage-v1|' ~ role ~ '|' ~ tojson(cfg.systems[system].streams[stream]) ~ '|'
                            ~ tojson(types) ~ '|' ~ tojson(role_columns(role)))) -%}
{%- endmacro %}

{#- Pre-hook of a staging model: log, then delete, the staged rows that must go (see stage_stream); one
    pass over the table, through a temporary table. When the table is about to be created (first build,
    --full-refresh) it cannot say what it lost: that is recorded instead, and the incremental models
    rebuild in full. -#}
{% macro stage_removals(system, stream) -%}
    {%- if not is_incremental() -%}
{{ record_staging_created() }}
    {%- else -%}
    {%- set plan_rows = run_query('select since, mapping_hash from ' ~ stage_plan_relation()).rows -%}
    {%- if plan_rows | length != 1 -%}
        {{ exceptions.raise_compiler_error("stage_removals: no staging plan for " ~ this ~ " (stage_stream decides it when the model compiles)") }}
    {%- endif -%}
    {%- if plan_rows[0][0] is none %}
    {%- set role = recon_config().systems[system].role -%}
    {%- set relation = source('raw_' ~ system, stream) -%}
    {%- set quarantine = existing_relation('recon_meta', 'contract_quarantined_ids') -%}
    {%- set mapping_hash = recon_literal(plan_rows[0][1]) -%}
    {%- set doomed -%}
_recon_stage_hash <> {{ mapping_hash }}
    or _airbyte_raw_id not in (select cast(_airbyte_raw_id as varchar) from {{ relation }} where _airbyte_raw_id is not null)
    {%- if quarantine is not none %}
    or _airbyte_raw_id in (
        select _airbyte_raw_id from {{ quarantine }}
        where system = {{ recon_literal(system) }} and stream = {{ recon_literal(stream) }})
    {%- endif %}
    {%- endset %}
    {%- set doomed_rows = adapter.quote('recon_removed__' ~ this.identifier) %}
drop table if exists {{ doomed_rows }};
create temporary table {{ doomed_rows }} as
select
    _airbyte_raw_id, source_system, source_stream, {{ role_record_id(role) }} as record_id,
    {{ 'order_id' if role != 'customers' else 'cast(null as varchar)' }} as order_id
from {{ this }}
where {{ doomed }};
insert into {{ staging_removed_relation() }} (role, source_system, source_stream, record_id, order_id, removed_at)
select {{ recon_literal(role) }}, source_system, source_stream, record_id, order_id, {{ run_started_literal() }}
from {{ doomed_rows }};
delete from {{ this }}
where _airbyte_raw_id in (select _airbyte_raw_id from {{ doomed_rows }});
drop table {{ doomed_rows }}
    {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#- The temporary table through which the compiled model tells its pre-hook which pass it takes. -#}
{% macro stage_plan_relation() -%}
{{ adapter.quote('recon_stage_plan__' ~ this.identifier) }}
{%- endmacro %}

{#- The staging plan of this build, decided while the model compiles (stage_plan) and left for the
    pre-hook in stage_plan_relation(), with the mapping hash (`mapping_hash`, stage_hash's value) the
    rows are staged under. {'since': none} at parse time. -#}
{% macro stage_plan_at_compile(system, stream, relation, quarantine, mapping_hash) -%}
    {%- if not execute -%}{%- do return({'since': none}) -%}{%- endif -%}
    {%- set plan = stage_plan(system, stream, relation, quarantine, recon_literal(mapping_hash)) -%}
    {%- do run_query('create or replace temporary table ' ~ stage_plan_relation() ~ ' as select '
                     ~ ('cast(' ~ recon_literal(plan.since) ~ ' as timestamp)' if plan.since else 'cast(null as timestamp)')
                     ~ ' as since, ' ~ recon_literal(mapping_hash) ~ ' as mapping_hash') -%}
    {%- do return(plan) -%}
{%- endmacro %}

{#- The raw column `expr` (an extraction time, of raw type `raw_type`) is after the UTC timestamp `since`
    (text). A timestamptz column is compared with a constant as it is, which the database can push into
    the scan; any other type goes through to_utc_timestamp first. -#}
{% macro extracted_after(expr, since, raw_type) -%}
    {%- if raw_type == 'timestamp with time zone' -%}
{{ expr }} > cast({{ recon_literal(since ~ '+00') }} as timestamp with time zone)
    {%- else -%}
{{ to_utc_timestamp(expr) }} > cast({{ recon_literal(since) }} as timestamp)
    {%- endif -%}
{%- endmacro %}

{#- Whether this build of an existing staging table only appends (`relation` the raw table, `quarantine`
    the quarantine view or none, `mapping_hash` the current stage_hash as a SQL literal): {'since': the newest staged
    extraction time as text} when every staged row has the current mapping hash and the staged raw ids
    are exactly the landed, unquarantined raw ids extracted up to then (row count and digest equal);
    else {'since': none} (the full pass: removals, then an anti-join over every raw id). Rows with no
    extraction time count as extracted before everything. -#}
{% macro stage_plan(system, stream, relation, quarantine, mapping_hash) -%}
    {%- set extracted = to_utc_timestamp('landed._airbyte_extracted_at') -%}
    {%- set check -%}
with

staged as (

    select
        count(*) as row_count,
        sum(case when _recon_stage_hash <> {{ mapping_hash }} then 1 else 0 end) as stale_count,
        {{ id_set_digest('_airbyte_raw_id') }} as digest,
        max(_airbyte_extracted_at) as since
    from {{ this }}

),

landed as (

    select count(*) as row_count, {{ id_set_digest('cast(landed._airbyte_raw_id as varchar)') }} as digest
    from {{ relation }} as landed
    cross join staged
    where (landed._airbyte_extracted_at is null or {{ extracted }} <= staged.since)
    {%- if quarantine is not none %}
        and not exists (
            select 1 from {{ quarantine }} as quarantined
            where quarantined.system = {{ recon_literal(system) }}
              and quarantined.stream = {{ recon_literal(stream) }}
              and quarantined._airbyte_raw_id = cast(landed._airbyte_raw_id as varchar))
    {%- endif %}

)

select cast(staged.since as varchar)
from staged
cross join landed
where staged.since is not null
    and staged.stale_count = 0
    and staged.row_count = landed.row_count
    and staged.digest = landed.digest
    {%- endset -%}
    {%- set rows = run_query(check).rows -%}
    {%- do return({'since': rows[0][0] if rows | length > 0 else none}) -%}
{%- endmacro %}

{#- An order-independent digest of a set of ids (equal sets, equal digests). Dispatched: DuckDB xors
    64-bit hashes; the default sums the first 60 bits of an md5. -#}
{% macro id_set_digest(expr) -%}
    {{ return(adapter.dispatch('id_set_digest', 'order_recon')(expr)) }}
{%- endmacro %}

{% macro default__id_set_digest(expr) -%}
sum(cast(cast(('x' || substr(md5({{ expr }}), 1, 15)) as bit(60)) as bigint))
{%- endmacro %}

{% macro duckdb__id_set_digest(expr) -%}
bit_xor(hash({{ expr }}))
{%- endmacro %}
