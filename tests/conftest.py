"""Shared fixtures: RSA keys are generated once per session (they are slow to make)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class KeyPair:
    private: rsa.RSAPrivateKey

    @property
    def public(self) -> rsa.RSAPublicKey:
        return self.private.public_key()

    @property
    def private_pem(self) -> str:
        """PKCS#8 PEM."""
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def private_pkcs1_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()

    @property
    def public_pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def public_base64(self) -> str:
        """The bare base64 body, as the Alipay console shows a key."""
        return "".join(self.public_pem.strip().splitlines()[1:-1])

    @property
    def private_base64(self) -> str:
        return "".join(self.private_pem.strip().splitlines()[1:-1])


def _new_pair() -> KeyPair:
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def merchant_keys() -> KeyPair:
    """The shop's (merchant's / app's) key pair."""
    return _new_pair()


@pytest.fixture(scope="session")
def platform_keys() -> KeyPair:
    """The channel platform's key pair (what the sandbox signs with)."""
    return _new_pair()


@pytest.fixture(scope="session")
def other_keys() -> KeyPair:
    """An unrelated key pair, for forged signatures."""
    return _new_pair()
