"""Welsh initial mutations and accent folding, for matching words as people type them.

A Welsh word changes its first sound after certain words: *cyllideb* (budget) is *gyllideb*
after "ei" (his), *nghyllideb* after "fy" (my) and *chyllideb* after "a" (and); *Torfaen* is
*Dorfaen* after "i" and *Nhorfaen* after "yn". `radicals` lists the dictionary forms a typed
word may be a mutation of, and `mutations` the forms a dictionary word takes, so a question
matches a name or a record whichever form either side uses.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# (mutated start, radical start), longest first within each mutation.
_SOFT = (("g", "c"), ("b", "p"), ("d", "t"), ("f", "b"), ("f", "m"), ("dd", "d"),
         ("l", "ll"), ("r", "rh"))  # fmt: skip
_NASAL = (("ngh", "c"), ("mh", "p"), ("nh", "t"), ("ng", "g"), ("m", "b"), ("n", "d"))
_ASPIRATE = (("ch", "c"), ("ph", "p"), ("th", "t"))
_VOWELS = "aeiouwy"

_MUTATIONS = (*_SOFT, *_NASAL, *_ASPIRATE)


def fold(word: str) -> str:
    """Lower case without accents: "Hôl" -> "hol", "ynglŷn" -> "ynglyn"."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=8192)
def radicals(word: str) -> frozenset[str]:
    """The word itself and every form it could be a mutation of (folded).

    "gyllideb" -> {gyllideb, cyllideb}; "nhorfaen" -> {nhorfaen, torfaen};
    "waith" -> {waith, gwaith} (soft mutation drops a g); "hol" -> {hol, ol}.
    """
    word = fold(word)
    found = {word}
    if len(word) < 3:
        return frozenset(found)
    for mutated, radical in _MUTATIONS:
        if word.startswith(mutated) and len(word) > len(mutated) + 1:
            found.add(radical + word[len(mutated) :])
    if word[0] in _VOWELS or word[0] in "lr":
        found.add("g" + word)  # soft mutation of g: "waith" <- "gwaith", "orsaf" <- "gorsaf"
    if word[0] == "h" and len(word) > 2 and word[1] in _VOWELS:
        found.add(word[1:])  # h before a vowel after "ei" (her), "ein", "eu": "ei hôl" <- "ôl"
    return frozenset(found)


@lru_cache(maxsize=8192)
def mutations(word: str) -> frozenset[str]:
    """The word and every mutated form of it (folded): "canolfan" -> {canolfan, ganolfan,
    nghanolfan, chanolfan}."""
    word = fold(word)
    found = {word}
    for mutated, radical in _MUTATIONS:
        # "ll"/"rh" must not also mutate as "l"/"r" words, nor "dd" words as "d".
        if word.startswith(radical) and not (radical in ("d", "b") and word[:2] == "dd"):
            found.add(mutated + word[len(radical) :])
    if word.startswith("g") and len(word) > 3:
        found.add(word[1:])
    if word[0:1] in _VOWELS:
        found.add("h" + word)
    return frozenset(found)


def variants(word: str) -> frozenset[str]:
    """Every form a word may take in Welsh text: the mutations of each of its radicals."""
    return frozenset(form for radical in radicals(word) for form in mutations(radical))


def same_word(typed: str, known: str) -> bool:
    """Whether `typed` is `known` or a mutation of it, either way round, accents ignored."""
    return bool(radicals(typed) & radicals(known))
