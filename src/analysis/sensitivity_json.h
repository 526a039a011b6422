/* sensitivity_json.h (internal): the JSON form of a sensitivity result,
 * shared by the analysis, its files and the report (src/report.c). */
#ifndef ONNXQ_SENSITIVITY_JSON_H
#define ONNXQ_SENSITIVITY_JSON_H

#include <cjson/cJSON.h>

#include "onnxq/oq_sensitivity.h"

/* v as a JSON file written now gives it back when read (cJSON prints 15
 * significant digits where they read back as nearly v). Infinities and NaN
 * are returned unchanged (JSON writes them as null). */
double oq_json_number(double v);
/* Makes s's numbers what its JSON form reads back as (oq_json_number), sets
 * each node's score (its lowest output SQNR) and, for a whole result, the
 * ranks; so a result analysed now and one read from a file or merged from
 * shards rank alike. */
void oq_sensitivity_settle(oq_sensitivity *s);
/* s as the cJSON object of a "sensitivity" section (caller deletes), or NULL
 * when out of memory. */
cJSON *oq_sensitivity_cjson(const oq_sensitivity *s);

#endif
