"""The sandbox's own small UnionPay PKI.

A root CA, a middle CA under it, and the platform signing certificate under
the middle, made like UnionPay's test environment's (tests/fixtures/unionpay/
``unipayCertPublicKey.cer``): the same subject, CN
``041@8310000000083040@中国银联股份有限公司@00016495`` (the third ``@`` field is
what a client checks), the same extensions, an 11-digit serial (``certId``),
and every link signed ``sha1WithRSA`` as the real root, middle and signing
certificates are. Only the two CAs' names say "payhub sandbox": a client trusts
this root, never CFCA's. The middle CA also issues merchant signing
certificates, handed out as PKCS#12 (.pfx) files, so a shop can be set up
without any real UnionPay file.

Misbehaving platform certificates for clients' negative tests (another chain,
expired, self-signed, the production CN, a key that does not match, no
signature at all) are made on demand by :meth:`UnionPayPKI.fault_signer`.

Nothing here knows HTTP or the ACP messages; :mod:`payhub_sandbox.unionpay._simulator`
signs with what this module holds.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Literal, get_args

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from payhub.errors import ConfigurationError
from payhub.signing import load_certificate, load_private_key
from payhub_sandbox._errors import InvalidInputError

__all__ = [
    "FAULT_KINDS",
    "FOREIGN_SIGN_CN",
    "PKI_FILES",
    "TEST_SIGN_CN",
    "FaultKind",
    "PlatformSigner",
    "UnionPayPKI",
    "certificate_pem",
    "merchant_pfx",
    "new_rsa_key",
    "wire_pem",
]

#: The platform signing certificate's CN in UnionPay's test environment (since 2020).
TEST_SIGN_CN: Final = "041@8310000000083040@中国银联股份有限公司@00016495"
#: The same shape naming a company other than UnionPay (the ``foreign_cn`` fault):
#: refused in every environment. (UnionPay's own third field, 中国银联股份有限公司,
#: is no fault: its test environment has signed with it since 2020.)
FOREIGN_SIGN_CN: Final = "041@Z12@Some Shop Ltd@00000062"

FaultKind = Literal["other_chain", "expired", "self_signed", "foreign_cn", "wrong_key", "unsigned"]
#: What :meth:`UnionPayPKI.fault_signer` can make the platform sign with.
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)

#: The files :meth:`UnionPayPKI.save` writes and :meth:`UnionPayPKI.load` reads.
PKI_FILES: Final = {
    "root": "unionpay-root.pem",
    "middle": "unionpay-middle.pem",
    "middle_key": "unionpay-middle-key.pem",
    "sign": "unionpay-sign.pem",
    "sign_key": "unionpay-sign-key.pem",
}

_ROOT_YEARS: Final = 20
_MIDDLE_YEARS: Final = 15
_LEAF_YEARS: Final = 5
_BACKDATE: Final = timedelta(days=1)


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _years(count: int) -> timedelta:
    return timedelta(days=365 * count)


def _platform_name(cn: str = TEST_SIGN_CN) -> x509.Name:
    """The subject layout of UnionPay's signing certificates (CFCA's enterprise RA)."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "cn"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CFCA OCA1"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Local RA OCA1"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Enterprises"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _name(cn: str, *, ou: str | None = None) -> x509.Name:
    parts = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "payhub sandbox"),
    ]
    if ou is not None:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(parts)


def _certificate(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer_key: rsa.RSAPrivateKey,
    not_before: datetime,
    not_after: datetime,
    ca: bool,
    serial: int | None = None,
) -> x509.Certificate:
    """A certificate laid out as CFCA's for UnionPay: non-critical extensions, a CA
    with ``cA`` and certificate signing, a leaf without basic constraints, with the
    key usages and extended key usages of UnionPay's signing certificate; signed
    ``sha1WithRSA`` like every link of the real chain."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=not ca,
                data_encipherment=False,
                key_agreement=not ca,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]
            ),
            critical=False,
        )
    return _sha1_signed(builder.sign(issuer_key, hashes.SHA256()), issuer_key)


#: DER of the AlgorithmIdentifiers of sha256WithRSAEncryption and sha1WithRSAEncryption
#: (OID 1.2.840.113549.1.1.11 / .5, NULL parameters): the same length.
_SHA256_RSA: Final = bytes.fromhex("300d06092a864886f70d01010b0500")
_SHA1_RSA: Final = bytes.fromhex("300d06092a864886f70d0101050500")


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _sha1_signed(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """``cert`` signed again ``sha1WithRSA``, as UnionPay's CA signs.

    ``cryptography`` no longer signs certificates with SHA-1, so the SHA-256
    certificate's TBS is taken, its signature algorithm (the same length in DER)
    swapped, and the TBS signed and wrapped again: ``Certificate ::= SEQUENCE {
    tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }``.
    """
    tbs = cert.tbs_certificate_bytes
    at = tbs.find(_SHA256_RSA)
    if at < 0:
        raise ValueError("not a sha256WithRSA certificate")
    tbs = tbs[:at] + _SHA1_RSA + tbs[at + len(_SHA1_RSA) :]
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    bits = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + _SHA1_RSA + bits
    return x509.load_der_x509_certificate(b"\x30" + _der_length(len(body)) + body)


def certificate_pem(cert: x509.Certificate) -> str:
    """Standard PEM text (LF line breaks, trailing newline), for files and the control API."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def wire_pem(cert: x509.Certificate) -> str:
    """The PEM as UnionPay puts it in ``signPubKeyCert``: CRLF line breaks, no final newline."""
    return certificate_pem(cert).strip().replace("\n", "\r\n")


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def merchant_pfx(
    key: rsa.RSAPrivateKey, cert: x509.Certificate, password: str, *, name: str
) -> bytes:
    """A PKCS#12 file of the merchant's key and certificate.

    Encrypted with PBE-SHA1-3DES and a SHA-1 MAC: what CA-issued ``.pfx`` files
    use and what every PKCS#12 reader (OpenSSL 1.x/3.x default provider, Java,
    .NET, PHP) opens. An empty password writes an unencrypted file.
    """
    if password:
        encryption: serialization.KeySerializationEncryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(2048)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())  # noqa: S303 - PKCS#12 MAC of legacy-compatible files
            .build(password.encode("utf-8"))
        )
    else:
        encryption = serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(name.encode("utf-8"), key, cert, None, encryption)


@dataclass(frozen=True)
class PlatformSigner:
    """What the platform signs a message with: a key and the certificate it shows.

    ``key`` None means the message goes out unsigned (the ``unsigned`` fault).
    """

    kind: str
    key: rsa.RSAPrivateKey | None = field(repr=False)
    certificate: x509.Certificate | None = field(repr=False)

    @property
    def cert_pem(self) -> str:
        """``signPubKeyCert`` as it goes on the wire (empty for an unsigned message)."""
        return "" if self.certificate is None else wire_pem(self.certificate)


def _check_issued(child: x509.Certificate, issuer: x509.Certificate, what: str) -> None:
    """``issuer`` signed ``child``, checked with the link's own hash: SHA-1 links (as
    UnionPay's are) included, which ``verify_directly_issued_by`` refuses."""
    key = issuer.public_key()
    algorithm = child.signature_hash_algorithm
    try:
        if child.issuer != issuer.subject or not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(what)
        if algorithm is None:
            raise ValueError(what)
        key.verify(child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
    except (ValueError, InvalidSignature):
        raise InvalidInputError(
            f"UnionPay PKI: the {what} certificate is not issued by its CA"
        ) from None


class UnionPayPKI:
    """Root CA → middle CA → platform signing certificate; issues merchant certificates.

    >>> pki = UnionPayPKI.generate()  # doctest: +SKIP
    >>> pki.root_cert_pem.startswith("-----BEGIN CERTIFICATE-----")  # doctest: +SKIP
    True

    Generating one costs three RSA keys (a few hundred milliseconds): make it
    once and pass it to every :class:`~payhub_sandbox.Sandbox` that should share
    it (``Sandbox(unionpay_pki=pki)``), or keep it on disk with :meth:`save`.
    """

    def __init__(
        self,
        *,
        root_cert: x509.Certificate,
        middle_cert: x509.Certificate,
        middle_key: rsa.RSAPrivateKey,
        sign_cert: x509.Certificate,
        sign_key: rsa.RSAPrivateKey,
    ) -> None:
        _check_issued(middle_cert, root_cert, "middle")
        _check_issued(sign_cert, middle_cert, "platform signing")
        if middle_cert.public_key() != middle_key.public_key():
            raise InvalidInputError("UnionPay PKI: the middle key does not match its certificate")
        if sign_cert.public_key() != sign_key.public_key():
            raise InvalidInputError("UnionPay PKI: the signing key does not match its certificate")
        self.root_cert = root_cert
        self.middle_cert = middle_cert
        self._middle_key = middle_key
        self.sign_cert = sign_cert
        self._sign_key = sign_key
        self.platform = PlatformSigner("platform", sign_key, sign_cert)
        self._faults: dict[str, PlatformSigner] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<UnionPayPKI platform certId={self.sign_cert.serial_number}>"

    # -- making and keeping one ---------------------------------------------------

    @classmethod
    def generate(cls, *, now: datetime) -> UnionPayPKI:
        """A new hierarchy, valid from a day before ``now`` (timezone-aware)."""
        start = now - _BACKDATE
        root_key, middle_key, sign_key = new_rsa_key(), new_rsa_key(), new_rsa_key()
        root_name = _name("payhub sandbox UnionPay Root CA")
        middle_name = _name("payhub sandbox UnionPay Middle CA")
        root = _certificate(
            subject=root_name,
            issuer=root_name,
            public_key=root_key.public_key(),
            issuer_key=root_key,
            not_before=start,
            not_after=start + _years(_ROOT_YEARS),
            ca=True,
        )
        middle = _certificate(
            subject=middle_name,
            issuer=root_name,
            public_key=middle_key.public_key(),
            issuer_key=root_key,
            not_before=start,
            not_after=start + _years(_MIDDLE_YEARS),
            ca=True,
        )
        sign = _certificate(
            subject=_platform_name(),
            issuer=middle_name,
            public_key=sign_key.public_key(),
            issuer_key=middle_key,
            not_before=start,
            not_after=start + _years(_LEAF_YEARS),
            ca=False,
            serial=_cert_id_serial(),
        )
        return cls(
            root_cert=root,
            middle_cert=middle,
            middle_key=middle_key,
            sign_cert=sign,
            sign_key=sign_key,
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> UnionPayPKI:
        """Read what :meth:`save` wrote (``unionpay-root.pem`` and the others)."""
        base = Path(directory)

        def read(name: str) -> bytes:
            path = base / PKI_FILES[name]
            try:
                return path.read_bytes()
            except OSError as exc:
                raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None

        try:
            return cls(
                root_cert=load_certificate(read("root")),
                middle_cert=load_certificate(read("middle")),
                middle_key=load_private_key(read("middle_key")),
                sign_cert=load_certificate(read("sign")),
                sign_key=load_private_key(read("sign_key")),
            )
        except ConfigurationError as exc:
            raise InvalidInputError(f"UnionPay PKI in {base}: {exc.message}") from None

    def save(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write the certificates and the two private keys (mode 0600) into ``directory``.

        Refuses to overwrite an existing file (``FileExistsError``).
        """
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        contents = {
            "root": certificate_pem(self.root_cert).encode("ascii"),
            "middle": certificate_pem(self.middle_cert).encode("ascii"),
            "middle_key": _key_pem(self._middle_key),
            "sign": certificate_pem(self.sign_cert).encode("ascii"),
            "sign_key": _key_pem(self._sign_key),
        }
        for name in contents:
            if (base / PKI_FILES[name]).exists():
                raise FileExistsError(str(base / PKI_FILES[name]))
        written = []
        for name, data in contents.items():
            path = base / PKI_FILES[name]
            mode = 0o600 if name.endswith("_key") else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            written.append(path)
        return written

    # -- what clients are given ----------------------------------------------------

    @property
    def root_cert_pem(self) -> str:
        return certificate_pem(self.root_cert)

    @property
    def middle_cert_pem(self) -> str:
        return certificate_pem(self.middle_cert)

    @property
    def sign_cert_pem(self) -> str:
        return certificate_pem(self.sign_cert)

    # -- merchants -------------------------------------------------------------------

    def issue_merchant_cert(
        self,
        mer_id: str,
        public_key: rsa.RSAPublicKey,
        *,
        now: datetime,
        taken: frozenset[int] = frozenset(),
    ) -> x509.Certificate:
        """A merchant signing certificate from the middle CA; its serial (``certId``)
        is an 11-digit decimal number, as UnionPay's are, not in ``taken``."""
        serial = _cert_id_serial()
        while serial in taken:
            serial = _cert_id_serial()
        start = now - _BACKDATE
        return _certificate(
            subject=_name(f"041@Z12@{mer_id}@{serial % 10**8:08d}", ou="Merchant SIGN"),
            issuer=self.middle_cert.subject,
            public_key=public_key,
            issuer_key=self._middle_key,
            not_before=start,
            not_after=start + _years(_LEAF_YEARS),
            ca=False,
            serial=serial,
        )

    # -- faults ----------------------------------------------------------------------

    def fault_signer(self, kind: str) -> PlatformSigner:
        """The signer of a fault kind (made once, then kept). See :data:`FAULT_KINDS`.

        Its certificates' validity is placed by the middle CA's, not by any clock,
        so a fault means the same thing whenever it is first asked for: the
        ``expired`` certificate ended 12 hours after the PKI began.
        """
        if kind not in FAULT_KINDS:
            raise InvalidInputError(
                f"unknown UnionPay fault {kind!r}; one of {', '.join(FAULT_KINDS)}"
            )
        with self._lock:
            signer = self._faults.get(kind)
            if signer is None:
                signer = self._make_fault(kind)
                self._faults[kind] = signer
            return signer

    def _make_fault(self, kind: str) -> PlatformSigner:
        start = self.middle_cert.not_valid_before_utc
        sign_name = _platform_name()
        key = self._sign_key
        if kind == "unsigned":
            return PlatformSigner(kind, None, None)
        if kind == "other_chain":
            # A hierarchy of the same shape and names, under another root.
            other_root_key, other_middle_key, key = new_rsa_key(), new_rsa_key(), new_rsa_key()
            root = _certificate(
                subject=self.root_cert.subject,
                issuer=self.root_cert.subject,
                public_key=other_root_key.public_key(),
                issuer_key=other_root_key,
                not_before=start,
                not_after=start + _years(_ROOT_YEARS),
                ca=True,
            )
            middle = _certificate(
                subject=self.middle_cert.subject,
                issuer=root.subject,
                public_key=other_middle_key.public_key(),
                issuer_key=other_root_key,
                not_before=start,
                not_after=start + _years(_MIDDLE_YEARS),
                ca=True,
            )
            cert = _certificate(
                subject=sign_name,
                issuer=middle.subject,
                public_key=key.public_key(),
                issuer_key=other_middle_key,
                not_before=start,
                not_after=start + _years(_LEAF_YEARS),
                ca=False,
                serial=_cert_id_serial(),
            )
        elif kind == "expired":
            began = start
            ended = start + timedelta(hours=12)
            cert = _certificate(
                subject=sign_name,
                issuer=self.middle_cert.subject,
                public_key=key.public_key(),
                issuer_key=self._middle_key,
                not_before=began,
                not_after=ended,
                ca=False,
                serial=_cert_id_serial(),
            )
        elif kind == "self_signed":
            cert = _certificate(
                subject=sign_name,
                issuer=sign_name,
                public_key=key.public_key(),
                issuer_key=key,
                not_before=start,
                not_after=start + _years(_LEAF_YEARS),
                ca=False,
                serial=_cert_id_serial(),
            )
        elif kind == "foreign_cn":
            cert = _certificate(
                subject=_platform_name(FOREIGN_SIGN_CN),
                issuer=self.middle_cert.subject,
                public_key=key.public_key(),
                issuer_key=self._middle_key,
                not_before=start,
                not_after=start + _years(_LEAF_YEARS),
                ca=False,
                serial=_cert_id_serial(),
            )
        else:  # wrong_key: the genuine certificate, a signature by another key
            return PlatformSigner(kind, new_rsa_key(), self.sign_cert)
        return PlatformSigner(kind, key, cert)


def _cert_id_serial() -> int:
    """An 11-digit serial number, the size of UnionPay's ``certId`` values."""
    return 10**10 + secrets.randbelow(9 * 10**10)
