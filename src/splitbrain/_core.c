/* The compiled core of the checker (optional: the pure-Python code is the reference and the
 * fallback; setup.py builds this where a C compiler exists).
 *
 * Search: the loop of checker/search.py's search(), step for step: the same candidates in the
 * same order, the same nodes remembered, the same budget accounting, so both engines give the
 * same outcome after the same budgets (tests/checker/test_core.py and test_reductions.py run
 * both, against brute force). It reads a search.Tables object; transitions come from its
 * Python callable (any model, memoised here) or, for the register models, from the native
 * table compile_register makes.
 *
 * compile_register: search.compile_problem + search.tables (and the register model's
 * reduction) for the built-in register models, from a key's Calls, with no Python object per
 * call. It returns None for anything unusual (a cas that is not a pair, a list written, a
 * function the model does not know); the caller then takes the Python path, which handles
 * or reports it.
 *
 * group_calls: a history's calls by key. Pairer: history/stream.py's decoded lines checked
 * and paired into Calls. Calls and decoded lines are read by slot offset (Fields), so both
 * classes must keep __slots__ (a dataclass with slots=True, a msgspec Struct).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

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

static int search_build(Search *s);
static PyTypeObject SearchType;

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
    return search_build(s);
}

/* Everything the loop derives from the per-call arrays (set before, owned by s) */
static int search_build(Search *s) {
    i64 n = s->n;
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
                if (node_ != s->end && s->required[~op] == -2) return finish(s, 0);
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
    .tp_name = "splitbrain._core.Search",
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

/* Attribute reads by slot offset: Call and the decoded lines are classes with __slots__, and
 * one read per field per call is the hot path of reading and compiling. Objects of any other
 * type are read with getattr. Every read returns a new reference. */
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

/* Call's fields in compile order; set by use_call(Call) */
enum { C_TYPE, C_F, C_VALUE, C_OUTPUT, C_ERROR, C_INVOKE_INDEX, C_COMPLETE_INDEX, C_KEY };
static Fields call_fields_ = {0};

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
/* Value ids for one compile, with a small cache by address in front of the dict: the same
 * objects (small ints, None, the pairer's shared strings) come back on most calls. Every
 * object seen is held by the calls for the whole compile, so an address names one object. */
typedef struct {
    PyObject *ids;  /* value -> id */
    PyObject *seen[64];
    i64 id[64];
    PyObject *f[4], *type[4];  /* functions and completion types met, with their codes */
    int fcode[4], tcode[4];
} Interner;

static i64 value_id(Interner *in, PyObject *v) {
    size_t slot = ((uintptr_t)v >> 4) & 63;
    if (in->seen[slot] == v) return in->id[slot];
    PyObject *found = PyDict_GetItemWithError(in->ids, v);
    i64 id;
    if (found != NULL) id = PyLong_AsLongLong(found);
    else {
        if (PyErr_Occurred()) return -1;
        id = PyDict_GET_SIZE(in->ids);
        PyObject *num = PyLong_FromLongLong(id);
        if (num == NULL || PyDict_SetItem(in->ids, v, num) < 0) { Py_XDECREF(num); return -1; }
        Py_DECREF(num);
    }
    in->seen[slot] = v;
    in->id[slot] = id;
    return id;
}

/* A value as the register models see it: a scalar (its id) or a list of two scalars (a cas's
 * [expected, new]: two ids). Ids come from one dict, so they are equal exactly when the values
 * are equal in Python (1, 1.0 and true included), as the Python path compares them. */
typedef struct { i64 kind, a, b; } Val;  /* kind: 0 none (not looked at), 1 scalar, 2 pair */

/* 1 done, 0 unusual (the Python path must take it), -1 error */
static int val_of(Interner *ids, PyObject *v, Val *out) {
    if (is_scalar(v)) {
        out->kind = 1;
        out->b = -1;
        return (out->a = value_id(ids, v)) < 0 ? -1 : 1;
    }
    int list = PyList_CheckExact(v);
    if (!list && !PyTuple_CheckExact(v)) return 0;
    if (Py_SIZE(v) != 2) return 0;
    PyObject *x = list ? PyList_GET_ITEM(v, 0) : PyTuple_GET_ITEM(v, 0);
    PyObject *y = list ? PyList_GET_ITEM(v, 1) : PyTuple_GET_ITEM(v, 1);
    if (!is_scalar(x) || !is_scalar(y)) return 0;
    out->kind = 2;
    if ((out->a = value_id(ids, x)) < 0 || (out->b = value_id(ids, y)) < 0) return -1;
    return 1;
}

enum { F_READ, F_WRITE, F_CAS };
enum { O_OK, O_FAIL, O_INFO, O_DROPPED };

typedef struct {
    int f, outcome;
    Val value, output;
    i64 invoke, ret;
} Desc;

/* One call as the search sees it (search.kept_outcome, to_input). 1 done, 0 unusual, -1 error */
static int describe(PyObject *call, Interner *ids, PyObject *fs, int fmne, int flags, Desc *d) {
    /* A Call's fields are read borrowed: no reference count is written, so a forked worker
     * (checker/parallel.py) shares the parent's pages instead of copying them. */
    Fields *cf = &call_fields_;
    static const int which[7] = {C_TYPE, C_F, C_VALUE, C_OUTPUT, C_ERROR, C_INVOKE_INDEX, C_COMPLETE_INDEX};
    int owned = Py_TYPE(call) != cf->type;
    PyObject *v[7];
    int r = -1, got = 1;
    for (int j = 0; j < 7; j++) {
        v[j] = owned ? fget(cf, call, which[j]) : *(PyObject **)((char *)call + cf->off[which[j]]);
        got &= v[j] != NULL;
    }
    PyObject *type = v[0], *f = v[1], *value = v[2], *output = v[3], *error = v[4], *inv = v[5];
    PyObject *ret = v[6];
    if (!got) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "a Call field is unset");
        goto out;
    }
    int j = 0;
    while (j < 4 && ids->f[j] != NULL && ids->f[j] != f) j++;
    if (j == 4 || ids->f[j] == NULL) {  /* not met yet (or the cache is full) */
        int code = PySet_Contains(fs, f);
        if (code < 0) goto out;
        if (code == 0) code = -1;
        else if (PyUnicode_Compare(f, S_read) == 0) code = F_READ;
        else if (PyUnicode_Compare(f, S_write) == 0) code = F_WRITE;
        else if (PyUnicode_Compare(f, S_cas) == 0) code = F_CAS;
        else code = -1;
        if (j < 4) { ids->f[j] = f; ids->fcode[j] = code; }
        d->f = code;
    } else d->f = ids->fcode[j];
    if (d->f < 0) { r = 0; goto out; }
    if ((r = val_of(ids, value, &d->value)) <= 0) goto out;
    if ((d->f == F_CAS && d->value.kind != 2) || (d->f == F_WRITE && d->value.kind != 1)) { r = 0; goto out; }
    d->output.kind = 0;
    d->output.a = d->output.b = -1;
    j = 0;
    while (j < 4 && ids->type[j] != NULL && ids->type[j] != type) j++;
    int tcode;
    if (j == 4 || ids->type[j] == NULL) {
        tcode = PyUnicode_Compare(type, S_ok) == 0 ? 0 : PyUnicode_Compare(type, S_fail) == 0 ? 1 : 2;
        if (j < 4) { ids->type[j] = type; ids->tcode[j] = tcode; }
    } else tcode = ids->tcode[j];
    if (tcode == 0) {
        d->outcome = O_OK;
        if ((r = val_of(ids, output, &d->output)) <= 0) goto out;
        if (d->f == F_READ && d->output.kind != 1) { r = 0; goto out; }
    } else if (tcode == 1) {
        int observing = d->f == F_CAS && (error == Py_None || (PyUnicode_Check(error)
                                           && PyUnicode_Compare(error, S_cas_mismatch) == 0));
        d->outcome = observing && !fmne ? O_FAIL : O_DROPPED;
    } else {
        d->outcome = d->f == F_READ && (flags & R_INFO_READS) ? O_DROPPED : O_INFO;
    }
    d->invoke = PyLong_AsLongLong(inv);
    d->ret = ret == Py_None ? FAR : PyLong_AsLongLong(ret);
    r = PyErr_Occurred() ? -1 : 1;
out:
    if (owned) for (int j = 0; j < 7; j++) Py_XDECREF(v[j]);
    return r;
}

/* input classes: identical (f, value, output, outcome) share one, numbered by first use */
typedef struct { i64 *keys; i32 *ids; i64 cap, count; } ClassTable;

static i64 class_of(ClassTable *t, const i64 *k, int *is_new) {
    if ((t->count + 1) * 2 > t->cap) {
        i64 cap = t->cap ? t->cap * 2 : 64;
        i64 *keys = xcalloc(cap * 8, sizeof(i64));
        i32 *ids = xcalloc(cap, sizeof(i32));
        if (!keys || !ids) { PyMem_Free(keys); PyMem_Free(ids); return -1; }
        for (i64 i = 0; i < cap; i++) ids[i] = -1;
        for (i64 i = 0; i < t->cap; i++) {
            if (t->ids[i] < 0) continue;
            u64 h = hash_words((const u64 *)(t->keys + 8 * i), 8);
            i64 j = (i64)(h & (u64)(cap - 1));
            while (ids[j] >= 0) j = (j + 1) & (cap - 1);
            memcpy(keys + 8 * j, t->keys + 8 * i, 8 * sizeof(i64));
            ids[j] = t->ids[i];
        }
        PyMem_Free(t->keys); PyMem_Free(t->ids);
        t->keys = keys; t->ids = ids; t->cap = cap;
    }
    u64 h = hash_words((const u64 *)k, 8);
    i64 j = (i64)(h & (u64)(t->cap - 1));
    while (t->ids[j] >= 0) {
        if (memcmp(t->keys + 8 * j, k, 8 * sizeof(i64)) == 0) { *is_new = 0; return t->ids[j]; }
        j = (j + 1) & (t->cap - 1);
    }
    memcpy(t->keys + 8 * j, k, 8 * sizeof(i64));
    t->ids[j] = (i32)t->count;
    *is_new = 1;
    return t->count++;
}

/* compile_register(calls, initial, fail_means_no_effect, flags, fs, as_search=False) -> None
 * when a call needs the Python path; else a Search, or (as_search False) the tuple
 * (invoke_at, return_at, optional, tclass, blind, stutter, iclass, group, start,
 *  (kinds, a, b), required) that search.tables() would make, for the tests */
static PyObject *compile_register(PyObject *self, PyObject *args) {
    PyObject *calls, *initial, *fs;
    int fmne, flags, as_search = 0;
    if (!PyArg_ParseTuple(args, "OOpiO|p", &calls, &initial, &fmne, &flags, &fs, &as_search)) return NULL;
    if (call_fields_.type == NULL) { PyErr_SetString(PyExc_RuntimeError, "use_call(Call) first"); return NULL; }
    if (!is_scalar(initial)) Py_RETURN_NONE;
    PyObject *fast = PySequence_Fast(calls, "calls");
    if (fast == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject *result = NULL;
    Interner in_ = {0};
    Interner *ids = &in_;
    ids->ids = PyDict_New();
    ClassTable ct = {0};
    i64 *cls_kind = NULL, *cls_a = NULL, *cls_b = NULL, ccap = 0;
    uint8_t *observed = NULL;
    i64 *canon = NULL;
    Search *srch = NULL;
    /* per kept call */
    i64 *invoke_at = xcalloc(n, sizeof(i64)), *return_at = xcalloc(n, sizeof(i64));
    uint8_t *optional = xcalloc(n, 1), *blind = xcalloc(n, 1), *stutter = xcalloc(n, 1);
    i32 *tclass = xcalloc(n, sizeof(i32)), *iclass = xcalloc(n, sizeof(i32)), *group = xcalloc(n, sizeof(i32));
    i64 *observe = xcalloc(n, sizeof(i64));  /* the value id each kept call makes observed, or -1 */
    uint8_t *nowhere = xcalloc(n, 1);  /* kept calls that can happen in no state */
    i64 nk = 0;
    if (!ids->ids || !invoke_at || !return_at || !optional || !blind || !stutter || !tclass || !iclass
        || !group || !observe || !nowhere) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        Desc d;
        int r = describe(PySequence_Fast_GET_ITEM(fast, i), ids, fs, fmne, flags, &d);
        if (r < 0) goto done;
        if (r == 0) { result = Py_None; Py_INCREF(result); goto done; }
        if (d.outcome == O_DROPPED) continue;
        i64 key[8] = {d.f, d.value.kind, d.value.a, d.value.b, d.output.kind, d.output.a,
                      d.output.b, d.outcome};
        int is_new;
        i64 c = class_of(&ct, key, &is_new);
        if (c < 0) goto done;
        if (is_new) {
            if (grow((void **)&cls_kind, &ccap, c + 1, sizeof(i64)) < 0) goto done;
            i64 cap2 = 0, cap3 = 0;
            (void)cap2; (void)cap3;
            cls_a = PyMem_Realloc(cls_a, (size_t)ccap * sizeof(i64));
            cls_b = PyMem_Realloc(cls_b, (size_t)ccap * sizeof(i64));
            if (!cls_a || !cls_b) { PyErr_NoMemory(); goto done; }
            i64 kind, a = -1, b = -1;
            if (d.f == F_READ) {
                kind = d.outcome == O_OK ? K_READ_OK : K_SAME;
                a = d.output.a;
            } else if (d.f == F_WRITE) {
                kind = K_WRITE;
                b = d.value.a;
            } else {
                kind = d.outcome == O_OK ? K_CAS_OK : d.outcome == O_FAIL ? K_CAS_FAIL : K_CAS_INFO;
                a = d.value.a;
                b = d.value.b;
            }
            cls_kind[c] = kind; cls_a[c] = a; cls_b[c] = b;
        }
        /* observed values: what ok reads returned, what every kept cas compared against */
        observe[nk] = d.f == F_READ && d.outcome == O_OK ? d.output.a : d.f == F_CAS ? d.value.a : -1;
        invoke_at[nk] = d.invoke;
        return_at[nk] = d.ret;
        tclass[nk] = (i32)c;
        optional[nk] = d.outcome == O_INFO;
        blind[nk] = d.f == F_WRITE && (flags & R_INFO_BLIND);
        stutter[nk] = d.outcome != O_INFO && (d.f == F_READ || d.outcome == O_FAIL);
        nk++;
    }
    {
        i64 start = value_id(ids, initial);
        if (start < 0) goto done;
        i64 nv = PyDict_GET_SIZE(ids->ids), unobserved = nv, nc = ct.count;
        observed = xcalloc(nv, 1);
        canon = xcalloc(nv, sizeof(i64));
        if (!observed || !canon) goto done;
        for (i64 i = 0; i < nk; i++) if (observe[i] >= 0) observed[observe[i]] = 1;
        /* written values (and the initial one): an ok read or cas that needs another value
         * can happen in no state (models._register_reduce) */
        uint8_t *written = xcalloc(nv, 1);
        if (written == NULL) goto done;
        written[start] = 1;
        for (i64 c = 0; c < nc; c++)
            if (cls_kind[c] == K_WRITE || cls_kind[c] == K_CAS_OK || cls_kind[c] == K_CAS_INFO) written[cls_b[c]] = 1;
        for (i64 i = 0; i < nk; i++) {
            i64 k = cls_kind[tclass[i]];
            nowhere[i] = (flags & R_MODEL) && (k == K_READ_OK || k == K_CAS_OK) && !written[cls_a[tclass[i]]];
        }
        PyMem_Free(written);
        for (i64 v = 0; v < nv; v++) canon[v] = observed[v] || !(flags & R_MODEL) ? v : unobserved;
        for (i64 c = 0; c < nc; c++) if (cls_b[c] >= 0) cls_b[c] = canon[cls_b[c]];
        /* info classes (by input class, or one per call) and ok-classes */
        i32 *icl = xcalloc(nc, sizeof(i32));
        if (icl == NULL) goto done;
        for (i64 c = 0; c < nc; c++) icl[c] = -1;
        i32 nicl = 0;
        for (i64 i = 0; i < nk; i++) {
            iclass[i] = group[i] = -1;
            if (optional[i]) {
                if (!(flags & R_INFO_CLASSES)) iclass[i] = nicl++;
                else {
                    if (icl[tclass[i]] < 0) icl[tclass[i]] = nicl++;
                    iclass[i] = icl[tclass[i]];
                }
            } else if (flags & R_OK_CLASSES) group[i] = tclass[i];
        }
        PyMem_Free(icl);
        if (as_search) {
            srch = (Search *)SearchType.tp_alloc(&SearchType, 0);
            if (srch == NULL) goto done;
            srch->n = (i32)nk;
            srch->invoke_at = invoke_at; srch->return_at = return_at; srch->optional = optional;
            srch->tclass = tclass; srch->blind = blind; srch->stutter = stutter;
            srch->iclass = iclass; srch->group = group;
            invoke_at = return_at = NULL; optional = blind = stutter = NULL;
            tclass = iclass = group = NULL;
            srch->required = xcalloc(nk, sizeof(i32));
            srch->nkind = xcalloc(nc, sizeof(i32));
            srch->na = xcalloc(nc, sizeof(i32));
            srch->nb = xcalloc(nc, sizeof(i32));
            if (!srch->required || !srch->nkind || !srch->na || !srch->nb) goto done;
            for (i64 i = 0; i < nk; i++) srch->required[i] = nowhere[i] ? -2 : -1;
            for (i64 c = 0; c < nc; c++) {
                srch->nkind[c] = (i32)cls_kind[c]; srch->na[c] = (i32)cls_a[c]; srch->nb[c] = (i32)cls_b[c];
            }
            srch->nclasses = (i32)nc;
            srch->state = (i32)canon[start];
            srch->skip_no_ops = (flags & R_INFO_NO_OPS) != 0;
            srch->greedy = (flags & R_GREEDY) != 0;
            if (search_build(srch) < 0) goto done;
            result = (PyObject *)srch;
            srch = NULL;
            goto done;
        }
        PyObject *lists[12];
        for (int j = 0; j < 12; j++) lists[j] = PyList_New(j < 8 || j == 11 ? nk : nc);
        int bad = 0;
        for (int j = 0; j < 12; j++) bad |= lists[j] == NULL;
        for (i64 i = 0; i < nk && !bad; i++) {
            PyObject *r = PyLong_FromLong(nowhere[i] ? -2 : -1);
            if (r == NULL) bad = 1;
            else PyList_SET_ITEM(lists[11], i, r);
        }
        for (i64 i = 0; i < nk && !bad; i++) {
            PyObject *items[8] = {PyLong_FromLongLong(invoke_at[i]), PyLong_FromLongLong(return_at[i]),
                                  PyBool_FromLong(optional[i]), PyLong_FromLong(tclass[i]),
                                  PyBool_FromLong(blind[i]), PyBool_FromLong(stutter[i]),
                                  PyLong_FromLong(iclass[i]), PyLong_FromLong(group[i])};
            for (int j = 0; j < 8; j++) {
                if (items[j] == NULL) bad = 1;
                else PyList_SET_ITEM(lists[j], i, items[j]);
            }
        }
        for (i64 c = 0; c < nc && !bad; c++) {
            PyObject *items[3] = {PyLong_FromLongLong(cls_kind[c]), PyLong_FromLongLong(cls_a[c]),
                                  PyLong_FromLongLong(cls_b[c])};
            for (int j = 0; j < 3; j++) {
                if (items[j] == NULL) bad = 1;
                else PyList_SET_ITEM(lists[8 + j], c, items[j]);
            }
        }
        if (bad) { for (int j = 0; j < 12; j++) Py_XDECREF(lists[j]); goto done; }
        result = Py_BuildValue("(NNNNNNNNL(NNN)N)", lists[0], lists[1], lists[2], lists[3], lists[4],
                               lists[5], lists[6], lists[7], (long long)canon[start], lists[8],
                               lists[9], lists[10], lists[11]);
    }
done:
    Py_XDECREF((PyObject *)srch);
    PyMem_Free(invoke_at); PyMem_Free(return_at); PyMem_Free(optional); PyMem_Free(blind);
    PyMem_Free(stutter); PyMem_Free(tclass); PyMem_Free(iclass); PyMem_Free(group);
    PyMem_Free(observe); PyMem_Free(observed); PyMem_Free(canon); PyMem_Free(nowhere);
    PyMem_Free(cls_kind); PyMem_Free(cls_a); PyMem_Free(cls_b);
    PyMem_Free(ct.keys); PyMem_Free(ct.ids);
    Py_XDECREF(ids->ids);
    Py_DECREF(fast);
    return result;
}

/* ---- Pairer: decoded history.jsonl lines -> Calls ------------------------------------------ */

/* history/stream.py feeds it the lines msgspec decoded, chunk by chunk; it checks what
 * history/jsonl.py checks (index, time, process, f, nesting, the invoke/complete discipline)
 * and pairs as history/calls.py pairs. It reports only WHERE the first problem is: the
 * caller rereads the file with the Python reader, which says what it is. */

static PyObject *S_index, *S_time, *S_process, *S_key, *S_node, *S_request, *S_invoke, *S_info,
    *S_nemesis, *S_no_completion;

#define CALL_FIELDS 13
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
    PyObject *open, *crashed, *calls, *nemesis, *strings;
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
    p->open = PyDict_New();
    p->crashed = PySet_New(NULL);
    p->calls = PyList_New(0);
    p->nemesis = PyList_New(0);
    p->strings = PyDict_New();
    return (p->open && p->crashed && p->calls && p->nemesis && p->strings) ? 0 : -1;
}

static void Pairer_dealloc(Pairer *p) {
    Py_XDECREF(p->call_type); Py_XDECREF(p->lf.type); Py_XDECREF(p->open); Py_XDECREF(p->crashed);
    Py_XDECREF(p->calls); Py_XDECREF(p->nemesis); Py_XDECREF(p->strings);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

/* 1 if a JSON value is nested no deeper than `room` containers */
static int shallow(PyObject *v, int room) {
    if (PyList_CheckExact(v)) {
        if (room == 0) return 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++)
            if (!shallow(PyList_GET_ITEM(v, i), room - 1)) return 0;
    } else if (PyDict_CheckExact(v)) {
        if (room == 0) return 0;
        PyObject *k, *item;
        Py_ssize_t pos = 0;
        while (PyDict_Next(v, &pos, &k, &item)) if (!shallow(item, room - 1)) return 0;
    }
    return 1;
}

/* one shared object per distinct string (keys and functions repeat on every line) */
static PyObject *shared(Pairer *p, PyObject *text) {
    if (text == Py_None) return text;
    PyObject *one = PyDict_SetDefault(p->strings, text, text);
    return one;  /* borrowed */
}

static PyObject *request_of(PyObject *rid) {
    if (rid == Py_None || PyUnicode_CheckExact(rid)) { Py_INCREF(rid); return rid; }
    return PyObject_Str(rid);
}

/* a Call from its fields (new references are stolen) */
static PyObject *make_call(Pairer *p, PyObject **fields) {
    PyObject *call = p->call_type->tp_alloc(p->call_type, 0);
    if (call == NULL) {
        for (int i = 0; i < CALL_FIELDS; i++) Py_XDECREF(fields[i]);
        return NULL;
    }
    for (int i = 0; i < CALL_FIELDS; i++) *(PyObject **)((char *)call + p->off[i]) = fields[i];
    return call;
}

#define NEWREF(o) (Py_INCREF(o), (o))

/* feed(lines) -> None, or the position in `lines` of the first line with a problem */
static PyObject *Pairer_feed(Pairer *p, PyObject *lines) {
    PyObject *fast = PySequence_Fast(lines, "lines");
    if (fast == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast), bad = -1;
    for (Py_ssize_t i = 0; i < n && bad < 0; i++) {
        PyObject *line = PySequence_Fast_GET_ITEM(fast, i);
        PyObject *a[10];
        int got = 1;
        for (int j = 0; j < 10; j++) { a[j] = fget(&p->lf, line, j); got &= a[j] != NULL; }
        PyObject *index = a[0], *time = a[1], *process = a[2], *type = a[3], *f = a[4], *key = a[5];
        PyObject *value = a[6], *node = a[7], *error = a[8], *request = a[9];
        if (!got) goto error;
        i64 idx = PyLong_AsLongLong(index), t = PyLong_AsLongLong(time);
        if (PyErr_Occurred()) { PyErr_Clear(); bad = i; goto next; }
        int nemesis = PyUnicode_Check(process);
        if (idx != p->expected || t < 0 || t < p->last_time || PyUnicode_GET_LENGTH(f) == 0
            || (nemesis && PyUnicode_Compare(process, S_nemesis) != 0)
            || !shallow(value, p->max_depth) || !shallow(error, p->max_depth)
            || !shallow(request, p->max_depth)) { bad = i; goto next; }
        if (PyErr_Occurred()) goto error;
        p->expected++;
        p->last_time = t;
        if (nemesis) {
            if (PyList_Append(p->nemesis, line) < 0) goto error;
            goto next;
        }
        if (PyUnicode_Compare(type, S_invoke) == 0) {
            int opened = PyDict_Contains(p->open, process), crashed = PySet_Contains(p->crashed, process);
            if (opened < 0 || crashed < 0) goto error;
            if (opened || crashed) { bad = i; goto next; }
            PyObject *entry = Py_BuildValue("(On)", line, PyList_GET_SIZE(p->calls));
            int failed = entry == NULL || PyDict_SetItem(p->open, process, entry) < 0
                         || PyList_Append(p->calls, Py_None) < 0;
            Py_XDECREF(entry);
            if (failed) goto error;
            goto next;
        }
        PyObject *entry = PyDict_GetItemWithError(p->open, process);  /* borrowed */
        if (entry == NULL) { if (PyErr_Occurred()) goto error; bad = i; goto next; }
        Py_INCREF(entry);
        PyObject *inv = PyTuple_GET_ITEM(entry, 0);
        Py_ssize_t pos = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 1));
        PyObject *ivals[8] = {0};
        static const int inames[8] = {4, 5, 6, 1, 0, 7, 9, 2};  /* f key value time index node request process */
        int ok = 1;
        for (int j = 0; j < 8; j++) { ivals[j] = fget(&p->lf, inv, inames[j]); ok &= ivals[j] != NULL; }
        if (ok) {
            int same_f = PyUnicode_Compare(ivals[0], f) == 0;
            int same_key = ivals[1] == Py_None || key == Py_None ? ivals[1] == key
                                                                : PyUnicode_Compare(ivals[1], key) == 0;
            if (!same_f || !same_key) bad = i;
            else if (PyDict_DelItem(p->open, process) < 0) ok = 0;
            else if (PyUnicode_Compare(type, S_info) == 0 && PySet_Add(p->crashed, process) < 0) ok = 0;
            else {
                int is_ok = PyUnicode_Compare(type, S_ok) == 0;
                PyObject *used_node = (node == Py_None || PyUnicode_GET_LENGTH(node) == 0) ? ivals[5] : node;
                PyObject *rid = request != Py_None ? request : ivals[6];
                PyObject *fields[CALL_FIELDS] = {
                    NEWREF(process), NEWREF(shared(p, ivals[0])), NEWREF(shared(p, ivals[1])),
                    NEWREF(ivals[2]), NEWREF(is_ok ? value : Py_None), NEWREF(shared(p, type)),
                    NEWREF(ivals[3]), NEWREF(time), NEWREF(ivals[4]), NEWREF(index),
                    NEWREF(used_node), NEWREF(error), request_of(rid)};
                PyObject *call = fields[12] ? make_call(p, fields) : NULL;
                if (call == NULL || PyList_SetItem(p->calls, pos, call) < 0) ok = 0;
            }
        }
        for (int j = 0; j < 8; j++) Py_XDECREF(ivals[j]);
        Py_DECREF(entry);
        if (!ok) goto error;
    next:
        for (int j = 0; j < 10; j++) Py_XDECREF(a[j]);
        continue;
    error:
        for (int j = 0; j < 10; j++) Py_XDECREF(a[j]);
        Py_DECREF(fast);
        return NULL;
    }
    Py_DECREF(fast);
    if (bad >= 0) return PyLong_FromSsize_t(bad);
    Py_RETURN_NONE;
}

/* finish() -> (calls in invoke order, nemesis lines): an invoke still open is an info call */
static PyObject *Pairer_finish(Pairer *p, PyObject *unused) {
    PyObject *process, *entry;
    Py_ssize_t it = 0;
    while (PyDict_Next(p->open, &it, &process, &entry)) {
        PyObject *inv = PyTuple_GET_ITEM(entry, 0);
        Py_ssize_t pos = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 1));
        static const int names[7] = {4, 5, 6, 1, 0, 7, 9};  /* f key value time index node request */
        PyObject *v[7];
        int ok = 1;
        for (int j = 0; j < 7; j++) { v[j] = fget(&p->lf, inv, names[j]); ok &= v[j] != NULL; }
        if (ok) {
            PyObject *fields[CALL_FIELDS] = {
                NEWREF(process), NEWREF(shared(p, v[0])), NEWREF(shared(p, v[1])), NEWREF(v[2]),
                NEWREF(Py_None), NEWREF(S_info), NEWREF(v[3]), NEWREF(Py_None), NEWREF(v[4]),
                NEWREF(Py_None), NEWREF(v[5]), NEWREF(S_no_completion), request_of(v[6])};
            PyObject *call = fields[12] ? make_call(p, fields) : NULL;
            if (call == NULL || PyList_SetItem(p->calls, pos, call) < 0) ok = 0;
        }
        for (int j = 0; j < 7; j++) Py_XDECREF(v[j]);
        if (!ok) return NULL;
    }
    PyDict_Clear(p->open);
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

/* use_call(Call): the class whose slots the functions here read directly */
static PyObject *use_call(PyObject *self, PyObject *type) {
    PyObject *names[8] = {S_type, S_f, S_value, S_output, S_error, S_invoke_index, S_complete_index, S_key};
    if (!PyType_Check(type) || fields_init(&call_fields_, type, names, 8) < 0) return NULL;
    Py_RETURN_NONE;
}

/* group_calls(calls) -> ({key: [calls in order]}, {f...}) */
static PyObject *group_calls(PyObject *self, PyObject *calls) {
    if (call_fields_.type == NULL) { PyErr_SetString(PyExc_RuntimeError, "use_call(Call) first"); return NULL; }
    PyObject *fast = PySequence_Fast(calls, "calls");
    if (fast == NULL) return NULL;
    PyObject *groups = PyDict_New(), *fs = PySet_New(NULL);
    int ok = groups && fs;
    PyObject *last_key = NULL, *last_list = NULL;  /* borrowed: runs of one key are common */
    for (Py_ssize_t i = 0; ok && i < PySequence_Fast_GET_SIZE(fast); i++) {
        PyObject *call = PySequence_Fast_GET_ITEM(fast, i);
        PyObject *key = fget(&call_fields_, call, C_KEY), *f = fget(&call_fields_, call, C_F);
        if (key == NULL || f == NULL || PySet_Add(fs, f) < 0) ok = 0;
        else {
            PyObject *list = key == last_key ? last_list : PyDict_GetItemWithError(groups, key);
            if (list == NULL && !PyErr_Occurred()) {
                list = PyList_New(0);
                if (list == NULL || PyDict_SetItem(groups, key, list) < 0) ok = 0;
                Py_XDECREF(list);  /* the dict holds it */
            }
            if (ok && (list == NULL || PyList_Append(list, call) < 0)) ok = 0;
            last_key = key;
            last_list = list;
        }
        Py_XDECREF(key);
        Py_XDECREF(f);
    }
    Py_DECREF(fast);
    if (!ok) { Py_XDECREF(groups); Py_XDECREF(fs); return NULL; }
    return Py_BuildValue("(NN)", groups, fs);
}

static PyMethodDef core_functions[] = {
    {"use_call", use_call, METH_O, "use_call(Call): read its slots directly"},
    {"group_calls", group_calls, METH_O, "group_calls(calls) -> ({key: calls}, functions)"},
    {"compile_register", compile_register, METH_VARARGS,
     "compile_register(calls, initial, fail_means_no_effect, flags, fs, as_search=False)"},
    {NULL}
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "_core", "The compiled core of the linearizability checker.", -1, core_functions,
};

PyMODINIT_FUNC PyInit__core(void) {
    if (PyType_Ready(&SearchType) < 0 || PyType_Ready(&PairerType) < 0) return NULL;
    PyObject **names[] = {&S_type, &S_f, &S_value, &S_output, &S_error, &S_invoke_index,
                          &S_complete_index, &S_ok, &S_fail, &S_read, &S_write, &S_cas,
                          &S_cas_mismatch, &S_index, &S_time, &S_process, &S_key, &S_node,
                          &S_request, &S_invoke, &S_info, &S_nemesis, &S_no_completion};
    const char *texts[] = {"type", "f", "value", "output", "error", "invoke_index",
                           "complete_index", "ok", "fail", "read", "write", "cas", "cas-mismatch",
                           "index", "time", "process", "key", "node", "request", "invoke",
                           "info", "nemesis", "no completion"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        *names[i] = PyUnicode_InternFromString(texts[i]);
        if (*names[i] == NULL) return NULL;
    }
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL) return NULL;
    Py_INCREF(&SearchType);
    Py_INCREF(&PairerType);
    if (PyModule_AddObject(m, "Search", (PyObject *)&SearchType) < 0
        || PyModule_AddObject(m, "Pairer", (PyObject *)&PairerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
