"""Fill locale/ja/LC_MESSAGES/django.po from {msgid: Japanese} JSON files and list what is left.

Usage: python scripts/fill_translations.py locale/pending/*.json
Run `make messages` before (extract) and after (compile). A JSON translation replaces what the
catalogue has and clears its fuzzy mark; entries no JSON file covers are left as they are.
"""

import json
import re
import sys
from pathlib import Path

PO = Path(__file__).resolve().parent.parent / "locale" / "ja" / "LC_MESSAGES" / "django.po"
FIELD = re.compile(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$')


def unquote(text: str) -> str:
    return re.sub(r'\\(["\\nt])', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


def parse(block: str):
    """(comment lines, {field: text}) of one catalogue entry."""
    comments, fields, current = [], {}, None
    for line in block.splitlines():
        match = FIELD.match(line)
        if match:
            current = match.group(1)
            fields[current] = unquote(match.group(2))
        elif line.startswith('"') and current:
            fields[current] += unquote(line[1:-1])
        else:
            comments.append(line)
    return comments, fields


def render(comments, fields) -> str:
    lines = [c for c in comments if c.strip() not in ("#, fuzzy", "#,")]
    lines = [re.sub(r", fuzzy\b", "", c) if c.startswith("#,") else c for c in lines]
    for name, value in fields.items():
        lines.append(f'{name} "{quote(value)}"')
    return "\n".join(lines)


def header(block: str) -> str:
    """The catalogue's header, filled in (makemessages leaves placeholders and a fuzzy mark)."""
    block = block.replace("#, fuzzy\n", "")
    values = {
        "Project-Id-Version": "plusmessage-console",
        "PO-Revision-Date": "2026-11-26 00:00+0900",
        "Language": "ja",
        "Language-Team": "Japanese",
        "Last-Translator": "plusmessage-console team",
    }
    for name, value in values.items():
        pattern = re.compile('"' + re.escape(name) + r': [^"\\]*\\n"')
        block = pattern.sub(lambda _m, n=name, v=value: '"' + n + ": " + v + '\\n"', block)
    return block


def main(paths):
    translations = {}
    for path in paths:
        translations.update(json.loads(Path(path).read_text(encoding="utf-8")))
    blocks = PO.read_text(encoding="utf-8").strip().split("\n\n")
    out, missing, filled = [header(blocks[0])], [], 0
    for block in blocks[1:]:
        comments, fields = parse(block)
        msgid = fields.get("msgid", "")
        japanese = translations.get(msgid, translations.get(fields.get("msgid_plural", "")))
        if japanese is not None:
            for name in list(fields):
                if name.startswith("msgstr["):
                    if name != "msgstr[0]":  # Japanese has one plural form (nplurals=1)
                        del fields[name]
                        continue
                if name.startswith("msgstr"):
                    fields[name] = japanese
            out.append(render(comments, fields))
            filled += 1
            continue
        if not fields.get("msgstr", fields.get("msgstr[0]", "")) or "#, fuzzy" in block:
            missing.append(msgid)
        out.append(block)
    PO.write_text("\n\n".join(out) + "\n", encoding="utf-8")
    print(f"filled {filled}; untranslated or fuzzy {len(missing)}")
    for msgid in missing:
        print("  -", msgid.replace("\n", "\\n")[:120])


if __name__ == "__main__":
    main(sys.argv[1:])
