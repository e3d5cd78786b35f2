"""The WeChat Pay APIv3 simulator: ``/v3/``, signed answers, encrypted notifications, bills.

``_simulator`` is the engine behind ``/v3/``, ``_wire`` the signed wire format,
``_pki`` the platform keys and certificates, ``_notify`` the re-signing
notification transport, ``_bills`` the trade bills, ``_config`` its section of
the configuration file, ``_views`` and ``_control`` the Flask faces, ``_channel``
the verbs the :class:`~payhub_sandbox.Sandbox` facade offers as ``sandbox.wechat``.
"""
