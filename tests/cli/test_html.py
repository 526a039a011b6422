#!/usr/bin/python3
"""--html on quantize, convert, compare and analyze, on the bundled example
(the browser test, tests/browser, opens such pages in Chromium):

- the same inputs give the same bytes, whatever --threads, and quantize and
  calibrate + convert give the same page;
- the page is one well-formed, self-contained document: balanced tags, a
  Content Security Policy that forbids fetching and scripts, no <script>, no
  link to anything but itself;
- it shows what the JSON report has: every candidate node, one chart
  point per evaluated node, the graph strip's counts, the output SQNR; a
  dynamic-mode page without samples says it was not evaluated;
- names from the model (node and output names with markup, quotes, control
  characters and bytes that are not UTF-8) come out as text, never as
  markup, and the page stays UTF-8;
- analyze's page: the same bytes whatever --threads, every analysed node and
  one chart point per node; quantize with an accuracy target: the target's
  section names the nodes kept float, and the page has the ranking;
- an --html path that names an input or the --report file (analyze: the
  result) is refused with one error line, and nothing is written.

usage: test_html.py ONNXQ_BINARY
"""
import html.parser
import json
import os
import re
import sys
import tempfile

import onnx

from checks import check, finish, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "example", "tiny_cnn.onnx")
DATA = os.path.join(ROOT, "calibration", "example")
VOID = {"meta", "link", "br", "img", "hr", "input", "wbr"}
HOSTILE = "<script>alert('x')</script> & \"q\"\x01 \u00e4\u2192"


class Page(html.parser.HTMLParser):
    """Tags, attributes and text of a page, and whether its tags balance."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.stack, self.problems, self.tags, self.attrs, self.text = [], [], [], [], []
        self.feed(text)
        self.close()
        if self.stack:
            self.problems.append("unclosed: %s" % self.stack)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append("</%s> closes %s" % (tag, self.stack[-1] if self.stack else "nothing"))
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def self_contained(what, raw):
    text = raw.decode("utf-8")  # must be UTF-8
    page = Page(text)
    check(not page.problems, "%s: tags balance (%s)" % (what, page.problems[:3]))
    check("script" not in page.tags, "%s: no <script>" % what)
    policy = [a.get("content", "") for t, a in page.attrs
              if t == "meta" and a.get("http-equiv", "").lower() == "content-security-policy"]
    check(policy and "default-src 'none'" in policy[0] and "script" not in policy[0],
          "%s: a policy that forbids fetching and scripts (%s)" % (what, policy))
    links = [(t, k, v) for t, a in page.attrs for k, v in a.items()
             if k in ("src", "href", "xlink:href", "action") and not v.startswith("data:")]
    check(not links, "%s: nothing linked (%s)" % (what, links[:3]))
    check(not re.search(r"https?://", text), "%s: no URL in the page" % what)
    return page


def main():
    exe = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="oq-html-") as tmp:
        def path(name):
            return os.path.join(tmp, name)

        # ---- same inputs, same bytes
        base = ["--data", DATA, "--labels", os.path.join(DATA, "labels.txt"), "-o", path("q.onnx"), "-q"]
        p1 = run(exe, "quantize", MODEL, *base, "--threads", "1", "--report", path("r1.json"), "--html", path("a.html"))
        p2 = run(exe, "quantize", MODEL, *base, "--threads", "2", "--html", path("b.html"))
        check(p1.returncode == 0 and p2.returncode == 0, "quantize --html: " + p1.stderr + p2.stderr)
        check(read(path("a.html")) == read(path("b.html")), "quantize: the same page with 1 and 2 threads")
        p = run(exe, "calibrate", MODEL, "--data", DATA, "-o", path("t.json"), "-q")
        p = p if p.returncode else run(exe, "convert", MODEL, "--calib", path("t.json"), "--eval-data", DATA, "--labels",
                                       os.path.join(DATA, "labels.txt"), "-o", path("q.onnx"), "-q",
                                       "--html", path("c.html"))
        check(p.returncode == 0 and read(path("c.html")) == read(path("a.html")),
              "calibrate + convert give quantize's page " + p.stderr)

        # ---- well formed, self-contained, and what the report says
        report = json.load(open(path("r1.json")))
        page = self_contained("quantize", read(path("a.html")))
        text = " ".join(page.text)
        for n in report["nodes"]:
            check(n["name"] in text, "quantize: node %s is on the page" % n["name"])
        points = [a for t, a in page.attrs if t == "circle" and a.get("class") in ("pt c0", "top c0")]
        want = sum(1 for n in report["nodes"] if n["quantized"] and n["output_sqnr_db"] is not None)
        check(len(points) == want, "quantize: %d chart points for %d evaluated nodes" % (len(points), want))
        for kind, label in (("float", "float"), ("integer", "8-bit"), ("conversion", "conversion")):
            check("%s: %d" % (label, report["graph"][kind]) in text,
                  "quantize: the strip counts %d %s nodes" % (report["graph"][kind], kind))
        sqnr = "%.1f dB" % report["evaluation"]["outputs"][0]["sqnr_db"]
        check(sqnr in text, "quantize: the output SQNR %s is shown" % sqnr)
        acc = report["evaluation"]["accuracy"]
        shown = "%.2f%% \u2192 %.2f%%" % (100 * acc["fp32_top1"], 100 * acc["quantized_top1"])
        check(shown in text, "quantize: accuracy before and after (%s) is shown" % shown)

        p = run(exe, "convert", MODEL, "--mode", "dynamic", "-o", path("d.onnx"), "--html", path("d.html"), "-q")
        check(p.returncode == 0, "convert --mode dynamic --html: " + p.stderr)
        if p.returncode == 0:
            page = self_contained("dynamic", read(path("d.html")))
            check("Not evaluated" in " ".join(page.text), "dynamic: the page says nothing was evaluated")

        # ---- compare
        args = [MODEL, path("q.onnx"), "--data", DATA, "-q"]
        p1 = run(exe, "compare", *args, "--threads", "1", "--report", path("c1.json"), "--html", path("ca.html"))
        p2 = run(exe, "compare", *args, "--threads", "2", "--html", path("cb.html"))
        check(p1.returncode == 0 and p2.returncode == 0, "compare --html: " + p1.stderr + p2.stderr)
        check(read(path("ca.html")) == read(path("cb.html")), "compare: the same page with 1 and 2 threads")
        cmp_report = json.load(open(path("c1.json")))
        page = self_contained("compare", read(path("ca.html")))
        points = [a for t, a in page.attrs if t == "circle" and a.get("class") in ("pt c0", "top c0")]
        check(len(points) == len(cmp_report["tensors"]),
              "compare: %d chart points for %d tensors" % (len(points), len(cmp_report["tensors"])))

        # ---- analyze, and quantize with an accuracy target
        args = [MODEL, "--data", DATA, "-q"]
        p1 = run(exe, "analyze", *args, "--threads", "1", "-o", path("s1.json"), "--html", path("sa.html"))
        p2 = run(exe, "analyze", *args, "--threads", "2", "-o", path("s2.json"), "--html", path("sb.html"))
        check(p1.returncode == 0 and p2.returncode == 0, "analyze --html: " + p1.stderr + p2.stderr)
        if p1.returncode == 0 and p2.returncode == 0:
            check(read(path("sa.html")) == read(path("sb.html")), "analyze: the same page with 1 and 2 threads")
            nodes = json.load(open(path("s1.json")))["sensitivity"]["nodes"]
            page = self_contained("analyze", read(path("sa.html")))
            text = " ".join(page.text)
            check(all(n["name"] in text for n in nodes) and len(nodes) == 3, "analyze: its 3 nodes are on the page")
            points = [a for t, a in page.attrs if t == "circle" and a.get("class") in ("pt c0", "top c0")]
            check(len(points) == len(nodes), "analyze: %d chart points for %d nodes" % (len(points), len(nodes)))
        p = run(exe, "quantize", *args, "--min-sqnr", "40", "-o", path("t.onnx"), "--report", path("t.json"),
                "--html", path("t.html"))
        check(p.returncode == 0, "quantize --min-sqnr 40 --html: " + p.stderr)
        if p.returncode == 0:
            mixed = json.load(open(path("t.json")))["mixed_precision"]
            page = self_contained("target", read(path("t.html")))
            text = " ".join(page.text)
            check(mixed["kept_float"] and all(n in text for n in mixed["kept_float"]),
                  "target: the nodes kept float (%s) are on the page" % mixed["kept_float"])
            check("Mixed precision" in text and "Sensitivity" in text, "target: both sections are on the page")

        # ---- names are text
        m = onnx.load(MODEL)
        old_out = m.graph.output[0].name
        for node in m.graph.node:
            node.name = HOSTILE + node.name
            node.output[:] = [HOSTILE if o == old_out else o for o in node.output]
        m.graph.output[0].name = HOSTILE
        m.graph.node[0].name = "not_utf8_@@"  # bytes that are not UTF-8 replace the @@ below
        with open(path("hostile.onnx"), "wb") as f:
            f.write(m.SerializeToString().replace(b"not_utf8_@@", b"not_utf8_\xff\xc3"))
        p = run(exe, "quantize", path("hostile.onnx"), "--data", DATA, "-o", path("h.onnx"), "-q",
                "--html", path("h.html"))
        check(p.returncode == 0, "quantize a model with hostile names: " + p.stderr)
        if p.returncode == 0:
            raw = read(path("h.html"))
            page = self_contained("hostile names", raw)
            check(page.tags.count("script") == 0 and b"<script>alert" not in raw, "hostile names: no markup made")
            check("<script>alert('x')</script> & \"q\"" in " ".join(page.text) and "\u00e4\u2192" in "".join(page.text),
                  "hostile names: shown as text")
            check("not_utf8_\ufffd\ufffd" in "".join(page.text), "bytes that are not UTF-8 shown as U+FFFD")

        # ---- refused paths
        for what, cmd in (("quantize: --html is the model", ["quantize", MODEL, "--data", DATA, "-o", path("x.onnx"),
                                                             "--html", MODEL]),
                          ("quantize: --html is the report", ["quantize", MODEL, "--data", DATA, "-o", path("x.onnx"),
                                                              "--report", path("same"), "--html", path("same")]),
                          ("quantize: --html is the output", ["quantize", MODEL, "--data", DATA, "-o", path("x.onnx"),
                                                              "--html", path("x.onnx")]),
                          ("compare: --html is the quantized model", ["compare", MODEL, path("q.onnx"), "--data", DATA,
                                                                      "--html", path("q.onnx")]),
                          ("compare: --html is the report", ["compare", MODEL, path("q.onnx"), "--data", DATA,
                                                             "--report", path("same"), "--html", path("same")]),
                          ("analyze: --html is the result", ["analyze", MODEL, "--data", DATA, "-o", path("same"),
                                                             "--html", path("same")]),
                          ("analyze: --html is the model", ["analyze", MODEL, "--data", DATA, "-o", path("new.json"),
                                                            "--html", MODEL]),
                          ("compare: --html folder missing", ["compare", MODEL, path("q.onnx"), "--data", DATA,
                                                              "--report", path("new.json"),
                                                              "--html", path("no/such/c.html")])):
            before = {f: read(os.path.join(tmp, f)) for f in os.listdir(tmp) if os.path.isfile(os.path.join(tmp, f))}
            p = run(exe, *cmd, "-q")
            lines = p.stderr.splitlines()
            check(p.returncode == 1 and len(lines) == 1 and lines[0].startswith("onnxq: error: "),
                  "%s: exit 1, one error line (exit %d: %r)" % (what, p.returncode, p.stderr))
            after = {f: read(os.path.join(tmp, f)) for f in os.listdir(tmp) if os.path.isfile(os.path.join(tmp, f))}
            check(before == after, "%s: nothing written or changed" % what)
    return finish("html")


if __name__ == "__main__":
    sys.exit(main())
