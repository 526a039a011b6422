/* proto.c: helpers the files of src/onnx share (see proto.h): error helpers,
 * packing, the nesting pre-check run before any unpack, and the arena that
 * owns every message built for one save. */
#include "onnx/proto.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ------------------------------------------------------------- */

oq_status pb_status_of(const oq_err *err) { return err && err->status ? err->status : OQ_ENOMEM; }

char *pb_dup_bytes(const uint8_t *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s) {
        if (len)
            memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

const char *pb_type_str(char *buf, size_t size, oq_dtype dt, int rank, const int64_t *dims)
{
    int k = snprintf(buf, size, "%s[", oq_dtype_name(dt));
    for (int i = 0; i < rank && k > 0 && (size_t)k < size; i++)
        k += snprintf(buf + k, size - (size_t)k, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (k > 0 && (size_t)k < size)
        snprintf(buf + k, size - (size_t)k, "]");
    return buf;
}

static void *heap_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static void heap_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

ProtobufCAllocator pb_heap = {heap_alloc, heap_free, NULL};

oq_status pb_pack_alloc(const ProtobufCMessage *msg, uint8_t **out, size_t *len, oq_err *err)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return oq_errf(err, OQ_ENOMEM, "out of memory serializing %zu bytes", n);
    protobuf_c_message_pack(msg, buf);
    *out = buf;
    *len = n;
    return OQ_OK;
}

/* ---- nesting pre-check ------------------------------------------------------------ */

static bool read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *i < len; shift += 7) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* pb_wire_check at nesting level `depth`. A field number of 0 is invalid;
 * protobuf-c keeps it as an unknown field it cannot read back once written.
 * Walks the wire format with the schema, recursing only into message fields
 * and never past the limit. */
static int wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, int depth)
{
    if (depth > MAX_MESSAGE_DEPTH)
        return WIRE_TOO_DEEP;
    size_t i = 0;
    while (i < len) {
        uint64_t key, n;
        if (!read_varint(p, len, &i, &key))
            return WIRE_OK;
        if (key >> 3 == 0)
            return WIRE_FIELD_ZERO;
        switch (key & 7) {
        case 0:
            if (!read_varint(p, len, &i, &n))
                return WIRE_OK;
            break;
        case 1:
            i += 8;
            break;
        case 5:
            i += 4;
            break;
        case 2: {
            if (!read_varint(p, len, &i, &n) || n > len - i)
                return WIRE_OK;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
            int r = f && f->type == PROTOBUF_C_TYPE_MESSAGE ? wire_check(f->descriptor, p + i, (size_t)n, depth + 1)
                                                            : WIRE_OK;
            if (r != WIRE_OK)
                return r;
            i += (size_t)n;
            break;
        }
        default:
            return WIRE_OK;
        }
    }
    return WIRE_OK;
}

int pb_wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len)
{
    return wire_check(d, p, len, 0);
}

/* ---- arena: every message built for one save, freed at once --------------------- */

struct pb_arena_block {
    pb_arena_block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

#define ARENA_BLOCK (64 * 1024)

void *pb_arena_alloc(pb_arena *a, size_t n)
{
    size_t align = alignof(max_align_t);
    if (n > SIZE_MAX - align)
        return NULL;
    n = (n + align - 1) / align * align;
    pb_arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
        if (!(b = malloc(sizeof *b + cap)))
            return NULL;
        b->used = 0;
        b->cap = cap;
        if (n > ARENA_BLOCK / 4 && a->head) { /* big one-off: keep the current block in front */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void pb_arena_free(pb_arena *a)
{
    for (pb_arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
}

static void *arena_pb_alloc(void *data, size_t size) { return pb_arena_alloc(data, size); }
static void arena_pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

ProtobufCAllocator pb_arena_allocator(pb_arena *a) { return (ProtobufCAllocator){arena_pb_alloc, arena_pb_free, a}; }

/* ---- messages in the save arena ------------------------------------------------ */

void *pb_msg_new(pb_save_ctx *c, size_t size, const void *init)
{
    void *p = pb_arena_alloc(&c->a, size);
    if (!p) {
        oq_errf(c->err, OQ_ENOMEM, "out of memory building the model");
        return NULL;
    }
    memcpy(p, init, size);
    return p;
}

void *pb_arr_new(pb_save_ctx *c, size_t n, size_t size)
{
    void *p = n && size > SIZE_MAX / n ? NULL : pb_arena_alloc(&c->a, n ? n * size : 1);
    if (!p)
        oq_errf(c->err, OQ_ENOMEM, "out of memory building the model");
    return p;
}

EntryProto *pb_entry_new(pb_save_ctx *c, const char *key, const char *value)
{
    EntryProto *e = NEW_MSG(c, EntryProto, ONNX__STRING_STRING_ENTRY_PROTO__INIT);
    if (e) {
        e->key = (char *)key;
        e->value = (char *)value;
    }
    return e;
}
