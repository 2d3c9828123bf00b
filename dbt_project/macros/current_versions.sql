{#
  The record-version model (docs/reconciliation-rules.md#records-and-versions). A record is a key of
  one system's stream; each staged row is a version of it, delivered in one delivery (lineage_columns).

  visible_versions(relation, key_columns): the versions visible as of D, i.e. known before cutoff(D)
  (available_at null or before it) and updated before it; rows with a NULL key column are dropped. In a
  stream whose sync_mode is `snapshot` only the snapshot in force as of D counts: the latest delivery
  known before cutoff(D) (by delivered_at, then extraction time; files delivered at the same moment in
  one sync are parts of one snapshot). A key absent from it is deleted as of it. An empty snapshot
  lands no rows, so it never is the one in force (an empty export is taken for a failed one).

  current_versions(relation, partition_by, key_columns): the current version of each key, ranked by
  updated_at, then delivered_at, then extraction time, then _airbyte_raw_id (all descending), keeping
  rank 1 (so a re-sent identical version is the same version, and a corrected re-export of the same
  updated_at replaces the older one from when it became known). `delivery_repeat_count` is how many
  rows of the current version's delivery carry the same key and updated_at: above 1 is a key repeated
  inside one delivery (the key rule of duplicate_record). Portable: window functions in subqueries.
#}
{% macro visible_versions(relation, key_columns) -%}
    {%- set snapshots = [] -%}
    {%- for name in snapshot_streams() -%}{%- do snapshots.append(recon_literal(name)) -%}{%- endfor -%}
select * from (
    select
        *
        {%- if snapshots %},
        case when source_system || '.' || source_stream in ({{ snapshots | join(', ') }})
            then dense_rank() over (
                partition by source_system, source_stream
                order by delivered_at desc, _airbyte_extracted_at desc)
            else 1 end as snapshot_recency
        {%- endif %}
    from {{ relation }}
    where (available_at is null or available_at < {{ as_of_cutoff() }})
    {%- for key in key_columns %}
        and {{ key }} is not null
    {%- endfor %}
) as known
where updated_at < {{ as_of_cutoff() }}
{%- if snapshots %}
    and snapshot_recency = 1
{%- endif %}
{%- endmacro %}

{% macro current_versions(relation, partition_by, key_columns) -%}
select * from (
    select
        *,
        row_number() over (
            partition by {{ partition_by }}
            order by updated_at desc, delivered_at desc, _airbyte_extracted_at desc, _airbyte_raw_id desc
        ) as version_rank,
        count(*) over (partition by {{ partition_by }}, delivery_id, updated_at) as delivery_repeat_count
    from (
        {{ visible_versions(relation, key_columns) | indent(8) }}
    ) as visible
) as ranked
where version_rank = 1
{%- endmacro %}

{#- The streams ('system.stream') whose sync_mode is snapshot, sorted. -#}
{% macro snapshot_streams() -%}
    {%- set out = [] -%}
    {%- set systems = recon_config().systems -%}
    {%- for system in systems.keys() | sort -%}
        {%- for stream, spec in (systems[system].get('streams') or {}).items() | sort -%}
            {%- if spec.get('sync_mode') == 'snapshot' -%}{%- do out.append(system ~ '.' ~ stream) -%}{%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- do return(out) -%}
{%- endmacro %}
