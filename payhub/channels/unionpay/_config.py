"""Configuration of one UnionPay merchant account."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from payhub.config import Secret, production_endpoint_problem, resolve_secret, validated

__all__ = [
    "EXPECTED_CN",
    "GATEWAYS",
    "PUBLIC_TEST_MER_IDS",
    "TEST_HOSTS",
    "Environment",
    "UnionPayConfig",
    "validate_config",
]

#: ``"sandbox"`` is payhub's name for a test system, ``"test"`` UnionPay's:
#: both mean UnionPay's test environment (or payhub's local sandbox).
Environment = Literal["test", "sandbox", "production"]

_UNIONPAY = "中国银联股份有限公司"
#: The third ``@``-separated field of the platform signing certificate's CN, as
#: UnionPay's own SDKs check it (``CertUtil.verifyCertificate``): production
#: only ``中国银联股份有限公司``; the test environment signs with that too since
#: 2020 (``041@8310000000083040@中国银联股份有限公司@00016495``), and with
#: ``00040000:SIGN`` on older test certificates.
EXPECTED_CN: Final[Mapping[Environment, frozenset[str]]] = {
    "production": frozenset({_UNIONPAY}),
    "test": frozenset({_UNIONPAY, "00040000:SIGN"}),
    "sandbox": frozenset({_UNIONPAY, "00040000:SIGN"}),
}

GATEWAYS: Final[Mapping[Environment, str]] = {
    "production": "https://gateway.95516.com",
    "test": "https://gateway.test.95516.com",
    "sandbox": "https://gateway.test.95516.com",
}

#: Where ``fileTransfer`` (reconciliation files) is posted: its own host, at its root.
FILE_GATEWAYS: Final[Mapping[Environment, str]] = {
    "production": "https://filedownload.95516.com",
    "test": "https://filedownload.test.95516.com",
    "sandbox": "https://filedownload.test.95516.com",
}

#: Hosts of UnionPay's test environment, refused as a production gateway.
TEST_HOSTS: Final = frozenset(
    {"gateway.test.95516.com", "filedownload.test.95516.com", "101.231.204.80"}
)
#: Merchant numbers UnionPay and public SDKs publish for the test environment;
#: a production configuration naming one is a copied test configuration.
PUBLIC_TEST_MER_IDS: Final = frozenset({"777290058110048", "777290058167151", "700000000000001"})

_MER_ID_RE: Final = re.compile(r"[0-9A-Za-z]{1,32}", re.ASCII)
_URL_RE: Final = re.compile(r"https?://[^\s]+", re.ASCII)


def _read_bytes(value: object, info: ValidationInfo) -> bytes:
    """PEM text, bytes, or a ``{"$file": PATH}`` / ``{"$env": NAME}`` reference."""
    return resolve_secret(value, f"unionpay {info.field_name}").get()


PemBytes = Annotated[bytes, PlainValidator(_read_bytes)]


class UnionPayConfig(BaseModel):
    """One UnionPay merchant (``merId``) and its certificates.

    ``environment`` is required and never inferred: it decides the CN the
    platform's signing certificate must carry and the default gateway.

    >>> UnionPayConfig(mer_id="777290058110048", environment="test",
    ...     sign_cert={"$file": "acp_test_sign.pfx"}, sign_cert_password="000000",
    ...     root_cert={"$file": "acp_test_root.cer"},
    ...     middle_cert={"$file": "acp_test_middle.cer"})  # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mer_id: str
    environment: Environment
    #: The merchant signing certificate and key, PKCS#12 (.pfx): bytes or a reference.
    sign_cert: Secret
    sign_cert_password: Secret
    #: The trust anchors that platform certificates (``signPubKeyCert``) must chain to.
    root_cert: PemBytes
    middle_cert: PemBytes
    #: Scheme and host only; paths (``/gateway/api/…``) are added. Default per environment.
    gateway_url: str | None = None
    #: Defaults for ``frontUrl`` (browser return) and ``backUrl`` (notifications).
    front_url: str | None = None
    back_url: str | None = None
    #: The full URL ``fileTransfer`` is posted to (the reconciliation file). Default:
    #: UnionPay's file host of the environment; with a ``gateway_url`` (a sandbox),
    #: ``<gateway_url>/gateway/api/fileTransfer.do``.
    file_url: str | None = None
    #: Verified platform certificates kept, by fingerprint; 0 turns the cache off.
    cert_cache_size: int = Field(default=64, ge=0, le=4096)

    @field_validator("mer_id")
    @classmethod
    def _mer_id(cls, value: str) -> str:
        if _MER_ID_RE.fullmatch(value) is None:
            raise ValueError("must be 1-32 ASCII letters or digits")
        return value

    @field_validator("gateway_url", "front_url", "back_url", "file_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and _URL_RE.fullmatch(value) is None:
            raise ValueError("must be an http(s) URL without spaces")
        return value

    @model_validator(mode="after")
    def _production_is_real(self) -> UnionPayConfig:
        if self.environment != "production":
            return self
        problem = production_endpoint_problem(self.gateway, test_hosts=TEST_HOSTS)
        if problem is not None:
            raise ValueError(f"the production gateway {problem}")
        if self.mer_id in PUBLIC_TEST_MER_IDS:
            raise ValueError(
                f"mer_id {self.mer_id} is a public UnionPay test merchant number, not a "
                "production merchant (set environment to 'sandbox' or 'test' to use it)"
            )
        return self

    @property
    def gateway(self) -> str:
        """The gateway base URL in use, without a trailing slash."""
        return (self.gateway_url or GATEWAYS[self.environment]).rstrip("/")

    @property
    def file_transfer_url(self) -> str:
        """Where ``fileTransfer`` is posted."""
        if self.file_url is not None:
            return self.file_url
        if self.gateway_url is not None:
            return self.gateway + "/gateway/api/fileTransfer.do"
        return FILE_GATEWAYS[self.environment] + "/"

    @property
    def is_test(self) -> bool:
        """True for UnionPay's test environment (``"test"`` or ``"sandbox"``)."""
        return self.environment != "production"

    @property
    def expected_cn(self) -> frozenset[str]:
        """The accepted third CN fields of the platform signing certificate."""
        return EXPECTED_CN[self.environment]


def validate_config(config: UnionPayConfig | Mapping[str, Any]) -> UnionPayConfig:
    """Validate a plain mapping; errors name the settings, never their values."""
    return validated(UnionPayConfig, config, "unionpay configuration")
