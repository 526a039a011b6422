#!/usr/bin/python3
"""Copies the model-zoo table that `meson test --suite zoo` writes
(BUILD/tests/zoo/zoo-results.md) into docs/results.md, between its
zoo-results markers, so the table in the docs is the one the suite measured.
    /usr/bin/python3 scripts/update_results.py [BUILD]      (default build)"""
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent
build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else root / "build")
table = (build / "tests" / "zoo" / "zoo-results.md").read_text().strip()
doc = root / "docs" / "results.md"
text = doc.read_text()
begin = text.index("<!-- zoo-results:")
begin = text.index("\n", begin) + 1
end = text.index("<!-- end zoo-results -->")
tmp = doc.with_suffix(".md.tmp")
tmp.write_text(text[:begin] + table + "\n" + text[end:])
tmp.replace(doc)
print(f"{doc}: zoo table from {build / 'tests/zoo/zoo-results.md'}")
