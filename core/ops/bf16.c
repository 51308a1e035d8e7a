/*
 * core/ops/bf16.c — how ops take bfloat16 (IG_BF16) tensors without a bf16 kernel.
 *
 * bf16 is autocast's activation dtype: an op that takes it computes in f32 and rounds each
 * result to bf16 once. A device backend may run an op group natively on bf16 (its table's
 * bf16 mask, core/backend_impl.h); everywhere else, the CPU included, the op is composed
 * from recorded conversions:
 *
 *     op(x_bf16)  =  to_bf16(op(to_f32(x_bf16)))
 *
 * The widening is exact, the f32 op is the ordinary one, and the final conversion is the
 * single rounding a native kernel would do, so the values are the same; autograd goes
 * through the conversions (whose gradients convert back), so the gradient of a bf16 input
 * is bf16 and was computed in f32 from the widened output gradient, also as natively. The
 * cost is memory traffic: two more passes and an f32 intermediate per op.
 *
 * The inner f32 op runs with autocast off: under bf16 autocast, matmul and conv2d turn f32
 * operands into bf16 (core/ops/matmul.c, conv.c), which here would recurse.
 */
#include "../backend_impl.h"
#include "../tensor_impl.h"

bool igi_bf16_fallback(const ig_tensor *t, unsigned group) {
    if (!t || t->dtype != IG_BF16) return false;
    if (t->device == IG_CPU) return true;
    const igi_backend *be = igi_backend_peek(t->device);
    return !be || !(be->bf16 & group);
}

ig_tensor *igi_bf16_widen(ig_tensor *t) {
    if (!t || t->dtype != IG_BF16) return t;
    return ig_to_dtype(t, IG_F32);
}

ig_tensor *igi_bf16_narrow(ig_tensor *t) {
    if (!t || t->dtype != IG_F32) return t;
    return ig_to_dtype(t, IG_BF16);
}

ig_amp igi_bf16_enter(void) { return igi_autocast_exchange(IG_AMP_OFF); }

void igi_bf16_leave(ig_amp prev) { igi_autocast_exchange(prev); }
