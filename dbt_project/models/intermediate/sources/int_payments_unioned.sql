-- Every staged payments row of every system playing the payments role (all versions), in one relation.
{{ union_role('payments') }}
