"""The documentation against the program: every option that `onnxq help` and
`onnxq help COMMAND` print (for each command the top-level help lists, and the
merge forms) is explained in docs/commands.md; the README stays a short page
for users (at most 200 lines), starts with the two commands, whose scripts
exist, and every docs/ page it links to exists.
Usage: test_docs.py ONNXQ SOURCE_ROOT"""
import pathlib
import re
import sys

from checks import check, finish, run


def commands(onnxq):
    """Command names listed under 'Commands:' in the top-level help."""
    out = run(onnxq, "help").stdout
    block = out.split("Commands:", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def options(text):
    """Long options (--name) a help text offers, in the order they appear."""
    found = []
    for opt in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
        if opt not in found:
            found.append(opt)
    return found


def main():
    onnxq, root = sys.argv[1], pathlib.Path(sys.argv[2])
    reference = (root / "docs" / "commands.md").read_text()
    documented = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", reference))

    helps = {"onnxq": run(onnxq, "help").stdout}
    for cmd in commands(onnxq):
        if cmd == "help":
            continue
        helps[cmd] = run(onnxq, "help", cmd).stdout
        check(helps[cmd].startswith("Usage: onnxq"), f"`onnxq help {cmd}` prints a usage line")
        check(f"onnxq {cmd}" in reference, f"docs/commands.md describes `onnxq {cmd}`")
        if re.search(rf"onnxq {cmd} merge", helps[cmd]):
            helps[cmd + " merge"] = run(onnxq, cmd, "merge", "--help").stdout
    for where, text in helps.items():
        for opt in options(text):
            if opt != "--help":
                check(opt in documented, f"{opt} of `onnxq help {where}` is in docs/commands.md")

    readme = (root / "README.md").read_text()
    lines = readme.splitlines()
    check(len(lines) <= 200, f"README.md has {len(lines)} lines (at most 200)")
    block = re.search(r"```sh\n(.*?)```", readme, re.S)
    check(block is not None, "README.md starts with a shell block")
    if block:
        cmds = [line for line in block.group(1).splitlines() if line.strip()]
        check(len(cmds) == 2, "the README's first block is two commands")
        for line in cmds:
            script = line.split()[1]
            check((root / script).is_file(), f"README command `{line.split('#')[0].strip()}` names a script that exists")
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)\)", readme):
        check((root / link).is_file(), f"README links to {link}, which exists")
    return finish("cli-docs")


if __name__ == "__main__":
    sys.exit(main())
