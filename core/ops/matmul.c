/*
 * core/ops/matmul.c — ig_matmul with torch.matmul semantics, on OpenBLAS GEMM.
 *
 * Shapes: 1-D x 1-D is a dot product (0-dim result); a 1-D left operand is promoted to
 * [1,K] and a 1-D right operand to [K,1], and the added dim is removed from the result;
 * operands with more than 2 dims are stacks of matrices whose batch dims (all but the
 * last two) broadcast as NumPy does. Only f32 (cblas_sgemm) and f64 (cblas_dgemm) are
 * supported: integer dtypes are rejected with IG_ERR_DTYPE (no BLAS exists for them and
 * nothing in the framework needs integer matmul).
 *
 * Layout: each operand's matrices reach BLAS without a copy when they are row-major
 * (column stride 1, row stride >= cols: NoTrans) or column-major (row stride 1, column
 * stride >= rows: Trans, e.g. an ig_transpose view). Anything else (a step slice along the
 * last dim, a stride-0 expand inside a matrix) is copied to a contiguous temporary first.
 * Batch dims are walked through their broadcast strides, so a broadcast operand is never
 * copied per batch. The output is contiguous.
 *
 * Backward: dA = g @ B^T and dB = A^T @ g (transposes are views), each summed over the
 * batch dims its operand was broadcast along, then reshaped back for the 1-D cases.
 *
 * Autocast: under bf16 autocast f32 operands are converted to IG_BF16 (recorded) and the
 * product is a bf16 matmul. Under fp16 autocast (core/ops/amp.c, igi_amp_for) with f32
 * operands, the CPU path multiplies contiguous copies of a and b rounded to fp16 (exact
 * emulation: the products fit in f32, only the accumulation rounds); a device gets the
 * backend's gemm_amp, which converts the operands itself. The node keeps the mode, and
 * backward runs its two products under it, so g and the saved operands are rounded the
 * same way (as PyTorch runs an autocast op's backward in the forward's precision).
 */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "../backend_impl.h"
#include "../tensor_impl.h"

static const char *const OP = "ig_matmul";

/* How one operand's matrices (rows x cols, with strides rs, cs) are handed to BLAS. */
typedef struct {
    ig_tensor *t;       /* the tensor read (the operand itself or a contiguous copy) */
    ig_tensor *tmp;     /* heap copy to free afterwards, or NULL */
    CBLAS_TRANSPOSE tr; /* CblasNoTrans: row-major with ld; CblasTrans: column-major with ld */
    int64_t ld;
} mat_layout;

/* Chooses the BLAS layout of a matrix with the given geometry; false if neither fits.
 * A stride along a size-1 dim is never used to address an element, so it is ignored
 * (e.g. an unsqueezed vector). BLAS needs ld >= max(1, leading extent). */
static bool pick_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                        CBLAS_TRANSPOSE *tr, int64_t *ld) {
    int64_t need_row = cols > 1 ? cols : 1, need_col = rows > 1 ? rows : 1;
    /* Row-major: element (i, j) at i*ld + j. */
    int64_t c1 = cols == 1 ? 1 : cs, r1 = rows == 1 ? need_row : rs;
    if (c1 == 1 && r1 >= need_row) {
        *tr = CblasNoTrans;
        *ld = r1;
        return true;
    }
    /* Column-major: element (i, j) at i + j*ld. */
    int64_t r2 = rows == 1 ? 1 : rs, c2 = cols == 1 ? need_col : cs;
    if (r2 == 1 && c2 >= need_col) {
        *tr = CblasTrans;
        *ld = c2;
        return true;
    }
    return false;
}

/* Fills L for operand t (ndim >= 2) whose last two dims are its matrices. Copies t to a
 * contiguous heap temporary when its matrix strides suit neither layout. */
static bool layout_operand(ig_tensor *t, mat_layout *L) {
    int n = t->ndim;
    int64_t rows = t->shape[n - 2], cols = t->shape[n - 1];
    L->t = t;
    L->tmp = NULL;
    if (pick_layout(rows, cols, t->strides[n - 2], t->strides[n - 1], &L->tr, &L->ld)) return true;
    /* The copy is internal: no autograd node, and freed as soon as the GEMMs are done. */
    igi_heap_mode(1);
    ig_tensor *c = igi_tensor_new(OP, n, t->shape, t->dtype, t->device);
    igi_heap_mode(-1);
    if (!c) return false;
    if (ig_copy_(c, t) != IG_OK) {
        ig_tensor_free(c);
        return false;
    }
    L->t = L->tmp = c;
    bool ok = pick_layout(rows, cols, c->strides[n - 2], c->strides[n - 1], &L->tr, &L->ld);
    IG_ASSERT(ok);
    return true;
}

/* One GEMM: C[M,N] (row-major, ldc = N) = op(A)[M,K] @ op(B)[K,N]. M, N, K >= 1. On a
 * device, be is its backend (the same conventions as igi_gemm). */
static ig_status gemm(const igi_backend *be, ig_amp amp, ig_dtype dt, const mat_layout *A, const char *pa,
                      const mat_layout *B, const char *pb, char *pc, int64_t M, int64_t N, int64_t K) {
    if (be && amp != IG_AMP_OFF)
        return be->gemm_amp(OP, amp, A->tr == CblasTrans, B->tr == CblasTrans, M, N, K, (const float *)pa, A->ld,
                            (const float *)pb, B->ld, 0.0, (float *)pc, N);
    if (be) return be->gemm(OP, dt, A->tr == CblasTrans, B->tr == CblasTrans, M, N, K, pa, A->ld, pb, B->ld, 0.0, pc, N);
    igi_gemm(dt, A->tr == CblasTrans, B->tr == CblasTrans, M, N, K, pa, A->ld, pb, B->ld, 0.0, pc, N);
    return IG_OK;
}

/* If the dims [0, n-1) of t (batch dims and rows) merge into one evenly strided dim,
 * a stack of row-major matrices is one tall row-major matrix: returns its leading
 * dimension, or -1 if the rows are not evenly spaced. Size-1 dims do not count (a row
 * stride of a single-row matrix is never used, so the batch stride decides). */
static int64_t fold_ld(const ig_tensor *t) {
    int n = t->ndim;
    int64_t ld = -1, want = 0;
    for (int d = n - 2; d >= 0; d--) {
        if (t->shape[d] == 1) continue;
        if (ld < 0) {
            ld = t->strides[d];
            want = ld * t->shape[d];
        } else if (t->strides[d] != want) {
            return -1;
        } else {
            want *= t->shape[d];
        }
    }
    int64_t need = t->shape[n - 1] > 1 ? t->shape[n - 1] : 1;
    if (ld < 0) return need; /* a single row in all */
    return ld >= need ? ld : -1;
}

/* ---- backward --------------------------------------------------------------------------- */

static ig_status matmul_backward_products(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    ig_tensor *a = node->inputs[0], *b = node->inputs[1];
    /* Work on the promoted 2-D+ forms: a2 [..,M,K], b2 [..,K,N], g2 [..,M,N]. */
    ig_tensor *a2 = a->ndim == 1 ? ig_unsqueeze(a, 0) : a;
    ig_tensor *b2 = b->ndim == 1 ? ig_unsqueeze(b, 1) : b;
    ig_tensor *g2 = g;
    if (a->ndim == 1) g2 = ig_unsqueeze(g2, g2 ? g2->ndim - (b->ndim == 1 ? 0 : 1) : 0);
    if (b->ndim == 1) g2 = ig_unsqueeze(g2, g2 ? g2->ndim : 0);
    if (!a2 || !b2 || !g2) return ig_last_status();

    if (igi_needs_grad(a)) {
        /* dA = g @ B^T: [..,M,N] x [..,N,K], summed over a's broadcast batch dims. */
        ig_tensor *da = ig_matmul(g2, ig_transpose(b2, -1, -2));
        da = igi_sum_to(da, a2->ndim, a2->shape);
        gin[0] = ig_reshape(da, a->ndim, a->shape);
        if (!gin[0]) return ig_last_status();
    }
    if (igi_needs_grad(b)) {
        ig_tensor *db;
        if (b2->ndim == 2) {
            /* b has no batch dims: fold a's batch into rows, so dB is one GEMM
             * [K, B*M] x [B*M, N] instead of a batch of them and a sum. */
            int64_t K = a2->shape[a2->ndim - 1], N = g2->shape[g2->ndim - 1], rows = 1;
            for (int d = 0; d < a2->ndim - 1; d++) rows *= a2->shape[d];
            ig_tensor *af = a2->ndim == 2 ? a2 : ig_reshape(a2, 2, (const int64_t[]){rows, K});
            ig_tensor *gf = g2->ndim == 2 ? g2 : ig_reshape(g2, 2, (const int64_t[]){rows, N});
            if (K > 1 && N > 1 && b2->strides[0] == 1 && b2->strides[1] == K) {
                /* b is a transposed matrix (linear's W^T): dB in the same layout, as the
                 * transpose of g^T @ A [N, K], so the gradient that reaches W is
                 * contiguous and its accumulation a plain add, not a strided one. */
                db = ig_transpose(ig_matmul(ig_transpose(gf, 0, 1), af), 0, 1);
            } else {
                db = ig_matmul(ig_transpose(af, 0, 1), gf);
            }
        } else {
            /* dB = A^T @ g: [..,K,M] x [..,M,N], summed over b's broadcast batch dims. */
            db = ig_matmul(ig_transpose(a2, -1, -2), g2);
            db = igi_sum_to(db, b2->ndim, b2->shape);
        }
        gin[1] = ig_reshape(db, b->ndim, b->shape);
        if (!gin[1]) return ig_last_status();
    }
    return IG_OK;
}

/* The products run under the forward's autocast mode (the engine runs backward with
 * autocast off), restored afterwards. */
static ig_status matmul_backward(igi_node *node, ig_tensor *g, ig_tensor **gin) {
    ig_amp prev = igi_autocast_exchange((ig_amp)node->amp);
    ig_status st = matmul_backward_products(node, g, gin);
    igi_autocast_exchange(prev);
    return st;
}

/* ---- forward ---------------------------------------------------------------------------- */

static ig_tensor *matmul_product(ig_tensor *a, ig_tensor *b, ig_tensor *ua, ig_tensor *ub, const igi_backend *be,
                                 ig_amp amp);

ig_tensor *ig_matmul(ig_tensor *a, ig_tensor *b) {
    if (!a) {
        igi_error_null(OP, "a");
        return NULL;
    }
    if (!b) {
        igi_error_null(OP, "b");
        return NULL;
    }
    /* bf16 autocast (torch.autocast): f32 operands are converted to bf16, and so is the
     * result; the conversions are recorded, so master weights get f32 gradients. */
    if (igi_autocast_mode() == IG_AMP_BF16 && (a->dtype == IG_F32 || a->dtype == IG_BF16) &&
        (b->dtype == IG_F32 || b->dtype == IG_BF16) && (a->dtype == IG_F32 || b->dtype == IG_F32)) {
        ig_tensor *ab = a->dtype == IG_F32 ? ig_to_dtype(a, IG_BF16) : a;
        ig_tensor *bb = ab && b->dtype == IG_F32 ? ig_to_dtype(b, IG_BF16) : b;
        return ab && bb ? ig_matmul(ab, bb) : NULL;
    }
    if (!igi_check_same_dtype(OP, a, b) || !igi_check_same_device_any(OP, a, b)) return NULL;
    if (igi_bf16_fallback(a, IGI_BF16_GEMM)) { /* through f32 (core/ops/bf16.c) */
        ig_tensor *wa = igi_bf16_widen(a), *wb = wa ? igi_bf16_widen(b) : NULL;
        if (!wb) return NULL;
        ig_amp prev = igi_bf16_enter();
        ig_tensor *r = ig_matmul(wa, wb);
        igi_bf16_leave(prev);
        return igi_bf16_narrow(r);
    }
    const igi_backend *be = NULL;
    if (a->device != IG_CPU && !(be = IGI_BACKEND_WITH(OP, a->device, gemm))) return NULL;
    if (a->dtype != IG_F32 && a->dtype != IG_F64 && a->dtype != IG_BF16) {
        igi_error(IG_ERR_DTYPE, "%s: dtype %s not supported (float32, float64 and bfloat16 only)", OP,
                  ig_dtype_name(a->dtype));
        return NULL;
    }
    char b1[160], b2[160];
    if (a->ndim == 0 || b->ndim == 0) {
        igi_error(IG_ERR_SHAPE, "%s: both arguments need at least 1 dim, got %s x %s", OP,
                  ig_shape_str(a, b1, sizeof b1), ig_shape_str(b, b2, sizeof b2));
        return NULL;
    }
    ig_amp amp = igi_amp_for(a->dtype);
    if (be && amp != IG_AMP_OFF && !IGI_BACKEND_WITH(OP, a->device, gemm_amp)) return NULL;
    /* Autocast on the CPU: the operands' values rounded, in contiguous heap copies that
     * replace a and b below (shapes and messages still come from a and b). */
    ig_tensor *ra = NULL, *rb = NULL;
    if (!be && amp != IG_AMP_OFF) {
        ra = igi_amp_round_copy(OP, a, amp);
        rb = ra ? igi_amp_round_copy(OP, b, amp) : NULL;
        if (!rb) {
            ig_tensor_free(ra);
            return NULL;
        }
    }
    ig_tensor *out = matmul_product(a, b, ra ? ra : a, rb ? rb : b, be, amp);
    ig_tensor_free(ra);
    ig_tensor_free(rb);
    if (!out) return NULL;
    if (out->node) out->node->amp = (uint8_t)amp;
    return out;
}

/* ig_matmul after the argument checks: the product of ua and ub (a and b, or their rounded
 * copies), recorded as the product of a and b. */
static ig_tensor *matmul_product(ig_tensor *a, ig_tensor *b, ig_tensor *ua, ig_tensor *ub, const igi_backend *be,
                                 ig_amp amp) {
    char b1[160], b2[160];

    /* Promoted geometry: A [..,M,K] and B [..,K,N] as header copies on the stack (never
     * escape this function); a 1-D operand gets a size-1 dim whose stride is unused. */
    ig_tensor av = *ua, bv = *ub;
    if (a->ndim == 1) {
        av.ndim = 2;
        av.shape[0] = 1;
        av.shape[1] = a->shape[0];
        av.strides[0] = a->shape[0];
        av.strides[1] = ua->strides[0];
    }
    if (b->ndim == 1) {
        bv.ndim = 2;
        bv.shape[0] = b->shape[0];
        bv.shape[1] = 1;
        bv.strides[0] = ub->strides[0];
        bv.strides[1] = 1;
    }
    int na = av.ndim, nb = bv.ndim;
    int64_t M = av.shape[na - 2], K = av.shape[na - 1], N = bv.shape[nb - 1];
    if (bv.shape[nb - 2] != K) {
        igi_error(IG_ERR_SHAPE, "%s: inner dimensions differ: %s x %s", OP,
                  ig_shape_str(a, b1, sizeof b1), ig_shape_str(b, b2, sizeof b2));
        return NULL;
    }

    /* Broadcast batch shape (dims before the last two). */
    int nab = na - 2, nbb = nb - 2;
    int nbat = nab > nbb ? nab : nbb;
    int64_t bshape[IG_MAX_DIMS], sa[IG_MAX_DIMS], sb[IG_MAX_DIMS];
    for (int i = 0; i < nbat; i++) {
        int ia = i - (nbat - nab), ib = i - (nbat - nbb);
        int64_t da = ia >= 0 ? av.shape[ia] : 1, db = ib >= 0 ? bv.shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            igi_error(IG_ERR_SHAPE, "%s: batch dimensions cannot be broadcast: %s x %s", OP,
                      ig_shape_str(a, b1, sizeof b1), ig_shape_str(b, b2, sizeof b2));
            return NULL;
        }
        bshape[i] = da == 1 ? db : da;
        /* A broadcast dim is walked with stride 0: the operand's matrix is reused. */
        sa[i] = (ia >= 0 && da != 1) ? av.strides[ia] : 0;
        sb[i] = (ib >= 0 && db != 1) ? bv.strides[ib] : 0;
    }

    /* Output shape: batch + [M, N], minus the dims added for 1-D operands. The layout in
     * memory is the same as batch + [M, N] contiguous, since removed dims have size 1. */
    int64_t oshape[IG_MAX_DIMS];
    int ond = 0;
    for (int i = 0; i < nbat; i++) oshape[ond++] = bshape[i];
    if (a->ndim > 1) oshape[ond++] = M;
    if (b->ndim > 1) oshape[ond++] = N;
    ig_tensor *out = igi_tensor_new(OP, ond, oshape, a->dtype, a->device);
    if (!out) return NULL;

    int64_t nbatch = igi_numel(nbat, bshape);
    if (nbatch > 0 && M > 0 && N > 0) {
        if (K == 0) {
            /* An empty sum: zeros, and no BLAS call with degenerate sizes. */
            size_t nbytes = (size_t)(nbatch * M * N) * ig_dtype_size(out->dtype);
            if (!be) {
                memset(igi_data(out), 0, nbytes);
            } else if (be->memset_zero(igi_data(out), nbytes) != IG_OK) {
                ig_tensor_free(out);
                return NULL;
            }
        } else {
            mat_layout LA, LB;
            if (!layout_operand(&av, &LA)) {
                ig_tensor_free(out);
                return NULL;
            }
            if (!layout_operand(&bv, &LB)) {
                ig_tensor_free(LA.tmp);
                ig_tensor_free(out);
                return NULL;
            }
            /* A copy is contiguous over all dims: its batch strides change too. */
            if (LA.tmp)
                for (int i = 0; i < nbat; i++) {
                    int ia = i - (nbat - nab);
                    sa[i] = (ia >= 0 && LA.t->shape[ia] != 1) ? LA.t->strides[ia] : 0;
                }
            if (LB.tmp)
                for (int i = 0; i < nbat; i++) {
                    int ib = i - (nbat - nbb);
                    sb[i] = (ib >= 0 && LB.t->shape[ib] != 1) ? LB.t->strides[ib] : 0;
                }
            /* B is one matrix and A's rows are evenly spaced across the batch: a single
             * [batch*M, K] x [K, N] GEMM (the common Linear-layer case). */
            int64_t fld = (nbat > 0 && nbb == 0 && LA.tr == CblasNoTrans) ? fold_ld(LA.t) : -1;
            bool fold = fld > 0;
            if (fold) LA.ld = fld;
            int64_t rows = fold ? nbatch * M : M;
            if (rows > INT_MAX || N > INT_MAX || K > INT_MAX || LA.ld > INT_MAX || LB.ld > INT_MAX) {
                /* blasint is 32-bit in this OpenBLAS build. */
                igi_error(IG_ERR_SHAPE, "%s: %s x %s is too large for BLAS (sizes above 2^31)", OP,
                          ig_shape_str(a, b1, sizeof b1), ig_shape_str(b, b2, sizeof b2));
                ig_tensor_free(LA.tmp);
                ig_tensor_free(LB.tmp);
                ig_tensor_free(out);
                return NULL;
            }
            size_t es = ig_dtype_size(out->dtype);
            const char *pa = igi_data(LA.t), *pb = igi_data(LB.t);
            char *pc = igi_data(out);
            ig_status st = IG_OK;
            if (fold) {
                st = gemm(be, amp, out->dtype, &LA, pa, &LB, pb, pc, rows, N, K);
            } else {
                int64_t idx[IG_MAX_DIMS] = {0};
                for (int64_t bi = 0; bi < nbatch && st == IG_OK; bi++) {
                    int64_t oa = 0, ob = 0;
                    for (int d = 0; d < nbat; d++) {
                        oa += idx[d] * sa[d];
                        ob += idx[d] * sb[d];
                    }
                    st = gemm(be, amp, out->dtype, &LA, pa + (size_t)oa * es, &LB, pb + (size_t)ob * es,
                              pc + (size_t)(bi * M * N) * es, M, N, K);
                    for (int d = nbat - 1; d >= 0; d--) {
                        if (++idx[d] < bshape[d]) break;
                        idx[d] = 0;
                    }
                }
            }
            ig_tensor_free(LA.tmp);
            ig_tensor_free(LB.tmp);
            if (st != IG_OK) {
                ig_tensor_free(out);
                return NULL;
            }
        }
    }
    ig_tensor *in[2] = {a, b};
    return igi_finish(IGI_OP_MATMUL, matmul_backward, out, in, 2);
}
