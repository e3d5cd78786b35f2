"""The EPay (易支付) part of payhub's sandbox: a provider speaking 彩虹易支付's protocol.

>>> from payhub_sandbox import ManualClock, Sandbox, create_app
>>> from payhub_epay_sandbox import EpaySimulator, init_app
>>> sandbox = Sandbox(clock=ManualClock())  # doctest: +SKIP
>>> app = create_app(sandbox)  # doctest: +SKIP
>>> epay = init_app(app, EpaySimulator(clock=sandbox.clock))  # doctest: +SKIP
>>> epay.add_merchant("1001", "merchant-key")  # doctest: +SKIP

Installed with payhub-sandbox, it is also a sandbox part (entry point
``payhub_sandbox.parts``): the sandbox's ``create_app`` mounts it (through
``payhub_sandbox.parts.install_parts(app)``); ``init_app`` then swaps in another
simulator. Routes under ``/epay``: ``submit.php`` (page jump to the cashier), ``mapi.php``
(API payment), ``api.php?act=order`` and ``act=refund``, ``cashier/<trade_no>``,
and a control API under ``/epay/_control/``. Notifications (GET by default, on
彩虹易支付's resend schedule) with delivery faults: drop, duplicate, delay,
replay, bad or missing signature, capitalised signature, tampered amount,
another merchant's pid, param left out.
"""

from payhub_epay_sandbox._simulator import (
    EPAY_RETRY_DELAYS,
    EpayDelivery,
    EpayFault,
    EpayMerchant,
    EpayOrder,
    EpaySandboxError,
    EpaySimulator,
    php_money,
)
from payhub_epay_sandbox._views import EXTENSION_KEY, epay_blueprint, init_app, sandbox_part

__all__ = [
    "EPAY_RETRY_DELAYS",
    "EXTENSION_KEY",
    "EpayDelivery",
    "EpayFault",
    "EpayMerchant",
    "EpayOrder",
    "EpaySandboxError",
    "EpaySimulator",
    "epay_blueprint",
    "init_app",
    "php_money",
    "sandbox_part",
]
