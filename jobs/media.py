"""What upload.process does to a file: check its bytes are what it claims to be, and store a
clean copy (images re-encoded, so EXIF — GPS included — and any other metadata is gone) plus
a thumbnail. Anything that fails is refused with a reason."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

pillow_heif.register_heif_opener()

THUMBNAIL_SIZE = (320, 320)
_SAVE_AS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/heic": "HEIF"}


class Refused(Exception):
    """The file is not acceptable; the message says why (for the user)."""


@dataclass(frozen=True, slots=True)
class Clean:
    data: bytes
    sha256: bytes
    width: int | None
    height: int | None
    thumbnail: bytes | None


def sniff(data: bytes) -> str | None:
    """The content type the bytes themselves declare (magic numbers), if it is one we take."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (
        b"heic",
        b"heix",
        b"heim",
        b"heis",
        b"mif1",
        b"msf1",
    ):
        return "image/heic"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def clean(data: bytes, declared: str) -> Clean:
    if not data:
        raise Refused("the file is empty")
    found = sniff(data)
    if found != declared:
        raise Refused(f"the file is {found or 'of an unknown type'}, not {declared}")
    if declared == "application/pdf":
        if b"%%EOF" not in data[-2048:]:
            raise Refused("the PDF is truncated")
        return Clean(data, hashlib.sha256(data).digest(), None, None, None)
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()  # a truncated image fails here
            image = ImageOps.exif_transpose(opened)  # keep the picture upright, then drop EXIF
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise Refused(f"the image is damaged or truncated ({exc})") from None
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    if declared == "image/jpeg" and image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(
        out, _SAVE_AS[declared], **({"quality": 88} if declared != "image/png" else {})
    )  # no exif=
    thumb = image.convert("RGB")
    thumb.thumbnail(THUMBNAIL_SIZE)
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, "JPEG", quality=80)
    stored = out.getvalue()
    return Clean(
        stored, hashlib.sha256(stored).digest(), image.width, image.height, thumb_out.getvalue()
    )
