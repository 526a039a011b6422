#!/usr/bin/python3
"""The man page (docs/onnxq.1) against the tool's own help:

- every command `onnxq --help` lists has a section (.SS "onnxq COMMAND ...");
- every option that `onnxq --help` or `onnxq COMMAND --help` lists, and every
  environment variable, appears in the page; `calibrate merge` too;
- every option the page names is one some --help lists (no stale option);
- the page's title line carries the tool's version;
- man renders it without a warning.

usage: check_man.py ONNXQ_BINARY MAN_PAGE VERSION
"""
import re
import shutil
import subprocess
import sys

OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def helptext(exe, *args):
    p = subprocess.run([exe, *args, "--help"], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("FAIL: onnxq %s --help exited %d: %s" % (" ".join(args), p.returncode, p.stderr))
    return p.stdout


def listed_options(text):
    """Options on the lines that list them (two spaces, then a dash) and on the usage lines."""
    found = set()
    for line in text.splitlines():
        if re.match(r"^ {2,}-", line) or line.lstrip().startswith(("Usage:", "onnxq ")):
            found.update(OPTION.findall(line.split("  ", 2)[1] if re.match(r"^ {2,}-", line) else line))
    return found


def block(text, heading):
    """The indented lines under `heading:` up to the next blank line."""
    m = re.search(r"^%s:\n((?:  .*\n)+)" % re.escape(heading), text, re.M)
    return m.group(1) if m else ""


def plain(roff):
    """The page's text with roff's escapes for dashes and fonts undone."""
    text = re.sub(r"\\f[BIRP]", "", roff)
    return text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def main():
    if len(sys.argv) != 4:
        print("usage: check_man.py ONNXQ_BINARY MAN_PAGE VERSION", file=sys.stderr)
        return 2
    exe, page_path, version = sys.argv[1:]
    with open(page_path) as f:
        roff = f.read()
    page = plain(roff)
    problems, checked = [], 0

    top = helptext(exe)
    commands = [line.split()[0] for line in block(top, "Commands").splitlines()]
    options = {"": listed_options(block(top, "Options"))}
    environment = [line.split()[0] for line in block(top, "Environment").splitlines() if line[2:3] != " "]
    environment += re.findall(r"environment variable (\w+)", top)
    for cmd in commands:
        checked += 1
        if not re.search(r'^\.SS "onnxq %s\b' % re.escape(cmd), roff, re.M):
            problems.append("command %s has no section (.SS \"onnxq %s ...\")" % (cmd, cmd))
        if cmd != "help":
            options[cmd] = listed_options(helptext(exe, cmd))
    for cmd, opts in sorted(options.items()):
        for opt in sorted(opts):
            checked += 1
            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), page):
                problems.append("%s option %s is not in the page" % ("onnxq " + cmd if cmd else "onnxq", opt))
    for var in environment:
        checked += 1
        if var not in page:
            problems.append("environment variable %s is not in the page" % var)
    if "calibrate merge" in helptext(exe, "calibrate"):
        checked += 1
        if "onnxq calibrate merge" not in page:
            problems.append("calibrate merge is not in the page")

    every = set().union(*options.values())
    others = re.sub(r"pkg-config(\s+--[\w-]+)+", "", page)  # another tool's options
    for opt in sorted(set(OPTION.findall(others)) - every):
        checked += 1
        if opt.startswith("--"):  # single-dash words are ordinary text
            problems.append("the page names %s, which no --help lists" % opt)
    checked += 1
    if not re.search(r'^\.TH ONNXQ 1 "[^"]*" "onnxq %s"' % re.escape(version), roff, re.M):
        problems.append("the .TH line does not say onnxq %s" % version)
    if shutil.which("man"):
        checked += 1
        p = subprocess.run(["man", "--warnings", "-l", page_path], capture_output=True, text=True,
                           env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        if p.returncode != 0 or p.stderr.strip():
            problems.append("man --warnings: exit %d: %s" % (p.returncode, p.stderr.strip()[:500]))

    for p in problems:
        print("FAIL " + p)
    print("man page: %d checks, %d failed (%d commands, %d options)"
          % (checked, len(problems), len(commands), len(every)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
