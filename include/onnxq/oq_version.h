/* oq_version.h: the version liboq was built as. */
#ifndef ONNXQ_OQ_VERSION_H
#define ONNXQ_OQ_VERSION_H

/* "0.4.0": the project's version (a static string). */
const char *oq_version(void);

#endif
