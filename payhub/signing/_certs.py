"""Certificate identities: Alipay certificate-mode serials, chain checks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import SignatureError
from payhub.signing._keys import RSA_SIGNATURE_OID_PREFIX, load_certificates

__all__ = [
    "alipay_cert_sn",
    "alipay_root_cert_sn",
    "certificate_serial_hex",
    "verify_chain",
]

def _issuer_rfc2253(cert: x509.Certificate) -> str:
    return cert.issuer.rfc4514_string()


def alipay_cert_sn(cert: x509.Certificate) -> str:
    """Alipay's serial: lowercase hex MD5 of (issuer DN, RFC 2253 order) + decimal serial."""
    text = _issuer_rfc2253(cert) + str(cert.serial_number)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def alipay_root_cert_sn(bundle: str | bytes | Iterable[x509.Certificate]) -> str:
    """The serials of every RSA-signed certificate of the root bundle, joined by ``_``.

    As Alipay's SDKs do: a certificate counts when its signature algorithm is
    of the RSA family (OID ``1.2.840.113549.1.1.*``); SM2 and ECDSA ones are
    skipped; in a PEM bundle they are skipped unparsed (the real
    ``alipayRootCert.crt`` holds an ECDSA block ``cryptography`` refuses).
    """
    certs = (
        load_certificates(bundle, rsa_only=True)
        if isinstance(bundle, str | bytes)
        else list(bundle)
    )
    return "_".join(
        alipay_cert_sn(c)
        for c in certs
        if c.signature_algorithm_oid.dotted_string.startswith(RSA_SIGNATURE_OID_PREFIX)
    )


def certificate_serial_hex(cert: x509.Certificate) -> str:
    """Upper-case hex serial, as WeChat Pay names platform certificates."""
    return format(cert.serial_number, "X")


def verify_chain(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    *,
    at: datetime | None = None,
) -> None:
    """Check that ``cert`` chains through ``chain`` (issuers, leaf-most first, ending
    at a trusted root) and that every link is within its validity at ``at``.

    Raises :class:`SignatureError` naming the failing link; an empty ``chain``
    is refused rather than trusting a self-signed ``cert``.
    """
    if not chain:
        # A self-signed certificate would otherwise be its own trusted root.
        raise SignatureError("no trusted certificate chain is configured")
    moment = at or datetime.now(UTC)
    current = cert
    for issuer in chain:
        _within_validity(current, moment)
        if current.issuer != issuer.subject:
            raise SignatureError("certificate is not issued by the configured chain")
        try:
            current.verify_directly_issued_by(issuer)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"certificate chain check failed: {exc}") from None
        except InvalidSignature:
            raise SignatureError(
                "certificate signature does not verify against its issuer"
            ) from None
        current = issuer
    _within_validity(current, moment)
    if current.issuer != current.subject:
        raise SignatureError("certificate chain does not end at a root")
    if not isinstance(current.public_key(), rsa.RSAPublicKey):
        raise SignatureError("root certificate is not RSA")


def _within_validity(cert: x509.Certificate, moment: datetime) -> None:
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise SignatureError("certificate is outside its validity period")
