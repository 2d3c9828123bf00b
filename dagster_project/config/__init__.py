"""The platform config: the validated model of a project YAML (`model`) and its exceptions part
(routing, SLAs, notifications: `exceptions`). The packaged demo config, `demo.yaml`, sits beside them."""
