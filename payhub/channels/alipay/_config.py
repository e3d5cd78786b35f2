"""Configuration of one Alipay app: keys are resolved and loaded here, once.

Two key modes, exactly one of which must be configured:

* **public-key mode**: ``alipay_public_key`` (PEM, or the bare base64 body the
  Alipay console shows);
* **certificate mode**: ``app_cert``, ``alipay_cert`` and ``alipay_root_cert``
  (PEM contents). Requests then carry ``app_cert_sn`` and
  ``alipay_root_cert_sn``; responses are verified with the key of
  ``alipay_cert`` and must name its serial in ``alipay_cert_sn``.

Every key or certificate may also be given as ``{"$env": NAME}`` or
``{"$file": PATH}``. Nothing secret reaches a ``repr``, a ``str`` or an error.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Final, Literal, Self, TypeVar

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from payhub.config import Environment, Secret, production_endpoint_problem, resolve_secret
from payhub.errors import ConfigurationError, SignatureError
from payhub.money import Money
from payhub.signing import (
    HashName,
    alipay_cert_sn,
    alipay_root_cert_sn,
    load_certificates,
    load_private_key,
    load_public_key,
    verify_chain,
)

__all__ = [
    "ALIPAY_BILL_HOSTS",
    "ALIPAY_PRODUCTION_GATEWAY",
    "ALIPAY_SANDBOX_BILL_HOSTS",
    "ALIPAY_SANDBOX_GATEWAY",
    "ALIPAY_TEST_HOSTS",
    "DEFAULT_MAX_AMOUNT",
    "AlipayConfig",
]

#: Alipay's production gateway.
ALIPAY_PRODUCTION_GATEWAY: Final = "https://openapi.alipay.com/gateway.do"
#: Alipay's own sandbox (not payhub's local sandbox, which is any URL you give).
ALIPAY_SANDBOX_GATEWAY: Final = "https://openapi-sandbox.dl.alipaydev.com/gateway.do"

#: Alipay's sandbox gateways, refused in production.
ALIPAY_TEST_HOSTS: Final = frozenset({"openapi-sandbox.dl.alipaydev.com", "openapi.alipaydev.com"})

#: Where Alipay's ``bill_download_url`` points, in production.
ALIPAY_BILL_HOSTS: Final = ("dwbillcenter.alipay.com",)
#: ... and from Alipay's sandbox (allowed in environment ``"sandbox"`` only).
ALIPAY_SANDBOX_BILL_HOSTS: Final = ("dwbillcenter.alipaydev.com",)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_GATEWAY_ALIASES: Final = {
    "production": ALIPAY_PRODUCTION_GATEWAY,
    "sandbox": ALIPAY_SANDBOX_GATEWAY,
}

#: Alipay's own ceiling for one trade: 100 000 000.00 CNY.
DEFAULT_MAX_AMOUNT: Final = Money(10_000_000_000, "CNY")

_APP_ID_RE: Final = re.compile(r"[0-9A-Za-z_]{1,32}", re.ASCII)
_SELLER_ID_RE: Final = re.compile(r"[0-9A-Za-z_]{1,32}", re.ASCII)
_HASHES: Final[dict[str, HashName]] = {"RSA2": "SHA256", "RSA": "SHA1"}
_SECRET_FIELDS: Final = (
    "app_private_key",
    "alipay_public_key",
    "app_cert",
    "alipay_cert",
    "alipay_root_cert",
)
_CERT_FIELDS: Final = ("app_cert", "alipay_cert", "alipay_root_cert")

T = TypeVar("T")

_HOST_NAME_RE: Final = re.compile(
    r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*",
    re.ASCII,
)
#: Printable ASCII but space and backslash (a URL parser may read '\\' as '/').
_URL_CHARS_RE: Final = re.compile(r"[!-\[\]-~]{1,2048}", re.ASCII)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _http_url(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{name}: expected a URL string")
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        raise ConfigurationError(f"{name}: not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"{name}: must be an absolute http(s) URL")
    return value


class AlipayConfig(BaseModel):
    """One Alipay app (``app_id``) and its keys.

    >>> AlipayConfig(  # doctest: +SKIP
    ...     app_id="2021000000000000",
    ...     app_private_key={"$file": "/etc/shop/alipay/app_private_key.pem"},
    ...     alipay_public_key={"$env": "ALIPAY_PUBLIC_KEY"},
    ...     environment="sandbox",
    ...     gateway="sandbox",
    ... )
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    app_id: str
    #: The app's RSA private key: PEM (PKCS#1 or PKCS#8) or the bare base64 body.
    app_private_key: Secret
    #: Public-key mode: Alipay's public key (PEM or bare base64).
    alipay_public_key: Secret | None = None
    #: Certificate mode: the app's public-key certificate (``appCertPublicKey_….crt``).
    app_cert: Secret | None = None
    #: Certificate mode: Alipay's public-key certificate (``alipayCertPublicKey_RSA2.crt``).
    alipay_cert: Secret | None = None
    #: Certificate mode: Alipay's root certificate bundle (``alipayRootCert.crt``).
    alipay_root_cert: Secret | None = None
    #: ``"production"`` (the default) refuses sandbox, loopback and private gateways;
    #: ``"sandbox"`` is for Alipay's sandbox and payhub's local one.
    environment: Environment = "production"
    #: A full gateway URL, or ``"production"`` / ``"sandbox"`` (Alipay's own sandbox,
    #: which needs ``environment="sandbox"``).
    gateway: str = ALIPAY_PRODUCTION_GATEWAY
    #: The seller's Alipay user id (``2088…``); notifications must name it when set.
    seller_id: str | None = None
    sign_type: Literal["RSA2", "RSA"] = "RSA2"
    notify_url: str | None = None
    return_url: str | None = None
    charset: Literal["utf-8"] = "utf-8"
    #: The largest amount accepted, sent or parsed (Alipay's own limit by default).
    max_amount: Money = DEFAULT_MAX_AMOUNT
    #: Where a ``bill_download_url`` may point. A host name is fetched over https
    #: on the default port (an ``http://`` URL on it is fetched over https); an
    #: origin ``scheme://host[:port]`` (payhub's local sandbox) is matched exactly.
    #: None: Alipay's bill host, and in environment "sandbox" its sandbox's too.
    bill_download_hosts: tuple[str, ...] | None = None

    _private_key: rsa.RSAPrivateKey = PrivateAttr()
    _verify_key: rsa.RSAPublicKey = PrivateAttr()
    _app_cert_sn: str | None = PrivateAttr(default=None)
    _alipay_root_cert_sn: str | None = PrivateAttr(default=None)
    _alipay_cert_sn: str | None = PrivateAttr(default=None)
    _bill_hosts: frozenset[str] = PrivateAttr(default=frozenset())
    _bill_origins: frozenset[tuple[str, str, int]] = PrivateAttr(default=frozenset())

    # -- field checks -------------------------------------------------------

    @field_validator(*_SECRET_FIELDS, mode="before")
    @classmethod
    def _resolve(cls, value: object, info: ValidationInfo) -> Secret | None:
        if value is None:
            return None
        return resolve_secret(value, str(info.field_name))

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        if not _APP_ID_RE.fullmatch(value):
            raise ConfigurationError("app_id: expected the app id Alipay assigned (digits)")
        return value

    @field_validator("seller_id")
    @classmethod
    def _seller_id(cls, value: str | None) -> str | None:
        if value is not None and not _SELLER_ID_RE.fullmatch(value):
            raise ConfigurationError("seller_id: expected an Alipay user id (2088…)")
        return value

    @field_validator("gateway", mode="before")
    @classmethod
    def _gateway(cls, value: object) -> str:
        if isinstance(value, str):
            value = _GATEWAY_ALIASES.get(value.strip().lower(), value)
        return _http_url(value, "gateway")

    @field_validator("notify_url", "return_url")
    @classmethod
    def _urls(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _http_url(value, str(info.field_name))

    @field_validator("max_amount", mode="before")
    @classmethod
    def _max_amount(cls, value: object) -> object:
        if isinstance(value, str):
            return Money.parse(value, "CNY")
        return value

    @field_validator("max_amount")
    @classmethod
    def _max_amount_cny(cls, value: Money) -> Money:
        if value.currency != "CNY" or value.minor <= 0:
            raise ConfigurationError("max_amount: must be a positive CNY amount")
        return value

    # -- production or sandbox ------------------------------------------------

    @model_validator(mode="after")
    def _production_gateway(self) -> Self:
        if self.environment == "production":
            problem = production_endpoint_problem(self.gateway, test_hosts=ALIPAY_TEST_HOSTS)
            if problem is not None:
                raise ConfigurationError(
                    f"gateway: {problem}; environment is 'production' (set environment "
                    "'sandbox' for Alipay's sandbox or payhub's local sandbox)"
                )
        return self

    @model_validator(mode="after")
    def _bill_download(self) -> Self:
        entries = self.bill_download_hosts
        if entries is None:
            entries = ALIPAY_BILL_HOSTS
            if self.environment == "sandbox":
                entries += ALIPAY_SANDBOX_BILL_HOSTS
        hosts: set[str] = set()
        origins: set[tuple[str, str, int]] = set()
        for entry in entries:
            if "://" in entry:
                origins.add(self._bill_origin(entry))
            else:
                hosts.add(self._bill_host(entry))
        self._bill_hosts = frozenset(hosts)
        self._bill_origins = frozenset(origins)
        return self

    def _bill_host(self, entry: str) -> str:
        host = entry.strip().lower()
        if not _HOST_NAME_RE.fullmatch(host) or _is_ip(host):
            raise ConfigurationError(
                f"bill_download_hosts: {_shown(entry)} is not a host name "
                "(give an IP address as an origin, e.g. http://127.0.0.1:8000)"
            )
        return self._production_bill(f"https://{host}", host)

    def _bill_origin(self, entry: str) -> tuple[str, str, int]:
        try:
            url = httpx.URL(entry)
        except (httpx.InvalidURL, TypeError):
            url = None
        if (
            url is None
            or url.scheme not in _DEFAULT_PORTS
            or not url.host
            or url.userinfo
            or url.path not in ("", "/")
            or url.query
            or url.fragment
        ):
            raise ConfigurationError(
                f"bill_download_hosts: {_shown(entry)} is not a host name or an "
                "origin scheme://host[:port]"
            )
        host = self._production_bill(entry, url.host.lower())
        return url.scheme, host, url.port or _DEFAULT_PORTS[url.scheme]

    def _production_bill(self, url: str, host: str) -> str:
        if self.environment == "production":
            problem = production_endpoint_problem(
                url, test_hosts=(*ALIPAY_TEST_HOSTS, *ALIPAY_SANDBOX_BILL_HOSTS)
            )
            if problem is None and _is_ip(host):
                problem = "is an IP address"
            if problem is not None:
                raise ConfigurationError(
                    f"bill_download_hosts: {host!r} {problem}; environment is 'production'"
                )
        return host

    # -- keys: loaded once --------------------------------------------------

    @model_validator(mode="after")
    def _load_keys(self) -> Self:
        app, alipay, root = self.app_cert, self.alipay_cert, self.alipay_root_cert
        given = [n for n, v in zip(_CERT_FIELDS, (app, alipay, root), strict=True) if v]
        if self.alipay_public_key is not None and given:
            raise ConfigurationError(
                "alipay: configure either alipay_public_key or the certificates "
                "(app_cert, alipay_cert, alipay_root_cert), not both"
            )
        if self.alipay_public_key is None and not given:
            raise ConfigurationError(
                "alipay: configure alipay_public_key, or app_cert, alipay_cert and "
                "alipay_root_cert for certificate mode"
            )
        if given and len(given) != len(_CERT_FIELDS):
            missing = ", ".join(name for name in _CERT_FIELDS if name not in given)
            raise ConfigurationError(f"alipay: certificate mode also needs {missing}")
        self._private_key = _loaded(load_private_key, self.app_private_key, "app_private_key")
        if self.alipay_public_key is not None:
            self._verify_key = _loaded(load_public_key, self.alipay_public_key, "alipay_public_key")
        elif app is not None and alipay is not None and root is not None:
            self._load_certificates(app, alipay, root)
        return self

    def _load_certificates(self, app: Secret, alipay: Secret, root: Secret) -> None:
        app_cert = _loaded(load_certificates, app, "app_cert")[0]
        alipay_chain = _loaded(load_certificates, alipay, "alipay_cert")
        alipay_cert = alipay_chain[0]
        roots = _loaded(_root_bundle, root, "alipay_root_cert")
        app_key = app_cert.public_key()
        if (
            not isinstance(app_key, rsa.RSAPublicKey)
            or app_key.public_numbers() != self._private_key.public_key().public_numbers()
        ):
            raise ConfigurationError("app_cert: does not certify the key of app_private_key")
        root_sn = alipay_root_cert_sn(roots)
        if not root_sn:
            raise ConfigurationError("alipay_root_cert: holds no RSA-signed certificate")
        _check_alipay_chain(alipay_chain, roots)
        self._verify_key = load_public_key(alipay_cert)
        self._app_cert_sn = alipay_cert_sn(app_cert)
        self._alipay_cert_sn = alipay_cert_sn(alipay_cert)
        self._alipay_root_cert_sn = root_sn

    # -- derived, read-only --------------------------------------------------

    @property
    def cert_mode(self) -> bool:
        """True in certificate mode, False in public-key mode."""
        return self._app_cert_sn is not None

    @property
    def app_cert_sn(self) -> str | None:
        """``app_cert_sn`` sent with every request (certificate mode)."""
        return self._app_cert_sn

    @property
    def alipay_root_cert_sn(self) -> str | None:
        """``alipay_root_cert_sn`` sent with every request (certificate mode)."""
        return self._alipay_root_cert_sn

    @property
    def alipay_cert_sn(self) -> str | None:
        """The serial responses must name in ``alipay_cert_sn`` (certificate mode)."""
        return self._alipay_cert_sn

    def bill_download_url(self, text: object) -> httpx.URL | None:
        """The URL to fetch for a ``bill_download_url``, or None when it is not
        on an allowed host (see ``bill_download_hosts``): never user information,
        another port or scheme, or a host not listed."""
        if not isinstance(text, str) or not _URL_CHARS_RE.fullmatch(text):
            return None
        try:
            url = httpx.URL(text)
        except (httpx.InvalidURL, TypeError):
            return None
        if url.userinfo or url.scheme not in _DEFAULT_PORTS:
            return None
        host = url.host.lower()
        port = url.port or _DEFAULT_PORTS[url.scheme]
        if (url.scheme, host, port) in self._bill_origins:
            return url
        if host in self._bill_hosts and port == _DEFAULT_PORTS[url.scheme]:
            return url.copy_with(scheme="https", port=None)
        return None

    @property
    def hash_name(self) -> HashName:
        """The digest of the configured ``sign_type``: SHA256 (RSA2) or SHA1 (RSA)."""
        return _HASHES[self.sign_type]


#: Longer issuer paths than this are refused (Alipay's is leaf, class 2 CA, root).
_MAX_CHAIN: Final = 4


def _check_alipay_chain(chain: list[x509.Certificate], roots: list[x509.Certificate]) -> None:
    """The first certificate of ``alipay_cert`` must chain to a root of the bundle.

    Alipay's ``alipayCertPublicKey_RSA2.crt`` holds its signing certificate
    followed by the intermediate CA that issued it; the root that issued the
    intermediate is in ``alipayRootCert.crt``. The path is built by names from
    the file's other certificates and the bundle's, then every link's signature
    and validity period is checked, and the path must end at a bundle root (a
    self-signed certificate inside ``alipay_cert`` is not trusted). This
    catches swapped or stale files, and a certificate that is not Alipay's, at
    configuration time rather than on the first response.
    """
    leaf, pool = chain[0], [*chain[1:], *roots]
    path: list[x509.Certificate] = []
    current = leaf
    while current.issuer != current.subject and len(path) < _MAX_CHAIN:
        issuer = next(
            (c for c in pool if c.subject == current.issuer and c not in path and c != current),
            None,
        )
        if issuer is None:
            raise ConfigurationError(
                "alipay_cert: no certificate of alipay_cert or alipay_root_cert issued "
                f"{current.subject.rfc4514_string()!r} (its issuer is "
                f"{current.issuer.rfc4514_string()!r})"
            )
        path.append(issuer)
        current = issuer
    if not path or path[-1] not in roots:
        raise ConfigurationError(
            "alipay_cert: its certificate chain does not end at a root of alipay_root_cert"
        )
    try:
        verify_chain(leaf, path)
    except SignatureError as exc:
        raise ConfigurationError(f"alipay_cert: {exc.message}") from None


def _root_bundle(data: bytes) -> list[x509.Certificate]:
    """``alipayRootCert.crt``: its RSA certificates; the SM2 and ECDSA ones are
    skipped unparsed (see :func:`payhub.signing.load_certificates`)."""
    return load_certificates(data, rsa_only=True)


def _loaded(loader: Callable[[bytes], T], value: Secret, name: str) -> T:
    """Run a key loader, naming the setting (never the value) if it fails."""
    try:
        return loader(value.get())
    except ConfigurationError as exc:
        raise ConfigurationError(f"{name}: {exc.message}") from None
    except UnicodeError:
        raise ConfigurationError(f"{name}: not ASCII text") from None
