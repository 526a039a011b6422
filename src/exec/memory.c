/* memory.c: the executor's memory (see session.h): a pool of activation
 * buffers owned by the session (a kernel's output takes the best-fitting
 * free buffer, and a value's buffer returns to the pool right after its last
 * reader ran, so buffers are reused within a run and across runs), scratch
 * held while one kernel runs, and data a kernel derives from constants and
 * keeps across runs. */
#include <stdlib.h>
#include <string.h>

#include "exec/kernel.h"
#include "exec/session.h"

/* ---- buffer pool -------------------------------------------------------------- */

/* Takes a buffer of at least `bytes` (best fit among idle buffers, else a new
 * one) and, when `zero`, zero-fills the first `bytes`. Counts the bytes as in use. */
oq_status oq_pool_take(oq_session *s, size_t bytes, bool zero, void **data, size_t *cap, oq_err *err)
{
    int best = -1, biggest_small = -1;
    for (int i = 0; i < s->n_free; i++) {
        size_t c = s->free_bufs[i].cap;
        if (c >= bytes) {
            if (best < 0 || c < s->free_bufs[best].cap)
                best = i;
        } else if (biggest_small < 0 || c > s->free_bufs[biggest_small].cap) {
            biggest_small = i;
        }
    }
    if (best >= 0) {
        *data = s->free_bufs[best].data;
        *cap = s->free_bufs[best].cap;
        s->free_bufs[best] = s->free_bufs[--s->n_free];
    } else {
        /* A new buffer replaces the largest idle one that is too small, so the
         * pool holds no more buffers than a run ever needs at once. */
        if (biggest_small >= 0) {
            free(s->free_bufs[biggest_small].data);
            s->free_bufs[biggest_small] = s->free_bufs[--s->n_free];
        }
        size_t c = bytes ? bytes : 1;
        if (!(*data = malloc(c)))
            return oq_errf(err, OQ_ENOMEM, "cannot allocate %zu bytes", bytes);
        *cap = c;
    }
    if (zero)
        memset(*data, 0, bytes);
    s->cur_bytes += bytes;
    s->naive_bytes += bytes;
    if (s->cur_bytes > s->peak_bytes)
        s->peak_bytes = s->cur_bytes;
    return OQ_OK;
}

/* Returns t's pool buffer (capacity cap) to the pool, freeing owned strings first. */
void oq_pool_give(oq_session *s, oq_tensor *t, size_t cap)
{
    if (!t->data)
        return;
    if (t->dtype == OQ_DTYPE_STRING) {
        char **str = t->data;
        int64_t n = oq_tensor_numel(t);
        for (int64_t i = 0; i < n; i++)
            free(str[i]);
    }
    s->cur_bytes -= t->nbytes;
    if (s->n_free == s->cap_free) {
        int nc = s->cap_free ? 2 * s->cap_free : 16;
        pool_buf *nb = realloc(s->free_bufs, (size_t)nc * sizeof *nb);
        if (!nb) {
            free(t->data); /* cannot remember it: give it back to the system */
            t->data = NULL;
            return;
        }
        s->free_bufs = nb;
        s->cap_free = nc;
    }
    s->free_bufs[s->n_free++] = (pool_buf){t->data, cap};
    t->data = NULL;
}

void oq_slot_clear(oq_session *s, slot *sl)
{
    if (sl->kind == SLOT_CONST)
        return;
    if (sl->kind == SLOT_POOLED)
        oq_pool_give(s, &sl->t, sl->cap);
    memset(sl, 0, sizeof *sl);
}

void oq_slot_bind_view(slot *sl, const oq_tensor *t, slot_kind kind)
{
    sl->t = *t;
    sl->t.owns_data = false;
    sl->cap = 0;
    sl->kind = kind;
}

/* Fills t with the header of a (dt, rank, dims) tensor and its exact storage
 * size; `name` is the output's name for errors. */
oq_status oq_output_header(oq_tensor *t, oq_dtype dt, int rank, const int64_t *dims, const char *name,
                           oq_err *err)
{
    memset(t, 0, sizeof *t);
    if (!oq_dtype_valid(dt))
        return oq_errf(err, OQ_EINVAL, "invalid output element type %d", (int)dt);
    if (rank < 0 || rank > OQ_MAX_RANK)
        return oq_errf(err, OQ_EUNSUPPORTED, "output rank %d is outside 0..%d", rank, OQ_MAX_RANK);
    int64_t numel = oq_shape_numel(rank, dims);
    if (numel < 0)
        return oq_errf(err, OQ_EINVAL, "output '%s': dims are negative or their product overflows", name);
    size_t bytes = oq_dtype_storage(dt, numel);
    if (bytes == SIZE_MAX || bytes > oq_tensor_limit())
        return oq_errf(err, OQ_ENOMEM, "output '%s' of %lld %s elements exceeds the tensor size limit of %zu bytes",
                       name, (long long)numel, oq_dtype_name(dt), oq_tensor_limit());
    t->dtype = dt;
    t->rank = rank;
    if (rank)
        memcpy(t->dims, dims, (size_t)rank * sizeof dims[0]);
    t->nbytes = bytes;
    return OQ_OK;
}

/* A held record holding a fresh pool buffer of `bytes` (zero-filled when
 * `zero`); linked into f->held. */
static held *hold(struct oq_exec_frame *f, size_t bytes, bool zero, oq_err *err)
{
    oq_session *s = f->s;
    held *h = s->spare;
    if (h)
        s->spare = h->next;
    else if (!(h = malloc(sizeof *h))) {
        oq_errf(err, OQ_ENOMEM, "out of memory");
        return NULL;
    }
    memset(&h->t, 0, sizeof h->t);
    if (oq_pool_take(s, bytes, zero, &h->t.data, &h->cap, err)) {
        h->next = s->spare;
        s->spare = h;
        return NULL;
    }
    h->t.nbytes = bytes;
    h->next = f->held;
    f->held = h;
    return h;
}

void oq_release_held(struct oq_exec_frame *f)
{
    while (f->held) {
        held *h = f->held;
        f->held = h->next;
        oq_pool_give(f->s, &h->t, h->cap);
        h->next = f->s->spare;
        f->s->spare = h;
    }
}

/* ---- kernel memory (kernel.h) ------------------------------------------------------- */

const oq_value *oq_kernel_written_value(const oq_kernel_ctx *c, int k)
{
    if (k == 0 && c->quantize)
        return c->quantize->outputs[0]; /* the quantized chain result is what this node now writes */
    if (k == 0 && c->epilogue)
        return c->epilogue->dst; /* the chain's result is what this node now writes */
    return k < c->node->n_outputs ? c->node->outputs[k] : NULL;
}

static oq_tensor *kernel_output(oq_kernel_ctx *c, int k, oq_dtype dt, int rank, const int64_t *dims, bool zero)
{
    struct oq_exec_frame *f = c->frame;
    oq_tensor hdr;
    if (k < 0) {
        oq_errf(c->err, OQ_EINVAL, "output index %d is negative", k);
        return NULL;
    }
    const oq_value *v = oq_kernel_written_value(c, k);
    if (oq_output_header(&hdr, dt, rank, dims, v ? v->name : "(unnamed)", c->err))
        return NULL;
    if (!v) {
        held *h = hold(f, hdr.nbytes, zero, c->err);
        if (!h)
            return NULL;
        hdr.data = h->t.data;
        h->t = hdr;
        return &h->t;
    }
    slot *sl = &f->p->slots[v->id];
    oq_slot_clear(f->s, sl); /* a kernel asking twice for one output gets a fresh buffer */
    if (oq_pool_take(f->s, hdr.nbytes, zero, &hdr.data, &sl->cap, c->err))
        return NULL;
    sl->t = hdr;
    sl->kind = SLOT_POOLED;
    return &sl->t;
}

oq_tensor *oq_kernel_output(oq_kernel_ctx *c, int k, oq_dtype dt, int rank, const int64_t *dims)
{
    return kernel_output(c, k, dt, rank, dims, true);
}

oq_tensor *oq_kernel_output_raw(oq_kernel_ctx *c, int k, oq_dtype dt, int rank, const int64_t *dims)
{
    return kernel_output(c, k, dt, rank, dims, false);
}

static void *kernel_scratch(oq_kernel_ctx *c, size_t bytes, bool zero)
{
    if (bytes > oq_tensor_limit()) {
        oq_errf(c->err, OQ_ENOMEM, "scratch of %zu bytes exceeds the size limit of %zu bytes", bytes,
                oq_tensor_limit());
        return NULL;
    }
    held *h = hold(c->frame, bytes, zero, c->err);
    return h ? h->t.data : NULL;
}

void *oq_kernel_scratch(oq_kernel_ctx *c, size_t bytes) { return kernel_scratch(c, bytes, true); }

void *oq_kernel_scratch_raw(oq_kernel_ctx *c, size_t bytes) { return kernel_scratch(c, bytes, false); }

const void *oq_kernel_cache(oq_kernel_ctx *c, size_t bytes, void (*fill)(void *dst, void *arg), void *arg)
{
    plan_node *pn = c->frame->running;
    if (!pn->cache || pn->cache_bytes != bytes) {
        free(pn->cache);
        pn->cache_bytes = 0;
        /* 64-byte aligned: packed operands are read with aligned vector loads */
        size_t size = (bytes + 63) / 64 * 64;
        if (!(pn->cache = aligned_alloc(64, size ? size : 64))) {
            oq_errf(c->err, OQ_ENOMEM, "cannot allocate %zu bytes", bytes);
            return NULL;
        }
        fill(pn->cache, arg);
        pn->cache_bytes = bytes;
    }
    return pn->cache;
}
