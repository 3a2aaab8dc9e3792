"""Exports of events into the schemas other tools read: OCSF and ECS."""
