"""The UnionPay (ACP 5.1.0) simulator: ``/gateway/api/``, the front page, notifications.

``_simulator`` is the engine behind the gateway, ``_wire`` the signed form
format, ``_pki`` the certificate chain, ``_config`` its section of the
configuration file, ``_cli`` the ``payhub-sandbox unionpay`` commands,
``_views`` and ``_control`` the Flask faces, ``_channel`` the verbs the
:class:`~payhub_sandbox.Sandbox` facade offers as ``sandbox.unionpay``.
"""
