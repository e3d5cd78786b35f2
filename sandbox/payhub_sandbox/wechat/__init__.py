"""The WeChat Pay APIv3 simulator: ``/v3/``, signed answers, encrypted notifications, bills.

``_simulator`` routes, authenticates and injects faults for ``/v3/``, over one
job per module: ``_orders`` (orders, queries, close, the buyer's payment),
``_refunds``, ``_notifications``, ``_billing`` (bill requests and downloads;
``_bills`` and ``_fundflow`` write the files), ``_keys`` (the public key,
platform certificates, signatures; ``_pki`` issues them). ``_core`` is the
state they share, ``_api`` what a handler takes and returns, ``_merchants`` the
registered merchants, ``_wire`` the signed wire format, ``_notify`` the
re-signing notification transport, ``_config`` its section of the
configuration file, ``_views`` and ``_control`` the Flask faces, ``_channel``
the verbs the :class:`~payhub_sandbox.Sandbox` facade offers as ``sandbox.wechat``.
"""
