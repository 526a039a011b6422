/* html.c: the pieces of the HTML reports (see html.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"

/* ---- the page ------------------------------------------------------------------- */

/* Nothing may be fetched or run: styles are inline, pictures are inline SVG. */
static const char page_policy[] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/* Colours are classes c0..c5 setting --c; bars, swatches, cells and lines read it. */
static const char page_style[] =
    ":root{--fg:#1d2330;--muted:#5b6475;--line:#d9dde5;--bg:#f6f7f9}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--bg);color:var(--fg);"
    "font:14px/1.45 system-ui,\"Segoe UI\",Roboto,\"DejaVu Sans\",sans-serif}\n"
    "header.top{background:#1d2330;color:#fff;padding:18px 32px}\n"
    "header.top h1{margin:0;font-size:20px;font-weight:600}\n"
    "header.top p{margin:4px 0 0;color:#c5cbd6;font-size:13px;overflow-wrap:anywhere}\n"
    "main{max-width:1160px;margin:0 auto;padding:8px 32px 24px}\n"
    "section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 20px;margin:16px 0}\n"
    "h2{margin:0 0 6px;font-size:16px}\n"
    "p{margin:6px 0}\n"
    "footer{max-width:1160px;margin:0 auto;padding:0 32px 24px;color:var(--muted);font-size:12px}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}\n"
    ".card{flex:1 1 170px;background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px}\n"
    ".card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}\n"
    ".card .v{font-size:23px;font-weight:600;margin-top:2px;overflow-wrap:anywhere}\n"
    ".card .n{color:var(--muted);font-size:12px}\n"
    ".card.long .v{font-size:16px}\n"
    ".card.good .v{color:#1a7f37}\n"
    ".card.bad .v{color:#c62828}\n"
    "table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}\n"
    "th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}\n"
    "th{color:var(--muted);font-weight:600}\n"
    "td{overflow-wrap:anywhere}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "details>summary{cursor:pointer;color:#2457a6;margin:8px 0}\n"
    ".bars{display:grid;grid-template-columns:minmax(120px,max-content) 1fr max-content;gap:6px 12px;"
    "align-items:center;margin:8px 0}\n"
    ".bars .lbl{overflow-wrap:anywhere}\n"
    ".track{background:#eef0f4;border-radius:3px;height:14px;overflow:hidden}\n"
    ".fill{display:block;height:100%;background:var(--c)}\n"
    ".stackrow{margin:10px 0}\n"
    ".stack{display:flex;height:22px;border-radius:3px;overflow:hidden;background:#eef0f4;margin:4px 0}\n"
    ".stack>span{display:block;height:100%;background:var(--c)}\n"
    ".legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted);margin:6px 0}\n"
    ".sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px;"
    "background:var(--c)}\n"
    ".sw.band{background:#e3e6ec}\n"
    ".sw.ring{background:none;border:2px solid #c62828;border-radius:50%}\n"
    "svg{display:block;width:100%;height:auto}\n"
    "svg text{font-size:11px;fill:#5b6475}\n"
    "svg .grid{stroke:#e6e9ef;stroke-width:1}\n"
    "svg .axis{stroke:#9aa3b2;stroke-width:1}\n"
    "svg .band{fill:#e3e6ec}\n"
    "svg .line{fill:none;stroke:var(--c);stroke-width:1.6}\n"
    "svg .pt{fill:var(--c)}\n"
    "svg .top{fill:#fff;stroke:var(--c);stroke-width:1.5}\n"
    "svg .ring{fill:none;stroke:#c62828;stroke-width:2}\n"
    "svg .cell{fill:var(--c);shape-rendering:crispEdges}\n"
    ".c0{--c:#2f6fde}.c1{--c:#e8892b}.c2{--c:#2e9e5b}.c3{--c:#a3abb9}.c4{--c:#c62828}.c5{--c:#8e5bd0}\n";

void oq_html_begin(oq_text *t, const char *title, const char *subtitle)
{
    oq_text_printf(t,
                   "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta http-equiv=\"Content-Security-Policy\" content=\"%s\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<link rel=\"icon\" href=\"data:,\">\n<title>",
                   page_policy);
    oq_html_escape(t, title);
    oq_text_printf(t, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header class=\"top\">\n<h1>", page_style);
    oq_html_escape(t, title);
    oq_text_printf(t, "</h1>\n");
    if (subtitle) {
        oq_text_printf(t, "<p>");
        oq_html_escape(t, subtitle);
        oq_text_printf(t, "</p>\n");
    }
    oq_text_printf(t, "</header>\n<main>\n");
}

oq_status oq_html_end(oq_text *t, const char *tool_version, uint8_t **buf, size_t *len, oq_err *err)
{
    oq_text_printf(t, "</main>\n<footer>Written by onnxq ");
    oq_html_escape(t, tool_version ? tool_version : "");
    oq_text_printf(t, ".</footer>\n</body>\n</html>\n");
    char *s;
    oq_status st = oq_text_finish(t, &s, len, err);
    *buf = (uint8_t *)s;
    return st;
}

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0. */
static int utf8_length(const unsigned char *s)
{
    unsigned c = s[0];
    int n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!n)
        return 0;
    for (int k = 1; k < n; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] >= 0x90))
        return 0; /* overlong forms, surrogates, beyond U+10FFFF */
    return n;
}

void oq_html_escape(oq_text *t, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x7F && !strchr("&<>\"'", *p))
            p++;
        oq_text_append(t, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        unsigned c = *p;
        int n;
        switch (c) {
        case '&': oq_text_printf(t, "&amp;"); break;
        case '<': oq_text_printf(t, "&lt;"); break;
        case '>': oq_text_printf(t, "&gt;"); break;
        case '"': oq_text_printf(t, "&quot;"); break;
        case '\'': oq_text_printf(t, "&#39;"); break;
        default:
            if (c < 0x80) {
                oq_text_printf(t, " "); /* control characters */
            } else if ((n = utf8_length(p)) > 0) {
                oq_text_append(t, (const char *)p, (size_t)n);
                p += n - 1;
            } else {
                oq_text_printf(t, "\xEF\xBF\xBD");
            }
        }
        p++;
    }
}

const char *oq_html_format_number(char *buf, size_t cap, double v, int decimals)
{
    if (isnan(v))
        snprintf(buf, cap, "\xE2\x80\x93");
    else if (isinf(v))
        snprintf(buf, cap, v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, cap, "%.*f", decimals, fabs(v) < 0.5 * pow(10, -decimals) ? 0.0 : v);
    return buf;
}

const char *oq_html_format_bytes(char *buf, size_t cap, double bytes)
{
    if (bytes >= 1e6)
        snprintf(buf, cap, "%.2f MB", bytes / 1e6);
    else if (bytes >= 1e3)
        snprintf(buf, cap, "%.1f kB", bytes / 1e3);
    else
        snprintf(buf, cap, "%.0f B", bytes);
    return buf;
}

const char *oq_html_sprintf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return buf;
}

void oq_html_number(oq_text *t, double v, int decimals)
{
    char buf[64];
    oq_text_printf(t, "%s", oq_html_format_number(buf, sizeof buf, v, decimals));
}

void oq_html_section_begin(oq_text *t, const char *id, const char *title, const char *intro)
{
    oq_text_printf(t, "<section id=\"%s\">\n<h2>", id);
    oq_html_escape(t, title);
    oq_text_printf(t, "</h2>\n");
    if (intro)
        oq_html_paragraph(t, intro);
}

void oq_html_section_end(oq_text *t) { oq_text_printf(t, "</section>\n"); }

void oq_html_paragraph(oq_text *t, const char *text)
{
    oq_text_printf(t, "<p>");
    oq_html_escape(t, text);
    oq_text_printf(t, "</p>\n");
}

/* ---- cards ---------------------------------------------------------------------------- */

void oq_html_cards_begin(oq_text *t) { oq_text_printf(t, "<div class=\"cards\">\n"); }
void oq_html_cards_end(oq_text *t) { oq_text_printf(t, "</div>\n"); }

void oq_html_card(oq_text *t, const char *label, const char *value, const char *note, int tone)
{
    oq_text_printf(t, "<div class=\"card%s%s\"><div class=\"l\">",
                   tone == 1   ? " good"
                   : tone == 2 ? " bad"
                               : "",
                   strlen(value) > 18 ? " long" : "");
    oq_html_escape(t, label);
    oq_text_printf(t, "</div><div class=\"v\">");
    oq_html_escape(t, value);
    oq_text_printf(t, "</div>");
    if (note) {
        oq_text_printf(t, "<div class=\"n\">");
        oq_html_escape(t, note);
        oq_text_printf(t, "</div>");
    }
    oq_text_printf(t, "</div>\n");
}

/* ---- tables ------------------------------------------------------------------------------ */

void oq_html_table_begin(oq_text *t, const char *fold, const char *const *headings)
{
    if (fold) {
        oq_text_printf(t, "<details><summary>");
        oq_html_escape(t, fold);
        oq_text_printf(t, "</summary>\n");
    }
    oq_text_printf(t, "<table>\n");
    if (headings) {
        oq_text_printf(t, "<thead><tr>");
        for (const char *const *h = headings; *h; h++) {
            oq_text_printf(t, "<th>");
            oq_html_escape(t, *h);
            oq_text_printf(t, "</th>");
        }
        oq_text_printf(t, "</tr></thead>\n");
    }
    oq_text_printf(t, "<tbody>\n");
}

void oq_html_table_end(oq_text *t, const char *fold)
{
    oq_text_printf(t, "</tbody>\n</table>\n%s", fold ? "</details>\n" : "");
}

void oq_html_row_begin(oq_text *t) { oq_text_printf(t, "<tr>"); }
void oq_html_row_end(oq_text *t) { oq_text_printf(t, "</tr>\n"); }

void oq_html_kv(oq_text *t, const char *key, const char *fmt, ...)
{
    char value[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    oq_text_printf(t, "<tr><th>");
    oq_html_escape(t, key);
    oq_text_printf(t, "</th>");
    oq_html_cell(t, value);
    oq_text_printf(t, "</tr>\n");
}

void oq_html_cell(oq_text *t, const char *text)
{
    oq_text_printf(t, "<td>");
    oq_html_escape(t, text);
    oq_text_printf(t, "</td>");
}

void oq_html_cell_number(oq_text *t, double v, int decimals)
{
    oq_text_printf(t, "<td class=\"num\">");
    oq_html_number(t, v, decimals);
    oq_text_printf(t, "</td>");
}

/* ---- bars ------------------------------------------------------------------------------ */

/* Share of v in max as a CSS percentage in [0, 100]. */
static double percent(double v, double max)
{
    double p = max > 0 && isfinite(v) ? 100.0 * v / max : 0.0;
    return p < 0 ? 0 : p > 100 ? 100 : p;
}

void oq_html_bars(oq_text *t, int n, const oq_html_bar *bars, double max)
{
    if (max <= 0)
        for (int i = 0; i < n; i++)
            max = bars[i].value > max ? bars[i].value : max;
    oq_text_printf(t, "<div class=\"bars\">\n");
    for (int i = 0; i < n; i++) {
        oq_text_printf(t, "<span class=\"lbl\">");
        oq_html_escape(t, bars[i].label);
        oq_text_printf(t,
                       "</span><span class=\"track\"><span class=\"fill c%d\" style=\"width:%.2f%%\"></span></span>"
                       "<span>",
                       bars[i].tone % 6, percent(bars[i].value, max));
        oq_html_escape(t, bars[i].text);
        oq_text_printf(t, "</span>\n");
    }
    oq_text_printf(t, "</div>\n");
}

void oq_html_stack(oq_text *t, const char *label, int n, const oq_html_bar *parts, double max, const char *total_text)
{
    oq_text_printf(t, "<div class=\"stackrow\"><div><b>");
    oq_html_escape(t, label);
    oq_text_printf(t, "</b> ");
    oq_html_escape(t, total_text);
    oq_text_printf(t, "</div>\n<div class=\"stack\">");
    for (int i = 0; i < n; i++) {
        oq_text_printf(t, "<span class=\"c%d\" style=\"width:%.2f%%\" title=\"", parts[i].tone % 6,
                       percent(parts[i].value, max));
        oq_html_escape(t, parts[i].label);
        oq_text_printf(t, ": ");
        oq_html_escape(t, parts[i].text);
        oq_text_printf(t, "\"></span>");
    }
    oq_text_printf(t, "</div>\n<div class=\"legend\">");
    for (int i = 0; i < n; i++) {
        oq_text_printf(t, "<span><span class=\"sw c%d\"></span>", parts[i].tone % 6);
        oq_html_escape(t, parts[i].label);
        oq_text_printf(t, " ");
        oq_html_escape(t, parts[i].text);
        oq_text_printf(t, "</span>");
    }
    oq_text_printf(t, "</div></div>\n");
}

/* ---- the chart ---------------------------------------------------------------------------- */

enum { CHART_W = 1000, CHART_H = 300, PAD_L = 52, PAD_R = 14, PAD_T = 12, PAD_B = 40 };

typedef struct chart_frame {
    double lo, hi, step; /* y range and grid step */
    int n;
} chart_frame;

/* Chart coordinates of point i and of value v (clamped to the range;
 * infinities on the edges). */
static double frame_x(const chart_frame *f, double i) { return PAD_L + (CHART_W - PAD_L - PAD_R) * (i + 0.5) / f->n; }
static double frame_y(const chart_frame *f, double v)
{
    if (v > f->hi || isinf(v))
        v = v > 0 ? f->hi : f->lo;
    if (v < f->lo)
        v = f->lo;
    return PAD_T + (CHART_H - PAD_T - PAD_B) * (f->hi - v) / (f->hi - f->lo);
}

/* A y range over the finite values, from 0 or below, with a round step. */
static chart_frame chart_range(const oq_html_chart *c)
{
    double lo = 0, hi = 10;
    for (int s = 0; s < c->n_series; s++)
        for (int i = 0; i < c->n; i++) {
            double v = c->series[s].y[i];
            if (isfinite(v)) {
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        }
    static const double steps[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
    double step = steps[0];
    for (size_t k = 0; k < sizeof steps / sizeof steps[0] && (hi - lo) / step > 8; k++)
        step = steps[k];
    chart_frame f = {floor(lo / step) * step, ceil(hi / step) * step, step, c->n};
    if (f.hi <= f.lo)
        f.hi = f.lo + step;
    return f;
}

/* Opens point i's tooltip, "<title>#i name (op)"; the caller adds to it and
 * closes it. */
static void point_title(oq_text *t, const oq_html_chart *c, int i)
{
    oq_text_printf(t, "<title>#%d ", i + 1);
    oq_html_escape(t, c->names[i]);
    if (c->ops) {
        oq_text_printf(t, " (");
        oq_html_escape(t, c->ops[i]);
        oq_text_printf(t, ")");
    }
}

/* Grid lines with their values, the x axis with every k-th index, and the
 * axis labels. */
static void chart_axes(oq_text *t, const oq_html_chart *c, const chart_frame *f)
{
    double x0 = PAD_L, x1 = CHART_W - PAD_R, y_bottom = CHART_H - PAD_B;
    for (double v = f->lo; v <= f->hi + f->step / 2; v += f->step) {
        double y = frame_y(f, v);
        oq_text_printf(t, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x0, y, x1, y);
        oq_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", x0 - 6, y + 4, v);
    }
    oq_text_printf(t, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x0, y_bottom, x1,
                   y_bottom);
    static const int steps[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
    int every = steps[0];
    for (size_t k = 0; k < sizeof steps / sizeof steps[0] && c->n / every > 12; k++)
        every = steps[k];
    for (int i = every - 1; i < c->n; i += every)
        oq_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>", frame_x(f, i), y_bottom + 14,
                       i + 1);
    oq_text_printf(t, "\n<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", (x0 + x1) / 2, CHART_H - 6);
    oq_html_escape(t, c->x_label);
    oq_text_printf(t, "</text>\n<text x=\"12\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 12 %.1f)\">",
                   (PAD_T + y_bottom) / 2, (PAD_T + y_bottom) / 2);
    oq_html_escape(t, c->y_label);
    oq_text_printf(t, "</text>\n");
}

/* A grey band behind each shaded point, with its tooltip. */
static void chart_bands(oq_text *t, const oq_html_chart *c, const chart_frame *f)
{
    double w = (double)(CHART_W - PAD_L - PAD_R) / c->n;
    for (int i = 0; c->shaded && i < c->n; i++) {
        if (!c->shaded[i])
            continue;
        oq_text_printf(t, "<rect class=\"band\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\">",
                       frame_x(f, i) - w / 2, PAD_T, w, CHART_H - PAD_T - PAD_B);
        point_title(t, c, i);
        oq_text_printf(t, ": ");
        oq_html_escape(t, c->shaded_label);
        if (c->shaded_notes && c->shaded_notes[i]) {
            oq_text_printf(t, ": ");
            oq_html_escape(t, c->shaded_notes[i]);
        }
        oq_text_printf(t, "</title></rect>\n");
    }
}

/* Series s: its line (broken at missing values) and a point with a tooltip
 * per value; infinite values hollow on the top edge. */
static void chart_series(oq_text *t, const oq_html_chart *c, const chart_frame *f, int s)
{
    const oq_html_series *se = &c->series[s];
    /* the line, broken where a value is missing or not finite */
    bool open = false;
    for (int i = 0; i < c->n; i++) {
        double v = se->y[i];
        if (!isfinite(v)) {
            if (open)
                oq_text_printf(t, "\"/>\n");
            open = false;
            continue;
        }
        if (!open)
            oq_text_printf(t, "<polyline class=\"line c%d\" points=\"", s);
        oq_text_printf(t, "%s%.1f,%.1f", open ? " " : "", frame_x(f, i), frame_y(f, v));
        open = true;
    }
    if (open)
        oq_text_printf(t, "\"/>\n");
    double r = c->n > 150 ? 2.0 : 3.0;
    for (int i = 0; i < c->n; i++) {
        double v = se->y[i];
        if (isnan(v))
            continue;
        oq_text_printf(t, "<circle class=\"%s c%d\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\">", isinf(v) ? "top" : "pt", s,
                       frame_x(f, i), frame_y(f, v), r);
        point_title(t, c, i);
        oq_text_printf(t, ": ");
        oq_html_escape(t, se->label);
        oq_text_printf(t, " ");
        if (isinf(v) && v > 0)
            oq_text_printf(t, "exact");
        else
            oq_html_number(t, v, 2);
        if (c->shaded && c->shaded[i]) {
            oq_text_printf(t, "; ");
            oq_html_escape(t, c->shaded_label);
        }
        oq_text_printf(t, "</title></circle>\n");
    }
}

void oq_html_chart_svg(oq_text *t, const oq_html_chart *c)
{
    if (c->n <= 0)
        return;
    chart_frame f = chart_range(c);
    oq_text_printf(t, "<svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", CHART_W, CHART_H);
    oq_html_escape(t, c->y_label);
    oq_text_printf(t, "\">\n");
    chart_bands(t, c, &f);
    chart_axes(t, c, &f);
    for (int s = 0; s < c->n_series; s++)
        chart_series(t, c, &f, s);
    double r = c->n > 150 ? 5.0 : 6.0;
    for (int i = 0; c->marked && c->n_series && i < c->n; i++)
        if (c->marked[i] && !isnan(c->series[0].y[i]))
            oq_text_printf(t, "<circle class=\"ring\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"/>\n", frame_x(&f, i),
                           frame_y(&f, c->series[0].y[i]), r);
    oq_text_printf(t, "</svg>\n<div class=\"legend\">");
    for (int s = 0; s < c->n_series; s++) {
        oq_text_printf(t, "<span><span class=\"sw c%d\"></span>", s);
        oq_html_escape(t, c->series[s].label);
        oq_text_printf(t, "</span>");
    }
    bool any_shaded = false;
    for (int i = 0; c->shaded && i < c->n; i++)
        any_shaded |= c->shaded[i];
    if (any_shaded) {
        oq_text_printf(t, "<span><span class=\"sw band\"></span>");
        oq_html_escape(t, c->shaded_label);
        oq_text_printf(t, "</span>");
    }
    if (c->marked) {
        oq_text_printf(t, "<span><span class=\"sw ring\"></span>");
        oq_html_escape(t, c->marked_label);
        oq_text_printf(t, "</span>");
    }
    bool any_infinite = false;
    for (int s = 0; s < c->n_series; s++)
        for (int i = 0; i < c->n; i++)
            any_infinite |= isinf(c->series[s].y[i]) && c->series[s].y[i] > 0;
    if (any_infinite)
        oq_text_printf(t, "<span>hollow points on the top edge: exact (infinite SQNR)</span>");
    oq_text_printf(t, "</div>\n");
}

/* ---- the strip ----------------------------------------------------------------------------- */

enum { STRIP_H = 34, STRIP_NAMES = 6 };

/* The tooltip of nodes [from, to): how many, their class, the first names. */
static void run_title(oq_text *t, int from, int to, const char *const *names, const char *const *ops, const char *label)
{
    oq_text_printf(t, "<title>#%d", from + 1);
    if (to - from > 1)
        oq_text_printf(t, "-%d", to);
    oq_text_printf(t, ": %d node%s, ", to - from, to - from == 1 ? "" : "s");
    oq_html_escape(t, label);
    for (int i = from; i < to && i < from + STRIP_NAMES; i++) {
        oq_text_printf(t, "%s", i == from ? ": " : ", ");
        oq_html_escape(t, names[i]);
        oq_text_printf(t, " (");
        oq_html_escape(t, ops[i]);
        oq_text_printf(t, ")");
    }
    if (to - from > STRIP_NAMES)
        oq_text_printf(t, ", ...");
    oq_text_printf(t, "</title>");
}

void oq_html_strip(oq_text *t, int n, const int *classes, const char *const *names, const char *const *ops,
                   int n_classes, const char *const *class_labels, const int *class_tones)
{
    if (n <= 0)
        return;
    oq_text_printf(t,
                   "<svg viewBox=\"0 0 %d %d\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"graph strip\">\n",
                   CHART_W, STRIP_H);
    for (int from = 0, to; from < n; from = to) {
        for (to = from + 1; to < n && classes[to] == classes[from];)
            to++;
        double x0 = (double)CHART_W * from / n, x1 = (double)CHART_W * to / n;
        oq_text_printf(t, "<rect class=\"cell c%d\" x=\"%.2f\" y=\"0\" width=\"%.2f\" height=\"%d\">",
                       class_tones[classes[from]] % 6, x0, x1 - x0, STRIP_H);
        run_title(t, from, to, names, ops, class_labels[classes[from]]);
        oq_text_printf(t, "</rect>\n");
    }
    oq_text_printf(t, "</svg>\n<div class=\"legend\">");
    for (int k = 0; k < n_classes; k++) {
        int count = 0;
        for (int i = 0; i < n; i++)
            count += classes[i] == k;
        oq_text_printf(t, "<span><span class=\"sw c%d\"></span>", class_tones[k] % 6);
        oq_html_escape(t, class_labels[k]);
        oq_text_printf(t, ": %d</span>", count);
    }
    oq_text_printf(t, "</div>\n");
}
