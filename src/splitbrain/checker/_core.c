/* The compiled core of the linearizability checker (optional: the pure-Python path is the
 * reference and the fallback).
 *
 * Search: the loop of search.py's search(), step for step: the same candidates in the same
 * order, the same nodes remembered, the same budget accounting, so both engines give the same
 * outcome after the same budgets (tests/checker/test_core.py runs both against brute force).
 * It reads a search.Tables object; transitions come from its Python callable (any model,
 * memoised here) or, for the register models, from a native table made by compile_register.
 *
 * compile_register: search.compile_problem + search.tables for the built-in register models,
 * from a key's Calls, without a Python object per call. It returns None for anything unusual
 * (a cas that is not a pair, a dict value, a function the model does not know); the caller
 * then takes the Python path, which reports the problem.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef int32_t i32;
typedef int64_t i64;
typedef uint64_t u64;

#define FAR ((i64)1 << 62)
#define END_EV INT32_MIN
#define UNKNOWN_T (-2)
#define T_ERROR INT32_MIN

/* native register transitions, per input class */
enum { K_READ_OK, K_SAME, K_WRITE, K_CAS_OK, K_CAS_FAIL, K_CAS_INFO };

typedef struct {
    i32 entry, state, coff, clen, ci;
    i64 frontier, low;
    uint8_t after, forced;
} Frame;

typedef struct {
    PyObject_HEAD
    i32 n, m, end, nodes;
    i32 *ev, *nxt, *prv, *ret_node, *inv_node;
    i64 *due, *invoke_at, *return_at;
    i32 *tclass, nclasses;
    i32 *required;
    uint8_t *optional, *blind, *stutter, *placed;
    i32 *number;
    /* info classes */
    i32 *iclass, nicl, *mstart, *members, *cursor, *heads, *hpos;
    /* ok-classes */
    i32 *group, ngroups, *gstart, *gmem, *gpos, *gfirst;
    int skip_no_ops, greedy;
    /* transitions */
    PyObject *transition; /* callable, or NULL when native */
    i32 **memo, *memo_cap;
    i32 *nkind, *na, *nb;
    /* search state */
    i32 state, remaining, completed, ninfo;
    i64 low, frontier;
    u64 *bits, *xbits;
    i32 bwords, xwords, xhi;
    int after, fresh, pending, done;
    i32 entry, ci, coff, clen;
    i32 *cands; i64 ccap;
    Frame *frames; i64 depth, fcap;
    i32 *best; i64 bcap, best_len, bcommon; i32 best_remaining;
    /* seen: open addressing over keys stored in an arena */
    u64 *hkeys; i64 *hoff; i64 hcap, hcount;
    u64 *arena; i64 asize, acap;
    u64 *keybuf; i64 kcap;
} Search;

static void *xcalloc(i64 n, size_t size) {
    void *p = PyMem_Calloc((size_t)(n > 0 ? n : 1), size);
    if (p == NULL) PyErr_NoMemory();
    return p;
}

static int grow(void **p, i64 *cap, i64 need, size_t size) {
    if (need <= *cap) return 0;
    i64 c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = PyMem_Realloc(*p, (size_t)c * size);
    if (q == NULL) { PyErr_NoMemory(); return -1; }
    *p = q;
    *cap = c;
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

static int fetch_u8(PyObject *obj, const char *name, i64 n, uint8_t **out) {
    i64 *wide;
    if (fetch_i64(obj, name, n, &wide) < 0) return -1;
    uint8_t *a = xcalloc(n, 1);
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

/* ---- transitions ------------------------------------------------------------------------ */

static i32 transition(Search *s, i32 c, i32 st) {
    if (s->transition == NULL) {
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
    if (st < s->memo_cap[c] && s->memo[c][st] != UNKNOWN_T) return s->memo[c][st];
    PyObject *r = PyObject_CallFunction(s->transition, "ii", (int)c, (int)st);
    if (r == NULL) return T_ERROR;
    long v = PyLong_AsLong(r);
    Py_DECREF(r);
    if (v == -1 && PyErr_Occurred()) return T_ERROR;
    if (st >= s->memo_cap[c]) {
        i64 cap = s->memo_cap[c], need = (i64)st + 1;
        i64 newcap = cap ? cap : 8;
        while (newcap < need) newcap *= 2;
        i32 *q = PyMem_Realloc(s->memo[c], (size_t)newcap * sizeof(i32));
        if (q == NULL) { PyErr_NoMemory(); return T_ERROR; }
        for (i64 i = cap; i < newcap; i++) q[i] = UNKNOWN_T;
        s->memo[c] = q;
        s->memo_cap[c] = (i32)newcap;
    }
    s->memo[c][st] = (i32)v;
    return (i32)v;
}

/* ---- the seen set --------------------------------------------------------------------- */

static u64 hash_words(const u64 *w, i64 len) {
    u64 h = 0x9E3779B97F4A7C15ULL ^ (u64)len;
    for (i64 i = 0; i < len; i++) {
        h ^= w[i];
        h *= 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
    }
    return h | 1;  /* 0 marks an empty slot */
}

static int seen_grow(Search *s) {
    i64 cap = s->hcap ? s->hcap * 2 : 1024;
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

/* 1 if the key was new (and is now remembered), 0 if seen before, -1 on error */
static int seen_add(Search *s, i64 len) {
    if ((s->hcount + 1) * 2 > s->hcap && seen_grow(s) < 0) return -1;
    const u64 *w = s->keybuf;
    u64 h = hash_words(w, len);
    i64 j = (i64)(h & (u64)(s->hcap - 1));
    while (s->hkeys[j]) {
        if (s->hkeys[j] == h) {
            const u64 *e = s->arena + s->hoff[j];
            if ((i64)e[0] == len && memcmp(e + 1, w, (size_t)len * sizeof(u64)) == 0) return 0;
        }
        j = (j + 1) & (s->hcap - 1);
    }
    if (grow((void **)&s->arena, &s->acap, s->asize + len + 1, sizeof(u64)) < 0) return -1;
    s->arena[s->asize] = (u64)len;
    memcpy(s->arena + s->asize + 1, w, (size_t)len * sizeof(u64));
    s->hkeys[j] = h;
    s->hoff[j] = s->asize;
    s->asize += len + 1;
    s->hcount++;
    return 1;
}

/* The node (low, mask, state, extra, after) as words in keybuf: mask is the completed set
 * above `low`, extra the info set, both without trailing zero words. Returns its length. */
static i64 build_key(Search *s, i64 low, i32 state, int after) {
    i64 wl = low >> 6, sh = low & 63;
    i64 top = s->bwords - 1;
    while (top >= wl && s->bits[top] == 0) top--;
    i64 nm = top >= wl ? top - wl + 1 : 0;
    while (s->xhi >= 0 && s->xbits[s->xhi] == 0) s->xhi--;
    i64 nx = s->xhi + 1;
    i64 len = 2 + nm + nx;
    if (len > s->kcap) {
        u64 *q = PyMem_Realloc(s->keybuf, (size_t)len * 2 * sizeof(u64));
        if (q == NULL) { PyErr_NoMemory(); return -1; }
        s->keybuf = q;
        s->kcap = len * 2;
    }
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

#define BIT(a, i) (((a)[(i) >> 6] >> ((i) & 63)) & 1)
#define SET(a, i) ((a)[(i) >> 6] |= (u64)1 << ((i) & 63))
#define CLR(a, i) ((a)[(i) >> 6] &= ~((u64)1 << ((i) & 63)))

/* ---- construction ----------------------------------------------------------------------- */

static void Search_dealloc(Search *s) {
    void *arrays[] = {s->ev, s->nxt, s->prv, s->ret_node, s->inv_node, s->due, s->invoke_at,
                      s->return_at, s->tclass, s->required, s->optional, s->blind, s->stutter,
                      s->placed, s->number, s->iclass, s->mstart, s->members, s->cursor,
                      s->heads, s->hpos, s->group, s->gstart, s->gmem, s->gpos, s->gfirst,
                      s->memo_cap, s->nkind, s->na, s->nb, s->bits, s->xbits, s->cands,
                      s->frames, s->best, s->hkeys, s->hoff, s->arena, s->keybuf};
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) PyMem_Free(arrays[i]);
    if (s->memo) {
        for (i32 c = 0; c < s->nclasses; c++) PyMem_Free(s->memo[c]);
        PyMem_Free(s->memo);
    }
    Py_XDECREF(s->transition);
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

static i64 *sort_keys;  /* for the comparators below; the GIL serialises construction */
static int by_key(const void *a, const void *b) {
    i64 x = sort_keys[*(const i32 *)a], y = sort_keys[*(const i32 *)b];
    if (x != y) return x < y ? -1 : 1;
    return *(const i32 *)a - *(const i32 *)b;
}

static int Search_init(Search *s, PyObject *args, PyObject *kw) {
    PyObject *t, *native = NULL;
    static char *names[] = {"tables", "native", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", names, &t, &native)) return -1;
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
    s->nclasses = 0;
    for (i64 i = 0; i < n; i++) if (s->tclass[i] + 1 > s->nclasses) s->nclasses = s->tclass[i] + 1;
    if (native != NULL && native != Py_None) {
        /* (kinds, a, b): one entry per input class */
        PyObject *seqs[3];
        for (int j = 0; j < 3; j++) {
            seqs[j] = PySequence_GetItem(native, j);
            if (seqs[j] == NULL) return -1;
        }
        i32 **outs[3] = {&s->nkind, &s->na, &s->nb};
        for (int j = 0; j < 3; j++) {
            i64 len = PyObject_Length(seqs[j]);
            *outs[j] = xcalloc(len, sizeof(i32));
            if (*outs[j] == NULL) return -1;
            for (i64 i = 0; i < len; i++) {
                PyObject *item = PySequence_GetItem(seqs[j], i);
                (*outs[j])[i] = (i32)PyLong_AsLong(item);
                Py_XDECREF(item);
            }
            Py_DECREF(seqs[j]);
            if (PyErr_Occurred()) return -1;
        }
        s->transition = NULL;
    } else {
        s->transition = PyObject_GetAttrString(t, "transition");
        if (s->transition == NULL) return -1;
        s->memo = xcalloc(s->nclasses, sizeof(i32 *));
        s->memo_cap = xcalloc(s->nclasses, sizeof(i32));
        if (s->memo == NULL || s->memo_cap == NULL) return -1;
    }
    /* numbering */
    s->number = xcalloc(n, sizeof(i32));
    s->placed = xcalloc(n, 1);
    if (s->number == NULL || s->placed == NULL) return -1;
    for (i64 i = 0; i < n; i++) s->number[i] = s->optional[i] ? s->ninfo++ : s->completed++;
    /* the event list of completed calls, in history order */
    i64 m = 2 * (i64)s->completed;
    s->m = (i32)m;
    s->end = (i32)m + 1;
    s->nodes = (i32)(m + 2 + s->ninfo);
    i64 *hidx = xcalloc(m, sizeof(i64));
    i32 *order = xcalloc(m, sizeof(i32)), *evs = xcalloc(m, sizeof(i32));
    if (hidx == NULL || order == NULL || evs == NULL) return -1;
    i64 k = 0;
    for (i64 i = 0; i < n; i++) {
        if (s->optional[i]) continue;
        hidx[k] = s->invoke_at[i]; evs[k] = (i32)i; k++;
        hidx[k] = s->return_at[i]; evs[k] = ~(i32)i; k++;
    }
    for (i64 i = 0; i < m; i++) order[i] = (i32)i;
    sort_keys = hidx;
    qsort(order, (size_t)m, sizeof(i32), by_key);
    s->ev = xcalloc(s->nodes, sizeof(i32));
    s->nxt = xcalloc(s->nodes, sizeof(i32));
    s->prv = xcalloc(s->nodes, sizeof(i32));
    s->due = xcalloc(s->nodes, sizeof(i64));
    s->ret_node = xcalloc(n, sizeof(i32));
    s->inv_node = xcalloc(n, sizeof(i32));
    if (!s->ev || !s->nxt || !s->prv || !s->due || !s->ret_node || !s->inv_node) return -1;
    for (i64 i = 0; i < m; i++) s->ev[i + 1] = evs[order[i]];
    PyMem_Free(hidx); PyMem_Free(order); PyMem_Free(evs);
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
    i64 *hkey = xcalloc(s->nicl, sizeof(i64));
    if (hkey == NULL) return -1;
    for (i32 c = 0; c < s->nicl; c++) { s->heads[c] = c; hkey[c] = head_at(s, c); }
    sort_keys = hkey;
    qsort(s->heads, (size_t)s->nicl, sizeof(i32), by_key);
    PyMem_Free(hkey);
    for (i32 p = 0; p < s->nicl; p++) s->hpos[s->heads[p]] = p;
    /* ok-classes: members by return */
    s->ngroups = 0;
    for (i64 i = 0; i < n; i++) if (s->group[i] + 1 > s->ngroups) s->ngroups = s->group[i] + 1;
    s->gstart = xcalloc(s->ngroups + 1, sizeof(i32));
    s->gmem = xcalloc(n, sizeof(i32));
    s->gpos = xcalloc(n, sizeof(i32));
    s->gfirst = xcalloc(s->ngroups, sizeof(i32));
    count = xcalloc(s->ngroups + 1, sizeof(i32));
    if (!s->gstart || !s->gmem || !s->gpos || !s->gfirst || !count) return -1;
    for (i64 i = 0; i < n; i++) if (s->group[i] >= 0) count[s->group[i]]++;
    for (i32 g = 0; g < s->ngroups; g++) s->gstart[g + 1] = s->gstart[g] + count[g];
    for (i32 g = 0; g < s->ngroups; g++) count[g] = 0;
    for (i64 i = 0; i < n; i++) {
        i32 g = s->group[i];
        if (g >= 0) s->gmem[s->gstart[g] + count[g]++] = (i32)i;
    }
    PyMem_Free(count);
    sort_keys = s->return_at;
    for (i32 g = 0; g < s->ngroups; g++) {
        i32 *ms = s->gmem + s->gstart[g];
        i32 len = s->gstart[g + 1] - s->gstart[g];
        qsort(ms, (size_t)len, sizeof(i32), by_key);
        for (i32 j = 0; j < len; j++) s->gpos[ms[j]] = j;
        s->gfirst[g] = s->gstart[g];  /* gfirst holds absolute positions in gmem */
    }
    /* bitsets and the rest of the state */
    s->bwords = (s->completed >> 6) + 2;
    s->xwords = (s->ninfo >> 6) + 1;
    s->bits = xcalloc(s->bwords, sizeof(u64));
    s->xbits = xcalloc(s->xwords, sizeof(u64));
    if (!s->bits || !s->xbits) return -1;
    s->xhi = -1;
    s->remaining = s->completed;
    s->best_remaining = s->remaining + 1;
    s->fresh = 1;
    s->frontier = FAR;
    return 0;
}

/* ---- the search ------------------------------------------------------------------------- */

static PyObject *ops_list(Search *s, i32 *ops, i64 len) {
    PyObject *out = PyList_New(len);
    if (out == NULL) return NULL;
    for (i64 i = 0; i < len; i++) PyList_SET_ITEM(out, i, PyLong_FromLong(ops[i]));
    return out;
}

static PyObject *finish(Search *s, int valid) {
    s->done = 1;
    PyObject *ops;
    if (valid) {
        i32 *tmp = xcalloc(s->depth, sizeof(i32));
        if (tmp == NULL) return NULL;
        for (i64 i = 0; i < s->depth; i++) tmp[i] = s->ev[s->frames[i].entry];
        ops = ops_list(s, tmp, s->depth);
        PyMem_Free(tmp);
    } else {
        ops = ops_list(s, s->best, s->best_len);
    }
    if (ops == NULL) return NULL;
    return Py_BuildValue("(NN)", PyBool_FromLong(valid), ops);
}

/* link helpers */
#define UNLINK(node) do { i32 a_ = s->prv[node], b_ = s->nxt[node]; s->nxt[a_] = b_; s->prv[b_] = a_; } while (0)
#define RELINK(node) do { s->nxt[s->prv[node]] = (node); s->prv[s->nxt[node]] = (node); } while (0)

static PyObject *Search_run(Search *s, PyObject *arg) {
    i64 budget = PyLong_AsLongLong(arg);
    if (budget == -1 && PyErr_Occurred()) return NULL;
    if (s->done) { PyErr_SetString(PyExc_RuntimeError, "search already finished"); return NULL; }
    i32 *ev = s->ev, *nxt = s->nxt;
    int forced, place, r;
    i32 op, c, node_, new_state = 0;
    i64 low2 = 0, len;
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
            low2 = s->low;
            if (k == low2) while (low2 < s->completed && BIT(s->bits, low2)) low2++;
            new_state = s->state;
            len = build_key(s, low2, new_state, 0);
            if (len < 0) return NULL;
            place = seen_add(s, len);
            if (place < 0) return NULL;
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
                        if (k == low2) while (low2 < s->completed && BIT(s->bits, low2)) low2++;
                    } else {
                        SET(s->xbits, k);
                        if ((k >> 6) > s->xhi) s->xhi = k >> 6;
                    }
                    new_state = nw;
                    len = build_key(s, low2, nw, c >= 0);
                    if (len < 0) return NULL;
                    place = seen_add(s, len);
                    if (place < 0) return NULL;
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
            f->after = (uint8_t)s->after; f->forced = (uint8_t)forced;
            s->placed[op] = 1;
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
        /* this node fails: back up; a forced frame fails as a whole, so keep backing up */
        for (;;) {
            if (s->depth == 0) return finish(s, 0);
            Frame *f = &s->frames[--s->depth];
            if (s->bcommon > s->depth) s->bcommon = s->depth;
            s->entry = f->entry; s->state = f->state; s->coff = f->coff; s->clen = f->clen;
            s->ci = f->ci; s->frontier = f->frontier; s->after = f->after;
            op = ev[s->entry];
            s->placed[op] = 0;
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

static PyObject *Search_held(Search *s, void *closure) {
    i64 bytes = s->acap * 8 + s->hcap * 16 + s->fcap * (i64)sizeof(Frame) + s->ccap * 4;
    return PyLong_FromLongLong(bytes);
}

static PyMethodDef Search_methods[] = {
    {"run", (PyCFunction)Search_run, METH_O,
     "run(budget) -> None while undecided, else (valid, linearized call positions)"},
    {NULL}
};

static PyGetSetDef Search_getset[] = {
    {"held", (getter)Search_held, NULL, "bytes the search holds", NULL},
    {NULL}
};

static PyTypeObject SearchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "splitbrain.checker._core.Search",
    .tp_basicsize = sizeof(Search),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Search(tables, native=None): the search of one key (search.py's loop, compiled)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Search_init,
    .tp_dealloc = (destructor)Search_dealloc,
    .tp_methods = Search_methods,
    .tp_getset = Search_getset,
};

/* ---- compile_register ------------------------------------------------------------------ */

static PyObject *S_type, *S_f, *S_value, *S_output, *S_error, *S_invoke_index, *S_complete_index;
static PyObject *S_ok, *S_fail, *S_read, *S_write, *S_cas, *S_cas_mismatch;

/* reduction flags, as search.REDUCTIONS names them */
enum { R_INFO_READS = 1, R_INFO_NO_OPS = 2, R_INFO_BLIND = 4, R_INFO_CLASSES = 8, R_MODEL = 16,
       R_GREEDY = 32, R_OK_CLASSES = 64 };

static int is_scalar(PyObject *v) {
    return v == Py_None || PyBool_Check(v) || PyLong_CheckExact(v) || PyFloat_CheckExact(v)
           || PyUnicode_CheckExact(v);
}

/* the id of a (frozen, scalar) value; -1 on error */
static i64 value_id(PyObject *ids, PyObject *v) {
    PyObject *found = PyDict_GetItemWithError(ids, v);
    if (found != NULL) return PyLong_AsLongLong(found);
    if (PyErr_Occurred()) return -1;
    i64 id = PyDict_GET_SIZE(ids);
    PyObject *num = PyLong_FromLongLong(id);
    if (num == NULL || PyDict_SetItem(ids, v, num) < 0) { Py_XDECREF(num); return -1; }
    Py_DECREF(num);
    return id;
}

/* models.freeze for the shapes registers use: a scalar, or a list of scalars as a tuple;
 * NULL (no exception) for anything else */
static PyObject *frozen_pair(PyObject *v) {
    if (is_scalar(v)) { Py_INCREF(v); return v; }
    if (!PyList_CheckExact(v) && !PyTuple_CheckExact(v)) return NULL;
    Py_ssize_t len = PySequence_Size(v);
    PyObject *t = PyTuple_New(len);
    if (t == NULL) return NULL;
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *item = PyList_CheckExact(v) ? PyList_GET_ITEM(v, i) : PyTuple_GET_ITEM(v, i);
        if (!is_scalar(item)) { Py_DECREF(t); return NULL; }
        Py_INCREF(item);
        PyTuple_SET_ITEM(t, i, item);
    }
    return t;
}

typedef struct { i64 invoke, ret; i32 cls; uint8_t optional, blind, stutter; } Kept;

/* compile_register(calls, initial, fail_means_no_effect, flags, fs) -> None, or a tuple
 * (invoke_at, return_at, optional, tclass, blind, stutter, iclass, group, start,
 *  (kinds, a, b)) for search.Tables and Search's native transitions */
static PyObject *compile_register(PyObject *self, PyObject *args) {
    PyObject *calls, *initial, *fs;
    int fmne, flags;
    if (!PyArg_ParseTuple(args, "OOpiO", &calls, &initial, &fmne, &flags, &fs)) return NULL;
    if (!is_scalar(initial)) Py_RETURN_NONE;
    PyObject *fast = PySequence_Fast(calls, "calls");
    if (fast == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject *result = NULL, *ids = PyDict_New(), *classes = PyDict_New(), *observed = PySet_New(NULL);
    PyObject *ckinds = PyList_New(0), *ca = PyList_New(0), *cb = PyList_New(0), *cread = PyList_New(0);
    Kept *kept = xcalloc(n, sizeof(Kept));
    i64 nk = 0;
    int unusual = 0;
    if (!ids || !classes || !observed || !ckinds || !ca || !cb || !cread || !kept) goto done;
    for (Py_ssize_t i = 0; i < n && !unusual; i++) {
        PyObject *call = PySequence_Fast_GET_ITEM(fast, i);
        PyObject *type = PyObject_GetAttr(call, S_type), *f = PyObject_GetAttr(call, S_f);
        PyObject *value = PyObject_GetAttr(call, S_value), *output = PyObject_GetAttr(call, S_output);
        PyObject *error = PyObject_GetAttr(call, S_error);
        PyObject *inv = PyObject_GetAttr(call, S_invoke_index), *ret = PyObject_GetAttr(call, S_complete_index);
        PyObject *key = NULL;
        int ok = type && f && value && output && error && inv && ret;
        if (!ok) goto fail_call;
        int contains = PySet_Contains(fs, f);
        if (contains < 0) goto fail_call;
        int is_read = PyUnicode_Compare(f, S_read) == 0, is_write = PyUnicode_Compare(f, S_write) == 0;
        int is_cas = PyUnicode_Compare(f, S_cas) == 0;
        if (!contains || !(is_read || is_write || is_cas)) { unusual = 1; goto next_call; }
        PyObject *exp = NULL, *neu = NULL;
        if (is_cas) {
            if (!(PyList_CheckExact(value) || PyTuple_CheckExact(value)) || PySequence_Size(value) != 2) { unusual = 1; goto next_call; }
            neu = PyList_CheckExact(value) ? PyList_GET_ITEM(value, 1) : PyTuple_GET_ITEM(value, 1);
            exp = PyList_CheckExact(value) ? PyList_GET_ITEM(value, 0) : PyTuple_GET_ITEM(value, 0);
            if (!is_scalar(exp) || !is_scalar(neu)) { unusual = 1; goto next_call; }
        } else if (is_write && !is_scalar(value)) { unusual = 1; goto next_call; }
        /* what the search sees of it: ok, an observing fail, info; or nothing */
        int outcome;  /* 0 ok, 1 fail, 2 info */
        if (PyUnicode_Compare(type, S_ok) == 0) outcome = 0;
        else if (PyUnicode_Compare(type, S_fail) == 0) {
            int observing = is_cas && (error == Py_None || (PyUnicode_Check(error) && PyUnicode_Compare(error, S_cas_mismatch) == 0));
            if (!observing || fmne) goto next_call;
            outcome = 1;
        } else outcome = 2;
        if (outcome == 2 && is_read && (flags & R_INFO_READS)) goto next_call;
        if (outcome == 0 && is_read && !is_scalar(output)) { unusual = 1; goto next_call; }
        PyObject *ofrozen = Py_None;
        if (outcome == 0) {
            ofrozen = frozen_pair(output);
            if (ofrozen == NULL) { if (PyErr_Occurred()) goto fail_call; unusual = 1; goto next_call; }
        } else Py_INCREF(ofrozen);
        PyObject *vfrozen = frozen_pair(value);  /* a read's invoke value counts too */
        if (vfrozen == NULL) { Py_DECREF(ofrozen); if (PyErr_Occurred()) goto fail_call; unusual = 1; goto next_call; }
        key = Py_BuildValue("(OOOi)", f, vfrozen, ofrozen, outcome);
        Py_DECREF(vfrozen);
        Py_DECREF(ofrozen);
        if (key == NULL) goto fail_call;
        PyObject *cls = PyDict_GetItemWithError(classes, key);
        i64 c;
        if (cls != NULL) c = PyLong_AsLongLong(cls);
        else {
            if (PyErr_Occurred()) goto fail_call;
            c = PyDict_GET_SIZE(classes);
            PyObject *num = PyLong_FromLongLong(c);
            if (num == NULL || PyDict_SetItem(classes, key, num) < 0) { Py_XDECREF(num); goto fail_call; }
            Py_DECREF(num);
            /* the class's native transition, values as ids (made canonical below) */
            i64 kind, a = -1, b = -1;
            if (is_read) {
                kind = outcome == 0 ? K_READ_OK : K_SAME;
                if (outcome == 0 && (a = value_id(ids, output)) < 0) goto fail_call;
            } else if (is_write) {
                kind = K_WRITE;
                if ((b = value_id(ids, value)) < 0) goto fail_call;
            } else {
                kind = outcome == 0 ? K_CAS_OK : outcome == 1 ? K_CAS_FAIL : K_CAS_INFO;
                if ((a = value_id(ids, exp)) < 0 || (b = value_id(ids, neu)) < 0) goto fail_call;
            }
            PyObject *k_ = PyLong_FromLongLong(kind), *a_ = PyLong_FromLongLong(a), *b_ = PyLong_FromLongLong(b);
            int bad = !k_ || !a_ || !b_ || PyList_Append(ckinds, k_) < 0 || PyList_Append(ca, a_) < 0 || PyList_Append(cb, b_) < 0;
            Py_XDECREF(k_); Py_XDECREF(a_); Py_XDECREF(b_);
            if (bad) goto fail_call;
        }
        /* observed values: what ok reads returned, what every kept cas compared against */
        if ((is_read && outcome == 0 && PySet_Add(observed, output) < 0) || (is_cas && PySet_Add(observed, exp) < 0))
            goto fail_call;
        Kept *k = &kept[nk++];
        k->invoke = PyLong_AsLongLong(inv);
        k->ret = ret == Py_None ? FAR : PyLong_AsLongLong(ret);
        k->cls = (i32)c;
        k->optional = outcome == 2;
        k->blind = is_write && (flags & R_INFO_BLIND);
        k->stutter = outcome != 2 && (is_read || outcome == 1);
        if (PyErr_Occurred()) goto fail_call;
    next_call:
        Py_XDECREF(key); Py_DECREF(type); Py_DECREF(f); Py_DECREF(value); Py_DECREF(output);
        Py_DECREF(error); Py_DECREF(inv); Py_DECREF(ret);
        continue;
    fail_call:
        Py_XDECREF(key); Py_XDECREF(type); Py_XDECREF(f); Py_XDECREF(value); Py_XDECREF(output);
        Py_XDECREF(error); Py_XDECREF(inv); Py_XDECREF(ret);
        goto done;
    }
    if (unusual) { result = Py_None; Py_INCREF(result); goto done; }
    {
        /* canonical value ids: unobserved values are one state (models._register_reduce) */
        i64 nv = PyDict_GET_SIZE(ids);
        i64 start = value_id(ids, initial);
        if (start < 0) goto done;
        if (start == nv) nv++;
        i64 unobserved = nv;
        i64 *canon = xcalloc(nv, sizeof(i64));
        if (canon == NULL) goto done;
        PyObject *v, *num;
        Py_ssize_t pos = 0;
        while (PyDict_Next(ids, &pos, &v, &num)) {
            i64 id = PyLong_AsLongLong(num);
            int seen_ = (flags & R_MODEL) ? PySet_Contains(observed, v) : 1;
            if (seen_ < 0) { PyMem_Free(canon); goto done; }
            canon[id] = seen_ ? id : unobserved;
        }
        i64 nc = PyList_GET_SIZE(ckinds);
        for (i64 c = 0; c < nc; c++) {
            i64 b = PyLong_AsLongLong(PyList_GET_ITEM(cb, c));
            if (b >= 0) {
                PyObject *nb = PyLong_FromLongLong(canon[b]);
                if (nb == NULL) { PyMem_Free(canon); goto done; }
                PyList_SetItem(cb, c, nb);
            }
        }
        i64 start_state = canon[start];
        PyMem_Free(canon);
        /* per kept call, as search.tables() makes them */
        PyObject *lists[8];
        for (int j = 0; j < 8; j++) lists[j] = PyList_New(nk);
        i32 *icl = xcalloc(nc, sizeof(i32));
        int bad = icl == NULL;
        for (int j = 0; j < 8; j++) bad |= lists[j] == NULL;
        i32 nicl = 0;
        for (i64 c = 0; c < nc && !bad; c++) icl[c] = -1;
        for (i64 i = 0; i < nk && !bad; i++) {
            Kept *k = &kept[i];
            i64 iclass = -1, group = -1;
            if (k->optional) {
                if (flags & R_INFO_CLASSES) {
                    if (icl[k->cls] < 0) icl[k->cls] = nicl++;
                    iclass = icl[k->cls];
                } else iclass = nicl++;
            } else if (flags & R_OK_CLASSES) group = k->cls;
            PyObject *items[8] = {PyLong_FromLongLong(k->invoke), PyLong_FromLongLong(k->ret),
                                  PyBool_FromLong(k->optional), PyLong_FromLong(k->cls),
                                  PyBool_FromLong(k->blind), PyBool_FromLong(k->stutter),
                                  PyLong_FromLongLong(iclass), PyLong_FromLongLong(group)};
            for (int j = 0; j < 8; j++) {
                if (items[j] == NULL) bad = 1;
                else PyList_SET_ITEM(lists[j], i, items[j]);
            }
        }
        PyMem_Free(icl);
        if (bad) { for (int j = 0; j < 8; j++) Py_XDECREF(lists[j]); goto done; }
        result = Py_BuildValue("(NNNNNNNNL(OOO))", lists[0], lists[1], lists[2], lists[3], lists[4],
                               lists[5], lists[6], lists[7], (long long)start_state, ckinds, ca, cb);
    }
done:
    PyMem_Free(kept);
    Py_XDECREF(ids); Py_XDECREF(classes); Py_XDECREF(observed);
    Py_XDECREF(ckinds); Py_XDECREF(ca); Py_XDECREF(cb); Py_XDECREF(cread);
    Py_DECREF(fast);
    return result;
}

/* register_fits(calls, fs) -> True if compile_register takes every one of these calls (so
 * none needs the Python path's checks), else False */
static PyObject *register_fits(PyObject *self, PyObject *args) {
    PyObject *calls, *fs;
    if (!PyArg_ParseTuple(args, "OO", &calls, &fs)) return NULL;
    PyObject *fast = PySequence_Fast(calls, "calls");
    if (fast == NULL) return NULL;
    int fits = 1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast) && fits == 1; i++) {
        PyObject *call = PySequence_Fast_GET_ITEM(fast, i);
        PyObject *f = PyObject_GetAttr(call, S_f), *value = PyObject_GetAttr(call, S_value);
        PyObject *output = PyObject_GetAttr(call, S_output), *type = PyObject_GetAttr(call, S_type);
        if (!f || !value || !output || !type) fits = -1;
        else {
            int in = PySet_Contains(fs, f);
            if (in < 0) fits = -1;
            else if (!in) fits = 0;
            else {
                PyObject *v = frozen_pair(value), *o = frozen_pair(output);
                int cas = PyUnicode_Compare(f, S_cas) == 0;
                if (!v || !o) fits = 0;
                else if (cas) fits = PyTuple_Check(v) && PyTuple_GET_SIZE(v) == 2;
                else if (PyUnicode_Compare(f, S_write) == 0) fits = is_scalar(value);
                else if (PyUnicode_Compare(f, S_read) == 0)
                    fits = PyUnicode_Compare(type, S_ok) != 0 || is_scalar(output);
                else fits = 0;
                Py_XDECREF(v);
                Py_XDECREF(o);
                if (PyErr_Occurred()) fits = -1;
            }
        }
        Py_XDECREF(f); Py_XDECREF(value); Py_XDECREF(output); Py_XDECREF(type);
    }
    Py_DECREF(fast);
    if (fits < 0) return NULL;
    return PyBool_FromLong(fits);
}

static PyMethodDef core_functions[] = {
    {"register_fits", register_fits, METH_VARARGS,
     "register_fits(calls, fs) -> whether compile_register takes every call"},
    {"compile_register", compile_register, METH_VARARGS,
     "compile_register(calls, initial, fail_means_no_effect, flags, fs) -> tables or None"},
    {NULL}
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "_core", "The compiled core of the linearizability checker.", -1, core_functions,
};

PyMODINIT_FUNC PyInit__core(void) {
    if (PyType_Ready(&SearchType) < 0) return NULL;
    PyObject **names[] = {&S_type, &S_f, &S_value, &S_output, &S_error, &S_invoke_index,
                          &S_complete_index, &S_ok, &S_fail, &S_read, &S_write, &S_cas,
                          &S_cas_mismatch};
    const char *texts[] = {"type", "f", "value", "output", "error", "invoke_index",
                           "complete_index", "ok", "fail", "read", "write", "cas", "cas-mismatch"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        *names[i] = PyUnicode_InternFromString(texts[i]);
        if (*names[i] == NULL) return NULL;
    }
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL) return NULL;
    Py_INCREF(&SearchType);
    if (PyModule_AddObject(m, "Search", (PyObject *)&SearchType) < 0) {
        Py_DECREF(&SearchType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
