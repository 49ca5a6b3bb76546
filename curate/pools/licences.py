"""Licences of the embedded pools' origins, as their packages state them (Debian copyright
files, npm package metadata). Keys are the origin names samples carry (`source` in their meta,
or the pool's folder name)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Licence:
    """What a source's images and captions may be used under, where they come from, and the
    licence's Hugging Face identifier (the dataset card's front matter)."""

    licence: str
    origin: str
    hub_id: str = "other"


_TUXPAINT = Licence("GPL-2.0 (Debian copyright of tuxpaint-stamps-default)",
                    "Tux Paint stamps, Debian package tuxpaint-stamps-default", "gpl-2.0")
_FASHION = Licence("MIT (Expat; Debian copyright of dataset-fashion-mnist)",
                   "Fashion-MNIST (Zalando SE), Debian package dataset-fashion-mnist", "mit")

KNOWN = {
    "tuxpaint": _TUXPAINT,
    "openclipart": Licence("public domain dedication (Debian copyright of openclipart-png)",
                           "Open Clip Art Library, Debian packages openclipart-png / openclipart-svg", "cc0-1.0"),
    "emoji": Licence("Apache-2.0 (Noto Emoji images, per the emoji-datasource README; the package's data: MIT)",
                     "Google Noto Emoji, npm package emoji-datasource-google", "apache-2.0"),
    "openmoji": Licence("CC-BY-SA-4.0 (npm package metadata): attribution and share-alike required",
                        "OpenMoji, npm package openmoji", "cc-by-sa-4.0"),
    "flags": Licence("public domain (Debian copyright of iso-flags-png-320x240)",
                     "flag images, Debian package iso-flags-png-320x240; names from iso-codes", "other"),
    "fashion": _FASHION,
    "fashion-mnist": _FASHION,
}

UNKNOWN = Licence("unknown: state the licence of this source before publishing the set (the ingest stage's "
                  "`licence` parameter)", "not recorded", "unknown")
_HUB_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")


def licence_of(origin: str, stated: str | None = None) -> Licence:
    """The licence of an origin: the one the pipeline states (an ingest stage's `licence`), else
    the embedded pools' known one, else UNKNOWN."""
    if stated:
        hub_id = stated.strip().lower()
        return Licence(stated, "stated in the pipeline (the ingest stage's licence)",
                       hub_id if _HUB_ID.match(hub_id) else "other")
    return KNOWN.get(origin, UNKNOWN)
