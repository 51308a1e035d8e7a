/*
 * core/iter.c — NumPy-style broadcasting and the strided elementwise iterator every
 * elementwise CPU kernel runs on.
 *
 * The iterator views each operand with the output's shape (stride 0 on broadcast dims),
 * merges adjacent dims that are laid out back to back in every operand, drops size-1 dims,
 * and calls the kernel once per innermost run with byte strides. A contiguous operation
 * thus becomes a single call over n elements with unit strides, which the kernels special-
 * case for vectorisation.
 *
 * igi_iter_run_parallel splits large iterations across the thread pool: by rows (innermost
 * runs) or, for a single run, by element blocks. Only kernels that write nothing but their
 * output elements may use it (no accumulation into ctx); results are then bitwise the same
 * for any thread count.
 */
#include <string.h>

#include "tensor_impl.h"

bool igi_broadcast_shape(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb,
                         int *nout, int64_t *out) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = na - n + i, ib = nb - n + i;
        int64_t da = ia >= 0 ? sa[ia] : 1, db = ib >= 0 ? sb[ib] : 1;
        if (da == db || db == 1) out[i] = da;
        else if (da == 1) out[i] = db;
        else {
            char b1[160], b2[160];
            igi_error(IG_ERR_SHAPE, "%s: shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)",
                      op, igi_shape_str(na, sa, b1, sizeof b1), igi_shape_str(nb, sb, b2, sizeof b2),
                      i - n, (long long)da, (long long)db);
            return false;
        }
    }
    *nout = n;
    return true;
}

void igi_broadcast_strides(const ig_tensor *t, int ndim, const int64_t *shape, int64_t *strides) {
    IG_ASSERT(ndim >= t->ndim);
    for (int i = 0; i < ndim; i++) {
        int it = t->ndim - ndim + i;
        if (it < 0 || (t->shape[it] == 1 && shape[i] != 1)) strides[i] = 0;
        else strides[i] = t->strides[it];
    }
}

/* The merged iteration space of one igi_iter_run call: m dims, innermost first. */
typedef struct iter_space {
    int m, nops;
    int64_t size[IG_MAX_DIMS];
    int64_t st[IGI_ITER_MAX][IG_MAX_DIMS];
    char *base[IGI_ITER_MAX];
    igi_loop_fn fn;
    void *ctx;
} iter_space;

/* Builds the merged space; false if the output is empty. */
static bool iter_build(ig_tensor *const *ops, int nops, igi_loop_fn fn, void *ctx, iter_space *sp) {
    IG_ASSERT(nops >= 1 && nops <= IGI_ITER_MAX);
    const ig_tensor *out = ops[0];
    int nd = out->ndim;
    if (igi_numel(nd, out->shape) == 0) return false;

    /* Per-dim sizes and byte strides, innermost dim first, with merging. */
    int64_t es_st[IGI_ITER_MAX][IG_MAX_DIMS];
    for (int k = 0; k < nops; k++) {
        int64_t bs[IG_MAX_DIMS];
        igi_broadcast_strides(ops[k], nd, out->shape, bs);
        size_t es = ig_dtype_size(ops[k]->dtype);
        for (int d = 0; d < nd; d++) es_st[k][d] = bs[d] * (int64_t)es;
        sp->base[k] = igi_data(ops[k]);
    }
    int m = 0; /* merged dims */
    for (int d = nd - 1; d >= 0; d--) {
        if (out->shape[d] == 1) continue;
        if (m > 0) {
            bool merge = true;
            for (int k = 0; k < nops; k++)
                if (es_st[k][d] != sp->st[k][m - 1] * sp->size[m - 1]) merge = false;
            if (merge) {
                sp->size[m - 1] *= out->shape[d];
                continue;
            }
        }
        sp->size[m] = out->shape[d];
        for (int k = 0; k < nops; k++) sp->st[k][m] = es_st[k][d];
        m++;
    }
    if (m == 0) { /* a single element */
        sp->size[0] = 1;
        for (int k = 0; k < nops; k++) sp->st[k][0] = 0;
        m = 1;
    }
    sp->m = m;
    sp->nops = nops;
    sp->fn = fn;
    sp->ctx = ctx;
    return true;
}

/* Rows [r0, r1) of the space, a row being one innermost run (index over dims 1..m-1). */
static void iter_rows(int64_t r0, int64_t r1, void *arg) {
    const iter_space *sp = arg;
    int m = sp->m;
    int64_t idx[IG_MAX_DIMS] = {0}, r = r0;
    for (int d = 1; d < m; d++) {
        idx[d] = r % sp->size[d];
        r /= sp->size[d];
    }
    int64_t inner_st[IGI_ITER_MAX];
    char *ptr[IGI_ITER_MAX];
    for (int k = 0; k < sp->nops; k++) inner_st[k] = sp->st[k][0];
    for (int64_t row = r0; row < r1; row++) {
        for (int k = 0; k < sp->nops; k++) {
            char *p = sp->base[k];
            for (int d = 1; d < m; d++) p += idx[d] * sp->st[k][d];
            ptr[k] = p;
        }
        sp->fn(ptr, inner_st, sp->size[0], sp->ctx);
        for (int d = 1; d < m && ++idx[d] == sp->size[d]; d++) idx[d] = 0;
    }
}

/* Elements [e0, e1) of a one-dim space (a contiguous or single-run operation). */
static void iter_run_1d(int64_t e0, int64_t e1, void *arg) {
    const iter_space *sp = arg;
    char *ptr[IGI_ITER_MAX];
    int64_t inner_st[IGI_ITER_MAX];
    for (int k = 0; k < sp->nops; k++) {
        inner_st[k] = sp->st[k][0];
        ptr[k] = sp->base[k] + e0 * inner_st[k];
    }
    sp->fn(ptr, inner_st, e1 - e0, sp->ctx);
}

void igi_iter_run(ig_tensor *const *ops, int nops, igi_loop_fn fn, void *ctx) {
    iter_space sp;
    if (!iter_build(ops, nops, fn, ctx, &sp)) return;
    int64_t rows = 1;
    for (int d = 1; d < sp.m; d++) rows *= sp.size[d];
    iter_rows(0, rows, &sp);
}

/* Below this many elements an elementwise op runs in the calling thread: waking a worker
 * costs more than it saves. */
#define ITER_PARALLEL_MIN 65536

void igi_iter_run_parallel(ig_tensor *const *ops, int nops, igi_loop_fn fn, void *ctx) {
    iter_space sp;
    if (!iter_build(ops, nops, fn, ctx, &sp)) return;
    int64_t rows = 1;
    for (int d = 1; d < sp.m; d++) rows *= sp.size[d];
    /* Each output element must be written by one thread only: no stride-0 (expanded) dim
     * in the output. */
    bool distinct = true;
    for (int d = 0; d < sp.m; d++) distinct &= sp.size[d] == 1 || sp.st[0][d] != 0;
    if (!distinct || rows * sp.size[0] < ITER_PARALLEL_MIN) {
        iter_rows(0, rows, &sp);
    } else if (sp.m == 1) {
        igi_parallel_for(sp.size[0], ITER_PARALLEL_MIN / 2, iter_run_1d, &sp);
    } else {
        int64_t grain = sp.size[0] >= ITER_PARALLEL_MIN / 2 ? 1 : (ITER_PARALLEL_MIN / 2) / sp.size[0];
        igi_parallel_for(rows, grain, iter_rows, &sp);
    }
}

ig_tensor *igi_sum_to(ig_tensor *g, int ndim, const int64_t *shape) {
    if (!g) return NULL;
    if (g->ndim == ndim && memcmp(g->shape, shape, sizeof(int64_t) * (size_t)ndim) == 0) return g;
    int dims[IG_MAX_DIMS];
    int nred = 0;
    int lead = g->ndim - ndim;
    IG_ASSERT(lead >= 0);
    for (int d = 0; d < g->ndim; d++) {
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1)) dims[nred++] = d;
    }
    ig_tensor *s = nred ? ig_sum(g, nred, dims, true) : g;
    if (!s) return NULL;
    return ig_reshape(s, ndim, shape);
}
