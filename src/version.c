/* version.c: the version liboq was built as (see oq_version.h). */
#include "onnxq/oq_version.h"

const char *oq_version(void) { return OQ_VERSION; }
