"""AES-256-GCM payload encryption, shared by the CLI, the worker and `flowctl codec-server`.

With keys configured, every payload flowctl or its worker sends (workflow inputs, results,
signal and update arguments, memo) is sealed before it reaches the server, so the server's
history holds ciphertext only. The codec runs in the client's data converter, outside the
workflow sandbox: workflow modules never import it (cryptography is a native library).

Keys are `ID:BASE64` entries (16, 24 or 32 bytes once decoded), separated by commas,
whitespace or new lines, from `codec.keys` (usually `FLOWCTL_CODEC__KEYS`) or the file
`codec.keys_file`. The first key seals; every key opens. To rotate, put a new key first and
keep the old ones for as long as histories sealed with them matter. Each payload gets a
random 96-bit nonce, so a key should seal well under 2**32 payloads before it is rotated.
The key id is bound to the ciphertext as associated data.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from flowctl.errors import KeyMissingError, UsageError

if TYPE_CHECKING:
    from temporalio.api.common.v1 import Payload
    from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_META = "encryption-key-id"
NONCE_BYTES = 12
TAG_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


# Where keys are configured: the hint of every error about a missing key.
KEYS_SETTING = "set FLOWCTL_CODEC__KEYS (or codec.keys / codec.keys_file) to the keys the worker uses"


@dataclass(frozen=True)
class KeyRing:
    """Named AES keys; the first seals. Key bytes never appear in its repr."""

    ids: tuple[str, ...]
    _keys: dict[str, bytes] = field(repr=False)

    @classmethod
    def parse(cls, text: str, source: str) -> KeyRing:
        """Keys from `ID:BASE64` entries; errors name the entry and never show its value."""
        keys: dict[str, bytes] = {}
        entries = [e for e in re.split(r"[\s,]+", _strip_comments(text)) if e]
        if not entries:
            raise UsageError(f"codec keys ({source}): no key given", hint=_KEY_HINT)
        for n, entry in enumerate(entries, 1):
            key_id, sep, encoded = entry.partition(":")
            if not sep or not _KEY_ID.fullmatch(key_id):
                raise UsageError(
                    f"codec keys ({source}): entry {n} is not ID:BASE64 (ID of letters, digits, '.', '_', '-')",
                    hint=_KEY_HINT,
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) not in (16, 24, 32):
                raise UsageError(
                    f"codec keys ({source}): key {key_id!r} is not base64 of 16, 24 or 32 bytes", hint=_KEY_HINT
                )
            if key_id in keys:
                raise UsageError(f"codec keys ({source}): key id {key_id!r} appears twice", hint=_KEY_HINT)
            keys[key_id] = key
        return cls(tuple(keys), keys)

    @property
    def active(self) -> str:
        return self.ids[0]

    def seal(self, payload: Payload) -> Payload:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from temporalio.api.common.v1 import Payload

        key_id = self.active
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._keys[key_id]).encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_META: key_id.encode()},
            data=nonce + sealed,
        )

    def open(self, payload: Payload) -> Payload:
        """The original payload; payloads that are not sealed pass through unchanged."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from temporalio.api.common.v1 import Payload

        if not is_sealed(payload):
            return payload
        key_id = sealed_key_id(payload)
        key = self._keys.get(key_id)
        if key is None:
            raise KeyMissingError(
                f"payload sealed with codec key {key_id!r}, which is not among the configured keys "
                f"({', '.join(self.ids)})",
                hint=KEYS_SETTING,
            )
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise KeyMissingError(f"payload sealed with codec key {key_id!r} is truncated ({len(payload.data)} bytes)")
        try:
            plain = AESGCM(key).decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
            return Payload.FromString(plain)
        except (InvalidTag, ValueError):
            raise KeyMissingError(
                f"payload sealed with codec key {key_id!r} does not open with the configured key of that id",
                hint="the key with that id differs from the one that sealed it, or the payload was altered",
            ) from None


_KEY_HINT = "give keys as ID:BASE64, e.g. from 'flowctl codec-key --id k1'"


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def is_sealed(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


def sealed_key_id(payload: Payload) -> str:
    return payload.metadata.get(KEY_ID_META, b"").decode(errors="replace")


def new_key_line(key_id: str) -> str:
    if not _KEY_ID.fullmatch(key_id):
        raise UsageError(f"--id {key_id!r} is not a key id", hint="use letters, digits, '.', '_' or '-' (1-64)")
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class KeySettings(Protocol):
    """Where the keys are configured (config.CodecSettings): named here, so codec needs no config."""

    @property
    def keys(self) -> Any: ...  # a SecretStr, or None

    @property
    def keys_file(self) -> Any: ...  # a path, or None


def keyring(settings: KeySettings) -> KeyRing | None:
    """The configured keys: `codec.keys` (as from FLOWCTL_CODEC__KEYS) wins over `codec.keys_file`."""
    if settings.keys is not None and settings.keys.get_secret_value().strip():
        return KeyRing.parse(settings.keys.get_secret_value(), "codec.keys or FLOWCTL_CODEC__KEYS")
    if settings.keys_file is not None:
        from flowctl.files import read_text

        path = Path(settings.keys_file).expanduser()
        text = read_text(path, "codec.keys_file", hint="fix the path or unset codec.keys_file")
        return KeyRing.parse(text, f"codec.keys_file {path}")
    return None


def payload_codec(ring: KeyRing | None) -> PayloadCodec:
    """The SDK codec sealing and opening with `ring`; without keys it seals nothing and
    refuses sealed payloads with an error naming the setting, instead of the converter's
    "unknown encoding"."""
    from temporalio.converter import PayloadCodec

    class AesGcmCodec(PayloadCodec):
        async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
            return [ring.seal(p) for p in payloads] if ring else list(payloads)

        async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
            if ring:
                return [ring.open(p) for p in payloads]
            for payload in payloads:
                if is_sealed(payload):
                    raise KeyMissingError(
                        f"payload encrypted with codec key {sealed_key_id(payload)!r}, and no codec keys are configured",
                        hint=KEYS_SETTING,
                    )
            return list(payloads)

    return AesGcmCodec()
