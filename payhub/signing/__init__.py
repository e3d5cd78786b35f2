"""Cryptographic primitives shared by every channel and by the sandbox.

Pure functions: no I/O, no knowledge of any channel's flows. Keys are loaded
once, at configuration time (loading and validating an RSA private key costs
tens of milliseconds; a signature a fraction of one).
"""

from payhub.signing._certs import (
    alipay_cert_sn,
    alipay_root_cert_sn,
    certificate_serial_hex,
    verify_chain,
)
from payhub.signing._digest import (
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    canonical_query,
    constant_time_equals,
    hmac_sha256_hex,
    md5_hex,
    sha1_hex,
    sha256_hex,
)
from payhub.signing._keys import (
    load_certificate,
    load_certificates,
    load_pkcs12,
    load_private_key,
    load_public_key,
)
from payhub.signing._logs import REDACTED, guard_http_logs, redact_url_secrets
from payhub.signing._rsa import HashName, rsa_oaep_decrypt, rsa_oaep_encrypt, rsa_sign, rsa_verify

__all__ = [
    "REDACTED",
    "HashName",
    "aes_gcm_decrypt",
    "aes_gcm_encrypt",
    "alipay_cert_sn",
    "alipay_root_cert_sn",
    "canonical_query",
    "certificate_serial_hex",
    "constant_time_equals",
    "guard_http_logs",
    "hmac_sha256_hex",
    "load_certificate",
    "load_certificates",
    "load_pkcs12",
    "load_private_key",
    "load_public_key",
    "md5_hex",
    "redact_url_secrets",
    "rsa_oaep_decrypt",
    "rsa_oaep_encrypt",
    "rsa_sign",
    "rsa_verify",
    "sha1_hex",
    "sha256_hex",
    "verify_chain",
]
