"""The Keeptrail server: ingest and query API, tokens and roles, metrics, self-audit.

Import :func:`keeptrail.server.app.create_app` and :func:`keeptrail.server.settings.
load_settings` from their modules; this package module imports nothing, so light users
(``keeptrail.server.client``, used by the CLI) do not pull in the web framework.
"""
