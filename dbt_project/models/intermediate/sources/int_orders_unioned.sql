-- Every staged orders row of every system playing the orders role (all versions), in one relation.
{{ union_role('orders') }}
