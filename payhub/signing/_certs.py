"""Certificate identities: Alipay certificate-mode serials, chain checks."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from payhub.errors import SignatureError
from payhub.signing._keys import RSA_SIGNATURE_OID_PREFIX, load_certificates

__all__ = [
    "DEFAULT_LINK_ALGORITHMS",
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


#: The hash of each certificate-link signature algorithm :func:`verify_chain` knows.
_LINK_HASHES: Mapping[x509.ObjectIdentifier, hashes.HashAlgorithm] = {
    x509.SignatureAlgorithmOID.RSA_WITH_SHA1: hashes.SHA1(),  # noqa: S303
    x509.SignatureAlgorithmOID.RSA_WITH_SHA256: hashes.SHA256(),
    x509.SignatureAlgorithmOID.RSA_WITH_SHA384: hashes.SHA384(),
    x509.SignatureAlgorithmOID.RSA_WITH_SHA512: hashes.SHA512(),
    x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256: hashes.SHA256(),
    x509.SignatureAlgorithmOID.ECDSA_WITH_SHA384: hashes.SHA384(),
    x509.SignatureAlgorithmOID.ECDSA_WITH_SHA512: hashes.SHA512(),
}
#: Certificate-link signature algorithms :func:`verify_chain` accepts by default:
#: RSA PKCS#1 v1.5 and ECDSA with SHA-256, SHA-384 or SHA-512. SHA-1 is not in
#: it: a channel whose real chain needs it (UnionPay) passes its own set, and
#: SHA-1 is never accepted for message signatures.
DEFAULT_LINK_ALGORITHMS: frozenset[x509.ObjectIdentifier] = frozenset(
    {
        x509.SignatureAlgorithmOID.RSA_WITH_SHA256,
        x509.SignatureAlgorithmOID.RSA_WITH_SHA384,
        x509.SignatureAlgorithmOID.RSA_WITH_SHA512,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        x509.SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)
_RSA_PKCS1 = "1.2.840.113549.1.1."  # sha*WithRSAEncryption
_ECDSA = "1.2.840.10045.4.3."  # ecdsa-with-SHA*


def verify_chain(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    *,
    at: datetime | None = None,
    algorithms: Collection[x509.ObjectIdentifier] = DEFAULT_LINK_ALGORITHMS,
) -> None:
    """Check that ``cert`` chains through ``chain`` (issuers, leaf-most first, ending
    at a trusted RSA root) and that every link is within its validity at ``at``.

    Each link is verified here: the issuer's public key over the certificate's
    ``tbs_certificate_bytes``, with the hash the certificate names, PKCS#1 v1.5
    for RSA. Only the signature algorithms in ``algorithms`` are accepted
    (:data:`DEFAULT_LINK_ALGORITHMS` unless a channel's real chain needs
    another, such as UnionPay's ``sha1WithRSAEncryption``).

    Raises :class:`SignatureError` naming the failing link, also for a
    certificate that cannot be fully parsed; an empty ``chain`` or a
    self-issued ``cert`` is refused rather than trusted as its own root.
    """
    if not chain:
        # A self-signed certificate would otherwise be its own trusted root.
        raise SignatureError("no trusted certificate chain is configured")
    moment = at or datetime.now(UTC)
    try:
        if cert.issuer == cert.subject:
            raise SignatureError("a self-issued certificate cannot be a chain's leaf")
        current = cert
        for issuer in chain:
            _within_validity(current, moment)
            if current.issuer != issuer.subject:
                raise SignatureError("certificate is not issued by the configured chain")
            _verify_link(current, issuer, algorithms)
            current = issuer
        _within_validity(current, moment)
        if current.issuer != current.subject:
            raise SignatureError("certificate chain does not end at a root")
        if not isinstance(current.public_key(), rsa.RSAPublicKey):
            raise SignatureError("root certificate is not RSA")
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # cryptography parses names, keys and extensions lazily: a damaged
        # certificate fails here, and is a bad signature, not a crash.
        raise SignatureError("certificate in the chain cannot be parsed") from None


def _verify_link(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    algorithms: Collection[x509.ObjectIdentifier],
) -> None:
    """The issuer's key over ``cert``'s TBS bytes, with ``cert``'s own algorithm."""
    oid = cert.signature_algorithm_oid
    algorithm = _LINK_HASHES.get(oid)
    if algorithm is None or oid not in algorithms:
        raise SignatureError(
            f"certificate signature algorithm {oid.dotted_string} is not accepted"
        )
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey) and oid.dotted_string.startswith(_RSA_PKCS1):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and oid.dotted_string.startswith(
            _ECDSA
        ):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            raise SignatureError("certificate signature does not match its issuer's key type")
    except InvalidSignature:
        raise SignatureError("certificate signature does not verify against its issuer") from None


def _within_validity(cert: x509.Certificate, moment: datetime) -> None:
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise SignatureError("certificate is outside its validity period")
