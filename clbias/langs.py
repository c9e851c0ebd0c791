"""Language codes: ISO 639-1, a few ISO 639-3 codes without a two-letter form, and BCP-47 subtags."""
from __future__ import annotations

import re

ENGLISH = "en"  # the language the audit measures inclination toward; any `en-*` tag normalises to it

ISO_639_1 = set("""
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz
ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io
is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr
ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si
sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh
yi yo za zh zu""".split())
ISO_639_3_EXTRA = set("""
ace ast bal ban bho bug ceb ckb crh fil fur gom hak haw hil hmn hne ilo kab kbp kmr lij lmo ltg mag mai min
mni nan nso pag pap pcm prs quy sat scn shn szl tpi tum tzm war wuu yue zsm""".split())
_TAG = re.compile(r"^([a-zA-Z]{2,3})(?:[-_]([a-zA-Z]{4}))?(?:[-_]([a-zA-Z]{2}|[0-9]{3}))?$")


def normalize_lang(code: str) -> str | None:
    """Return the canonical tag (`en`, `zh-Hans`, `pt-BR`) or None if the code is not a language we know."""
    match = _TAG.match(code.strip())
    if not match:
        return None
    primary, script, region = match.groups()
    primary = primary.lower()
    if primary not in ISO_639_1 and primary not in ISO_639_3_EXTRA:
        return None
    if primary == "en":
        return ENGLISH
    tag = primary
    if script:
        tag += "-" + script.title()
    if region:
        tag += "-" + region.upper()
    return tag


def base_lang(tag: str) -> str:
    """The primary subtag: what scenarios group by (`zh-Hans` and `zh-Hant` are both `zh`)."""
    return tag.split("-", 1)[0]


def parse_lang_list(text: str, available: list[str], field: str = "--langs") -> list[str]:
    """Comma-separated language codes, normalised; each must be one of `available` (InputError naming `field`)."""
    from .errors import InputError

    langs = []
    for raw in (part.strip() for part in text.split(",") if part.strip()):
        lang = normalize_lang(raw)
        if lang is None:
            raise InputError(f"unknown language code {raw!r}", field=field)
        if lang not in available:
            raise InputError(f"{lang!r} is not a document language of the corpus ({', '.join(available)})",
                             field=field)
        langs.append(lang)
    return langs
