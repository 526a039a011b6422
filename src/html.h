/* html.h: the pieces the HTML reports are made of (report_html.c for a
 * quantization run, report_compare.c for `compare`): one self-contained page
 * (inline CSS, inline SVG, no script, nothing fetched: its Content Security
 * Policy forbids it), with sections, summary cards, tables, horizontal bars,
 * a chart of values along the graph and a strip of the graph's nodes.
 * Everything is written into an oq_text; numbers are printed with fixed
 * precision, so the same data gives the same bytes. Internal to liboq. */
#ifndef ONNXQ_HTML_H
#define ONNXQ_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxq/oq_err.h"
#include "text.h"

/* ---- the page ------------------------------------------------------------------- */

/* Starts the page: doctype, head (title, policy, style), body, and the page
 * header with its title line and a subtitle (may be NULL). */
void oq_html_begin(oq_text *t, const char *title, const char *subtitle);
/* Ends the page with a footer naming the tool version, and hands the bytes
 * to the caller (*buf malloc'ed). Fails with OQ_ENOMEM if a write was lost. */
oq_status oq_html_end(oq_text *t, const char *tool_version, uint8_t **buf, size_t *len, oq_err *err);

/* Writes s with &, <, >, " and ' escaped, control characters as spaces and
 * bytes that are not UTF-8 as U+FFFD: safe in text and in quoted attributes. */
void oq_html_escape(oq_text *t, const char *s);
/* A number with `decimals` decimals (never "-0.0"), "inf"/"-inf", or "–" for
 * NaN, into buf (truncated to cap); returns buf. */
const char *oq_html_format_number(char *buf, size_t cap, double v, int decimals);
/* A byte count as "812 B", "25.3 kB" or "2.83 MB", into buf; returns buf. */
const char *oq_html_format_bytes(char *buf, size_t cap, double bytes);
/* snprintf into buf, returning buf: for values handed to cards and cells. */
const char *oq_html_sprintf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writes oq_html_format_number's text. */
void oq_html_number(oq_text *t, double v, int decimals);

/* <section> with an id (for links) and a heading; intro (may be NULL) is a
 * paragraph of plain text under it. */
void oq_html_section_begin(oq_text *t, const char *id, const char *title, const char *intro);
void oq_html_section_end(oq_text *t);
/* A paragraph of plain text (escaped). */
void oq_html_paragraph(oq_text *t, const char *text);

/* ---- summary cards: a row of big numbers with a label each ---------------------- */

void oq_html_cards_begin(oq_text *t);
/* One card: label above, value (plain text) large, note (may be NULL) small
 * below. tone: 0 neutral, 1 good, 2 bad. */
void oq_html_card(oq_text *t, const char *label, const char *value, const char *note, int tone);
void oq_html_cards_end(oq_text *t);

/* ---- tables ------------------------------------------------------------------------
 * The caller writes cells with oq_html_cell* between row begin/end. A table
 * inside <details> starts closed, under a summary line. */

/* Starts a table with the given column headings (NULL-terminated list, or
 * NULL for none); with
 * a non-NULL fold, inside a <details> element whose summary line is fold. */
void oq_html_table_begin(oq_text *t, const char *fold, const char *const *headings);
/* Ends the table (and the <details> when fold, as given to begin, is not NULL). */
void oq_html_table_end(oq_text *t, const char *fold);
void oq_html_row_begin(oq_text *t);
void oq_html_row_end(oq_text *t);
/* A row of a heading cell and a printf-style value (escaped; truncated at 1 kB). */
void oq_html_kv(oq_text *t, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A text cell (escaped); a numeric cell (right-aligned). */
void oq_html_cell(oq_text *t, const char *text);
void oq_html_cell_number(oq_text *t, double v, int decimals);

/* ---- horizontal bars -------------------------------------------------------------- */

typedef struct oq_html_bar {
    const char *label; /* left of the bar */
    double value;      /* its length is value / max of the row set */
    const char *text;  /* right of the bar (e.g. "2.83 MB") */
    int tone;          /* colour: 0..5 (see the style's .c0 ... .c5) */
} oq_html_bar;

/* Bars of value/max each (max <= 0: the largest value). */
void oq_html_bars(oq_text *t, int n, const oq_html_bar *bars, double max);

/* A bar split into parts (a size breakdown): each part's width is its share
 * of max, with its label and text in a legend under the bar. */
void oq_html_stack(oq_text *t, const char *label, int n, const oq_html_bar *parts, double max, const char *total_text);

/* ---- values along the graph ------------------------------------------------------- */

typedef struct oq_html_series {
    const char *label; /* in the legend and the tooltips */
    const double *y;   /* [n]: NaN = no point; +inf is drawn on the top edge ("exact") */
} oq_html_series;

typedef struct oq_html_chart {
    int n;                    /* points along x, in graph order */
    const char *const *names; /* [n] what each point is (tooltips) */
    const char *const *ops;   /* [n] op types (tooltips), or NULL */
    const char *x_label, *y_label;
    int n_series; /* 1..3 */
    const oq_html_series *series;
    const bool *shaded;              /* [n] or NULL: a grey band behind the point */
    const char *shaded_label;        /* its legend entry */
    const char *const *shaded_notes; /* [n] or NULL: added to the band's tooltip */
    const bool *marked;              /* [n] or NULL: a red ring around the first series' point */
    const char *marked_label;
} oq_html_chart;

/* An SVG line chart of the series over x = 0..n-1, with a legend. */
void oq_html_chart_svg(oq_text *t, const oq_html_chart *c);

/* The graph as a strip: one cell per run of consecutive nodes of the same
 * class (classes[i] in 0..n_classes-1), width by node count, coloured by the
 * class's tone, with a tooltip naming the run's nodes and a legend counting
 * each class. */
void oq_html_strip(oq_text *t, int n, const int *classes, const char *const *names, const char *const *ops,
                   int n_classes, const char *const *class_labels, const int *class_tones);

#endif
