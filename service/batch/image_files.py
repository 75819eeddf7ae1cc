"""Writing text-to-image results as files instead of base64 in the results file."""

from __future__ import annotations

import base64
import mimetypes
import os
import re
from pathlib import Path

from service.batch.inputs import BatchItem, InputError

# Ids become file names: nothing that could climb out of the folder or surprise a shell.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif"}


def ensure_ids_are_file_names(items: list[BatchItem]) -> None:
    """Refuse ids that cannot name a file safely, before anything is sent."""
    for item in items:
        if not SAFE_ID.fullmatch(str(item.id)):
            raise InputError(f"id {item.id!r} cannot name an image file (use letters, digits, '.', '_', '-')")


def extension_for(content_type: str | None) -> str:
    """Return the file extension of an image content type, .bin when unknown."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    return EXTENSIONS.get(media_type) or mimetypes.guess_extension(media_type) or ".bin"


def write_image(path: Path, data: bytes) -> None:
    """Write a file whole or not at all, so a killed run never leaves half an image."""
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    os.replace(partial, path)


def save_images(result: list[dict], item_id: int | str, folder: Path) -> list[dict]:
    """Write each image of a result as `<id>-<n>.<ext>` and return paths in place of base64."""
    saved = []
    for number, image in enumerate(result, start=1):
        path = folder / f"{item_id}-{number}{extension_for(image.get('content_type'))}"
        write_image(path, base64.b64decode(image["image_base64"], validate=True))
        saved.append({"path": str(path), "content_type": image.get("content_type")})
    return saved
