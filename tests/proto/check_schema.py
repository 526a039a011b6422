#!/usr/bin/python3
"""Checks proto/onnx.proto against the installed python onnx package.

Parses our .proto with a small parser (messages, nested messages, oneofs,
enums; field label, type, name, number) and compares every message and enum
that both define with the descriptors of onnx.onnx_ml_pb2. A field or enum
value of the package that we lack, or one we define with another number,
name, label or type, is an error. Fields we have and the package lacks (newer
IR versions, and a larger Version.IR_VERSION) are listed, not errors.

usage: check_schema.py path/to/onnx.proto
"""
import re
import sys

from google.protobuf import descriptor as D
import onnx.onnx_ml_pb2 as pb

TOKEN = re.compile(r'"[^"]*"|[A-Za-z_][A-Za-z0-9_.]*|0[xX][0-9a-fA-F]+|-?\d+|[{};=\[\](),<>]')

SCALAR = {
    D.FieldDescriptor.TYPE_DOUBLE: "double", D.FieldDescriptor.TYPE_FLOAT: "float",
    D.FieldDescriptor.TYPE_INT64: "int64", D.FieldDescriptor.TYPE_UINT64: "uint64",
    D.FieldDescriptor.TYPE_INT32: "int32", D.FieldDescriptor.TYPE_UINT32: "uint32",
    D.FieldDescriptor.TYPE_BOOL: "bool", D.FieldDescriptor.TYPE_STRING: "string",
    D.FieldDescriptor.TYPE_BYTES: "bytes", D.FieldDescriptor.TYPE_SINT32: "sint32",
    D.FieldDescriptor.TYPE_SINT64: "sint64", D.FieldDescriptor.TYPE_FIXED32: "fixed32",
    D.FieldDescriptor.TYPE_FIXED64: "fixed64",
}
LABEL = {D.FieldDescriptor.LABEL_OPTIONAL: "optional", D.FieldDescriptor.LABEL_REPEATED: "repeated",
         D.FieldDescriptor.LABEL_REQUIRED: "required"}


def tokens(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return TOKEN.findall(text)


def parse(text):
    """Returns (messages, enums): full name -> {number: (label, type, name)} /
    full name -> {name: number}."""
    toks = tokens(text)
    messages, enums = {}, {}
    pos = 0
    package = ""

    def skip_statement():
        nonlocal pos
        while toks[pos] != ";":
            pos += 1
        pos += 1

    def parse_enum(full):
        nonlocal pos
        values = enums.setdefault(full, {})
        assert toks[pos] == "{", full
        pos += 1
        while toks[pos] != "}":
            if toks[pos] in ("option", "reserved"):
                skip_statement()
                continue
            name, eq, num = toks[pos:pos + 3]
            assert eq == "=", (full, name)
            values[name] = int(num, 0)
            pos += 3
            skip_statement()
        pos += 1

    def parse_field(full, label):
        nonlocal pos
        ftype, name, eq, num = toks[pos:pos + 4]
        assert eq == "=", (full, ftype, name)
        fields = messages[full]
        number = int(num, 0)
        if number in fields:
            raise SystemExit(f"{full}: field number {number} used twice")
        fields[number] = (label, ftype.split(".")[-1], name)
        pos += 4
        skip_statement()

    def parse_message(full):
        nonlocal pos
        messages.setdefault(full, {})
        assert toks[pos] == "{", full
        pos += 1
        while toks[pos] != "}":
            t = toks[pos]
            if t == ";":
                pos += 1
            elif t == "message":
                pos += 2
                parse_message(full + "." + toks[pos - 1])
            elif t == "enum":
                pos += 2
                parse_enum(full + "." + toks[pos - 1])
            elif t == "oneof":
                pos += 3
                while toks[pos] != "}":
                    parse_field(full, "optional")
                pos += 1
            elif t in ("reserved", "option", "extensions"):
                skip_statement()
            elif t in ("optional", "repeated", "required"):
                pos += 1
                parse_field(full, t)
            else:
                raise SystemExit(f"{full}: cannot parse at '{t}'")
        pos += 1

    while pos < len(toks):
        t = toks[pos]
        if t == "package":
            package = toks[pos + 1]
            skip_statement()
        elif t in ("syntax", "option", "import"):
            skip_statement()
        elif t == "message":
            pos += 2
            parse_message(package + "." + toks[pos - 1])
        elif t == "enum":
            pos += 2
            parse_enum(package + "." + toks[pos - 1])
        elif t == ";":
            pos += 1
        else:
            raise SystemExit(f"top level: cannot parse at '{t}'")
    return messages, enums


def descriptors():
    msgs, enums = {}, {}

    def add_message(d):
        msgs[d.full_name] = d
        for e in d.enum_types:
            enums[e.full_name] = e
        for n in d.nested_types:
            add_message(n)

    for d in pb.DESCRIPTOR.message_types_by_name.values():
        add_message(d)
    for e in pb.DESCRIPTOR.enum_types_by_name.values():
        enums[e.full_name] = e
    return msgs, enums


def main():
    ours_msgs, ours_enums = parse(open(sys.argv[1], encoding="utf-8").read())
    theirs_msgs, theirs_enums = descriptors()
    errors, extra, checked = [], [], 0

    for full, d in sorted(theirs_msgs.items()):
        if full not in ours_msgs:
            errors.append(f"message {full} is missing")
            continue
        ours = ours_msgs[full]
        for f in d.fields:
            checked += 1
            want_type = SCALAR.get(f.type) or (f.message_type or f.enum_type).name
            want = (LABEL[f.label], want_type, f.name)
            got = ours.get(f.number)
            if got != want:
                errors.append(f"{full} field {f.number}: ours {got}, onnx {want}")
        known = {f.number for f in d.fields}
        extra += [f"{full}.{v[2]} = {n}" for n, v in sorted(ours.items()) if n not in known]
    for full, e in sorted(theirs_enums.items()):
        if full not in ours_enums:
            errors.append(f"enum {full} is missing")
            continue
        for v in e.values:
            checked += 1
            got = ours_enums[full].get(v.name)
            if full == "onnx.Version" and v.name == "IR_VERSION" and got is not None and got >= v.number:
                extra.append(f"{full}.IR_VERSION = {got} (onnx has {v.number})")
                continue
            if got != v.number:
                errors.append(f"{full}.{v.name}: ours {got}, onnx {v.number}")

    for line in extra:
        print("newer than the installed onnx:", line)
    for line in errors:
        print("MISMATCH:", line)
    print(f"checked {checked} fields and enum values of {len(theirs_msgs)} messages "
          f"and {len(theirs_enums)} enums")
    print(f"schema: {checked - len(errors)} passed, {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
