#!/usr/bin/python3
"""export_map.py: the linker version script of the shared liboq, made from
the public headers, so that the library exports exactly the functions and
data they declare (and not liboq's internal functions, its protobuf-c code or
its kernels).

    export_map.py OUT.map HEADER...

A declaration is a top-level statement of a header (comments and
preprocessor lines removed) that is not a typedef, a static (inline)
function or a type definition: a function's name is the identifier before
its parameter list, an extern object's the identifier before its array
bounds or the semicolon. Only names starting with oq_ are taken.
"""
import re
import sys


def statements(text):
    """Top-level statements: up to a ';' at brace depth 0, or a '}' closing a function body."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and re.search(r"\)\s*\{", text[start:i + 1]) and not text[start:i + 1].lstrip().startswith(
                    ("typedef", "struct", "enum", "union")):
                out.append(text[start:i + 1])
                start = i + 1
        elif ch == ";" and depth == 0:
            out.append(text[start:i + 1])
            start = i + 1
    return out


def exported(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    names = []
    for s in statements(text):
        s = " ".join(s.split())
        if not s or s.startswith(("typedef", "static")) or "{" in s:
            continue
        if s.startswith("extern"):
            m = re.search(r"\b(oq_\w+)\s*(?:\[[^\]]*\]\s*)*;$", s)
        else:
            m = re.search(r"\b(oq_\w+)\s*\(", s)
        if m:
            names.append(m.group(1))
    return names


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    names = []
    for path in sys.argv[2:]:
        with open(path) as f:
            names += exported(f.read())
    names = sorted(set(names))
    with open(sys.argv[1], "w") as f:
        f.write("/* made by src/export_map.py from the public headers */\n{\n  global:\n")
        f.writelines("    %s;\n" % n for n in names)
        f.write("  local:\n    *;\n};\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
