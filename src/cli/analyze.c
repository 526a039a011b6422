/* analyze.c: `onnxq analyze MODEL --data PATH... -o OUT.json` (the
 * sensitivity analysis, oq_sensitivity.h; options parsed with convert's) and
 * `onnxq analyze merge PART.json... -o OUT.json`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_data.h"
#include "onnxq/oq_file.h"
#include "onnxq/oq_sensitivity.h"

static const char analyze_help_head[] =
    "Usage: onnxq analyze MODEL --data PATH [--data PATH ...] -o OUT.json [options]\n"
    "       onnxq analyze MODEL --calib TABLE.json --eval-data PATH -o OUT.json [options]\n"
    "       onnxq analyze merge PART.json [PART.json ...] -o OUT.json\n"
    "\n"
    "Sensitivity analysis: for every node (Conv, MatMul, Gemm, ...) that quantize would\n"
    "quantize with the same options, quantizes that node alone (every other one\n"
    "float) and measures the model outputs against the float model on the\n"
    "evaluation samples (--eval-data, else the --data samples): SQNR, cosine, max\n"
    "error, and top-1 agreement for outputs shaped [N, C] or [N, T, C]. Nodes are\n"
    "ranked by the lowest output SQNR (lower: more sensitive). OUT.json is what\n"
    "`quantize --sensitivity` reads (schema in docs/formats.md); the top of the ranking\n"
    "is printed. Float activations are computed once per chunk of samples and\n"
    "only what follows each node is run again.\n"
    "\n"
    "A big model can be analysed in shards, on one machine or many, and merged;\n"
    "the merged file is byte for byte what one whole run writes:\n"
    "  parallel onnxq analyze MODEL --data D --shard {}/4 -o part{}.json ::: 1 2 3 4\n"
    "  onnxq analyze merge part1.json part2.json part3.json part4.json -o sens.json\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE   the result (JSON) to write\n"
    "  --html FILE         write the ranking as one HTML page to open in a browser:\n"
    "                      each node's output SQNR when quantized alone along the\n"
    "                      graph, the most sensitive nodes\n"
    "  --calib FILE        activation ranges from this table instead of calibrating\n"
    "                      on --data\n"
    "  --eval-data PATH    samples to analyse on (repeatable; same forms as --data)\n"
    "  --eval-samples N    analyse on at most N samples (default all)\n"
    "  --shard K/N         analyse only the candidates of shard K of N (candidate i,\n"
    "                      counted from 0 in graph order, is in shard i mod N + 1);\n"
    "                      the result is partial until merged\n"
    "  --cache-mb N        megabytes of float activations kept for one chunk of\n"
    "                      samples (about; default 1024); less means more chunks,\n"
    "                      and each chunk rewrites every candidate's model again\n";

static const char analyze_help_tail[] =
    "  --threads N         threads (default 0: all online cores); nodes are analysed\n"
    "                      side by side, one per thread; the result does not\n"
    "                      depend on N\n"
    "  -q, --quiet         no ranking on stderr\n"
    "  -h, --help          show this help\n";

void cli_analyze_print_help(void)
{
    fputs(analyze_help_head, stdout);
    fputs(cli_quant_options_help, stdout);
    fputs(analyze_help_tail, stdout);
    fputc('\n', stdout);
    fputs(cli_calib_help, stdout);
    fputc('\n', stdout);
    fputs(cli_preprocess_help, stdout);
}

/* ---- the analysis ------------------------------------------------------------------- */

/* Top-1 agreement of node e's first output shaped like a classifier, or NAN. */
static double first_agreement(const oq_sensitivity *s, const oq_sensitivity_node *e)
{
    for (int k = 0; k < s->n_outputs; k++)
        if (e->outputs[k].classifier && e->outputs[k].top1_total)
            return (double)e->outputs[k].top1_agree / (double)e->outputs[k].top1_total;
    return NAN;
}

static void print_node(const oq_sensitivity *s, const oq_sensitivity_node *e)
{
    double agree = first_agreement(s, e);
    char rank[16] = "-", agreement[16] = "-";
    if (e->rank)
        snprintf(rank, sizeof rank, "%d", e->rank);
    if (!isnan(agree))
        snprintf(agreement, sizeof agreement, "%.2f%%", 100.0 * agree);
    fprintf(stderr, "onnxq: %5s %9.2f %10s %9.2f  %s (%s)\n", rank, e->score_db, agreement, e->macs / 1e6, e->name,
            e->op_type);
}

/* The most sensitive nodes (a whole result) or the shard's nodes in graph order,
 * after the caller's headline. */
static void print_ranking(const oq_sensitivity *s, const char *path)
{
    enum { SHOWN = 10 };
    if (!s->n_nodes)
        return;
    fprintf(stderr, "onnxq: %5s %9s %10s %9s  %s\n", "rank", "SQNR dB", "agreement", "M MACs", "node quantized alone");
    if (s->shard_count > 1) {
        for (int i = 0; i < s->n_nodes && i < SHOWN; i++)
            print_node(s, &s->nodes[i]);
    } else {
        for (int rank = 1; rank <= SHOWN && rank <= s->n_nodes; rank++)
            for (int i = 0; i < s->n_nodes; i++)
                if (s->nodes[i].rank == rank)
                    print_node(s, &s->nodes[i]);
    }
    if (s->n_nodes > SHOWN)
        fprintf(stderr, "onnxq: ... %d more in %s\n", s->n_nodes - SHOWN, path);
}

int cli_analyze_run(const oq_job *job, const oq_sensitivity_options *o, bool quiet)
{
    oq_err err = {0};
    oq_outcome out;
    oq_status st = oq_job_analyze(job, o, &out, &err);
    cli_print_warnings(&out);
    int rc = st ? cli_fail(&err) : CLI_EXIT_OK;
    if (!st && !quiet) {
        const oq_sensitivity *s = out.sensitivity;
        fprintf(stderr, "onnxq: analysed %d of %d quantized nodes in %.1f s", s->n_nodes, s->n_candidates,
                out.seconds);
        if (s->shard_count > 1)
            fprintf(stderr, " (shard %d of %d: merge the shards with `onnxq analyze merge`)", s->shard_index,
                    s->shard_count);
        fputc('\n', stderr);
        print_ranking(s, job->output_path);
    }
    oq_outcome_release(&out);
    return rc;
}

/* ---- merge ----------------------------------------------------------------------------- */

enum { MERGE_HELP = 1, MERGE_OUTPUT, MERGE_QUIET };

static const char merge_help[] =
    "Usage: onnxq analyze merge PART.json [PART.json ...] -o OUT.json\n"
    "\n"
    "Joins the partial results of `onnxq analyze --shard K/N` (all N shards of one\n"
    "analysis: same model, options and samples) into the whole result, byte for\n"
    "byte what one run without --shard writes.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE   the merged result\n"
    "  -q, --quiet         no ranking on stderr\n"
    "  -h, --help          show this help\n";

static int merge_main(int argc, char **argv)
{
    static const cli_opt opts[] = {
        {"help", 'h', false, MERGE_HELP}, {"output", 'o', true, MERGE_OUTPUT}, {"quiet", 'q', false, MERGE_QUIET}};
    const char **parts = calloc((size_t)argc + 1, sizeof *parts), *output = NULL;
    oq_sensitivity **loaded = calloc((size_t)argc + 1, sizeof *loaded), *merged = NULL;
    int n = 0, rc = -1;
    bool quiet = false;
    if (!parts || !loaded) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAIL;
    }
    cli_parser p;
    cli_parser_init(&p, argc, argv, 1, "analyze merge", opts, 3);
    const char *v;
    int id;
    while (rc < 0 && (id = cli_next(&p, &v)) != CLI_END) {
        if (id == CLI_BAD)
            rc = CLI_EXIT_USAGE;
        else if (id == MERGE_HELP)
            fputs(merge_help, stdout), rc = CLI_EXIT_OK;
        else if (id == MERGE_OUTPUT)
            output = v;
        else if (id == MERGE_QUIET)
            quiet = true;
        else
            parts[n++] = v;
    }
    if (rc < 0 && !n)
        rc = cli_usage("analyze merge: missing PART.json (the results of analyze --shard)");
    if (rc < 0 && !output)
        rc = cli_usage("analyze merge: missing -o OUT.json");
    for (int i = 0; rc < 0 && i < n; i++)
        if (oq_same_file(output, parts[i]))
            rc = cli_usage("analyze merge: the output %s is the input %s; choose another output path", output,
                           parts[i]);
    oq_err err = {0};
    uint8_t *text = NULL;
    size_t len = 0;
    for (int i = 0; rc < 0 && i < n; i++)
        if (oq_sensitivity_load(&loaded[i], parts[i], &err))
            rc = cli_fail(&err);
    if (rc < 0 && (oq_sensitivity_merge(&merged, n, (const oq_sensitivity *const *)loaded, parts, &err) ||
                   oq_sensitivity_serialize(merged, &text, &len, &err) ||
                   oq_write_file_atomic(output, text, len, &err)))
        rc = cli_fail(&err);
    if (rc < 0) {
        if (!quiet) {
            fprintf(stderr, "onnxq: merged %d shards: %d of %d quantized nodes\n", n, merged->n_nodes,
                    merged->n_candidates);
            print_ranking(merged, output);
        }
        rc = CLI_EXIT_OK;
    }
    free(text);
    oq_sensitivity_destroy(merged);
    for (int i = 0; loaded && i < n; i++)
        oq_sensitivity_destroy(loaded[i]);
    free(loaded);
    free(parts);
    return rc;
}

int cli_analyze(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "merge"))
        return merge_main(argc - 1, argv + 1);
    return cli_quant_main(argc, argv, CLI_ANALYZE);
}
