"""Licences as SPDX expressions: read from a distribution's metadata, judged by allow / deny.

A distribution says what its licence is in up to three places, read in this order, the first
usable one winning:

1. ``License-Expression`` (PEP 639): an SPDX expression by definition; one that does not parse
   is not guessed at.
2. ``License``: free text. An SPDX expression (``MIT``, ``Apache-2.0 OR MIT``, the deprecated
   ``GPL-3.0+``) or a common name from :data:`ALIASES` (``Apache 2.0``, ``MIT License``,
   ``BSD-3``) is used; a licence text pasted into the field (several lines, or longer than
   :data:`NAME_CHARS`) is not a name and is not read.
3. ``Classifier: License :: ...``: mapped with :data:`CLASSIFIERS`. Several licence classifiers
   do not say whether they are alternatives or all apply, so they are joined with ``AND``: each
   of them must pass. One classifier without an SPDX id makes the classifiers unusable.

Two conventions, on purpose:

- The ``BSD License`` classifier (and a bare ``BSD``) names a family, not a licence: SPDX has
  no id for it, and guessing BSD-3-Clause would pass an allow list that a BSD-2-Clause or
  BSD-4-Clause package must not pass. It becomes :data:`BSD_FAMILY` (``LicenseRef-BSD``), an id
  of its own: allowed only when the allow list names it, denied only when the deny list does.
- An unversioned GPL / LGPL becomes ``GPL-1.0-or-later`` / ``LGPL-2.0-or-later``, as the GPL
  itself says ("you may choose any version ever published") and as SPDX's own matching does.
  ``Apache Software License`` becomes ``Apache-2.0``: Apache 1.x is not on PyPI in practice.

Judging (:func:`judge`) walks the expression: ``OR`` passes when one side passes, ``AND`` when
every side does, ``X WITH exception`` is judged as ``X``. A licence id passes when the deny
list does not name it and the allow list is empty or names it. Ids match exactly (case aside):
``GPL-3.0-only`` and ``GPL-3.0-or-later`` are two licences, a deny list names both.

Example::

    reading = read_license(None, "Apache License 2.0", ())  # expression "Apache-2.0"
    judge("MIT OR GPL-3.0-only", allow={"MIT"}, deny=set()).passes  # True
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import license_expression  # type: ignore[import-untyped]  # ships no type information

BSD_FAMILY = "LicenseRef-BSD"
NAME_CHARS = 100  # a longer License field is a licence text, not a licence's name

# Ids an expression may use although the SPDX list does not know them (SPDX 2.3, annex D).
_REF = re.compile(r"(DocumentRef-[A-Za-z0-9.\-]+:)?LicenseRef-[A-Za-z0-9.\-]+", re.IGNORECASE)

# What ``License`` fields say instead of an SPDX expression, lower case, spaces collapsed.
ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ["mit license", "the mit license", "mit licence", "mit/expat", "expat", "expat license"],
        "MIT",
    ),
    **dict.fromkeys(
        [
            "apache",
            "apache 2",
            "apache 2.0",
            "apache-2",
            "apache2",
            "apache 2.0 license",
            "apache license",
            "apache license 2.0",
            "apache license, version 2.0",
            "apache license version 2.0",
            "apache software license",
            "apache software license 2.0",
            "apache software license, version 2.0",
            "asl 2.0",
            "asl2",
        ],
        "Apache-2.0",
    ),  # fmt: skip
    **dict.fromkeys(["bsd", "bsd license", "bsd licence", "bsd-style", "bsd style"], BSD_FAMILY),
    **dict.fromkeys(
        [
            "bsd-3",
            "bsd3",
            "bsd 3-clause",
            "bsd 3 clause",
            "bsd-3 clause",
            "3-clause bsd",
            "bsd 3-clause license",
            "bsd-3-clause license",
            "new bsd",
            "new bsd license",
            "modified bsd",
            "modified bsd license",
            "revised bsd",
            "revised bsd license",
        ],
        "BSD-3-Clause",
    ),  # fmt: skip
    **dict.fromkeys(
        [
            "bsd2",
            "bsd 2-clause",
            "bsd 2 clause",
            "2-clause bsd",
            "bsd 2-clause license",
            "simplified bsd",
            "simplified bsd license",
            "freebsd",
        ],
        "BSD-2-Clause",
    ),  # fmt: skip
    **dict.fromkeys(["gplv2", "gpl v2", "gpl-2", "gpl2", "gnu gpl v2"], "GPL-2.0-only"),
    **dict.fromkeys(["gplv2+", "gpl v2+", "gpl-2+", "gpl2+"], "GPL-2.0-or-later"),
    **dict.fromkeys(["gplv3", "gpl v3", "gpl-3", "gpl3", "gnu gpl v3"], "GPL-3.0-only"),
    **dict.fromkeys(["gplv3+", "gpl v3+", "gpl-3+", "gpl3+"], "GPL-3.0-or-later"),
    **dict.fromkeys(["lgpl", "gnu lgpl"], "LGPL-2.0-or-later"),
    **dict.fromkeys(["lgplv2", "lgpl v2", "lgpl-2"], "LGPL-2.0-only"),
    **dict.fromkeys(["lgplv2+", "lgpl v2+", "lgpl-2+"], "LGPL-2.0-or-later"),
    **dict.fromkeys(["lgplv2.1", "lgpl v2.1", "lgpl 2.1"], "LGPL-2.1-only"),
    **dict.fromkeys(["lgplv2.1+", "lgpl v2.1+", "lgpl 2.1+"], "LGPL-2.1-or-later"),
    **dict.fromkeys(["lgplv3", "lgpl v3", "lgpl-3", "lgpl3"], "LGPL-3.0-only"),
    **dict.fromkeys(["lgplv3+", "lgpl v3+", "lgpl-3+", "lgpl3+"], "LGPL-3.0-or-later"),
    **dict.fromkeys(["agplv3", "agpl v3", "agpl-3", "agpl3"], "AGPL-3.0-only"),
    **dict.fromkeys(["agplv3+", "agpl v3+", "agpl-3+", "agpl3+"], "AGPL-3.0-or-later"),
    **dict.fromkeys(
        ["mpl 2.0", "mpl-2", "mpl2", "mpl v2", "mozilla public license 2.0"], "MPL-2.0"
    ),
    **dict.fromkeys(["isc license", "iscl"], "ISC"),
    **dict.fromkeys(
        ["psf", "psfl", "psf license", "python software foundation license"], "PSF-2.0"
    ),
    **dict.fromkeys(["zpl 2.1", "zpl-2.1", "zope public license 2.1"], "ZPL-2.1"),
    "the unlicense": "Unlicense",  # not "unlicensed": that says there is no licence
    **dict.fromkeys(["cc0", "cc0 1.0"], "CC0-1.0"),
    **dict.fromkeys(["boost", "boost software license"], "BSL-1.0"),
}

# ``License :: <key>`` classifiers (trove) with an SPDX id; every other one has none.
CLASSIFIERS: dict[str, str] = {
    "OSI Approved :: MIT License": "MIT",
    "OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "OSI Approved :: Apache Software License": "Apache-2.0",
    "OSI Approved :: BSD License": BSD_FAMILY,
    "OSI Approved :: GNU General Public License (GPL)": "GPL-1.0-or-later",
    "OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "OSI Approved :: GNU Library or Lesser General Public License (LGPL)": "LGPL-2.0-or-later",
    "OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": (
        "LGPL-2.0-or-later"
    ),
    "OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": (
        "LGPL-3.0-or-later"
    ),
    "OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)": (
        "AGPL-3.0-or-later"
    ),
    "OSI Approved :: Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "OSI Approved :: ISC License (ISCL)": "ISC",
    "OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "OSI Approved :: Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0",
    "OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "OSI Approved :: European Union Public Licence 1.1 (EUPL 1.1)": "EUPL-1.1",
    "OSI Approved :: European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "OSI Approved :: Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "OSI Approved :: Universal Permissive License (UPL)": "UPL-1.0",
    "OSI Approved :: zlib/libpng License": "Zlib",
    "OSI Approved :: PostgreSQL License": "PostgreSQL",
    "OSI Approved :: Common Development and Distribution License 1.0 (CDDL-1.0)": "CDDL-1.0",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}
# Classifiers that qualify a licence without naming one.
_QUALIFIERS = frozenset({"OSI Approved", "DFSG approved"})


class NotSpdx(ValueError):
    """A text that is not a usable SPDX expression (the message says why, in one line)."""


@dataclass(frozen=True)
class LicenseReading:
    """What one distribution's metadata says its licence is."""

    expression: str  # the SPDX expression, normalised ("Apache-2.0 OR MIT"); "" unknown
    declared: str  # what the metadata said: the source used, else the first one present
    source: str = ""  # "License-Expression", "License" or "classifiers"; "" unknown
    problem: str = ""  # why it is unknown, in one line ("" when known)

    @property
    def known(self) -> bool:
        return bool(self.expression)


@dataclass(frozen=True)
class Judgement:
    """An expression against the allow and deny lists: the ids that make it fail, if any."""

    denied: tuple[str, ...] = ()  # ids on the deny list it cannot do without
    not_allowed: tuple[str, ...] = ()  # ids off a non-empty allow list it cannot do without

    @property
    def passes(self) -> bool:
        return not self.denied and not self.not_allowed


def read_license(
    expression: str | None, license: str | None, classifiers: Sequence[str]
) -> LicenseReading:
    """The licence of a distribution whose metadata has these ``License-Expression``,
    ``License`` and ``Classifier: License :: ...`` values (None / () when absent)."""
    candidates: list[tuple[str, str, Callable[[], str]]] = []
    if expression is not None and expression.strip():
        candidates.append(("License-Expression", expression, partial(normalise, expression)))
    if license is not None and license.strip() and not _placeholder(license):
        candidates.append(("License", license, partial(_from_license_field, license)))
    if classifiers:
        joined = "; ".join(classifiers)
        candidates.append(("classifiers", joined, partial(_from_classifiers, classifiers)))
    problems = []
    for source, declared, reader in candidates:
        try:
            return LicenseReading(reader(), declared, source)
        except NotSpdx as exc:
            problems.append(f"{source}: {exc}")
    first = candidates[0][1] if candidates else ""
    return LicenseReading("", first, "", "; ".join(problems) or "no licence metadata")


def normalise(text: str) -> str:
    """``text`` as a normalised SPDX expression; raise :class:`NotSpdx` unless it is one.

    Every id must be on the SPDX licence list (deprecated ids are replaced: ``GPL-3.0+`` is
    ``GPL-3.0-or-later``) or a ``LicenseRef-``; ``WITH`` must name a licence exception.
    """
    try:
        parsed = _licensing().parse(text, strict=True)
    except license_expression.ExpressionError as exc:
        raise NotSpdx(f"not an SPDX expression ({_one_line(str(exc), 80)})") from exc
    if parsed is None:
        raise NotSpdx("empty")
    for symbol, role in _symbols(parsed):
        key = str(symbol.key)
        known = key in _licensing().known_symbols
        if not known and not _REF.fullmatch(key):
            raise NotSpdx(f"{key!r} is not an SPDX licence id")
        if role == "licence" and known and symbol.is_exception:
            raise NotSpdx(f"{key!r} is a licence exception, not a licence")
        if role == "exception" and not (known and symbol.is_exception):
            raise NotSpdx(f"{key!r} is not an SPDX licence exception")
    return str(parsed)


def spdx_id(text: str) -> str:
    """``text`` as one SPDX licence id (canonical spelling), for an allow or deny list;
    raise ValueError with one line naming it unless it is one."""
    try:
        parsed = _licensing().parse(text)  # not strict: an exception alone is named below
    except license_expression.ExpressionError:
        parsed = None
    if isinstance(parsed, license_expression.LicenseWithExceptionSymbol):
        raise ValueError(
            f"{text!r} has an exception: list its licence alone (WITH judges the licence)"
        )
    if parsed is not None and not isinstance(parsed, license_expression.LicenseSymbol):
        raise ValueError(f"{text!r} is an expression: list each licence id on its own")
    key = str(parsed.key) if parsed is not None else text
    known = key in _licensing().known_symbols
    if parsed is not None and known and parsed.is_exception:
        raise ValueError(f"{text!r} is a licence exception, not a licence")
    if parsed is None or not (known or _REF.fullmatch(key)):
        hint = _suggestion(text)
        raise ValueError(
            f"{text!r} is not an SPDX licence id" + (f"; did you mean {hint!r}?" if hint else "")
        )
    return key


def judge(expression: str, allow: Collection[str], deny: Collection[str]) -> Judgement:
    """Whether the normalised ``expression`` passes ``allow`` (empty: any licence) and
    ``deny``, and if not, which ids fail it (``MIT OR GPL-3.0-only`` passes ``allow=[MIT]``;
    ``MIT AND GPL-3.0-only`` fails ``deny=[GPL-3.0-only]``, naming it)."""
    allowed = {a.lower() for a in allow}
    denied = {d.lower() for d in deny}
    failures = _failures(_licensing().parse(expression, strict=True), allowed, denied)
    return Judgement(
        tuple(key for key, why in failures if why == "denied"),
        tuple(key for key, why in failures if why == "not-allowed"),
    )


def spdx_url(license_id: str) -> str:
    """The SPDX licence list's page of an id; "" for a ``LicenseRef-`` (it has none)."""
    if _REF.fullmatch(license_id) or license_id not in _licensing().known_symbols:
        return ""
    return f"https://spdx.org/licenses/{license_id}.html"


def library_version() -> str:
    """license-expression's version: the SPDX licence list it knows comes with it."""
    from importlib.metadata import version

    return version("license-expression")


def _from_license_field(text: str) -> str:
    flat = _one_line(text, 10_000)
    if "\n" in text.strip() or len(flat) > NAME_CHARS:
        raise NotSpdx(f"a licence text, not a licence name ({_one_line(text, 60)!r})")
    try:
        return normalise(flat)
    except NotSpdx:
        alias = ALIASES.get(flat.lower().rstrip("."))
        if alias is None:
            raise NotSpdx(f"{flat!r} is neither an SPDX expression nor a known name") from None
        return normalise(alias)


def _from_classifiers(classifiers: Sequence[str]) -> str:
    ids: list[str] = []
    for classifier in classifiers:
        key = " :: ".join(part.strip() for part in classifier.split("::")[1:])
        if key in _QUALIFIERS:
            continue
        if key not in CLASSIFIERS:
            raise NotSpdx(f"classifier {key!r} has no SPDX id")
        ids.append(CLASSIFIERS[key])
    if not ids:
        raise NotSpdx("no classifier names a licence")
    return normalise(" AND ".join(dict.fromkeys(ids)))


def _placeholder(text: str) -> bool:
    # What old setuptools wrote when no licence was given: absent, not a licence.
    return text.strip().upper() in {"UNKNOWN", "NONE"}


def _failures(node: Any, allowed: set[str], denied: set[str]) -> list[tuple[str, str]]:
    """The (id, "denied" | "not-allowed") pairs that make ``node`` fail; [] = it passes."""
    if isinstance(node, license_expression.LicenseWithExceptionSymbol):
        node = node.license_symbol  # the exception only grants more
    if isinstance(node, license_expression.LicenseSymbol):
        key = str(node.key)
        if key.lower() in denied:
            return [(key, "denied")]
        if allowed and key.lower() not in allowed:
            return [(key, "not-allowed")]
        return []
    sides = [_failures(arg, allowed, denied) for arg in node.args]
    if isinstance(node, license_expression.OR) and any(not side for side in sides):
        return []
    return list(dict.fromkeys(pair for side in sides for pair in side))


def _symbols(node: Any) -> Iterable[tuple[Any, str]]:
    """Every symbol of a parsed expression, as a ``"licence"`` or an ``"exception"``."""
    if isinstance(node, license_expression.LicenseWithExceptionSymbol):
        yield node.license_symbol, "licence"
        yield node.exception_symbol, "exception"
    elif isinstance(node, license_expression.LicenseSymbol):
        yield node, "licence"
    else:
        for arg in node.args:
            yield from _symbols(arg)


def _suggestion(text: str) -> str:
    alias = ALIASES.get(" ".join(text.lower().split()))
    if alias is not None:
        return alias
    close = difflib.get_close_matches(text, list(_licensing().known_symbols), n=1, cutoff=0.75)
    return close[0] if close else ""


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


@cache
def _licensing() -> Any:
    """The SPDX licence list without ScanCode's ``LicenseRef-`` aliases.

    license-expression maps some ``LicenseRef-`` ids to SPDX ids (``LicenseRef-MIT-Discord``
    to ``MIT``, ``LicenseRef-GPL`` to ``GPL-1.0-or-later``); a ``LicenseRef-`` is the
    distribution's own licence, so here it stays what it says. The SPDX list's deprecated ids
    (``GPL-3.0``, ``GPL-3.0+``) remain aliases of their replacements.
    """
    spdx = license_expression.get_spdx_licensing()
    symbols = [
        license_expression.LicenseSymbol(
            key,
            aliases=tuple(
                a
                for a in symbol.aliases
                if not a.lower().startswith(("licenseref-", "documentref-"))
            ),
            is_exception=symbol.is_exception,
        )
        for key, symbol in spdx.known_symbols.items()
    ]
    return license_expression.Licensing(symbols)
