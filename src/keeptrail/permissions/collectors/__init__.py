"""One module per audited system, each returning a :class:`~keeptrail.permissions.model.Collected`.

``linux`` (with ``sudoers``/``sudoers_cvt``/``sudo_rights`` and ``authorized_keys``),
``postgres``, ``k8s_rbac`` and ``importer`` (CSV/JSON exports and rosters). They read and
resolve; storing is :mod:`keeptrail.permissions.snapshots`' job.
"""
