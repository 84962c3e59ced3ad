"""Image references of Pachyderm specs, and the spec text with new image tags.

The CI flow (``sdk/pachyderm_ci``) builds an image, tags it with the commit, and hands
``pipeline update`` the spec with only the tag of ``transform.image`` replaced. Pure
text in, text out: the repository's spec file is never rewritten.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from conveyor.errors import UsageError

# docker's reference grammar, narrowed: [HOST[:PORT]/]path[:tag], no digest, no spaces
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?)"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?:(?P<host>{_HOST})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")


@dataclass(frozen=True)
class ImageName:
    host: str | None
    path: str
    tag: str | None

    def at(self, registry: str | None, tag: str) -> str:
        """The same image in ``registry`` (or where it was), tagged ``tag``."""
        host = registry or self.host
        return f"{host}/{self.path}:{tag}" if host else f"{self.path}:{tag}"


def parse_image(text: str) -> ImageName:
    """An image reference as a spec writes it; anything else is one clear sentence."""
    found = _REFERENCE.fullmatch(text) if len(text) <= 255 else None
    if found is None:
        raise UsageError(
            f"transform.image {text[:80]!r} is not an image reference "
            "([HOST[:PORT]/]name[:tag], lower-case name)"
        )
    host = found["host"]
    # docker reads a first component without '.', ':' or 'localhost' as a path, not a host
    if host and not ("." in host or ":" in host or host == "localhost"):
        return ImageName(None, f"{host}/{found['path']}", found["tag"])
    return ImageName(host, found["path"], found["tag"])


def check_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise UsageError(f"{tag[:80]!r} is not an image tag (letters, digits, _ . -)")
    return tag


def retag(text: str, is_json: bool, images: dict[str, str]) -> str:
    """The spec text with every ``transform.image`` found in ``images`` replaced by its
    value; everything else read and written back as data (JSON stream or YAML)."""
    docs = _json_documents(text) if is_json else list(yaml.safe_load_all(text))
    for doc in docs:
        for spec in doc if isinstance(doc, list) else [doc]:
            transform = spec.get("transform") if isinstance(spec, dict) else None
            if isinstance(transform, dict) and transform.get("image") in images:
                transform["image"] = images[transform["image"]]
    if is_json:
        return "\n".join(json.dumps(d, indent=2) for d in docs) + "\n"
    return yaml.safe_dump_all(docs, sort_keys=False)


def _json_documents(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return docs
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
