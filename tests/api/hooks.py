"""Schemathesis hooks: raw bytes for the binary media types of the upload and cover routes."""
import schemathesis


def _raw(ctx, value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if value is None:
        return b""
    return str(value).encode()


for media_type in (
    "application/offset+octet-stream",
    "application/octet-stream",
    "audio/flac",
    "audio/mpeg",
    "audio/wav",
    "image/jpeg",
):
    schemathesis.serializer(media_type)(_raw)

