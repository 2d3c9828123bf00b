-- Every staged customers row of every system playing the customers role (all versions), in one relation.
{{ union_role('customers') }}
