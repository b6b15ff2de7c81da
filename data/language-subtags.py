#!/usr/bin/env python3
"""Writes data/language-subtags.txt, the subtags herald checks locale tags against.

Source: the IANA Language Subtag Registry (BCP 47, RFC 5646),
https://www.iana.org/assignments/language-subtag-registry, as the npm package
`language-subtag-registry` carries it in JSON (CC0-1.0; `npm pack language-subtag-registry`,
then pass its data/json folder). Every registered language, extlang, script, region and
variant subtag, and every grandfathered tag, lowercased, with ranges (`qaa..qtz`)
expanded. Deprecated subtags stay: they are still registered, and exports carry them.

    python3 data/language-subtags.py PACKAGE/data/json > data/language-subtags.txt
"""

import json
import string
import sys
import textwrap
from pathlib import Path

TYPES = ["language", "extlang", "script", "region", "variant", "grandfathered"]


def expand(subtag):
    """`qaa..qtz` -> qaa, qab, ..., qtz (letters only, as every range in the registry is)."""
    if ".." not in subtag:
        return [subtag]
    first, last = subtag.split("..")
    alphabet = string.ascii_lowercase
    out, current = [], list(first)
    while True:
        out.append("".join(current))
        if "".join(current) == last:
            return out
        i = len(current) - 1
        while current[i] == "z":
            current[i] = "a"
            i -= 1
        current[i] = alphabet[alphabet.index(current[i]) + 1]


def main(folder):
    folder = Path(folder)
    date = json.loads((folder / "meta.json").read_text())["File-Date"]
    registry = json.loads((folder / "registry.json").read_text())
    found = {kind: set() for kind in TYPES}
    for record in registry:
        kind = record["Type"]
        if kind not in found:
            continue
        value = record.get("Subtag") or record["Tag"]
        found[kind].update(expand(value.lower()))
    print(f"# The IANA Language Subtag Registry, File-Date {date}: every registered subtag")
    print("# (and grandfathered tag) by type, lowercased, ranges expanded. Written by")
    print("# data/language-subtags.py, which says where the registry came from; do not edit.")
    for kind in TYPES:
        line = " ".join(sorted(found[kind]))
        for part in textwrap.wrap(line, 90, break_on_hyphens=False):
            print(f"{kind} {part}")


if __name__ == "__main__":
    main(sys.argv[1])
