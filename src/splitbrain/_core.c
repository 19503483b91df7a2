/* The compiled core of the checker (optional: the pure-Python code is the reference and the
 * fallback; setup.py builds this where a C compiler exists).
 *
 * History: a history's calls encoded once, in one pass in history order (the order the calls
 * lie in memory), into compact records per key: what each call is (function, completion,
 * values as interned ids, history indexes) in a few dozen bytes, contiguous per key. The
 * searches are compiled from these records, not from the Call objects scattered over the heap,
 * so compiling a key costs the same per call whether the history holds 10k calls or 1M; and
 * forked workers read them without writing a reference count.
 *
 * The models: History.search(key, ...) is search.compile_problem + search.tables (with the
 * model's reduction) for the built-in models, with their steps native: the register models
 * (values as ids) and kv (states as interned strings, its reduction: dead states and placement
 * by the unique split of a value read). It returns None for anything unusual (a cas that is
 * not a pair, a list written, a function the model does not know, a kv value that is not a
 * string); the caller then takes the Python path, which handles or reports it.
 *
 * Search: the loop of checker/search.py's search(), step for step: the same candidates in the
 * same order, the same nodes remembered, the same budget accounting, so both engines give the
 * same outcome after the same budgets (tests/checker/test_core.py and test_reductions.py run
 * both, against brute force). Its transitions are native (the models above, memoised) or come
 * from a search.Tables object's Python callable (any other model). Seen nodes are found by a
 * hash kept up to date step by step, so a step costs the same however many calls are placed.
 * Search.failure() is explain.py's selection for a native search: the prefix with the states
 * of the plain model, the call to blame and the calls concurrent with it.
 *
 * call_json: Call.to_json. Pairer: history/stream.py's decoded lines checked and paired into
 * Calls. Calls and decoded lines are read by slot offset (Fields), so both classes must keep
 * __slots__ (a dataclass with slots=True, a msgspec Struct).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

typedef int32_t i32;
typedef int64_t i64;
typedef uint64_t u64;
typedef uint8_t u8;

#define FAR ((i64)1 << 62)
#define END_EV INT32_MIN
#define T_ERROR INT32_MIN
#define NOWHERE (-2) /* a required state no state id equals */

static void *xcalloc(i64 n, size_t size) {
    void *p = PyMem_Calloc((size_t)(n > 0 ? n : 1), size);
    if (p == NULL) PyErr_NoMemory();
    return p;
}

static int grow(void **p, i64 *cap, i64 need, size_t size) {
    if (need <= *cap) return 0;
    i64 c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = PyMem_Realloc(*p, (size_t)c * size);
    if (q == NULL) { PyErr_NoMemory(); return -1; }
    *p = q;
    *cap = c;
    return 0;
}

static inline u64 mix64(u64 x) {  /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static u64 hash_bytes(const char *p, i64 n) {
    u64 h = 0xCBF29CE484222325ULL ^ (u64)n;
    i64 i = 0;
    for (; i + 8 <= n; i += 8) {
        u64 w;
        memcpy(&w, p + i, 8);
        h = mix64(h ^ w);
    }
    u64 w = 0;
    memcpy(&w, p + i, (size_t)(n - i));
    return mix64(h ^ w ^ 0xFF);
}

/* ---- reading objects ------------------------------------------------------------------ */

/* Attribute reads by slot offset: Call and the decoded lines are classes with __slots__, and
 * one read per field per call is the hot path of reading and compiling. Objects of any other
 * type are read with getattr. fget returns a new reference. */
typedef struct {
    PyTypeObject *type;
    int n;
    Py_ssize_t off[16];
    PyObject *names[16];
} Fields;

static int fields_init(Fields *fl, PyObject *type, PyObject **names, int n) {
    fl->type = NULL;
    fl->n = n;
    for (int i = 0; i < n; i++) {
        fl->names[i] = names[i];
        PyObject *d = PyDict_GetItem(((PyTypeObject *)type)->tp_dict, names[i]);
        if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)
            || ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
            PyErr_Format(PyExc_TypeError, "%R is not a slot of %R", names[i], type);
            return -1;
        }
        fl->off[i] = ((PyMemberDescrObject *)d)->d_member->offset;
    }
    fl->type = (PyTypeObject *)type;
    return 0;
}

static PyObject *fget(Fields *fl, PyObject *obj, int i) {
    if (Py_TYPE(obj) == fl->type) {
        PyObject *v = *(PyObject **)((char *)obj + fl->off[i]);
        if (v != NULL) { Py_INCREF(v); return v; }
    }
    return PyObject_GetAttr(obj, fl->names[i]);
}

/* Call's fields, in Call.to_json's order; set by use_call(Call) */
#define CALL_FIELDS 13
enum { C_PROCESS, C_F, C_KEY, C_VALUE, C_OUTPUT, C_TYPE, C_START, C_END, C_INVOKE_INDEX,
       C_COMPLETE_INDEX, C_NODE, C_ERROR, C_REQUEST };
static Fields call_fields_ = {0};

static PyObject *S_type, *S_f, *S_value, *S_output, *S_error, *S_invoke_index, *S_complete_index;
static PyObject *S_ok, *S_fail, *S_read, *S_write, *S_cas, *S_get, *S_put, *S_append;
static PyObject *S_cas_mismatch, *S_index, *S_time, *S_process, *S_key, *S_node, *S_request;
static PyObject *S_invoke, *S_info, *S_nemesis, *S_no_completion, *S_start, *S_end, *S_empty;

/* reduction flags, as search.REDUCTIONS names them */
enum { R_INFO_READS = 1, R_INFO_NO_OPS = 2, R_INFO_BLIND = 4, R_INFO_CLASSES = 8, R_MODEL = 16,
       R_GREEDY = 32, R_OK_CLASSES = 64 };

/* ---- the search ------------------------------------------------------------------------ */

enum { M_PYTHON, M_REGISTER, M_KV };  /* where transitions come from */
/* native register transitions, per input class */
enum { K_READ_OK, K_SAME, K_WRITE, K_CAS_OK, K_CAS_FAIL, K_CAS_INFO };
/* native kv transitions, per input class */
enum { KV_GET_OK, KV_SAME, KV_PUT, KV_APPEND };

typedef struct { const char *p; i64 n; } Text;  /* UTF-8 bytes owned by a str the history holds */

/* The kv model's states: strings interned as ids, and what canonical() needs */
typedef struct {
    char *buf; i64 bsize, bcap;  /* the states' bytes */
    i64 *off, *len; u64 *hash; i64 n, cap;  /* state id -> its bytes */
    i32 *table; i64 tcap;  /* state ids by hash (open addressing, -1 empty) */
    u8 *kind; Text *text; i64 nclasses;  /* per input class: what it does, with which text */
    int canon;  /* the model's reduction: states no get can tell apart are one */
    Text *seen; i64 nseen;  /* what gets returned: sorted, distinct */
    char *dead; i64 deadlen;  /* the state standing for every dead one (models._kv_reduce) */
    char *scratch; i64 scap;
} Kv;

typedef struct {
    i32 entry, state, coff, clen, ci;
    i64 frontier, low;
    u8 after, forced;
} Frame;

typedef struct {
    PyObject_HEAD
    i32 n, m, end, nodes;
    i32 *ev, *nxt, *prv, *ret_node, *inv_node;
    i64 *due, *invoke_at, *return_at;
    i32 *tclass, nclasses;
    i32 *required;
    u8 *optional, *blind, *stutter, *placed;
    i32 *number;
    /* info classes */
    i32 *iclass, nicl, *mstart, *members, *cursor, *heads, *hpos;
    /* ok-classes */
    i32 *group, ngroups, *gstart, *gmem, *gpos, *gfirst;
    int skip_no_ops, greedy;
    /* transitions */
    int model;
    PyObject *transition;  /* M_PYTHON: the Tables' callable */
    i32 *nkind, *na, *nb;  /* M_REGISTER: per input class (canonical value ids) */
    Kv *kv;  /* M_KV */
    u64 *mkeys; i32 *mvals; i64 mcap, mcount;  /* memo (class, state) -> state; key 0 = empty */
    /* native searches: where each call came from, for Search.failure() */
    PyObject *history;  /* the History compiled from */
    i32 *pos;  /* per call: its position in the history's calls */
    i32 *rstate;  /* M_REGISTER: per call, the (real) value id it compares with, see replay */
    PyObject *initial;  /* the initial value as given */
    /* search state */
    i32 state, remaining, completed, ninfo;
    i64 low, frontier;
    u64 *bits, *xbits, zh;  /* zh: hash of the linearized set (xor of its calls' hashes) */
    i32 bwords, xwords, bhi, xhi;  /* bhi, xhi: no word above them has a bit set */
    int after, fresh, pending, done;
    i32 entry, ci, coff, clen;
    i32 *cands; i64 ccap;
    Frame *frames; i64 depth, fcap;
    i32 *best; i64 bcap, best_len, bcommon; i32 best_remaining;
    /* seen: nodes explored that failed, by hash; their full keys in an arena */
    u64 *hkeys; i64 *hoff; i64 hcap, hcount;
    u64 *arena; i64 asize, acap;
    u64 *keybuf; i64 kcap;
} Search;

#define BIT(a, i) (((a)[(i) >> 6] >> ((i) & 63)) & 1)
#define SET(a, i) ((a)[(i) >> 6] |= (u64)1 << ((i) & 63))
#define CLR(a, i) ((a)[(i) >> 6] &= ~((u64)1 << ((i) & 63)))

/* ---- kv states ---- */

static void kv_free(Kv *kv) {
    if (kv == NULL) return;
    PyMem_Free(kv->buf); PyMem_Free(kv->off); PyMem_Free(kv->len); PyMem_Free(kv->hash);
    PyMem_Free(kv->table); PyMem_Free(kv->kind); PyMem_Free(kv->text); PyMem_Free(kv->seen);
    PyMem_Free(kv->dead); PyMem_Free(kv->scratch);
    PyMem_Free(kv);
}

static int kv_rehash(Kv *kv, i64 cap) {
    i32 *t = xcalloc(cap, sizeof(i32));
    if (t == NULL) return -1;
    for (i64 i = 0; i < cap; i++) t[i] = -1;
    for (i64 id = 0; id < kv->n; id++) {
        i64 j = (i64)(kv->hash[id] & (u64)(cap - 1));
        while (t[j] >= 0) j = (j + 1) & (cap - 1);
        t[j] = (i32)id;
    }
    PyMem_Free(kv->table);
    kv->table = t;
    kv->tcap = cap;
    return 0;
}

/* the id of a state (interned on first sight, like search._Interner.intern); -1 on error */
static i32 kv_intern(Kv *kv, const char *p, i64 n) {
    if ((kv->n + 1) * 2 > kv->tcap && kv_rehash(kv, kv->tcap ? kv->tcap * 2 : 64) < 0) return -1;
    u64 h = hash_bytes(p, n);
    i64 j = (i64)(h & (u64)(kv->tcap - 1));
    for (i32 id; (id = kv->table[j]) >= 0; j = (j + 1) & (kv->tcap - 1))
        if (kv->hash[id] == h && kv->len[id] == n && memcmp(kv->buf + kv->off[id], p, (size_t)n) == 0)
            return id;
    i64 cap = kv->cap;
    if (grow((void **)&kv->off, &cap, kv->n + 1, sizeof(i64)) < 0) return -1;
    cap = kv->cap;
    if (grow((void **)&kv->len, &cap, kv->n + 1, sizeof(i64)) < 0) return -1;
    if (grow((void **)&kv->hash, &kv->cap, kv->n + 1, sizeof(u64)) < 0) return -1;
    if (grow((void **)&kv->buf, &kv->bcap, kv->bsize + n + 1, 1) < 0) return -1;
    memcpy(kv->buf + kv->bsize, p, (size_t)n);
    kv->off[kv->n] = kv->bsize;
    kv->len[kv->n] = n;
    kv->hash[kv->n] = h;
    kv->bsize += n;
    kv->table[j] = (i32)kv->n;
    return (i32)kv->n++;
}

static int text_cmp(const char *a, i64 an, const char *b, i64 bn) {
    int c = memcmp(a, b, (size_t)(an < bn ? an : bn));
    return c ? c : (an < bn ? -1 : an > bn);
}

/* models._kv_reduce's canonical(): a state no value read starts with is dead */
static i32 kv_canonical(Kv *kv, const char *p, i64 n) {
    if (kv->canon) {
        i64 lo = 0, hi = kv->nseen;  /* the first value read >= the state (bisect_left) */
        while (lo < hi) {
            i64 mid = (lo + hi) / 2;
            if (text_cmp(kv->seen[mid].p, kv->seen[mid].n, p, n) < 0) lo = mid + 1;
            else hi = mid;
        }
        if (!(lo < kv->nseen && kv->seen[lo].n >= n && memcmp(kv->seen[lo].p, p, (size_t)n) == 0))
            return kv_intern(kv, kv->dead, kv->deadlen);
    }
    return kv_intern(kv, p, n);
}

/* models._kv_step on interned states */
static i32 kv_step(Kv *kv, i32 c, i32 st) {
    Text t = kv->text[c];
    switch (kv->kind[c]) {
    case KV_GET_OK:
        return kv->len[st] == t.n && memcmp(kv->buf + kv->off[st], t.p, (size_t)t.n) == 0 ? st : -1;
    case KV_SAME:
        return st;
    case KV_PUT:
        return kv_canonical(kv, t.p, t.n);
    default: {
        i64 n = kv->len[st] + t.n;
        if (grow((void **)&kv->scratch, &kv->scap, n + 1, 1) < 0) return T_ERROR;
        memcpy(kv->scratch, kv->buf + kv->off[st], (size_t)kv->len[st]);  /* buf may move */
        memcpy(kv->scratch + kv->len[st], t.p, (size_t)t.n);
        i32 r = kv_canonical(kv, kv->scratch, n);
        return r < 0 ? T_ERROR : r;
    }
    }
}

/* ---- transitions ------------------------------------------------------------------------ */

static int memo_grow(Search *s) {
    i64 cap = s->mcap ? s->mcap * 2 : 256;
    u64 *keys = xcalloc(cap, sizeof(u64));
    i32 *vals = xcalloc(cap, sizeof(i32));
    if (keys == NULL || vals == NULL) { PyMem_Free(keys); PyMem_Free(vals); return -1; }
    for (i64 i = 0; i < s->mcap; i++) {
        if (!s->mkeys[i]) continue;
        i64 j = (i64)(mix64(s->mkeys[i]) & (u64)(cap - 1));
        while (keys[j]) j = (j + 1) & (cap - 1);
        keys[j] = s->mkeys[i];
        vals[j] = s->mvals[i];
    }
    PyMem_Free(s->mkeys);
    PyMem_Free(s->mvals);
    s->mkeys = keys;
    s->mvals = vals;
    s->mcap = cap;
    return 0;
}

/* step state `st` by input class `c`: the next state, -1 when illegal, T_ERROR on error */
static i32 transition(Search *s, i32 c, i32 st) {
    if (s->model == M_REGISTER) {
        i32 a = s->na[c];
        switch (s->nkind[c]) {
        case K_READ_OK: return st == a ? st : -1;
        case K_SAME: return st;
        case K_WRITE: return s->nb[c];
        case K_CAS_OK: return st == a ? s->nb[c] : -1;
        case K_CAS_FAIL: return st != a ? st : -1;
        default: return st == a ? s->nb[c] : st;
        }
    }
    if ((s->mcount + 1) * 2 > s->mcap && memo_grow(s) < 0) return T_ERROR;
    u64 key = (((u64)(uint32_t)c << 32) | (uint32_t)st) + 1;
    i64 j = (i64)(mix64(key) & (u64)(s->mcap - 1));
    for (; s->mkeys[j]; j = (j + 1) & (s->mcap - 1))
        if (s->mkeys[j] == key) return s->mvals[j];
    i32 v;
    if (s->model == M_KV) {
        v = kv_step(s->kv, c, st);
        if (v == T_ERROR) return T_ERROR;
    } else {
        PyObject *r = PyObject_CallFunction(s->transition, "ii", (int)c, (int)st);
        if (r == NULL) return T_ERROR;
        long got = PyLong_AsLong(r);
        Py_DECREF(r);
        if (got == -1 && PyErr_Occurred()) return T_ERROR;
        v = (i32)got;
    }
    /* slot j is still free: a step never writes to the memo */
    s->mkeys[j] = key;
    s->mvals[j] = v;
    s->mcount++;
    return v;
}

/* ---- the seen set --------------------------------------------------------------------- */

/* Nodes are found by a hash updated step by step: the xor of a hash per linearized call
 * (zh), mixed with the state and whether the last call was an info call. Only when the hash
 * matches is the node's full key (build_key) compared, so a step does not pay for hashing a
 * key that grows with the calls placed. */
static inline u64 call_hash(i32 op) { return mix64((u64)op + 0x632BE59BD9B4E019ULL); }

static inline u64 node_hash(u64 zh, i32 state, int after) {
    return (zh ^ mix64(((u64)(uint32_t)state << 1 | (u64)(after != 0)) + 0x7F4A7C15ULL)) | 1;
}

static int seen_grow(Search *s) {
    i64 cap = s->hcap ? s->hcap * 2 : 256;
    u64 *keys = xcalloc(cap, sizeof(u64));
    i64 *off = xcalloc(cap, sizeof(i64));
    if (keys == NULL || off == NULL) { PyMem_Free(keys); PyMem_Free(off); return -1; }
    for (i64 i = 0; i < s->hcap; i++) {
        if (!s->hkeys[i]) continue;
        i64 j = (i64)(s->hkeys[i] & (u64)(cap - 1));
        while (keys[j]) j = (j + 1) & (cap - 1);
        keys[j] = s->hkeys[i];
        off[j] = s->hoff[i];
    }
    PyMem_Free(s->hkeys);
    PyMem_Free(s->hoff);
    s->hkeys = keys;
    s->hoff = off;
    s->hcap = cap;
    return 0;
}

/* The node (low, mask, state, extra, after) as words in keybuf: mask is the completed set
 * above `low`, extra the info set, both without trailing zero words. Returns its length. */
static i64 build_key(Search *s, i64 low, i32 state, int after) {
    i64 wl = low >> 6, sh = low & 63;
    i64 top = s->bhi;
    while (top >= wl && s->bits[top] == 0) top--;
    s->bhi = (i32)top;
    i64 nm = top >= wl ? top - wl + 1 : 0;
    while (s->xhi >= 0 && s->xbits[s->xhi] == 0) s->xhi--;
    i64 nx = s->xhi + 1;
    i64 len = 2 + nm + nx;
    if (grow((void **)&s->keybuf, &s->kcap, len, sizeof(u64)) < 0) return -1;
    u64 *k = s->keybuf;
    k[0] = (u64)low;
    k[1] = (u64)(uint32_t)state | ((u64)(after != 0) << 32);
    for (i64 j = 0; j < nm; j++) {
        u64 w = s->bits[wl + j] >> sh;
        if (sh) w |= s->bits[wl + j + 1] << (64 - sh);
        k[2 + j] = w;
    }
    while (nm > 0 && k[1 + nm] == 0) nm--;  /* the shift can empty the last word */
    memcpy(k + 2 + nm, s->xbits, (size_t)nx * sizeof(u64));
    return 2 + nm + nx;
}

/* Was the node (the current bits, `low`, `state`, `after`) seen? 1 yes, 0 no, -1 error */
static int seen_has(Search *s, u64 h, i64 low, i32 state, int after) {
    if (s->hcount == 0) return 0;
    i64 len = -1;
    for (i64 j = (i64)(h & (u64)(s->hcap - 1)); s->hkeys[j]; j = (j + 1) & (s->hcap - 1)) {
        if (s->hkeys[j] != h) continue;
        if (len < 0 && (len = build_key(s, low, state, after)) < 0) return -1;
        const u64 *e = s->arena + s->hoff[j];
        if ((i64)e[0] == len && memcmp(e + 1, s->keybuf, (size_t)len * sizeof(u64)) == 0) return 1;
    }
    return 0;
}

/* Remember the current node as explored and failed */
static int seen_add(Search *s) {
    if ((s->hcount + 1) * 2 > s->hcap && seen_grow(s) < 0) return -1;
    i64 len = build_key(s, s->low, s->state, s->after);
    if (len < 0) return -1;
    u64 h = node_hash(s->zh, s->state, s->after);
    i64 j = (i64)(h & (u64)(s->hcap - 1));
    while (s->hkeys[j]) j = (j + 1) & (s->hcap - 1);
    if (grow((void **)&s->arena, &s->acap, s->asize + len + 1, sizeof(u64)) < 0) return -1;
    s->arena[s->asize] = (u64)len;
    memcpy(s->arena + s->asize + 1, s->keybuf, (size_t)len * sizeof(u64));
    s->hkeys[j] = h;
    s->hoff[j] = s->asize;
    s->asize += len + 1;
    s->hcount++;
    return 0;
}

/* ---- construction ----------------------------------------------------------------------- */

static void Search_dealloc(Search *s) {
    void *arrays[] = {s->ev, s->nxt, s->prv, s->ret_node, s->inv_node, s->due, s->invoke_at,
                      s->return_at, s->tclass, s->required, s->optional, s->blind, s->stutter,
                      s->placed, s->number, s->iclass, s->mstart, s->members, s->cursor,
                      s->heads, s->hpos, s->group, s->gstart, s->gmem, s->gpos, s->gfirst,
                      s->nkind, s->na, s->nb, s->mkeys, s->mvals, s->pos, s->rstate, s->bits,
                      s->xbits, s->cands, s->frames, s->best, s->hkeys, s->hoff, s->arena,
                      s->keybuf};
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) PyMem_Free(arrays[i]);
    kv_free(s->kv);
    Py_XDECREF(s->transition);
    Py_XDECREF(s->history);
    Py_XDECREF(s->initial);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static i64 head_at(Search *s, i32 c) {
    i32 h = s->members[s->mstart[c] + s->cursor[c]];
    return h < 0 ? FAR : s->invoke_at[h];
}

/* class c's head moved: restore the order of heads (ties keep the moved class last) */
static void reposition(Search *s, i32 c) {
    i32 p = s->hpos[c];
    i64 key = head_at(s, c);
    while (p > 0 && head_at(s, s->heads[p - 1]) > key) {
        s->heads[p] = s->heads[p - 1];
        s->hpos[s->heads[p]] = p;
        p--;
    }
    while (p + 1 < s->nicl && head_at(s, s->heads[p + 1]) <= key) {
        s->heads[p] = s->heads[p + 1];
        s->hpos[s->heads[p]] = p;
        p++;
    }
    s->heads[p] = c;
    s->hpos[c] = p;
}

/* Sort (key, tie) pairs ascending by (key, tie): a natural merge sort (the runs already in
 * order are found first; events come as a run of invokes and nearly ordered returns). */
typedef struct { i64 key, tie; } Pair;

static inline int pair_lt(const Pair *x, const Pair *y) {
    return x->key < y->key || (x->key == y->key && x->tie < y->tie);
}

static int sort_pairs(Pair *a, i64 n) {
    i64 runs = 1;
    for (i64 i = 1; i < n; i++) runs += pair_lt(&a[i], &a[i - 1]);
    if (n < 2 || runs == 1) return 0;
    Pair *tmp = xcalloc(n, sizeof(Pair));
    i64 *starts = xcalloc(runs + 1, sizeof(i64));
    if (tmp == NULL || starts == NULL) { PyMem_Free(tmp); PyMem_Free(starts); return -1; }
    i64 r = 0;
    starts[r++] = 0;
    for (i64 i = 1; i < n; i++) if (pair_lt(&a[i], &a[i - 1])) starts[r++] = i;
    starts[r] = n;
    Pair *src = a, *dst = tmp;
    while (runs > 1) {
        i64 merged = 0;
        for (i64 k = 0; k < runs; k += 2) {
            i64 lo = starts[k], mid = starts[k + 1], hi = k + 2 <= runs ? starts[k + 2] : mid;
            i64 i = lo, j = mid, o = lo;
            while (i < mid && j < hi) dst[o++] = pair_lt(&src[j], &src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[o++] = src[i++];
            while (j < hi) dst[o++] = src[j++];
            starts[merged++] = lo;
        }
        starts[merged] = n;
        runs = merged;
        Pair *t = src; src = dst; dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof(Pair));
    PyMem_Free(tmp);
    PyMem_Free(starts);
    return 0;
}

/* Everything the loop derives from the per-call arrays (set before, owned by s) */
static int search_build(Search *s) {
    i64 n = s->n;
    s->number = xcalloc(n, sizeof(i32));
    s->placed = xcalloc(n, 1);
    if (s->number == NULL || s->placed == NULL) return -1;
    for (i64 i = 0; i < n; i++) s->number[i] = s->optional[i] ? s->ninfo++ : s->completed++;
    /* the event list of completed calls, in history order, as search.py sorts it: by
     * (history index, event) with an invoke's event the call and a return's ~call */
    i64 m = 2 * (i64)s->completed;
    s->m = (i32)m;
    s->end = (i32)m + 1;
    s->nodes = (i32)(m + 2 + s->ninfo);
    Pair *order = xcalloc(m, sizeof(Pair));
    if (order == NULL) return -1;
    i64 k = 0;
    for (i64 i = 0; i < n; i++) {
        if (s->optional[i]) continue;
        order[k].key = s->invoke_at[i];
        order[k++].tie = i;
    }
    for (i64 i = 0; i < n; i++) {
        if (s->optional[i]) continue;
        order[k].key = s->return_at[i];
        order[k++].tie = ~i;
    }
    if (sort_pairs(order, m) < 0) { PyMem_Free(order); return -1; }
    s->ev = xcalloc(s->nodes, sizeof(i32));
    s->nxt = xcalloc(s->nodes, sizeof(i32));
    s->prv = xcalloc(s->nodes, sizeof(i32));
    s->due = xcalloc(s->nodes, sizeof(i64));
    s->ret_node = xcalloc(n, sizeof(i32));
    s->inv_node = xcalloc(n, sizeof(i32));
    if (!s->ev || !s->nxt || !s->prv || !s->due || !s->ret_node || !s->inv_node) { PyMem_Free(order); return -1; }
    for (i64 i = 0; i < m; i++) s->ev[i + 1] = (i32)order[i].tie;
    PyMem_Free(order);
    s->ev[0] = 0;
    s->ev[s->end] = END_EV;
    for (i64 node = 0; node < s->nodes; node++) {
        s->nxt[node] = (i32)node + 1;
        s->prv[node] = (i32)node - 1;
        s->due[node] = FAR;
    }
    for (i64 i = 0; i < n; i++) s->ret_node[i] = s->inv_node[i] = -1;
    for (i32 node = 1; node <= s->m; node++) {
        i32 e = s->ev[node];
        if (e < 0) s->ret_node[~e] = node;
        else { s->inv_node[e] = node; s->due[node] = s->return_at[e]; }
    }
    i32 next_node = s->end + 1;
    for (i64 i = 0; i < n; i++) if (s->optional[i]) { s->inv_node[i] = next_node; s->ev[next_node++] = (i32)i; }
    /* info classes: members in call order, -1 ends each */
    s->nicl = 0;
    for (i64 i = 0; i < n; i++) if (s->iclass[i] + 1 > s->nicl) s->nicl = s->iclass[i] + 1;
    s->mstart = xcalloc(s->nicl + 1, sizeof(i32));
    s->members = xcalloc(s->ninfo + s->nicl, sizeof(i32));
    s->cursor = xcalloc(s->nicl, sizeof(i32));
    s->heads = xcalloc(s->nicl, sizeof(i32));
    s->hpos = xcalloc(s->nicl, sizeof(i32));
    if (!s->mstart || !s->members || !s->cursor || !s->heads || !s->hpos) return -1;
    i32 *count = xcalloc(s->nicl + 1, sizeof(i32));
    if (count == NULL) return -1;
    for (i64 i = 0; i < n; i++) if (s->iclass[i] >= 0) count[s->iclass[i]]++;
    for (i32 c = 0; c < s->nicl; c++) s->mstart[c + 1] = s->mstart[c] + count[c] + 1;
    for (i32 c = 0; c < s->nicl; c++) count[c] = 0;
    for (i64 i = 0; i < n; i++) {
        i32 c = s->iclass[i];
        if (c >= 0) s->members[s->mstart[c] + count[c]++] = (i32)i;
    }
    for (i32 c = 0; c < s->nicl; c++) s->members[s->mstart[c + 1] - 1] = -1;
    PyMem_Free(count);
    Pair *hk = xcalloc(s->nicl, sizeof(Pair));
    if (hk == NULL) return -1;
    for (i32 c = 0; c < s->nicl; c++) { hk[c].key = head_at(s, c); hk[c].tie = c; }
    if (sort_pairs(hk, s->nicl) < 0) { PyMem_Free(hk); return -1; }
    for (i32 p = 0; p < s->nicl; p++) { s->heads[p] = (i32)hk[p].tie; s->hpos[s->heads[p]] = p; }
    PyMem_Free(hk);
    /* ok-classes: members by return */
    s->ngroups = 0;
    for (i64 i = 0; i < n; i++) if (s->group[i] + 1 > s->ngroups) s->ngroups = s->group[i] + 1;
    s->gstart = xcalloc(s->ngroups + 1, sizeof(i32));
    s->gmem = xcalloc(n, sizeof(i32));
    s->gpos = xcalloc(n, sizeof(i32));
    s->gfirst = xcalloc(s->ngroups, sizeof(i32));
    count = xcalloc(s->ngroups + 1, sizeof(i32));
    Pair *gk = xcalloc(n, sizeof(Pair));
    if (!s->gstart || !s->gmem || !s->gpos || !s->gfirst || !count || !gk) { PyMem_Free(count); PyMem_Free(gk); return -1; }
    for (i64 i = 0; i < n; i++) if (s->group[i] >= 0) count[s->group[i]]++;
    for (i32 g = 0; g < s->ngroups; g++) s->gstart[g + 1] = s->gstart[g] + count[g];
    for (i32 g = 0; g < s->ngroups; g++) count[g] = 0;
    for (i64 i = 0; i < n; i++) {
        i32 g = s->group[i];
        if (g >= 0) { i32 p = s->gstart[g] + count[g]++; gk[p].key = s->return_at[i]; gk[p].tie = i; }
    }
    PyMem_Free(count);
    for (i32 g = 0; g < s->ngroups; g++) {
        Pair *ms = gk + s->gstart[g];
        i32 len = s->gstart[g + 1] - s->gstart[g];
        if (sort_pairs(ms, len) < 0) { PyMem_Free(gk); return -1; }
        for (i32 j = 0; j < len; j++) {
            s->gmem[s->gstart[g] + j] = (i32)ms[j].tie;
            s->gpos[ms[j].tie] = j;
        }
        s->gfirst[g] = s->gstart[g];  /* gfirst holds absolute positions in gmem */
    }
    PyMem_Free(gk);
    /* bitsets and the rest of the state */
    s->bwords = (s->completed >> 6) + 2;
    s->xwords = (s->ninfo >> 6) + 1;
    s->bits = xcalloc(s->bwords, sizeof(u64));
    s->xbits = xcalloc(s->xwords, sizeof(u64));
    if (!s->bits || !s->xbits) return -1;
    s->bhi = s->xhi = -1;
    s->remaining = s->completed;
    s->best_remaining = s->remaining + 1;
    s->fresh = 1;
    s->frontier = FAR;
    return 0;
}

/* a Python sequence of ints (or bools) -> a C array */
static int fetch_i64(PyObject *obj, const char *name, i64 n, i64 **out) {
    PyObject *seq = PyObject_GetAttrString(obj, name);
    if (seq == NULL) return -1;
    PyObject *fast = PySequence_Fast(seq, name);
    Py_DECREF(seq);
    if (fast == NULL) return -1;
    if (n >= 0 && PySequence_Fast_GET_SIZE(fast) != n) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "%s: expected %lld items", name, (long long)n);
        return -1;
    }
    i64 len = PySequence_Fast_GET_SIZE(fast);
    i64 *a = xcalloc(len, sizeof(i64));
    if (a == NULL) { Py_DECREF(fast); return -1; }
    for (i64 i = 0; i < len; i++) {
        a[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
        if (a[i] == -1 && PyErr_Occurred()) { Py_DECREF(fast); PyMem_Free(a); return -1; }
    }
    Py_DECREF(fast);
    *out = a;
    return 0;
}

static int fetch_i32(PyObject *obj, const char *name, i64 n, i32 **out) {
    i64 *wide;
    if (fetch_i64(obj, name, n, &wide) < 0) return -1;
    i32 *a = xcalloc(n, sizeof(i32));
    if (a == NULL) { PyMem_Free(wide); return -1; }
    for (i64 i = 0; i < n; i++) a[i] = (i32)wide[i];
    PyMem_Free(wide);
    *out = a;
    return 0;
}

static int fetch_u8(PyObject *obj, const char *name, i64 n, u8 **out) {
    i64 *wide;
    if (fetch_i64(obj, name, n, &wide) < 0) return -1;
    u8 *a = xcalloc(n, 1);
    if (a == NULL) { PyMem_Free(wide); return -1; }
    for (i64 i = 0; i < n; i++) a[i] = wide[i] != 0;
    PyMem_Free(wide);
    *out = a;
    return 0;
}

static int attr_int(PyObject *obj, const char *name, i64 *out) {
    PyObject *v = PyObject_GetAttrString(obj, name);
    if (v == NULL) return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* Search(tables): the search of a search.Tables (any model; transitions from its callable) */
static int Search_init(Search *s, PyObject *args, PyObject *kw) {
    PyObject *t;
    static char *names[] = {"tables", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O", names, &t)) return -1;
    PyObject *opt = PyObject_GetAttrString(t, "optional");
    if (opt == NULL) return -1;
    i64 n = PyObject_Length(opt);
    Py_DECREF(opt);
    if (n < 0) return -1;
    s->n = (i32)n;
    i64 start, flag;
    if (fetch_i64(t, "invoke_at", n, &s->invoke_at) < 0 || fetch_i64(t, "return_at", n, &s->return_at) < 0
        || fetch_u8(t, "optional", n, &s->optional) < 0 || fetch_i32(t, "tclass", n, &s->tclass) < 0
        || fetch_i32(t, "required", n, &s->required) < 0 || fetch_u8(t, "blind", n, &s->blind) < 0
        || fetch_u8(t, "stutter", n, &s->stutter) < 0 || fetch_i32(t, "iclass", n, &s->iclass) < 0
        || fetch_i32(t, "group", n, &s->group) < 0 || attr_int(t, "start", &start) < 0)
        return -1;
    s->state = (i32)start;
    if (attr_int(t, "skip_no_ops", &flag) < 0) return -1;
    s->skip_no_ops = flag != 0;
    if (attr_int(t, "greedy", &flag) < 0) return -1;
    s->greedy = flag != 0;
    s->model = M_PYTHON;
    s->transition = PyObject_GetAttrString(t, "transition");
    if (s->transition == NULL) return -1;
    return search_build(s);
}

/* ---- the loop --------------------------------------------------------------------------- */

static PyObject *ops_list(i32 *ops, i64 len) {
    PyObject *out = PyList_New(len);
    if (out == NULL) return NULL;
    for (i64 i = 0; i < len; i++) {
        PyObject *v = PyLong_FromLong(ops[i]);
        if (v == NULL) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

static PyObject *finish(Search *s, int valid) {
    s->done = 1;
    PyObject *ops;
    if (valid) {
        i32 *tmp = xcalloc(s->depth, sizeof(i32));
        if (tmp == NULL) return NULL;
        for (i64 i = 0; i < s->depth; i++) tmp[i] = s->ev[s->frames[i].entry];
        ops = ops_list(tmp, s->depth);
        PyMem_Free(tmp);
    } else {
        ops = ops_list(s->best, s->best_len);
    }
    if (ops == NULL) return NULL;
    return Py_BuildValue("(NN)", PyBool_FromLong(valid), ops);
}

#define UNLINK(node) do { i32 a_ = s->prv[node], b_ = s->nxt[node]; s->nxt[a_] = b_; s->prv[b_] = a_; } while (0)
#define RELINK(node) do { s->nxt[s->prv[node]] = (node); s->prv[s->nxt[node]] = (node); } while (0)

static PyObject *Search_run(Search *s, PyObject *arg) {
    i64 budget = PyLong_AsLongLong(arg);
    if (budget == -1 && PyErr_Occurred()) return NULL;
    if (s->done) { PyErr_SetString(PyExc_RuntimeError, "search already finished"); return NULL; }
    i32 *ev = s->ev, *nxt = s->nxt;
    int forced, place, r;
    i32 op, c, node_, new_state = 0;
    i64 low2 = 0;
    if (s->pending) { s->pending = 0; goto work; }
    for (;;) {
        if (s->remaining == 0) return finish(s, 1);
        if (--budget <= 0) { s->pending = 1; Py_RETURN_NONE; }
    work:
        forced = 0;
        if (s->fresh) {
            s->fresh = 0;
            s->clen = 0;
            node_ = nxt[0];
            op = ev[node_];
            while (op >= 0) {
                if (grow((void **)&s->cands, &s->ccap, (i64)s->coff + s->clen + 1, sizeof(i32)) < 0) return NULL;
                s->cands[s->coff + s->clen++] = node_;
                if (s->greedy && s->stutter[op] && (s->required[op] < 0 || s->required[op] == s->state)) {
                    i32 nw = transition(s, s->tclass[op], s->state);
                    if (nw == T_ERROR) return NULL;
                    if (nw >= 0) break;
                }
                node_ = nxt[node_];
                op = ev[node_];
            }
            if (op >= 0) {
                forced = 1;
                s->entry = node_;
            } else {
                if (node_ != s->end && s->required[~op] == NOWHERE) return finish(s, 0);
                s->frontier = node_ == s->end ? FAR : s->return_at[~op];
                /* stable sort by due: insertion sort, windows are small */
                i32 *cs = s->cands + s->coff;
                for (i32 i = 1; i < s->clen; i++) {
                    i32 v = cs[i];
                    i64 d = s->due[v];
                    i32 j = i - 1;
                    while (j >= 0 && s->due[cs[j]] > d) { cs[j + 1] = cs[j]; j--; }
                    cs[j + 1] = v;
                }
                for (i32 p = 0; p < s->nicl; p++) {
                    i32 cl = s->heads[p];
                    i32 h = s->members[s->mstart[cl] + s->cursor[cl]];
                    if (h < 0 || s->invoke_at[h] >= s->frontier) break;
                    if (grow((void **)&s->cands, &s->ccap, (i64)s->coff + s->clen + 1, sizeof(i32)) < 0) return NULL;
                    s->cands[s->coff + s->clen++] = s->inv_node[h];
                }
                s->ci = 0;
            }
        }
        if (!forced) s->entry = s->ci < s->clen ? s->cands[s->coff + s->ci] : s->end;
        op = ev[s->entry];
        place = 0;
        c = -1;
        if (forced) {
            i32 k = s->number[op];
            SET(s->bits, k);
            if ((k >> 6) > s->bhi) s->bhi = k >> 6;
            low2 = s->low;
            if (k == low2) while (low2 < s->completed && BIT(s->bits, low2)) low2++;
            new_state = s->state;
            int found = seen_has(s, node_hash(s->zh ^ call_hash(op), new_state, 0), low2, new_state, 0);
            if (found < 0) return NULL;
            place = !found;
            if (!place) CLR(s->bits, k);
        } else if (op >= 0) {
            i32 g = s->group[op];
            int blocked = 0;
            if (g >= 0) {
                i32 stop = s->gstart[g] + s->gpos[op];
                for (i32 p = s->gfirst[g]; p < stop; p++) {
                    i32 a = s->gmem[p];
                    if (!s->placed[a] && s->invoke_at[a] < s->frontier) { blocked = 1; break; }
                }
            }
            c = s->iclass[op];
            if (!blocked && (s->required[op] < 0 || s->required[op] == s->state)
                && !(s->after && s->blind[op])) {
                i32 nw = transition(s, s->tclass[op], s->state);
                if (nw == T_ERROR) return NULL;
                if (nw >= 0 && !(c >= 0 && nw == s->state && s->skip_no_ops)) {
                    i32 k = s->number[op];
                    low2 = s->low;
                    if (c < 0) {
                        SET(s->bits, k);
                        if ((k >> 6) > s->bhi) s->bhi = k >> 6;
                        if (k == low2) while (low2 < s->completed && BIT(s->bits, low2)) low2++;
                    } else {
                        SET(s->xbits, k);
                        if ((k >> 6) > s->xhi) s->xhi = k >> 6;
                    }
                    new_state = nw;
                    int found = seen_has(s, node_hash(s->zh ^ call_hash(op), nw, c >= 0), low2, nw, c >= 0);
                    if (found < 0) return NULL;
                    place = !found;
                    if (!place) { if (c < 0) CLR(s->bits, k); else CLR(s->xbits, k); }
                }
            }
            if (!place) { s->ci++; continue; }
        }
        if (place) {
            if (grow((void **)&s->frames, &s->fcap, s->depth + 1, sizeof(Frame)) < 0) return NULL;
            Frame *f = &s->frames[s->depth++];
            f->entry = s->entry; f->state = s->state; f->coff = s->coff; f->clen = s->clen;
            f->ci = s->ci; f->frontier = s->frontier; f->low = s->low;
            f->after = (u8)s->after; f->forced = (u8)forced;
            s->placed[op] = 1;
            s->zh ^= call_hash(op);
            r = s->ret_node[op];
            if (r >= 0) {
                UNLINK(s->entry);
                UNLINK(r);
                s->remaining--;
                i32 g = s->group[op];
                if (g >= 0 && s->gstart[g] + s->gpos[op] == s->gfirst[g]) {
                    i32 p = s->gfirst[g] + 1;
                    while (p < s->gstart[g + 1] && s->placed[s->gmem[p]]) p++;
                    s->gfirst[g] = p;
                }
            } else {
                s->cursor[c]++;
                reposition(s, c);
            }
            if (s->remaining < s->best_remaining) {
                s->best_remaining = s->remaining;
                if (grow((void **)&s->best, &s->bcap, s->depth, sizeof(i32)) < 0) return NULL;
                for (i64 i = s->bcommon; i < s->depth; i++) s->best[i] = ev[s->frames[i].entry];
                s->best_len = s->depth;
                s->bcommon = s->depth;
            }
            s->state = new_state;
            s->low = low2;
            s->after = c >= 0;
            s->coff += s->clen;
            s->clen = 0;
            s->fresh = 1;
            continue;
        }
        /* this node fails: remember it and back up; a forced frame fails as a whole, so keep
         * backing up. Nodes on the path are never looked up (a node below one has more calls
         * placed), so a node is remembered only once it failed. */
        for (;;) {
            if (s->depth == 0) return finish(s, 0);
            if (seen_add(s) < 0) return NULL;
            Frame *f = &s->frames[--s->depth];
            if (s->bcommon > s->depth) s->bcommon = s->depth;
            s->entry = f->entry; s->state = f->state; s->coff = f->coff; s->clen = f->clen;
            s->ci = f->ci; s->frontier = f->frontier; s->after = f->after;
            op = ev[s->entry];
            s->placed[op] = 0;
            s->zh ^= call_hash(op);
            r = s->ret_node[op];
            if (r >= 0) {
                RELINK(r);
                RELINK(s->entry);
                s->remaining++;
                CLR(s->bits, s->number[op]);
                i32 g = s->group[op];
                if (g >= 0 && s->gstart[g] + s->gpos[op] < s->gfirst[g]) s->gfirst[g] = s->gstart[g] + s->gpos[op];
            } else {
                c = s->iclass[op];
                CLR(s->xbits, s->number[op]);
                s->cursor[c]--;
                reposition(s, c);
            }
            s->low = f->low;
            if (!f->forced) break;
        }
        s->ci++;
    }
}

static i64 search_bytes(Search *s) {
    i64 bytes = s->acap * 8 + s->hcap * 16 + s->fcap * (i64)sizeof(Frame) + s->ccap * 4 + s->mcap * 12;
    if (s->kv) bytes += s->kv->bcap + s->kv->cap * 24 + s->kv->tcap * 4;
    return bytes;
}

static PyObject *Search_held(Search *s, void *closure) {
    return PyLong_FromLongLong(search_bytes(s));
}

static PyMethodDef Search_methods[];
static PyGetSetDef Search_getset[];
static PyTypeObject SearchType;

/* ---- the encoded history ------------------------------------------------------------- */

enum { VK_SCALAR, VK_PAIR, VK_OTHER };  /* a value: one scalar, a pair of them, or unusual */
enum { T_OK, T_FAIL, T_INFO };
enum { E_NONE, E_CAS_MISMATCH, E_OTHER };
#define F_UNKNOWN 255  /* a function past the first 255 names: no model takes it natively */

/* One call as the models see it: value ids come from the history's table, equal exactly when
 * the values are equal in Python (1, 1.0 and true included), as the Python path compares. */
typedef struct {
    i64 invoke, ret;  /* history indexes; ret is FAR when the call never completed */
    i32 va, vb, oa, ob;  /* the value (a scalar in va, or a pair) and the output likewise */
    u8 f, type, err, vkind, okind;
} Rec;

typedef struct {
    Rec *recs;
    i32 *pos;  /* each call's position in the history's calls */
    i64 n, cap;
    int odd;  /* a call with an index that is not an int: the Python path reports it */
} KeyCalls;

typedef struct {
    PyObject_HEAD
    PyObject *calls;  /* the list encoded */
    PyObject *keys, *key_ids;  /* keys in first-appearance order; key -> its number */
    PyObject *fnames, *fcodes;  /* functions in first-appearance order; name -> code */
    PyObject *values, *value_ids;  /* value id -> value; value -> id */
    KeyCalls *per;
    i64 nkeys, pcap;
} History;

static int is_scalar(PyObject *v) {
    return v == Py_None || PyBool_Check(v) || PyLong_CheckExact(v) || PyFloat_CheckExact(v)
           || PyUnicode_CheckExact(v);
}

/* The id of a scalar; -1 on error. `cache` (by address, for objects the calls hold, so an
 * address names one object while the history lives) may be NULL. */
typedef struct { PyObject *obj[64]; i32 id[64]; } AddrCache;

static i32 value_id(History *h, PyObject *v, AddrCache *cache) {
    size_t slot = ((uintptr_t)v >> 4) & 63;
    if (cache && cache->obj[slot] == v) return cache->id[slot];
    PyObject *found = PyDict_GetItemWithError(h->value_ids, v);
    i32 id;
    if (found != NULL) id = (i32)PyLong_AsLong(found);
    else {
        if (PyErr_Occurred()) return -1;
        id = (i32)PyList_GET_SIZE(h->values);
        PyObject *num = PyLong_FromLong(id);
        if (num == NULL || PyDict_SetItem(h->value_ids, v, num) < 0 || PyList_Append(h->values, v) < 0) {
            Py_XDECREF(num);
            return -1;
        }
        Py_DECREF(num);
    }
    if (cache) { cache->obj[slot] = v; cache->id[slot] = id; }
    return id;
}

/* kind and ids of a value: a scalar, a list or tuple of two scalars, or anything else */
static int val_of(History *h, PyObject *v, AddrCache *cache, u8 *kind, i32 *a, i32 *b) {
    *a = *b = -1;
    if (is_scalar(v)) {
        *kind = VK_SCALAR;
        return (*a = value_id(h, v, cache)) < 0 ? -1 : 0;
    }
    int list = PyList_CheckExact(v);
    *kind = VK_OTHER;
    if ((!list && !PyTuple_CheckExact(v)) || Py_SIZE(v) != 2) return 0;
    PyObject *x = list ? PyList_GET_ITEM(v, 0) : PyTuple_GET_ITEM(v, 0);
    PyObject *y = list ? PyList_GET_ITEM(v, 1) : PyTuple_GET_ITEM(v, 1);
    if (!is_scalar(x) || !is_scalar(y)) return 0;
    *kind = VK_PAIR;
    if ((*a = value_id(h, x, cache)) < 0 || (*b = value_id(h, y, cache)) < 0) return -1;
    return 0;
}

static int index_of(PyObject *v, i64 *out) {
    if (!PyLong_CheckExact(v)) return 0;
    int overflow;
    *out = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (*out == -1 && PyErr_Occurred()) return -1;
    return overflow == 0 && *out < FAR && *out > -FAR;
}

static void History_dealloc(History *h) {
    for (i64 k = 0; k < h->nkeys; k++) { PyMem_Free(h->per[k].recs); PyMem_Free(h->per[k].pos); }
    PyMem_Free(h->per);
    Py_XDECREF(h->calls); Py_XDECREF(h->keys); Py_XDECREF(h->key_ids); Py_XDECREF(h->fnames);
    Py_XDECREF(h->fcodes); Py_XDECREF(h->values); Py_XDECREF(h->value_ids);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyTypeObject HistoryType;

/* encode(calls) -> History. One pass over the calls in their order, reading each Call's slots
 * borrowed (no reference count written: a forked worker shares the parent's pages) with the
 * objects a few calls ahead prefetched, since the calls lie scattered over the heap. */
static PyObject *encode(PyObject *self, PyObject *calls) {
    if (call_fields_.type == NULL) { PyErr_SetString(PyExc_RuntimeError, "use_call(Call) first"); return NULL; }
    if (!PyList_CheckExact(calls)) { PyErr_SetString(PyExc_TypeError, "encode() takes a list of calls"); return NULL; }
    Py_ssize_t n = PyList_GET_SIZE(calls);
    if (n >= INT32_MAX) { PyErr_SetString(PyExc_OverflowError, "too many calls"); return NULL; }
    History *h = (History *)HistoryType.tp_alloc(&HistoryType, 0);
    if (h == NULL) return NULL;
    Py_INCREF(calls);
    h->calls = calls;
    h->keys = PyList_New(0); h->key_ids = PyDict_New();
    h->fnames = PyList_New(0); h->fcodes = PyDict_New();
    h->values = PyList_New(0); h->value_ids = PyDict_New();
    if (!h->keys || !h->key_ids || !h->fnames || !h->fcodes || !h->values || !h->value_ids) goto fail;
    AddrCache cache;
    memset(&cache, 0, sizeof(cache));
    Fields *cf = &call_fields_;
    PyObject **items = PySequence_Fast_ITEMS(calls);
    PyObject *last_key = NULL, *last_f = NULL, *last_type[2] = {NULL, NULL};
    i64 kidx = -1;
    u8 last_fcode = 0, last_tcode[2] = {0, 0};
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + 16 < n) {
            __builtin_prefetch(items[i + 16]);
            __builtin_prefetch((char *)items[i + 16] + 64);
        }
        if (i + 8 < n && Py_TYPE(items[i + 8]) == cf->type) {
            char *ahead = (char *)items[i + 8];
            __builtin_prefetch(*(PyObject **)(ahead + cf->off[C_VALUE]));
            __builtin_prefetch(*(PyObject **)(ahead + cf->off[C_OUTPUT]));
            __builtin_prefetch(*(PyObject **)(ahead + cf->off[C_INVOKE_INDEX]));
            __builtin_prefetch(*(PyObject **)(ahead + cf->off[C_COMPLETE_INDEX]));
            __builtin_prefetch(*(PyObject **)(ahead + cf->off[C_ERROR]));
        }
        PyObject *call = items[i];
        int owned = Py_TYPE(call) != cf->type;
        static const int which[8] = {C_KEY, C_F, C_TYPE, C_ERROR, C_VALUE, C_OUTPUT, C_INVOKE_INDEX, C_COMPLETE_INDEX};
        PyObject *v[8];
        int got = 1;
        for (int j = 0; j < 8; j++) {
            v[j] = owned ? fget(cf, call, which[j]) : *(PyObject **)((char *)call + cf->off[which[j]]);
            got &= v[j] != NULL;
        }
        int r = -1;
        if (!got) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "a Call field is unset");
            goto next;
        }
        PyObject *key = v[0], *f = v[1], *type = v[2], *error = v[3];
        if (key != last_key) {
            PyObject *found = PyDict_GetItemWithError(h->key_ids, key);
            if (found != NULL) kidx = PyLong_AsLongLong(found);
            else {
                if (PyErr_Occurred()) goto next;
                kidx = h->nkeys;
                PyObject *num = PyLong_FromLongLong(kidx);
                int bad = num == NULL || PyDict_SetItem(h->key_ids, key, num) < 0 || PyList_Append(h->keys, key) < 0;
                Py_XDECREF(num);
                if (bad || grow((void **)&h->per, &h->pcap, h->nkeys + 1, sizeof(KeyCalls)) < 0) goto next;
                memset(&h->per[h->nkeys++], 0, sizeof(KeyCalls));
            }
            last_key = key;
        }
        KeyCalls *kc = &h->per[kidx];
        if (kc->n == kc->cap) {
            i64 cap = kc->cap ? kc->cap * 2 : 16;
            Rec *recs = PyMem_Realloc(kc->recs, (size_t)cap * sizeof(Rec));
            if (recs != NULL) kc->recs = recs;
            i32 *pos = PyMem_Realloc(kc->pos, (size_t)cap * sizeof(i32));
            if (pos != NULL) kc->pos = pos;
            if (recs == NULL || pos == NULL) { PyErr_NoMemory(); goto next; }
            kc->cap = cap;
        }
        Rec *rec = &kc->recs[kc->n];
        kc->pos[kc->n++] = (i32)i;
        if (f != last_f) {
            PyObject *found = PyDict_GetItemWithError(h->fcodes, f);
            if (found != NULL) last_fcode = (u8)PyLong_AsLong(found);
            else {
                if (PyErr_Occurred()) goto next;
                Py_ssize_t nf = PyList_GET_SIZE(h->fnames);
                last_fcode = F_UNKNOWN;
                if (nf < F_UNKNOWN) {
                    PyObject *num = PyLong_FromSsize_t(nf);
                    int bad = num == NULL || PyDict_SetItem(h->fcodes, f, num) < 0 || PyList_Append(h->fnames, f) < 0;
                    Py_XDECREF(num);
                    if (bad) goto next;
                    last_fcode = (u8)nf;
                }
            }
            last_f = f;
        }
        rec->f = last_fcode;
        if (type == last_type[0]) rec->type = last_tcode[0];
        else if (type == last_type[1]) rec->type = last_tcode[1];
        else {
            int ok = PyUnicode_Check(type) ? PyUnicode_Compare(type, S_ok) == 0 : 0;
            int fail = !ok && PyUnicode_Check(type) && PyUnicode_Compare(type, S_fail) == 0;
            rec->type = ok ? T_OK : fail ? T_FAIL : T_INFO;
            last_type[1] = last_type[0]; last_tcode[1] = last_tcode[0];
            last_type[0] = type; last_tcode[0] = rec->type;
        }
        rec->err = error == Py_None ? E_NONE
                   : PyUnicode_Check(error) && PyUnicode_Compare(error, S_cas_mismatch) == 0 ? E_CAS_MISMATCH
                   : E_OTHER;
        if (val_of(h, v[4], &cache, &rec->vkind, &rec->va, &rec->vb) < 0) goto next;
        rec->okind = VK_SCALAR;
        rec->oa = rec->ob = -1;
        if (rec->type == T_OK && val_of(h, v[5], &cache, &rec->okind, &rec->oa, &rec->ob) < 0) goto next;
        int good = index_of(v[6], &rec->invoke);
        if (good >= 0 && v[7] == Py_None) rec->ret = FAR;
        else if (good > 0) good = index_of(v[7], &rec->ret);
        if (good < 0) goto next;
        if (!good) kc->odd = 1;
        r = 0;
    next:
        if (owned) for (int j = 0; j < 8; j++) Py_XDECREF(v[j]);
        if (r < 0) goto fail;
    }
    return (PyObject *)h;
fail:
    Py_DECREF(h);
    return NULL;
}

static PyObject *History_keys(History *h, void *closure) { return PyList_GetSlice(h->keys, 0, h->nkeys); }

static PyObject *History_functions(History *h, void *closure) { return PySet_New(h->fnames); }

static int key_arg(History *h, PyObject *arg, i64 *k) {
    *k = PyLong_AsLongLong(arg);
    if (*k == -1 && PyErr_Occurred()) return -1;
    if (*k < 0 || *k >= h->nkeys) { PyErr_SetString(PyExc_IndexError, "no such key"); return -1; }
    return 0;
}

/* calls(k) -> the calls of key number k, in order */
static PyObject *History_calls(History *h, PyObject *arg) {
    i64 k;
    if (key_arg(h, arg, &k) < 0) return NULL;
    KeyCalls *kc = &h->per[k];
    PyObject *out = PyList_New(kc->n);
    if (out == NULL) return NULL;
    for (i64 i = 0; i < kc->n; i++) {
        PyObject *c = PyList_GET_ITEM(h->calls, kc->pos[i]);
        Py_INCREF(c);
        PyList_SET_ITEM(out, i, c);
    }
    return out;
}

/* size(k) -> how many calls key number k has */
static PyObject *History_size(History *h, PyObject *arg) {
    i64 k;
    if (key_arg(h, arg, &k) < 0) return NULL;
    return PyLong_FromLongLong(h->per[k].n);
}

/* ---- compiling a key: search.compile_problem + search.tables for the built-in models ---- */

enum { F_READ, F_WRITE, F_CAS };  /* register functions */
enum { G_GET, G_PUT, G_APPEND };  /* kv functions */
enum { O_OK, O_FAIL, O_INFO, O_DROPPED };

/* input classes: identical (f, outcome, value, output) share one, numbered by first use */
typedef struct { i32 *keys; i32 *ids; i64 cap, count; } ClassTable;
#define CKEY 8

static inline u64 hash_key(const i32 *k) {
    u64 h = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < CKEY; i++) h = (h ^ (u64)(uint32_t)k[i]) * 0xFF51AFD7ED558CCDULL;
    return mix64(h);
}

static i64 class_of(ClassTable *t, const i32 *k, int *is_new) {
    if ((t->count + 1) * 2 > t->cap) {
        i64 cap = t->cap ? t->cap * 2 : 16;
        i32 *keys = xcalloc(cap * CKEY, sizeof(i32));
        i32 *ids = xcalloc(cap, sizeof(i32));
        if (!keys || !ids) { PyMem_Free(keys); PyMem_Free(ids); return -1; }
        for (i64 i = 0; i < cap; i++) ids[i] = -1;
        for (i64 i = 0; i < t->cap; i++) {
            if (t->ids[i] < 0) continue;
            u64 h = hash_key(t->keys + CKEY * i);
            i64 j = (i64)(h & (u64)(cap - 1));
            while (ids[j] >= 0) j = (j + 1) & (cap - 1);
            memcpy(keys + CKEY * j, t->keys + CKEY * i, CKEY * sizeof(i32));
            ids[j] = t->ids[i];
        }
        PyMem_Free(t->keys); PyMem_Free(t->ids);
        t->keys = keys; t->ids = ids; t->cap = cap;
    }
    u64 h = hash_key(k);
    i64 j = (i64)(h & (u64)(t->cap - 1));
    while (t->ids[j] >= 0) {
        if (memcmp(t->keys + CKEY * j, k, CKEY * sizeof(i32)) == 0) { *is_new = 0; return t->ids[j]; }
        j = (j + 1) & (t->cap - 1);
    }
    memcpy(t->keys + CKEY * j, k, CKEY * sizeof(i32));
    t->ids[j] = (i32)t->count;
    *is_new = 1;
    return t->count++;
}

/* history value ids -> dense ids of one key */
typedef struct { i32 *keys, *vals; i64 cap, count; } IdMap;

static i32 local_id(IdMap *m, i32 id, i32 **back, i64 *bcap) {
    if ((m->count + 1) * 2 > m->cap) {
        i64 cap = m->cap ? m->cap * 2 : 16;
        i32 *keys = xcalloc(cap, sizeof(i32)), *vals = xcalloc(cap, sizeof(i32));
        if (!keys || !vals) { PyMem_Free(keys); PyMem_Free(vals); return -1; }
        for (i64 i = 0; i < cap; i++) keys[i] = -1;
        for (i64 i = 0; i < m->cap; i++) {
            if (m->keys[i] < 0) continue;
            i64 j = (i64)(mix64((u64)m->keys[i]) & (u64)(cap - 1));
            while (keys[j] >= 0) j = (j + 1) & (cap - 1);
            keys[j] = m->keys[i];
            vals[j] = m->vals[i];
        }
        PyMem_Free(m->keys); PyMem_Free(m->vals);
        m->keys = keys; m->vals = vals; m->cap = cap;
    }
    i64 j = (i64)(mix64((u64)id) & (u64)(m->cap - 1));
    while (m->keys[j] >= 0) {
        if (m->keys[j] == id) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    if (grow((void **)back, bcap, m->count + 1, sizeof(i32)) < 0) return -1;
    (*back)[m->count] = id;
    m->keys[j] = id;
    m->vals[j] = (i32)m->count;
    return (i32)m->count++;
}

/* The per-call part of a compile, common to the models: kept calls and their input classes */
typedef struct {
    i64 nk;  /* kept calls */
    i64 *invoke_at, *return_at;
    u8 *optional, *blind, *stutter;
    i32 *tclass, *iclass, *group, *ri;  /* ri: the kept call's record in its key */
    i32 *ckind, *ca, *cb;  /* per class: its kind and arguments (value ids or texts' ids) */
    i64 ccap, nclasses;
    ClassTable ct;
} Compiled;

static void compiled_free(Compiled *cp) {
    PyMem_Free(cp->invoke_at); PyMem_Free(cp->return_at); PyMem_Free(cp->optional);
    PyMem_Free(cp->blind); PyMem_Free(cp->stutter); PyMem_Free(cp->tclass); PyMem_Free(cp->iclass);
    PyMem_Free(cp->group); PyMem_Free(cp->ri); PyMem_Free(cp->ckind); PyMem_Free(cp->ca);
    PyMem_Free(cp->cb); PyMem_Free(cp->ct.keys); PyMem_Free(cp->ct.ids);
}

static int compiled_alloc(Compiled *cp, i64 n) {
    cp->invoke_at = xcalloc(n, sizeof(i64)); cp->return_at = xcalloc(n, sizeof(i64));
    cp->optional = xcalloc(n, 1); cp->blind = xcalloc(n, 1); cp->stutter = xcalloc(n, 1);
    cp->tclass = xcalloc(n, sizeof(i32)); cp->iclass = xcalloc(n, sizeof(i32));
    cp->group = xcalloc(n, sizeof(i32)); cp->ri = xcalloc(n, sizeof(i32));
    return cp->invoke_at && cp->return_at && cp->optional && cp->blind && cp->stutter && cp->tclass
           && cp->iclass && cp->group && cp->ri ? 0 : -1;
}

/* add kept call `r` (record index) with class key k; returns its class (-1 error), sets is_new */
static i64 keep(Compiled *cp, const Rec *rec, i32 r, const i32 *k, int outcome, int *is_new) {
    i64 c = class_of(&cp->ct, k, is_new);
    if (c < 0) return -1;
    if (*is_new) {
        i64 cap = cp->ccap;
        if (grow((void **)&cp->ckind, &cap, c + 1, sizeof(i32)) < 0) return -1;
        cap = cp->ccap;
        if (grow((void **)&cp->ca, &cap, c + 1, sizeof(i32)) < 0) return -1;
        if (grow((void **)&cp->cb, &cp->ccap, c + 1, sizeof(i32)) < 0) return -1;
        cp->nclasses = c + 1;
    }
    i64 i = cp->nk++;
    cp->invoke_at[i] = rec->invoke;
    cp->return_at[i] = rec->ret;
    cp->tclass[i] = (i32)c;
    cp->optional[i] = outcome == O_INFO;
    cp->ri[i] = r;
    return c;
}

/* info classes (by input class, or one per call) and ok-classes (search.tables) */
static int classes(Compiled *cp, int flags) {
    i32 *icl = xcalloc(cp->nclasses, sizeof(i32));
    if (icl == NULL) return -1;
    for (i64 c = 0; c < cp->nclasses; c++) icl[c] = -1;
    i32 nicl = 0;
    for (i64 i = 0; i < cp->nk; i++) {
        cp->iclass[i] = cp->group[i] = -1;
        if (cp->optional[i]) {
            if (!(flags & R_INFO_CLASSES)) cp->iclass[i] = nicl++;
            else {
                if (icl[cp->tclass[i]] < 0) icl[cp->tclass[i]] = nicl++;
                cp->iclass[i] = icl[cp->tclass[i]];
            }
        } else if (flags & R_OK_CLASSES) cp->group[i] = cp->tclass[i];
    }
    PyMem_Free(icl);
    return 0;
}

/* a Search from a compile (its arrays move into it); required as given (owned) */
static Search *new_search(Compiled *cp, History *h, KeyCalls *kc, i32 *required, int model,
                          int flags, i32 start) {
    Search *s = (Search *)SearchType.tp_alloc(&SearchType, 0);
    if (s == NULL) { PyMem_Free(required); return NULL; }
    s->n = (i32)cp->nk;
    s->invoke_at = cp->invoke_at; s->return_at = cp->return_at; s->optional = cp->optional;
    s->tclass = cp->tclass; s->blind = cp->blind; s->stutter = cp->stutter;
    s->iclass = cp->iclass; s->group = cp->group; s->pos = cp->ri; s->required = required;
    for (i64 i = 0; i < cp->nk; i++) s->pos[i] = kc->pos[s->pos[i]];  /* record -> history position */
    cp->invoke_at = cp->return_at = NULL; cp->optional = cp->blind = cp->stutter = NULL;
    cp->tclass = cp->iclass = cp->group = cp->ri = NULL;
    s->nclasses = (i32)cp->nclasses;
    s->model = model;
    s->state = start;
    s->skip_no_ops = (flags & R_INFO_NO_OPS) != 0;
    s->greedy = (flags & R_GREEDY) != 0;
    Py_INCREF(h);
    s->history = (PyObject *)h;
    return s;
}

/* The tables search.tables() would make, as a tuple, for the tests: (invoke_at, return_at,
 * optional, tclass, blind, stutter, iclass, group, start, required, extra) */
static PyObject *tables_tuple(Search *s, PyObject *extra) {
    i64 n = s->n;
    PyObject *lists[9];
    int bad = 0;
    for (int j = 0; j < 9; j++) bad |= (lists[j] = PyList_New(n)) == NULL;
    for (i64 i = 0; i < n && !bad; i++) {
        PyObject *items[9] = {PyLong_FromLongLong(s->invoke_at[i]), PyLong_FromLongLong(s->return_at[i]),
                              PyBool_FromLong(s->optional[i]), PyLong_FromLong(s->tclass[i]),
                              PyBool_FromLong(s->blind[i]), PyBool_FromLong(s->stutter[i]),
                              PyLong_FromLong(s->iclass[i]), PyLong_FromLong(s->group[i]),
                              PyLong_FromLong(s->required[i])};
        for (int j = 0; j < 9; j++) {
            if (items[j] == NULL) bad = 1;
            else PyList_SET_ITEM(lists[j], i, items[j]);
        }
    }
    if (bad) {
        for (int j = 0; j < 9; j++) Py_XDECREF(lists[j]);
        Py_XDECREF(extra);
        return NULL;
    }
    return Py_BuildValue("(NNNNNNNNiNN)", lists[0], lists[1], lists[2], lists[3], lists[4], lists[5],
                         lists[6], lists[7], (int)s->state, lists[8], extra);
}

/* per function code: its function in the model (-1: the model has none by that name) */
static int function_kinds(History *h, PyObject *fs, PyObject **names, int *kinds) {
    Py_ssize_t nf = PyList_GET_SIZE(h->fnames);
    for (Py_ssize_t i = 0; i < nf; i++) {
        PyObject *name = PyList_GET_ITEM(h->fnames, i);
        kinds[i] = -1;
        int in = PySet_Contains(fs, name);
        if (in < 0) return -1;
        for (int j = 0; in && j < 3; j++)
            if (PyUnicode_Check(name) && PyUnicode_Compare(name, names[j]) == 0) kinds[i] = j;
    }
    for (Py_ssize_t i = nf; i < 256; i++) kinds[i] = -1;
    return 0;
}

/* The register models. Returns a Search (or the tables, for the tests), Py_None when a call
 * needs the Python path, NULL on error. */
static PyObject *compile_register(History *h, KeyCalls *kc, PyObject *initial, int fmne, int flags,
                                  PyObject *fs, int as_search) {
    if (!is_scalar(initial) || kc->odd) Py_RETURN_NONE;
    PyObject *names[3] = {S_read, S_write, S_cas};
    int fk[256];
    if (function_kinds(h, fs, names, fk) < 0) return NULL;
    i64 n = kc->n;
    PyObject *result = NULL;
    Compiled cp;
    memset(&cp, 0, sizeof(cp));
    IdMap ids = {0};
    i32 *gid = NULL; i64 gcap = 0;  /* local value id -> history value id */
    i32 *observe = xcalloc(n, sizeof(i32)), *required = NULL;
    u8 *observed = NULL, *written = NULL;
    i32 *canon = NULL;
    if (observe == NULL || compiled_alloc(&cp, n) < 0) goto done;
    for (i64 r = 0; r < n; r++) {
        const Rec *rec = &kc->recs[r];
        int f = fk[rec->f], outcome;
        if (f < 0 || rec->vkind == VK_OTHER || (f == F_CAS && rec->vkind != VK_PAIR)
            || (f == F_WRITE && rec->vkind != VK_SCALAR)) goto unusual;
        i32 key[CKEY] = {f, 0, rec->vkind, -1, -1, VK_SCALAR, -1, -1};
        if ((key[3] = local_id(&ids, rec->va, &gid, &gcap)) < 0) goto done;
        if (rec->vkind == VK_PAIR && (key[4] = local_id(&ids, rec->vb, &gid, &gcap)) < 0) goto done;
        if (rec->type == T_OK) {
            outcome = O_OK;
            if (rec->okind == VK_OTHER || (f == F_READ && rec->okind != VK_SCALAR)) goto unusual;
            key[5] = rec->okind;
            if ((key[6] = local_id(&ids, rec->oa, &gid, &gcap)) < 0) goto done;
            if (rec->okind == VK_PAIR && (key[7] = local_id(&ids, rec->ob, &gid, &gcap)) < 0) goto done;
        } else if (rec->type == T_FAIL) {
            outcome = f == F_CAS && rec->err != E_OTHER && !fmne ? O_FAIL : O_DROPPED;
        } else {
            outcome = f == F_READ && (flags & R_INFO_READS) ? O_DROPPED : O_INFO;
        }
        if (outcome == O_DROPPED) continue;
        key[1] = outcome;
        int is_new;
        i64 i = cp.nk;
        i64 c = keep(&cp, rec, (i32)r, key, outcome, &is_new);
        if (c < 0) goto done;
        if (is_new) {
            i32 kind, a = -1, b = -1;
            if (f == F_READ) { kind = outcome == O_OK ? K_READ_OK : K_SAME; a = key[6]; }
            else if (f == F_WRITE) { kind = K_WRITE; b = key[3]; }
            else {
                kind = outcome == O_OK ? K_CAS_OK : outcome == O_FAIL ? K_CAS_FAIL : K_CAS_INFO;
                a = key[3];
                b = key[4];
            }
            cp.ckind[c] = kind; cp.ca[c] = a; cp.cb[c] = b;
        }
        /* observed values: what ok reads returned, what every kept cas compared against */
        observe[i] = f == F_READ && outcome == O_OK ? key[6] : f == F_CAS ? key[3] : -1;
        cp.blind[i] = f == F_WRITE && (flags & R_INFO_BLIND);
        cp.stutter[i] = outcome != O_INFO && (f == F_READ || outcome == O_FAIL);
    }
    {
        i32 ginit = value_id(h, initial, NULL);
        if (ginit < 0) goto done;
        i32 start = local_id(&ids, ginit, &gid, &gcap);
        if (start < 0) goto done;
        i64 nv = ids.count, nk = cp.nk, nc = cp.nclasses;
        observed = xcalloc(nv + 1, 1);
        written = xcalloc(nv + 1, 1);
        canon = xcalloc(nv + 1, sizeof(i32));
        required = xcalloc(nk, sizeof(i32));
        if (!observed || !written || !canon || !required) goto done;
        for (i64 i = 0; i < nk; i++) if (observe[i] >= 0) observed[observe[i]] = 1;
        /* written values (and the initial one): an ok read or cas that needs another value
         * can happen in no state (models._register_reduce) */
        written[start] = 1;
        for (i64 c = 0; c < nc; c++) {
            i32 k = cp.ckind[c];
            if (k == K_WRITE || k == K_CAS_OK || k == K_CAS_INFO) written[cp.cb[c]] = 1;
        }
        for (i64 i = 0; i < nk; i++) {
            i32 c = cp.tclass[i], k = cp.ckind[c];
            required[i] = (flags & R_MODEL) && (k == K_READ_OK || k == K_CAS_OK) && !written[cp.ca[c]] ? NOWHERE : -1;
        }
        /* values no call compares against are interchangeable: one state (id nv) */
        for (i64 v = 0; v < nv; v++) canon[v] = observed[v] || !(flags & R_MODEL) ? (i32)v : (i32)nv;
        if (classes(&cp, flags) < 0) goto done;
        Search *s = new_search(&cp, h, kc, required, M_REGISTER, flags, canon[start]);
        required = NULL;
        if (s == NULL) goto done;
        result = (PyObject *)s;
        s->nkind = xcalloc(nc, sizeof(i32));
        s->na = xcalloc(nc, sizeof(i32));
        s->nb = xcalloc(nc, sizeof(i32));
        s->rstate = gid;  /* for the replay: local id -> history value id */
        gid = NULL;
        Py_INCREF(initial);
        s->initial = initial;
        if (!s->nkind || !s->na || !s->nb) { Py_CLEAR(result); goto done; }
        for (i64 c = 0; c < nc; c++) {
            s->nkind[c] = cp.ckind[c];
            s->na[c] = cp.ca[c];
            s->nb[c] = cp.cb[c] >= 0 ? canon[cp.cb[c]] : -1;
        }
        if (search_build(s) < 0) { Py_CLEAR(result); goto done; }
        if (!as_search) {
            PyObject *native = Py_BuildValue("(NNN)", ops_list(s->nkind, nc), ops_list(s->na, nc), ops_list(s->nb, nc));
            PyObject *t = native ? tables_tuple(s, native) : NULL;
            Py_DECREF(result);
            result = t;
        }
    }
    goto done;
unusual:
    result = Py_None;
    Py_INCREF(result);
done:
    compiled_free(&cp);
    PyMem_Free(ids.keys); PyMem_Free(ids.vals); PyMem_Free(gid); PyMem_Free(observe);
    PyMem_Free(observed); PyMem_Free(written); PyMem_Free(canon); PyMem_Free(required);
    return result;
}

/* ---- kv --------------------------------------------------------------------------------- */

/* the text of a kv value (models._text) for str and None; 0 for anything else */
static int text_of(PyObject *v, Text *t) {
    if (v == Py_None) { t->p = ""; t->n = 0; return 1; }
    if (!PyUnicode_CheckExact(v)) return 0;
    Py_ssize_t n;
    t->p = PyUnicode_AsUTF8AndSize(v, &n);
    if (t->p == NULL) { PyErr_Clear(); return 0; }  /* a lone surrogate: the Python path */
    t->n = n;
    return 1;
}

/* Texts by value, for the unique-split reduction: a few counts and what a token was seen
 * appended to (models._kv_reduce's writers, starts and where). */
typedef struct { Text t; u64 h; i32 count, last; int where; const char *wp; i64 wn; } Tok;
enum { W_NONE, W_SET, W_NOWHERE };
typedef struct { Tok *e; i32 *table; i64 n, ecap, tcap; } TokMap;

static Tok *tok_find(TokMap *m, const char *p, i64 n, u64 h) {
    if (m->tcap == 0) return NULL;
    for (i64 j = (i64)(h & (u64)(m->tcap - 1)); m->table[j] >= 0; j = (j + 1) & (m->tcap - 1)) {
        Tok *e = &m->e[m->table[j]];
        if (e->h == h && e->t.n == n && memcmp(e->t.p, p, (size_t)n) == 0) return e;
    }
    return NULL;
}

static Tok *tok_add(TokMap *m, Text t) {
    u64 h = hash_bytes(t.p, t.n);
    Tok *e = tok_find(m, t.p, t.n, h);
    if (e != NULL) return e;
    if ((m->n + 1) * 2 > m->tcap) {
        i64 cap = m->tcap ? m->tcap * 2 : 64;
        i32 *table = xcalloc(cap, sizeof(i32));
        if (table == NULL) return NULL;
        for (i64 i = 0; i < cap; i++) table[i] = -1;
        for (i64 i = 0; i < m->n; i++) {
            i64 j = (i64)(m->e[i].h & (u64)(cap - 1));
            while (table[j] >= 0) j = (j + 1) & (cap - 1);
            table[j] = (i32)i;
        }
        PyMem_Free(m->table);
        m->table = table;
        m->tcap = cap;
    }
    if (grow((void **)&m->e, &m->ecap, m->n + 1, sizeof(Tok)) < 0) return NULL;
    e = &m->e[m->n];
    memset(e, 0, sizeof(Tok));
    e->t = t;
    e->h = h;
    i64 j = (i64)(h & (u64)(m->tcap - 1));
    while (m->table[j] >= 0) j = (j + 1) & (m->tcap - 1);
    m->table[j] = (i32)m->n++;
    return e;
}

static int cmp_text(const void *a, const void *b) {
    const Text *x = a, *y = b;
    return text_cmp(x->p, x->n, y->p, y->n);
}

static i64 common_prefix(Text a, Text b) {
    i64 n = a.n < b.n ? a.n : b.n, i = 0;
    while (i < n && a.p[i] == b.p[i]) i++;
    return i;
}

/* models._unique_splits and the `where` it feeds, over the sorted values read (kv->seen):
 * for each value that splits in exactly one way into a start (the initial value or a put's)
 * followed by appended tokens, each token appended once was appended to the value's prefix
 * before it; two different prefixes for one token: NOWHERE. As in Python, a value's cuts
 * already walked for the previous value reported (same prefix, same path) are not walked
 * again. */
static int unique_splits(Kv *kv, TokMap *tokens, TokMap *starts) {
    i64 maxlen = 0;
    for (i64 i = 0; i < kv->nseen; i++) if (kv->seen[i].n > maxlen) maxlen = kv->seen[i].n;
    i64 ntl = 0, nsl = 0;  /* distinct lengths of the tokens (non-empty) and of the starts */
    i64 *lens = xcalloc(tokens->n + starts->n + 2, sizeof(i64));
    i32 *ways = xcalloc(maxlen + 1, sizeof(i32)), *back = xcalloc(maxlen + 1, sizeof(i32));
    i64 *path = xcalloc(maxlen + 2, sizeof(i64));
    u8 *onpath = xcalloc(maxlen + 1, 1);
    i64 *cut_end = xcalloc(maxlen + 1, sizeof(i64));
    int rc = -1;
    if (!lens || !ways || !back || !path || !onpath || !cut_end) goto out;
    i64 *tl = lens, *sl;
    for (i64 i = 0; i < tokens->n; i++) {
        i64 L = tokens->e[i].t.n, k = 0;
        if (L == 0) continue;
        while (k < ntl && tl[k] != L) k++;
        if (k == ntl) tl[ntl++] = L;
    }
    sl = tl + ntl;
    for (i64 i = 0; i < starts->n; i++) {
        i64 L = starts->e[i].t.n, k = 0;
        while (k < nsl && sl[k] != L) k++;
        if (k == nsl) sl[nsl++] = L;
    }
    Text prev = {"", 0}, reported = {"", 0};
    i64 valid = 0, plen = 0;
    for (i64 v = 0; v < kv->nseen; v++) {
        Text value = kv->seen[v];
        i64 common = common_prefix(prev, value);
        if (valid > common + 1) valid = common + 1;
        for (i64 j = valid; j <= value.n; j++) {
            i32 count = 0, last = -1;
            for (i64 k = 0; k < nsl; k++)
                if (sl[k] == j && tok_find(starts, value.p, j, hash_bytes(value.p, j))) { count = 1; break; }
            for (i64 k = 0; k < ntl; k++) {
                i64 L = tl[k];
                if (L <= j && ways[j - L] && tok_find(tokens, value.p + j - L, L, hash_bytes(value.p + j - L, L))) {
                    count += ways[j - L];
                    last = (i32)(j - L);
                }
            }
            ways[j] = count < 2 ? count : 2;
            back[j] = last;
        }
        valid = value.n + 1;
        prev = value;
        if (ways[value.n] != 1) continue;
        i64 known = common_prefix(reported, value), j = value.n, ncut = 0;
        while (back[j] >= 0 && !(j <= known && onpath[j])) {
            i64 a = back[j];
            Tok *e = tok_find(tokens, value.p + a, j - a, hash_bytes(value.p + a, j - a));
            if (e != NULL && e->count == 1) {
                if (e->where == W_NONE) { e->where = W_SET; e->wp = value.p; e->wn = a; }
                else if (e->where == W_SET && (e->wn != a || memcmp(e->wp, value.p, (size_t)a) != 0))
                    e->where = W_NOWHERE;  /* two gets saw it after different prefixes */
            }
            cut_end[ncut++] = j;
            j = a;
        }
        /* the path of this value: the old path up to j (if j is on it), then the new cuts */
        if (onpath[j]) {
            while (plen > 0 && path[plen - 1] > j) onpath[path[--plen]] = 0;
        } else {
            while (plen > 0) onpath[path[--plen]] = 0;
            path[plen++] = j;
            onpath[j] = 1;
        }
        while (ncut > 0) { path[plen] = cut_end[--ncut]; onpath[path[plen++]] = 1; }
        reported = value;
    }
    rc = 0;
out:
    PyMem_Free(lens); PyMem_Free(ways); PyMem_Free(back); PyMem_Free(path); PyMem_Free(onpath);
    PyMem_Free(cut_end);
    return rc;
}

static PyObject *compile_kv(History *h, KeyCalls *kc, PyObject *initial, int fmne, int flags,
                            PyObject *fs, int as_search) {
    Text init;
    if (kc->odd || !text_of(initial, &init)) Py_RETURN_NONE;
    PyObject *names[3] = {S_get, S_put, S_append};
    int fk[256];
    if (function_kinds(h, fs, names, fk) < 0) return NULL;
    i64 n = kc->n;
    PyObject *result = NULL;
    Compiled cp;
    memset(&cp, 0, sizeof(cp));
    Text *ctext = NULL; i64 tcap = 0;  /* per class: its text */
    i32 *required = NULL;
    TokMap tokens = {0}, starts = {0};
    Kv *kv = xcalloc(1, sizeof(Kv));
    if (kv == NULL || compiled_alloc(&cp, n) < 0) goto done;
    PyObject **values = PySequence_Fast_ITEMS(h->values);
    for (i64 r = 0; r < n; r++) {
        const Rec *rec = &kc->recs[r];
        int f = fk[rec->f], outcome;
        Text text = {"", 0};
        if (f < 0 || rec->vkind != VK_SCALAR) goto unusual;
        if (f != G_GET && !text_of(values[rec->va], &text)) goto unusual;
        i32 key[CKEY] = {f, 0, VK_SCALAR, rec->va, -1, VK_SCALAR, -1, -1};
        if (rec->type == T_OK) {
            outcome = O_OK;
            if (rec->okind == VK_OTHER) goto unusual;
            if (f == G_GET && (rec->okind != VK_SCALAR || !text_of(values[rec->oa], &text))) goto unusual;
            key[5] = rec->okind; key[6] = rec->oa; key[7] = rec->ob;
        } else if (rec->type == T_FAIL) {
            outcome = O_DROPPED;  /* kv has no failure that observes the state */
        } else {
            outcome = f == G_GET && (flags & R_INFO_READS) ? O_DROPPED : O_INFO;
        }
        if (outcome == O_DROPPED) continue;
        key[1] = outcome;
        int is_new;
        i64 i = cp.nk;
        i64 c = keep(&cp, rec, (i32)r, key, outcome, &is_new);
        if (c < 0) goto done;
        if (is_new) {
            if (grow((void **)&ctext, &tcap, c + 1, sizeof(Text)) < 0) goto done;
            cp.ckind[c] = f == G_GET ? (outcome == O_OK ? KV_GET_OK : KV_SAME) : f == G_PUT ? KV_PUT : KV_APPEND;
            ctext[c] = text;
        }
        cp.blind[i] = f == G_PUT && (flags & R_INFO_BLIND);
        cp.stutter[i] = outcome != O_INFO && f == G_GET;
        if ((flags & R_MODEL) && f == G_PUT && tok_add(&starts, text) == NULL) goto done;
        if ((flags & R_MODEL) && f == G_APPEND) {  /* models._kv_reduce's writers */
            Tok *e = tok_add(&tokens, text);
            if (e == NULL) goto done;
            e->count++;
            e->last = (i32)i;
        }
    }
    {
        i64 nk = cp.nk, nc = cp.nclasses;
        kv->kind = xcalloc(nc, 1);
        kv->text = xcalloc(nc, sizeof(Text));
        required = xcalloc(nk, sizeof(i32));
        if (!kv->kind || !kv->text || !required) goto done;
        for (i64 c = 0; c < nc; c++) { kv->kind[c] = (u8)cp.ckind[c]; kv->text[c] = ctext[c]; }
        kv->nclasses = nc;
        kv->canon = (flags & R_MODEL) != 0;
        for (i64 i = 0; i < nk; i++) required[i] = -1;
        if (kv->canon) {
            i64 ns = 0, maxlen = 0;
            kv->seen = xcalloc(nk, sizeof(Text));
            if (kv->seen == NULL) goto done;
            for (i64 i = 0; i < nk; i++)
                if (kv->kind[cp.tclass[i]] == KV_GET_OK) kv->seen[ns++] = kv->text[cp.tclass[i]];
            qsort(kv->seen, (size_t)ns, sizeof(Text), cmp_text);
            i64 distinct = 0;
            for (i64 i = 0; i < ns; i++)
                if (distinct == 0 || cmp_text(&kv->seen[distinct - 1], &kv->seen[i]) != 0) kv->seen[distinct++] = kv->seen[i];
            kv->nseen = distinct;
            for (i64 i = 0; i < distinct; i++) if (kv->seen[i].n > maxlen) maxlen = kv->seen[i].n;
            kv->deadlen = maxlen + 1;  /* longer than any value read: never a prefix of one */
            kv->dead = xcalloc(kv->deadlen, 1);
            if (kv->dead == NULL || tok_add(&starts, init) == NULL) goto done;
            if (unique_splits(kv, &tokens, &starts) < 0) goto done;
        }
        i32 start = kv_canonical(kv, init.p, init.n);
        if (start < 0) goto done;
        for (i64 i = 0; kv->canon && i < nk; i++) {
            if (kv->kind[cp.tclass[i]] != KV_APPEND) continue;
            Text t = kv->text[cp.tclass[i]];
            Tok *e = tok_find(&tokens, t.p, t.n, hash_bytes(t.p, t.n));
            if (e == NULL || e->count != 1 || e->where == W_NONE || e->last != i) continue;
            if (e->where == W_NOWHERE) required[i] = NOWHERE;
            else if ((required[i] = kv_intern(kv, e->wp, e->wn)) < 0) goto done;
        }
        if (classes(&cp, flags) < 0) goto done;
        Search *s = new_search(&cp, h, kc, required, M_KV, flags, start);
        required = NULL;
        if (s == NULL) goto done;
        s->kv = kv;
        kv = NULL;
        Py_INCREF(initial);
        s->initial = initial;
        result = (PyObject *)s;
        if (search_build(s) < 0) { Py_CLEAR(result); goto done; }
        if (!as_search) {  /* with the interned states (id -> text), to compare with Python */
            PyObject *states = PyList_New(s->kv->n);
            for (i64 id = 0; states && id < s->kv->n; id++) {
                PyObject *t = PyUnicode_DecodeUTF8(s->kv->buf + s->kv->off[id], s->kv->len[id], NULL);
                if (t == NULL) Py_CLEAR(states);
                else PyList_SET_ITEM(states, id, t);
            }
            PyObject *t = states ? tables_tuple(s, states) : NULL;
            Py_DECREF(result);
            result = t;
        }
    }
    goto done;
unusual:
    result = Py_None;
    Py_INCREF(result);
done:
    compiled_free(&cp);
    kv_free(kv);
    PyMem_Free(ctext); PyMem_Free(required);
    PyMem_Free(tokens.e); PyMem_Free(tokens.table); PyMem_Free(starts.e); PyMem_Free(starts.table);
    return result;
}

/* search(k, model, initial, fail_means_no_effect, flags, fs, as_search=True): the search of
 * key number k for model 0 (the register models) or 1 (kv); None when a call needs the
 * Python path; the tables instead of a Search when as_search is false (for the tests) */
static PyObject *History_search(History *h, PyObject *args) {
    i64 k;
    int model, fmne, flags, as_search = 1;
    PyObject *karg, *initial, *fs;
    if (!PyArg_ParseTuple(args, "OiOpiO|p", &karg, &model, &initial, &fmne, &flags, &fs, &as_search)) return NULL;
    if (key_arg(h, karg, &k) < 0) return NULL;
    if (!PyAnySet_Check(fs)) { PyErr_SetString(PyExc_TypeError, "fs: a set of function names"); return NULL; }
    KeyCalls *kc = &h->per[k];
    return model == 0 ? compile_register(h, kc, initial, fmne, flags, fs, as_search)
                      : compile_kv(h, kc, initial, fmne, flags, fs, as_search);
}

static PyMethodDef History_methods[] = {
    {"calls", (PyCFunction)History_calls, METH_O, "calls(k) -> the calls of key number k"},
    {"size", (PyCFunction)History_size, METH_O, "size(k) -> how many calls key number k has"},
    {"search", (PyCFunction)History_search, METH_VARARGS,
     "search(k, model, initial, fail_means_no_effect, flags, fs, as_search=True)"},
    {NULL}
};

static PyGetSetDef History_getset[] = {
    {"keys", (getter)History_keys, NULL, "the keys, in first-appearance order", NULL},
    {"functions", (getter)History_functions, NULL, "the functions the calls use", NULL},
    {NULL}
};

static PyTypeObject HistoryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "splitbrain._core.History",
    .tp_basicsize = sizeof(History),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a history's calls encoded per key (made by encode(calls))",
    .tp_dealloc = (destructor)History_dealloc,
    .tp_methods = History_methods,
    .tp_getset = History_getset,
};

/* ---- the failure of a native search (explain.py's selection) ------------------------------ */

static PyObject *call_at(Search *s, i32 op) {
    History *h = (History *)s->history;
    PyObject *c = PyList_GET_ITEM(h->calls, s->pos[op]);
    Py_INCREF(c);
    return c;
}

/* The state after each call of the prefix under the plain model (no reduction: real values),
 * as explain.py replays it; stops before a call that cannot follow (then fewer states). */
static PyObject *replay(Search *s, i32 *order, i64 len) {
    History *h = (History *)s->history;
    PyObject *out = PyList_New(0), *state = s->initial;
    if (out == NULL) return NULL;
    Py_INCREF(state);
    i32 id = -1;  /* registers: the state's value id */
    if (s->model == M_KV) {
        if (state == Py_None) { Py_DECREF(state); state = S_empty; Py_INCREF(state); }
    } else if ((id = value_id(h, state, NULL)) < 0) goto fail;
    for (i64 p = 0; p < len; p++) {
        i32 op = order[p], c = s->tclass[op];
        PyObject *call = PyList_GET_ITEM(h->calls, s->pos[op]);
        PyObject *next = NULL;  /* a new state object, or NULL: unchanged */
        int legal = 1;
        if (s->model == M_KV) {
            PyObject *value = PyObject_GetAttr(call, S_value);
            if (value == NULL) goto fail;
            PyObject *text = value == Py_None ? S_empty : value;
            switch (s->kv->kind[c]) {
            case KV_GET_OK: {
                PyObject *o = PyObject_GetAttr(call, S_output);
                if (o == NULL) { Py_DECREF(value); goto fail; }
                legal = PyUnicode_Compare(o == Py_None ? S_empty : o, state) == 0;
                Py_DECREF(o);
                break;
            }
            case KV_SAME: break;
            case KV_PUT: next = text; Py_INCREF(next); break;
            default: next = PyUnicode_Concat(state, text);
            }
            Py_DECREF(value);
            if (s->kv->kind[c] == KV_APPEND && next == NULL) goto fail;
        } else {
            i32 kind = s->nkind[c];
            i32 a = s->na[c] >= 0 ? s->rstate[s->na[c]] : -1;  /* the history id compared */
            PyObject *value = NULL;
            if (kind == K_WRITE || kind == K_CAS_OK || kind == K_CAS_INFO) {
                value = PyObject_GetAttr(call, S_value);
                if (value == NULL) goto fail;
            }
            switch (kind) {
            case K_READ_OK: legal = id == a; break;
            case K_SAME: break;
            case K_WRITE: next = value; Py_INCREF(next); break;
            case K_CAS_FAIL: legal = id != a; break;
            default:
                if (id == a) next = PySequence_GetItem(value, 1);
                else legal = kind == K_CAS_INFO;
            }
            Py_XDECREF(value);
            if ((kind == K_CAS_OK || kind == K_CAS_INFO) && id == a && next == NULL) goto fail;
            if (next != NULL && (id = value_id(h, next, NULL)) < 0) { Py_DECREF(next); goto fail; }
        }
        if (!legal) break;  /* cannot happen for a prefix the search found; stop honestly */
        if (next != NULL) { Py_DECREF(state); state = next; }
        if (PyList_Append(out, state) < 0) goto fail;
    }
    Py_DECREF(state);
    return out;
fail:
    Py_DECREF(state);
    Py_DECREF(out);
    return NULL;
}

/* failure(limit) -> (prefix calls, their states, the call to blame or None, the calls
 * concurrent with it (at most limit)), as explain.py selects them for an invalid outcome */
static PyObject *Search_failure(Search *s, PyObject *arg) {
    i64 limit = PyLong_AsLongLong(arg);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    if (s->history == NULL || !s->done) {
        PyErr_SetString(PyExc_RuntimeError, "failure() is for a finished native search");
        return NULL;
    }
    i64 len = s->best_len;
    while (len > 0 && s->optional[s->best[len - 1]]) len--;  /* info calls at the end explain nothing */
    PyObject *states = replay(s, s->best, len);
    if (states == NULL) return NULL;
    u8 *in_prefix = xcalloc(s->n, 1);
    PyObject *prefix = PyList_New(PyList_GET_SIZE(states)), *concurrent = PyList_New(0);
    PyObject *blamed = NULL;
    if (in_prefix == NULL || prefix == NULL || concurrent == NULL) goto fail;
    for (i64 p = 0; p < len; p++) in_prefix[s->best[p]] = 1;
    for (i64 p = 0; p < PyList_GET_SIZE(states); p++) PyList_SET_ITEM(prefix, p, call_at(s, s->best[p]));
    i32 blocked = -1;  /* the earliest to complete (a missing completion counts as 0, as in Python) */
    i64 first = 0;
    for (i32 i = 0; i < s->n; i++) {
        i64 at = s->return_at[i] == FAR ? 0 : s->return_at[i];
        if (!in_prefix[i] && !s->optional[i] && (blocked < 0 || at < first)) { blocked = i; first = at; }
    }
    if (blocked >= 0) {
        blamed = call_at(s, blocked);
        i64 end = s->return_at[blocked];
        for (i32 i = 0; i < s->n && PyList_GET_SIZE(concurrent) < limit; i++) {
            if (in_prefix[i] || i == blocked || s->invoke_at[i] >= end) continue;
            PyObject *c = call_at(s, i);
            int bad = PyList_Append(concurrent, c) < 0;
            Py_DECREF(c);
            if (bad) goto fail;
        }
    } else {
        blamed = Py_None;
        Py_INCREF(blamed);
    }
    PyMem_Free(in_prefix);
    return Py_BuildValue("(NNNN)", prefix, states, blamed, concurrent);
fail:
    PyMem_Free(in_prefix);
    Py_XDECREF(prefix); Py_XDECREF(states); Py_XDECREF(concurrent); Py_XDECREF(blamed);
    return NULL;
}

static PyMethodDef Search_methods[] = {
    {"run", (PyCFunction)Search_run, METH_O,
     "run(budget) -> None while undecided, else (valid, linearized call positions)"},
    {"failure", (PyCFunction)Search_failure, METH_O,
     "failure(limit) -> (prefix calls, states, call to blame or None, concurrent calls)"},
    {NULL}
};

static PyGetSetDef Search_getset[] = {
    {"held", (getter)Search_held, NULL, "bytes the search holds", NULL},
    {NULL}
};

static PyTypeObject SearchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "splitbrain._core.Search",
    .tp_basicsize = sizeof(Search),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Search(tables): the search of one key (search.py's loop, compiled)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Search_init,
    .tp_dealloc = (destructor)Search_dealloc,
    .tp_methods = Search_methods,
    .tp_getset = Search_getset,
};
/* ---- Pairer: decoded history.jsonl lines -> Calls ------------------------------------------ */

/* history/stream.py feeds it the lines msgspec decoded, chunk by chunk; it checks what
 * history/jsonl.py checks (index, time, process, f, nesting, the invoke/complete discipline)
 * and pairs as history/calls.py pairs. It reports only WHERE the first problem is: the
 * caller rereads the file with the Python reader, which says what it is. */

/* The invokes still open, by process: a table in C (a dict of tuples cost an allocation or
 * three per invoke). Processes compare as dict keys do: by hash, then identity or equality. */
typedef struct { PyObject *process, *line; Py_ssize_t pos; Py_hash_t hash; } OpenSlot;
typedef struct { OpenSlot *slots; i64 cap, count; } OpenTable;

/* the slot of `process` (its hash given), or of the empty place it would take; -2 on error */
static i64 open_find(OpenTable *t, PyObject *process, Py_hash_t hash) {
    i64 j = (i64)((u64)hash & (u64)(t->cap - 1));
    for (; t->slots[j].process != NULL; j = (j + 1) & (t->cap - 1)) {
        OpenSlot *e = &t->slots[j];
        if (e->process == process) return j;
        if (e->hash != hash) continue;
        int eq = PyObject_RichCompareBool(e->process, process, Py_EQ);
        if (eq < 0) return -2;
        if (eq) return j;
    }
    return j;
}

static int open_grow(OpenTable *t) {
    i64 cap = t->cap ? t->cap * 2 : 64;
    OpenSlot *slots = xcalloc(cap, sizeof(OpenSlot)), *old = t->slots;
    if (slots == NULL) return -1;
    i64 oldcap = t->cap;
    t->slots = slots;
    t->cap = cap;
    for (i64 i = 0; i < oldcap; i++) {
        if (old[i].process == NULL) continue;
        i64 j = (i64)((u64)old[i].hash & (u64)(cap - 1));
        while (slots[j].process != NULL) j = (j + 1) & (cap - 1);
        slots[j] = old[i];
    }
    PyMem_Free(old);
    return 0;
}

/* empty slot j, moving later entries of its run back (linear probing keeps no tombstones) */
static void open_remove(OpenTable *t, i64 j) {
    OpenSlot *s = t->slots;
    Py_DECREF(s[j].process);
    Py_DECREF(s[j].line);
    s[j].process = NULL;
    t->count--;
    for (i64 k = (j + 1) & (t->cap - 1); s[k].process != NULL; k = (k + 1) & (t->cap - 1)) {
        i64 home = (i64)((u64)s[k].hash & (u64)(t->cap - 1));
        /* move k into the hole at j if its home is not in (j, k] (cyclically) */
        if ((j < k) ? (home <= j || home > k) : (home <= j && home > k)) {
            s[j] = s[k];
            s[k].process = NULL;
            j = k;
        }
    }
}

static void open_clear(OpenTable *t) {
    for (i64 i = 0; i < t->cap; i++) {
        if (t->slots[i].process == NULL) continue;
        Py_DECREF(t->slots[i].process);
        Py_DECREF(t->slots[i].line);
        t->slots[i].process = NULL;
    }
    t->count = 0;
}

static const char *call_fields[CALL_FIELDS] = {
    "process", "f", "key", "value", "output", "type", "start", "end", "invoke_index",
    "complete_index", "node", "error", "request"};

typedef struct {
    PyObject_HEAD
    PyTypeObject *call_type;
    Py_ssize_t off[CALL_FIELDS];
    i64 expected, last_time;
    int max_depth;
    Fields lf;  /* the decoded line's fields */
    OpenTable open;  /* process -> its open invoke */
    PyObject *crashed, *calls, *nemesis, *strings;
    PyObject *recent[256];  /* strings of `strings` by a hash of their bytes (borrowed) */
    int plain;  /* the Call class holds its slots and nothing else (see make_call) */
} Pairer;

static int Pairer_init(Pairer *p, PyObject *args, PyObject *kw) {
    PyObject *type, *line_type;
    if (!PyArg_ParseTuple(args, "OOi", &type, &line_type, &p->max_depth)) return -1;
    PyObject *lnames[10] = {S_index, S_time, S_process, S_type, S_f, S_key, S_value, S_node, S_error, S_request};
    if (!PyType_Check(line_type) || fields_init(&p->lf, line_type, lnames, 10) < 0) return -1;
    Py_INCREF(line_type);
    if (!PyType_Check(type)) { PyErr_SetString(PyExc_TypeError, "expected the Call class"); return -1; }
    for (int i = 0; i < CALL_FIELDS; i++) {
        PyObject *d = PyDict_GetItemString(((PyTypeObject *)type)->tp_dict, call_fields[i]);
        if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)) {
            PyErr_Format(PyExc_TypeError, "Call.%s is not a slot", call_fields[i]);
            return -1;
        }
        p->off[i] = ((PyMemberDescrObject *)d)->d_member->offset;
    }
    Py_INCREF(type);
    p->call_type = (PyTypeObject *)type;
    PyTypeObject *ct = p->call_type;
    p->plain = ct->tp_basicsize == (Py_ssize_t)(sizeof(PyObject) + CALL_FIELDS * sizeof(PyObject *))
               && ct->tp_itemsize == 0 && ct->tp_dictoffset == 0 && ct->tp_weaklistoffset == 0
               && PyType_IS_GC(ct);
    if (open_grow(&p->open) < 0) return -1;
    p->crashed = PySet_New(NULL);
    p->calls = PyList_New(0);
    p->nemesis = PyList_New(0);
    p->strings = PyDict_New();
    return (p->crashed && p->calls && p->nemesis && p->strings) ? 0 : -1;
}

static void Pairer_dealloc(Pairer *p) {
    if (p->open.slots) open_clear(&p->open);
    PyMem_Free(p->open.slots);
    Py_XDECREF(p->call_type); Py_XDECREF(p->lf.type); Py_XDECREF(p->crashed);
    Py_XDECREF(p->calls); Py_XDECREF(p->nemesis); Py_XDECREF(p->strings);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

/* 1 if a JSON value is nested no deeper than `room` containers. On the way it stops the
 * cycle collector tracking containers that hold no tracked object (as CPython does for such
 * tuples and dicts): values read from a history are never mutated, so they cannot form a
 * cycle, and a million of them tracked made every collection after reading walk them all. */
static int shallow(PyObject *v, int room) {
    if (PyList_CheckExact(v)) {
        if (room == 0) return 0;
        int settled = 1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
            PyObject *item = PyList_GET_ITEM(v, i);
            if (!shallow(item, room - 1)) return 0;
            settled &= !PyObject_GC_IsTracked(item);
        }
        if (settled && PyObject_GC_IsTracked(v)) PyObject_GC_UnTrack(v);
    } else if (PyDict_CheckExact(v)) {
        if (room == 0) return 0;
        PyObject *k, *item;
        Py_ssize_t pos = 0;
        int settled = 1;
        while (PyDict_Next(v, &pos, &k, &item)) {
            if (!shallow(item, room - 1)) return 0;
            settled &= !PyObject_GC_IsTracked(item);
        }
        if (settled && PyObject_GC_IsTracked(v)) PyObject_GC_UnTrack(v);
    }
    return 1;
}

/* One shared object per distinct string (keys and functions repeat on every line; each line
 * decodes its own copy). Most are found among the recent ones by their bytes, without the
 * dict's hashing of a new string. Returns a borrowed reference, NULL on error. */
static PyObject *shared(Pairer *p, PyObject *text) {
    if (text == Py_None) return text;
    PyObject **slot = NULL;
    if (PyUnicode_CheckExact(text) && PyUnicode_IS_COMPACT_ASCII(text)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(text);
        const char *d = (const char *)PyUnicode_DATA(text);
        slot = &p->recent[hash_bytes(d, n) & 255];
        PyObject *c = *slot;
        if (c != NULL && PyUnicode_GET_LENGTH(c) == n && memcmp(PyUnicode_DATA(c), d, (size_t)n) == 0)
            return c;
    }
    PyObject *one = PyDict_SetDefault(p->strings, text, text);
    if (one != NULL && slot != NULL && PyUnicode_IS_COMPACT_ASCII(one)) *slot = one;
    return one;
}

static PyObject *request_of(PyObject *rid) {
    if (rid == Py_None || PyUnicode_CheckExact(rid)) { Py_INCREF(rid); return rid; }
    return PyObject_Str(rid);
}

/* a Call from its fields (new references are stolen). It is not tracked by the cycle
 * collector: a frozen record of settled values cannot be part of a cycle (see shallow). */
static PyObject *make_call(Pairer *p, PyObject **fields) {
    int missing = 0;
    for (int i = 0; i < CALL_FIELDS; i++) missing |= fields[i] == NULL;  /* request_of failed */
    PyObject *call = NULL;
    if (!missing && p->plain)  /* every slot is set below: no zeroing, never tracked */
        call = (PyObject *)PyObject_GC_New(PyObject, p->call_type);
    else if (!missing)
        call = p->call_type->tp_alloc(p->call_type, 0);
    if (call == NULL) {
        for (int i = 0; i < CALL_FIELDS; i++) Py_XDECREF(fields[i]);
        return NULL;
    }
    for (int i = 0; i < CALL_FIELDS; i++) *(PyObject **)((char *)call + p->off[i]) = fields[i];
    if (PyObject_GC_IsTracked(call)) PyObject_GC_UnTrack(call);
    return call;
}

#define NEWREF(o) (Py_INCREF(o), (o))

/* two strings (or None) equal */
static inline int same_text(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    if (a == Py_None || b == Py_None) return 0;
    if (PyUnicode_IS_COMPACT_ASCII(a) && PyUnicode_IS_COMPACT_ASCII(b))
        return PyUnicode_GET_LENGTH(a) == PyUnicode_GET_LENGTH(b)
               && memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)PyUnicode_GET_LENGTH(a)) == 0;
    return PyUnicode_Compare(a, b) == 0;
}

/* 1 if a JSON value is nested no deeper than `room` containers (scalars at once) */
static inline int shallow_enough(PyObject *v, int room) {
    return !(PyList_CheckExact(v) || PyDict_CheckExact(v)) || shallow(v, room);
}

#define LINE(obj, i) (*(PyObject **)((char *)(obj) + p->lf.off[i]))  /* borrowed */
enum { L_INDEX, L_TIME, L_PROCESS, L_TYPE, L_F, L_KEY, L_VALUE, L_NODE, L_ERROR, L_REQUEST };

/* feed(lines) -> None, or the position in `lines` of the first line with a problem. The lines
 * are the stream's decoded records (every field set), read borrowed. */
static PyObject *Pairer_feed(Pairer *p, PyObject *lines) {
    if (!PyList_CheckExact(lines)) { PyErr_SetString(PyExc_TypeError, "feed() takes a list"); return NULL; }
    Py_ssize_t n = PyList_GET_SIZE(lines);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (Py_TYPE(line) != p->lf.type) { PyErr_SetString(PyExc_TypeError, "not a decoded line"); return NULL; }
        PyObject *index = LINE(line, L_INDEX), *time = LINE(line, L_TIME), *process = LINE(line, L_PROCESS);
        PyObject *type = LINE(line, L_TYPE), *f = LINE(line, L_F), *key = LINE(line, L_KEY);
        PyObject *value = LINE(line, L_VALUE), *node = LINE(line, L_NODE), *error = LINE(line, L_ERROR);
        PyObject *request = LINE(line, L_REQUEST);
        i64 idx = PyLong_AsLongLong(index), t = PyLong_AsLongLong(time);
        if (PyErr_Occurred()) { PyErr_Clear(); return PyLong_FromSsize_t(i); }
        int nemesis = PyUnicode_Check(process);
        if (idx != p->expected || t < 0 || t < p->last_time || PyUnicode_GET_LENGTH(f) == 0
            || (nemesis && PyUnicode_Compare(process, S_nemesis) != 0)
            || !shallow_enough(value, p->max_depth) || !shallow_enough(error, p->max_depth)
            || !shallow_enough(request, p->max_depth)) {
            if (PyErr_Occurred()) return NULL;
            return PyLong_FromSsize_t(i);
        }
        p->expected++;
        p->last_time = t;
        if (nemesis) {
            if (PyList_Append(p->nemesis, line) < 0) return NULL;
            continue;
        }
        Py_hash_t hash = PyObject_Hash(process);
        if (hash == -1) return NULL;
        i64 slot = open_find(&p->open, process, hash);
        if (slot == -2) return NULL;
        if (type == S_invoke || PyUnicode_Compare(type, S_invoke) == 0) {
            int crashed = PySet_Contains(p->crashed, process);
            if (crashed < 0) return NULL;
            if (p->open.slots[slot].process != NULL || crashed) return PyLong_FromSsize_t(i);
            if (PyList_Append(p->calls, Py_None) < 0) return NULL;
            OpenSlot *e = &p->open.slots[slot];
            Py_INCREF(process);
            Py_INCREF(line);
            e->process = process;
            e->line = line;
            e->hash = hash;
            e->pos = PyList_GET_SIZE(p->calls) - 1;
            if (++p->open.count * 2 > p->open.cap && open_grow(&p->open) < 0) return NULL;
            continue;
        }
        OpenSlot *e = &p->open.slots[slot];
        if (e->process == NULL) return PyLong_FromSsize_t(i);
        PyObject *inv = e->line;
        if (!same_text(LINE(inv, L_F), f) || !same_text(LINE(inv, L_KEY), key))
            return PyLong_FromSsize_t(i);
        PyObject *f_ = shared(p, LINE(inv, L_F)), *key_ = shared(p, LINE(inv, L_KEY));
        /* the completion types are the decoder's literals, the same objects as ours */
        PyObject *type_ = type == S_ok || type == S_fail || type == S_info ? type : shared(p, type);
        if (!f_ || !key_ || !type_) return NULL;
        Py_ssize_t pos = e->pos;
        int info = type == S_info || PyUnicode_Compare(type, S_info) == 0;
        if (info && PySet_Add(p->crashed, process) < 0) return NULL;
        int is_ok = type == S_ok || PyUnicode_Compare(type, S_ok) == 0;
        PyObject *inode = LINE(inv, L_NODE);
        PyObject *used_node = shared(p, (node == Py_None || PyUnicode_GET_LENGTH(node) == 0) ? inode : node);
        if (!used_node) return NULL;
        PyObject *rid = request != Py_None ? request : LINE(inv, L_REQUEST);
        PyObject *error_ = PyUnicode_CheckExact(error) ? shared(p, error) : error;
        if (!error_) return NULL;
        PyObject *fields[CALL_FIELDS] = {
            NEWREF(process), NEWREF(f_), NEWREF(key_), NEWREF(LINE(inv, L_VALUE)),
            NEWREF(is_ok ? value : Py_None), NEWREF(type_), NEWREF(LINE(inv, L_TIME)),
            NEWREF(time), NEWREF(LINE(inv, L_INDEX)), NEWREF(index), NEWREF(used_node),
            NEWREF(error_), request_of(rid)};
        PyObject *call = make_call(p, fields);
        if (call == NULL) return NULL;
        PyList_SET_ITEM(p->calls, pos, call);  /* replaces None: no reference to drop */
        Py_DECREF(Py_None);
        open_remove(&p->open, slot);  /* drops the invoke's line: after its fields are taken */
    }
    Py_RETURN_NONE;
}

/* finish() -> (calls in invoke order, nemesis lines): an invoke still open is an info call */
static PyObject *Pairer_finish(Pairer *p, PyObject *unused) {
    for (i64 i = 0; i < p->open.cap; i++) {
        OpenSlot *e = &p->open.slots[i];
        if (e->process == NULL) continue;
        static const int names[7] = {L_F, L_KEY, L_VALUE, L_TIME, L_INDEX, L_NODE, L_REQUEST};
        PyObject *v[7];
        int ok = 1;
        for (int j = 0; j < 7; j++) { v[j] = fget(&p->lf, e->line, names[j]); ok &= v[j] != NULL; }
        PyObject *f_ = ok ? shared(p, v[0]) : NULL, *key_ = f_ ? shared(p, v[1]) : NULL;
        ok = key_ != NULL;
        if (ok) {
            PyObject *fields[CALL_FIELDS] = {
                NEWREF(e->process), NEWREF(f_), NEWREF(key_), NEWREF(v[2]),
                NEWREF(Py_None), NEWREF(S_info), NEWREF(v[3]), NEWREF(Py_None), NEWREF(v[4]),
                NEWREF(Py_None), NEWREF(v[5]), NEWREF(S_no_completion), request_of(v[6])};
            PyObject *call = make_call(p, fields);
            if (call == NULL || PyList_SetItem(p->calls, e->pos, call) < 0) ok = 0;
        }
        for (int j = 0; j < 7; j++) Py_XDECREF(v[j]);
        if (!ok) return NULL;
    }
    open_clear(&p->open);
    return PyTuple_Pack(2, p->calls, p->nemesis);
}

static PyMethodDef Pairer_methods[] = {
    {"feed", (PyCFunction)Pairer_feed, METH_O,
     "feed(lines) -> None, or the position of the first line with a problem"},
    {"finish", (PyCFunction)Pairer_finish, METH_NOARGS,
     "finish() -> (calls in invoke order, nemesis lines)"},
    {NULL}
};

static PyTypeObject PairerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "splitbrain._core.Pairer",
    .tp_basicsize = sizeof(Pairer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Pairer(Call, Line, max_depth): history.jsonl lines to calls, checked on the way",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Pairer_init,
    .tp_dealloc = (destructor)Pairer_dealloc,
    .tp_methods = Pairer_methods,
};

/* ---- call_json: Call.to_json ---------------------------------------------------------- */

static PyObject *S_names[CALL_FIELDS];  /* Call's fields in to_json's order */

/* call_json(call) -> Call.to_json(call): "request" only when set */
static PyObject *call_json(PyObject *self, PyObject *call) {
    if (call_fields_.type == NULL) { PyErr_SetString(PyExc_RuntimeError, "use_call(Call) first"); return NULL; }
    PyObject *d = _PyDict_NewPresized(CALL_FIELDS);
    if (d == NULL) return NULL;
    for (int i = 0; i < CALL_FIELDS; i++) {
        PyObject *v = fget(&call_fields_, call, i);
        if (v == NULL) { Py_DECREF(d); return NULL; }
        int bad = (i != C_REQUEST || v != Py_None) && PyDict_SetItem(d, S_names[i], v) < 0;
        Py_DECREF(v);
        if (bad) { Py_DECREF(d); return NULL; }
    }
    return d;
}

/* use_call(Call): the class whose slots the functions here read directly */
static PyObject *use_call(PyObject *self, PyObject *type) {
    if (!PyType_Check(type) || fields_init(&call_fields_, type, S_names, CALL_FIELDS) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef core_functions[] = {
    {"use_call", use_call, METH_O, "use_call(Call): read its slots directly"},
    {"encode", encode, METH_O, "encode(calls) -> History: the calls encoded per key"},
    {"call_json", call_json, METH_O, "call_json(call) -> Call.to_json(call)"},
    {NULL}
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "_core", "The compiled core of the linearizability checker.", -1, core_functions,
};

PyMODINIT_FUNC PyInit__core(void) {
    if (PyType_Ready(&SearchType) < 0 || PyType_Ready(&HistoryType) < 0
        || PyType_Ready(&PairerType) < 0) return NULL;
    PyObject **names[] = {&S_type, &S_f, &S_value, &S_output, &S_error, &S_invoke_index,
                          &S_complete_index, &S_ok, &S_fail, &S_read, &S_write, &S_cas, &S_get,
                          &S_put, &S_append, &S_cas_mismatch, &S_index, &S_time, &S_process,
                          &S_key, &S_node, &S_request, &S_invoke, &S_info, &S_nemesis,
                          &S_no_completion, &S_start, &S_end, &S_empty};
    const char *texts[] = {"type", "f", "value", "output", "error", "invoke_index",
                           "complete_index", "ok", "fail", "read", "write", "cas", "get", "put",
                           "append", "cas-mismatch", "index", "time", "process", "key", "node",
                           "request", "invoke", "info", "nemesis", "no completion", "start",
                           "end", ""};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        *names[i] = PyUnicode_InternFromString(texts[i]);
        if (*names[i] == NULL) return NULL;
    }
    for (int i = 0; i < CALL_FIELDS; i++) {
        S_names[i] = PyUnicode_InternFromString(call_fields[i]);
        if (S_names[i] == NULL) return NULL;
    }
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL) return NULL;
    PyTypeObject *types[] = {&SearchType, &HistoryType, &PairerType};
    const char *tnames[] = {"Search", "History", "Pairer"};
    for (int i = 0; i < 3; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(m, tnames[i], (PyObject *)types[i]) < 0) { Py_DECREF(m); return NULL; }
    }
    return m;
}
