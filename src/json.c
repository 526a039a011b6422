/* json.c: the JSON writers' shared pieces (see json.h). */
#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void oq_json_add_number(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

void oq_json_add_sqnr(cJSON *o, const char *key, double db)
{
    if (db == -INFINITY)
        cJSON_AddStringToObject(o, key, "-inf");
    else
        oq_json_add_number(o, key, db);
}

oq_status oq_json_print(cJSON *root, const char *what, uint8_t **buf, size_t *len, oq_err *err)
{
    *buf = NULL;
    *len = 0;
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    size_t n = text ? strlen(text) : 0;
    if (text && (*buf = malloc(n + 1))) {
        memcpy(*buf, text, n);
        (*buf)[n] = '\n';
        *len = n + 1;
    }
    cJSON_free(text);
    return *buf ? OQ_OK : oq_errf(err, OQ_ENOMEM, "out of memory writing %s", what);
}
