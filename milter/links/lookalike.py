"""Brand-lookalike classification of domains and hosts (see docs/lookalike.md).

Techniques (stable strings; tried in this order, the first that applies is reported):

``official``   the brand's own domain or one of its subdomains: *not* a lookalike;
``homoglyph``  same visual skeleton as a brand name (UTS #39 confusables, ``rn``/``m``...);
``idn``        internationalised name imitating a brand: accents only (``amélì.fr``), or a
               near-miss written in another script;
``tld-swap``   the brand name on another suffix: ``ameli.cc``, ``moncompteformation.fr``;
``tld-glued``  the suffix glued into the name: ``impotsgouv.fr``, ``ameli-fr.com``;
``typo``       1 edit (2 for names longer than 8) incl. transposition, or a moved hyphen/dot;
               ``detail`` names the edit (omission, keyboard replacement, bitsquatting...);
``subdomain``  a brand name used as a label under another domain: ``impots.gouv.fr.x.pw``;
``combosquat`` a brand token plus other words: ``ameli-remboursement.fr``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from milter.links.brands import DEFAULT_NEAR_MISSES, LURE_WORDS, BrandDomains
from milter.links.skeleton import describe_edit, squash
from milter.links.typo_index import SHORT_KEY, TypoIndex
from milter.text.confusables import prepare, skeleton, strip_accents
from milter.text.host import normalize_host, parse_ipv4
from milter.text.idna import to_ascii as host_to_ascii
from milter.text.idna import to_unicode as host_to_unicode
from milter.text.psl import split_host

__all__ = ["TECHNIQUES", "BrandIndex", "Lookalike"]

TECHNIQUES = (
    "official",
    "homoglyph",
    "idn",
    "tld-swap",
    "tld-glued",
    "subdomain",
    "typo",
    "combosquat",
)
_WWW_RE = re.compile(r"w{2,4}\d{0,3}")
_MAX_HOST = 253
_MAX_LABEL = 63


@dataclass(frozen=True, slots=True)
class Lookalike:
    """Verdict on one domain: which brand it imitates, how, and why (``evidence``)."""

    host: str
    host_ascii: str
    brand_id: str
    brand_name: str
    official: str
    technique: str
    detail: str
    evidence: str

    @property
    def is_lookalike(self) -> bool:
        """False for the brand's own domains (technique ``official``)."""
        return self.technique != "official"


@dataclass(frozen=True, slots=True)
class _Form:
    brand: BrandDomains
    official: str
    raw: str  # unfolded text of the form, e.g. "impots.gouv" or "impotsgouvfr"
    kind: str  # technique reported when a candidate equals or is near this form


class _Candidate(NamedTuple):
    host: str
    ascii: str
    dom: str  # registrable label, Unicode
    suffix: str
    subs: tuple[str, ...]  # subdomain labels, Unicode, leading www removed
    folded_dom: str
    folded_subs: tuple[str, ...]
    folded: str  # folded subs and dom joined with dots
    name: str  # subs and dom joined with dots (host without suffix and www)


def _shown(host: str, ascii_host: str) -> str:
    return host if host == ascii_host else f"{host} ({ascii_host})"


class BrandIndex:
    """Precomputed brand forms; :meth:`classify` answers per domain (results cached)."""

    def __init__(
        self,
        brands: Sequence[BrandDomains],
        near_misses: Mapping[str, Sequence[str]],
        lure_words: Iterable[str],
        cache_size: int,
    ) -> None:
        self.brands = tuple(brands)
        prepare()  # static Unicode tables: built here, not during the first classify()
        split_host("example.fr")  # loads the bundled public-suffix list
        self._official: dict[str, BrandDomains] = {}
        self._labels: dict[str, list[_Form]] = {}
        self._names: dict[str, list[_Form]] = {}
        self._glued: dict[str, list[_Form]] = {}
        self._typo_keys: dict[str, _Form] = {}
        self._light_keys: dict[str, _Form] = {}
        self._tokens: dict[str, tuple[BrandDomains, str, tuple[str, ...]]] = {}
        self._lure = frozenset(skeleton(w) for w in lure_words)
        for brand in self.brands:
            self._add_brand(brand, near_misses)
        alternation = "|".join(re.escape(t) for t in sorted(self._tokens, key=len, reverse=True))
        self._token_re = re.compile(alternation or r"(?!)")
        self._typos = TypoIndex(self._typo_keys, self._light_keys)
        self._steps = (
            self._exact,
            self._glued_match,
            self._typo_match,
            self._subdomain,
            self._combo,
        )
        self._cached = functools.lru_cache(maxsize=cache_size)(self._classify)

    @classmethod
    def build(
        cls,
        brands: Iterable[BrandDomains],
        near_misses: Mapping[str, Sequence[str]] = DEFAULT_NEAR_MISSES,
        lure_words: Iterable[str] = LURE_WORDS,
        cache_size: int = 65_536,
    ) -> BrandIndex:
        """Precompute official hosts, folded brand forms, typo buckets and token matcher."""
        return cls(tuple(brands), near_misses, lure_words, cache_size)

    # -- construction ------------------------------------------------------------------

    def _add_brand(self, brand: BrandDomains, near_misses: Mapping[str, Sequence[str]]) -> None:
        suffix_labels = {d.split(".")[0] for d in brand.domains if not split_host(d).domain}
        for domain in brand.domains:
            official = host_to_ascii(normalize_host(domain))
            self._official.setdefault(official, brand)  # first brand listing it owns it
            labels = official.split(".")
            label, name = labels[0], ".".join(labels[:-1]) or labels[0]
            self._labels.setdefault(skeleton(label), []).append(
                _Form(brand, official, label, "tld-swap")
            )
            if name != label:
                self._names.setdefault(skeleton(name), []).append(
                    _Form(brand, official, name, "tld-swap")
                )
            # No typo forms for the label of a public suffix (gouv.fr): "gouy.fr" is a
            # village, not a lookalike of the whole gouv.fr namespace.
            typos = label not in suffix_labels
            for raw, kind in ((label, "typo"), (name, "tld-glued"), (official, "tld-glued")):
                form = _Form(brand, official, raw, kind)
                key = squash(skeleton(raw))
                self._glued.setdefault(key, []).append(form)
                if typos and raw != official:
                    self._typo_keys.setdefault(key, form)
                    self._light_keys.setdefault(squash(skeleton(raw, sequences=False)), form)
        for token in brand.tokens:
            benign = tuple(skeleton(w) for w in near_misses.get(token, ()))
            self._tokens.setdefault(skeleton(token), (brand, token, benign))

    # -- public API ----------------------------------------------------------------------

    def classify(self, domain_or_host: str) -> Lookalike | None:
        """Return the brand imitated by ``domain_or_host`` (or ``official``), else None."""
        return self._cached(domain_or_host)

    def official_brands(self, domain_or_host: str) -> tuple[str, ...]:
        """Ids of the brands whose official domains cover ``domain_or_host`` (the domain
        itself or a parent), most specific first: ``dgfip.finances.gouv.fr`` gives
        ``("dgfip", "gouv")``. This is the one answer to "is this domain official for a brand".
        """
        ascii_host = host_to_ascii(normalize_host(domain_or_host))
        ids = (brand.brand_id for _, brand in self._owners(ascii_host))
        return tuple(dict.fromkeys(ids))

    def cache_clear(self) -> None:
        """Empty the result cache (benchmarks measure with a cold cache)."""
        self._cached.cache_clear()

    # -- analysis ------------------------------------------------------------------------

    def _classify(self, domain_or_host: str) -> Lookalike | None:
        ascii_host = host_to_ascii(normalize_host(domain_or_host))
        if not ascii_host or ":" in ascii_host or len(ascii_host) > _MAX_HOST:
            return None  # empty, IPv6, or longer than DNS allows (cannot resolve)
        if ascii_host[-1].isdigit() and parse_ipv4(ascii_host) is not None:
            return None
        found = self._official_match(ascii_host)
        if found is not None:
            return found
        cand = _candidate(ascii_host)
        if cand is None:
            return None
        for step in self._steps:
            result = step(cand)
            if result is not None:
                return result
        return None

    def _owners(self, ascii_host: str) -> Iterator[tuple[str, BrandDomains]]:
        """(official domain, brand) for the host and each parent, most specific first."""
        pos = 0
        while pos >= 0:
            brand = self._official.get(ascii_host[pos:])
            if brand is not None:
                yield ascii_host[pos:], brand
            pos = ascii_host.find(".", pos)
            pos = pos + 1 if pos >= 0 else -1

    def _official_match(self, ascii_host: str) -> Lookalike | None:
        for official, brand in self._owners(ascii_host):
            host = host_to_unicode(ascii_host)
            evidence = f"{_shown(host, ascii_host)} is {official} ({brand.name}): official"
            return Lookalike(
                host, ascii_host, brand.brand_id, brand.name, official, "official", "", evidence
            )
        return None

    def _verdict(self, cand: _Candidate, form: _Form, technique: str, detail: str) -> Lookalike:
        shown = _shown(cand.host, cand.ascii)
        evidence = f"{shown} ~ {form.official}: {technique}" + (f" ({detail})" if detail else "")
        return Lookalike(
            cand.host,
            cand.ascii,
            form.brand.brand_id,
            form.brand.name,
            form.official,
            technique,
            detail,
            evidence,
        )

    def _exact(self, cand: _Candidate) -> Lookalike | None:
        forms = self._names.get(cand.folded) if cand.subs else None
        raw = cand.name
        if not forms:
            forms, raw = self._labels.get(cand.folded_dom), cand.dom
        if not forms:
            return None
        form = forms[0]
        if raw == form.raw:
            return self._verdict(cand, form, "tld-swap", f"{form.raw} on .{cand.suffix}")
        return self._verdict(cand, form, *_glyph_technique(raw, form.raw))

    def _glued_match(self, cand: _Candidate) -> Lookalike | None:
        squashed = squash(cand.folded)
        for form in self._glued.get(squashed, ()):
            if form.kind == "typo":
                detail = f'hyphenation: "{cand.name}" vs "{form.raw}"'
            else:
                detail = f'"{cand.name}" spells {form.raw}'
            if squash(strip_accents(cand.name)) != squash(form.raw):
                detail += " with look-alike characters"
            return self._verdict(cand, form, form.kind, detail)
        return None

    def _subdomain(self, cand: _Candidate) -> Lookalike | None:
        for folded, raw in zip(cand.folded_subs, cand.subs, strict=True):
            for form in self._labels.get(folded, ()):
                registrable = f"{cand.dom}.{cand.suffix}"
                detail = f'label "{raw}" under {registrable}'
                return self._verdict(cand, form, "subdomain", detail)
        return None

    def _typo_match(self, cand: _Candidate) -> Lookalike | None:
        checks = [(squash(cand.folded_dom), cand.dom)]
        if cand.subs:
            checks.append((squash(cand.folded), cand.name))
        for folded, raw in checks:
            merged = "m" in folded or "d" in folded  # else both skeleton views are equal
            light = squash(skeleton(raw, sequences=False)) if merged else folded
            form = self._typos.nearest(folded, light)
            if form is not None:
                technique = "typo" if raw.isascii() else "idn"
                return self._verdict(cand, form, technique, _typo_detail(raw, form))
        return None

    def _combo(self, cand: _Candidate) -> Lookalike | None:
        text = cand.folded
        for match in self._token_re.finditer(text):
            brand, token, benign = self._tokens[match.group()]
            start, end = match.span()
            if any(_inside(text, start, end, word, match.group()) for word in benign):
                continue
            seg_start, seg_end = _segment(text, start, end)
            # Short tokens, and tokens seen only through merged letter pairs ("carnell"
            # reads "camell"), must stand as a word or be glued to lure words only.
            strict = len(token) <= SHORT_KEY or not _light_has(cand.name, token)
            if strict and not self._glued_ok(text[seg_start:start], text[end:seg_end]):
                continue
            label_index = text.count(".", 0, start)
            labels = (*cand.subs, cand.dom)
            form = _Form(brand, brand.domains[0], token, "combosquat")
            return self._verdict(
                cand, form, "combosquat", _combo_detail(token, labels[label_index], cand)
            )
        return None

    def _glued_ok(self, before: str, after: str) -> bool:
        return all(not part or _word_break(part, self._lure) for part in (before, after))


def _candidate(ascii_host: str) -> _Candidate | None:
    parts = split_host(ascii_host)
    if not parts.domain:
        return None
    if "xn--" in ascii_host:
        sub, dom, host = (host_to_unicode(x) for x in (parts.subdomain, parts.domain, ascii_host))
    else:
        sub, dom, host = parts.subdomain, parts.domain, ascii_host
    if sub:
        subs = sub.split(".")
        while subs and _WWW_RE.fullmatch(subs[0]):
            subs.pop(0)
    if not sub or not subs:
        folded_dom = skeleton(dom)
        return _Candidate(host, ascii_host, dom, parts.suffix, (), folded_dom, (), folded_dom, dom)
    name = ".".join(subs) + "." + dom
    folded = skeleton(name)  # one pass: letter pairs never span a dot
    folded_labels = folded.split(".")
    return _Candidate(
        host,
        ascii_host,
        dom,
        parts.suffix,
        tuple(subs),
        folded_labels[-1],
        tuple(folded_labels[:-1]),
        folded,
        name,
    )


def _glyph_technique(raw: str, official: str) -> tuple[str, str]:
    if not raw.isascii() and strip_accents(raw) == official:
        return "idn", f'accented "{raw}" reads as "{official}"'
    return "homoglyph", f'"{raw}" looks like "{official}"'


def _typo_detail(raw: str, form: _Form) -> str:
    target = form.raw
    if "." not in raw and "." in target:
        target = target.replace(".", "") if "-" in raw else squash(target)
    shown = raw if raw.isascii() else skeleton(raw, sequences=False)
    return f'{describe_edit(shown, target)}: "{raw}" vs "{target}"'


def _combo_detail(token: str, label: str, cand: _Candidate) -> str:
    plain = strip_accents(label)
    rest = plain.replace(token, "-", 1) if token in plain else plain
    extras = [part for part in re.split(r"[-.]", rest) if part]
    where = "" if label == cand.dom else f" in subdomain of {cand.dom}.{cand.suffix}"
    words = " + ".join(f'"{e}"' for e in extras)
    return f'brand token "{token}"' + (f" + {words}" if words else "") + where


def _light_has(name: str, token: str) -> bool:
    return skeleton(token, sequences=False) in skeleton(name, sequences=False)


def _inside(text: str, start: int, end: int, word: str, token: str) -> bool:
    """True when the token occurrence text[start:end] lies inside an occurrence of ``word``."""
    offset = word.find(token)
    while offset >= 0:
        if text.startswith(word, start - offset) and start - offset >= 0:
            return True
        offset = word.find(token, offset + 1)
    return False


def _segment(text: str, start: int, end: int) -> tuple[int, int]:
    seg_start = max(text.rfind(".", 0, start), text.rfind("-", 0, start)) + 1
    ends = [p for p in (text.find(".", end), text.find("-", end)) if p >= 0]
    return seg_start, min(ends) if ends else len(text)


def _word_break(text: str, words: frozenset[str]) -> bool:
    """True when ``text`` is a concatenation of ``words`` (digits allowed between words)."""
    if len(text) > _MAX_LABEL:
        return False
    ok = [True] + [False] * len(text)
    for i in range(1, len(text) + 1):
        for j in range(max(0, i - 20), i):
            if ok[j] and (text[j:i] in words or text[j:i].isdigit()):
                ok[i] = True
                break
    return ok[-1]
