"""Licences of the embedded pools' origins, as their packages state them (Debian copyright
files, npm package metadata). Keys are the origin names samples carry (`source` in their meta,
or the pool's folder name)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Licence:
    """What a source's images and captions may be used under, and where they come from."""

    licence: str
    origin: str


_TUXPAINT = Licence("GPL-2.0 (Debian copyright of tuxpaint-stamps-default)",
                    "Tux Paint stamps, Debian package tuxpaint-stamps-default")
_FASHION = Licence("MIT (Expat; Debian copyright of dataset-fashion-mnist)",
                   "Fashion-MNIST (Zalando SE), Debian package dataset-fashion-mnist")

KNOWN = {
    "tuxpaint": _TUXPAINT,
    "openclipart": Licence("public domain dedication (Debian copyright of openclipart-png)",
                           "Open Clip Art Library, Debian packages openclipart-png / openclipart-svg"),
    "emoji": Licence("Apache-2.0 (Noto Emoji images, per the emoji-datasource README; the package's data: MIT)",
                     "Google Noto Emoji, npm package emoji-datasource-google"),
    "openmoji": Licence("CC-BY-SA-4.0 (npm package metadata): attribution and share-alike required",
                        "OpenMoji, npm package openmoji"),
    "flags": Licence("public domain (Debian copyright of iso-flags-png-320x240)",
                     "flag images, Debian package iso-flags-png-320x240; names from iso-codes"),
    "fashion": _FASHION,
    "fashion-mnist": _FASHION,
}

UNKNOWN = Licence("unknown: state the licence of this source before publishing the set", "not recorded")


def licence_of(origin: str) -> Licence:
    """The licence of an origin, or UNKNOWN."""
    return KNOWN.get(origin, UNKNOWN)
