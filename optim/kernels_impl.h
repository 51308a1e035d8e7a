/*
 * optim/kernels_impl.h — the fused per-parameter update loops, written once and included by
 * optim/optimizer.c twice: with IGI_T float (IGI_SFX f32, IGI_SQRT sqrtf) and with IGI_T
 * double (f64, sqrt). f32 math is done in float, as torch does on CPU; scalars (lr, bias
 * corrections) are computed in double by the caller and rounded to IGI_T once.
 *
 * Each loop walks n contiguous elements of the parameter p, its gradient g and its state
 * buffers (all with p's shape, flattened). The order of operations follows torch.optim's
 * single-tensor implementations so results agree to rounding.
 */
#if !defined(IGI_T) || !defined(IGI_SFX) || !defined(IGI_SQRT)
#error "define IGI_T, IGI_SFX and IGI_SQRT before including optim/kernels_impl.h"
#endif

#define IGI_CAT2(a, b) a##_##b
#define IGI_CAT(a, b) IGI_CAT2(a, b)
#define IGI_FN(name) IGI_CAT(name, IGI_SFX)

/* torch.optim.SGD: d = g + wd*p; buf = d (first step) or momentum*buf + (1-dampening)*d;
 * d = d + momentum*buf (nesterov) or buf; p -= lr*d. buf is NULL when momentum is 0. */
/* The common case (momentum, not the first step, no Nesterov) as its own loop without
 * branches, so the compiler vectorises it (same operations per element, same results). */
IGI_HOT static void IGI_FN(sgd_momentum)(IGI_T *restrict p, const IGI_T *restrict g, IGI_T *restrict buf,
                                         int64_t n, IGI_T lr, IGI_T wd, IGI_T mom, IGI_T keep, bool decay) {
    if (decay) {
        for (int64_t i = 0; i < n; i++) {
            IGI_T d = g[i] + wd * p[i];
            IGI_T b = mom * buf[i] + keep * d;
            buf[i] = b;
            p[i] -= lr * b;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            IGI_T b = mom * buf[i] + keep * g[i];
            buf[i] = b;
            p[i] -= lr * b;
        }
    }
}

static void IGI_FN(sgd_update)(IGI_T *p, const IGI_T *g, IGI_T *buf, int64_t n,
                               const igi_sgd_args *a) {
    const IGI_T lr = (IGI_T)a->lr, wd = (IGI_T)a->weight_decay, mom = (IGI_T)a->momentum;
    const IGI_T keep = (IGI_T)(1.0 - a->dampening);
    const bool decay = a->weight_decay != 0.0;
    if (buf && !a->first && !a->nesterov && p != g && p != buf && g != buf) {
        IGI_FN(sgd_momentum)(p, g, buf, n, lr, wd, mom, keep, decay);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        IGI_T d = g[i];
        if (decay) d += wd * p[i];
        if (buf) {
            IGI_T b = a->first ? d : mom * buf[i] + keep * d;
            buf[i] = b;
            d = a->nesterov ? d + mom * b : b;
        }
        p[i] -= lr * d;
    }
}

/* torch.optim.Adam / AdamW: (AdamW: p *= 1 - lr*wd); (Adam: g += wd*p);
 * m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; (amsgrad: vmax = max(vmax, v), used for v);
 * p -= step_size * m / (sqrt(v)/sqrt(bc2) + eps) with step_size = lr/bc1. vmax may be NULL. */
static void IGI_FN(adam_update)(IGI_T *p, const IGI_T *g, IGI_T *m, IGI_T *v, IGI_T *vmax,
                                int64_t n, const igi_adam_args *a) {
    const IGI_T b1 = (IGI_T)a->beta1, b2 = (IGI_T)a->beta2;
    const IGI_T omb1 = (IGI_T)(1.0 - a->beta1), omb2 = (IGI_T)(1.0 - a->beta2);
    const IGI_T l2 = (IGI_T)a->l2, shrink = (IGI_T)a->shrink, eps = (IGI_T)a->eps;
    const IGI_T step_size = (IGI_T)a->step_size, bc2_sqrt = (IGI_T)a->bc2_sqrt;
    const bool use_l2 = a->l2 != 0.0, use_shrink = a->shrink != 1.0;
    for (int64_t i = 0; i < n; i++) {
        IGI_T pi = p[i];
        if (use_shrink) pi *= shrink;
        IGI_T gi = g[i];
        if (use_l2) gi += l2 * pi;
        IGI_T mi = b1 * m[i] + omb1 * gi;
        IGI_T vi = b2 * v[i] + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        if (vmax) {
            /* torch.maximum propagates NaN; so does this (a NaN in either is kept). */
            IGI_T old = vmax[i];
            if (old > vi || old != old) vi = old;
            vmax[i] = vi;
        }
        IGI_T denom = IGI_SQRT(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
    }
}

/* torch.optim.RMSprop: g += wd*p; sq = alpha*sq + (1-alpha)*g^2;
 * centered: ga = alpha*ga + (1-alpha)*g, avg = sqrt(sq - ga^2) + eps; else sqrt(sq) + eps;
 * momentum: buf = mom*buf + g/avg, p -= lr*buf; else p -= lr*g/avg.
 * ga and buf are NULL when unused. */
static void IGI_FN(rmsprop_update)(IGI_T *p, const IGI_T *g, IGI_T *sq, IGI_T *ga, IGI_T *buf,
                                   int64_t n, const igi_rmsprop_args *a) {
    const IGI_T lr = (IGI_T)a->lr, wd = (IGI_T)a->weight_decay, eps = (IGI_T)a->eps;
    const IGI_T alpha = (IGI_T)a->alpha, oma = (IGI_T)(1.0 - a->alpha), mom = (IGI_T)a->momentum;
    const bool decay = a->weight_decay != 0.0;
    for (int64_t i = 0; i < n; i++) {
        IGI_T gi = g[i];
        if (decay) gi += wd * p[i];
        IGI_T s = alpha * sq[i] + oma * gi * gi;
        sq[i] = s;
        IGI_T avg;
        if (ga) {
            IGI_T gai = alpha * ga[i] + oma * gi;
            ga[i] = gai;
            avg = IGI_SQRT(s - gai * gai) + eps;
        } else {
            avg = IGI_SQRT(s) + eps;
        }
        if (buf) {
            IGI_T b = mom * buf[i] + gi / avg;
            buf[i] = b;
            p[i] -= lr * b;
        } else {
            p[i] -= lr * (gi / avg);
        }
    }
}

#undef IGI_FN
#undef IGI_CAT
#undef IGI_CAT2
