"""The Alipay simulator: ``gateway.do``, the cashier, notifications, bill downloads.

``_simulator`` is the engine behind the gateway, ``_wire`` the signed wire
format, ``_views`` the Flask face, ``_bills`` the bill zip, ``_channel`` the
verbs the :class:`~payhub_sandbox.Sandbox` facade offers as ``sandbox.alipay``.
"""
