/* json.h: what the JSON writers of liboq share (reports, analysis files,
 * calibration tables). Internal to liboq. */
#ifndef ONNXQ_JSON_H
#define ONNXQ_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "onnxq/oq_err.h"

/* Adds v to o under key; JSON has no infinities or NaN, so those become null. */
void oq_json_add_number(cJSON *o, const char *key, double v);
/* Adds an SQNR in dB under key: +inf (exact) and NaN (not measured) as null,
 * -inf (a reference of zeros and an output that is not) as the string "-inf". */
void oq_json_add_sqnr(cJSON *o, const char *key, double db);

/* Prints root (indented, as every file onnxq writes) into *buf (malloc'ed,
 * *len bytes, ending in a newline) and deletes it. root may be NULL (out of
 * memory while building it). Fails with "out of memory writing WHAT". */
oq_status oq_json_print(cJSON *root, const char *what, uint8_t **buf, size_t *len, oq_err *err);

#endif
