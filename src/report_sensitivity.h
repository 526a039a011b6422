/* report_sensitivity.h: the HTML sections for a sensitivity ranking and an
 * accuracy target's choices (report_sensitivity.c), shared by the page of a
 * quantization run (report_html.c) and the page of `onnxq analyze`
 * (oq_sensitivity_html). Internal to liboq. */
#ifndef ONNXQ_REPORT_SENSITIVITY_H
#define ONNXQ_REPORT_SENSITIVITY_H

#include "onnxq/oq_mixed.h"
#include "onnxq/oq_sensitivity.h"
#include "text.h"

/* Section "sensitivity": each analysed node's output SQNR when quantized
 * alone along the graph (the nodes m keeps float shaded when m is not NULL,
 * else the five most sensitive ringed), and the ranking as a table. Writes
 * nothing when s is NULL or empty. */
void oq_html_sensitivity_section(oq_text *t, const oq_sensitivity *s, const oq_mixed *m);

/* Section "mixed_precision": the target, its metric before and after, the
 * nodes kept float (with their rank and SQNR from s, which may be NULL) and
 * every plan the search evaluated. Writes nothing when m is NULL. */
void oq_html_mixed_section(oq_text *t, const oq_mixed *m, const oq_sensitivity *s);

#endif
