"""The HTTP API: one router module per resource, all under ``/api/v1`` except health."""
