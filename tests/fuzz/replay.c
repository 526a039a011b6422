/* replay.c: feeds every file named on the command line (or found in a named
 * folder) to LLVMFuzzerTestOneInput once, without libFuzzer, so the normal and
 * sanitizer builds re-run the inputs that once crashed a fuzz target. Fails
 * when it finds no input at all. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "onnxq/oq_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    uint8_t *buf;
    size_t len;
    oq_err err = {0};
    if (oq_read_file(path, &buf, &len, &err)) {
        fprintf(stderr, "replay: %s\n", err.msg);
        return -1;
    }
    printf("replay: %s (%zu bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 1;
}

/* Replays the files of dir in name order; returns how many, -1 on error. */
static int replay_dir(const char *dir)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) {
        perror(dir);
        return -1;
    }
    int done = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
        if (ents[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            int r = replay_file(path);
            if (r < 0)
                done = -1;
            else if (done >= 0)
                done += r;
        }
        free(ents[i]);
    }
    free(ents);
    return done;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int r = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
        if (r < 0)
            return 1;
        total += r;
    }
    printf("replay: %d inputs, no crash\n", total);
    return total > 0 ? 0 : 1;
}
