/* fuzz_calib_table.c: bytes -> calibration table JSON -> table; a valid table
 * is also merged into itself and its ranges recomputed. */
#include <stdint.h>

#include "onnxq/oq_calib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    oq_calib_table *a = NULL, *b = NULL;
    oq_err err = {0};
    if (!oq_calib_table_parse(&a, data, size, "fuzz.json", &err) &&
        !oq_calib_table_parse(&b, data, size, "fuzz.json", &err))
        oq_calib_table_merge(a, b, "a", "b", &err);
    oq_calib_table_destroy(a);
    oq_calib_table_destroy(b);
    return 0;
}
