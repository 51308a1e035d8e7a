/*
 * core/rng.c — counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
 *
 * The default generator is (seed, offset). A draw of n numbers uses two 32-bit words per
 * number, so it takes counters offset .. offset + ceil(2n/4) - 1 (each counter gives four
 * words; number i uses words 2i and 2i+1) and advances offset past them.
 * Element i therefore depends only on (seed, offset, i): the same seed gives the same
 * numbers whatever the thread count or the order in which chunks are filled.
 */
#include <math.h>
#include <pthread.h>

#include "tensor_impl.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void ig_philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter_lo, c1 = (uint32_t)(counter_lo >> 32);
    uint32_t c2 = (uint32_t)counter_hi, c3 = (uint32_t)(counter_hi >> 32);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_seed = 0x1234abcdULL;
static uint64_t rng_offset = 0;

void ig_manual_seed(uint64_t seed) {
    pthread_mutex_lock(&rng_lock);
    rng_seed = seed;
    rng_offset = 0;
    pthread_mutex_unlock(&rng_lock);
}

void ig_rng_get_state(uint64_t *seed, uint64_t *offset) {
    pthread_mutex_lock(&rng_lock);
    if (seed) *seed = rng_seed;
    if (offset) *offset = rng_offset;
    pthread_mutex_unlock(&rng_lock);
}

void ig_rng_set_state(uint64_t seed, uint64_t offset) {
    pthread_mutex_lock(&rng_lock);
    rng_seed = seed;
    rng_offset = offset;
    pthread_mutex_unlock(&rng_lock);
}

/* Reserves counters for n 32-bit words; returns the first counter (declared in
 * tensor_impl.h: ops that draw their own numbers, such as dropout, use it too). */
uint64_t igi_rng_reserve(int64_t nwords, uint64_t *seed) {
    pthread_mutex_lock(&rng_lock);
    uint64_t start = rng_offset;
    *seed = rng_seed;
    rng_offset += (uint64_t)(nwords + 3) / 4;
    pthread_mutex_unlock(&rng_lock);
    return start;
}

/* Word i of the stream that starts at counter start. */
static inline uint32_t word_at(uint64_t seed, uint64_t start, int64_t i, uint32_t cache[4],
                               int64_t *cached_block) {
    int64_t blk = i / 4;
    if (blk != *cached_block) {
        ig_philox4x32(seed, 0, start + (uint64_t)blk, cache);
        *cached_block = blk;
    }
    return cache[i % 4];
}

/* Uniform in [0,1) with 24 (f32) or 53 (f64, two words) random bits. */
static ig_tensor *rand_impl(const char *op, int ndim, const int64_t *shape, ig_dtype dt, bool normal) {
    if (!ig_dtype_is_float(dt)) {
        igi_error(IG_ERR_DTYPE, "%s: needs a float dtype, got %s", op, ig_dtype_name(dt));
        return NULL;
    }
    ig_tensor *t = igi_tensor_new(op, ndim, shape, dt, IG_CPU);
    if (!t) return NULL;
    int64_t n = igi_numel(ndim, t->shape);
    /* Two words per element (f64 precision; for normals one word pair feeds Box-Muller). */
    uint64_t seed;
    uint64_t start = igi_rng_reserve(2 * n, &seed);
    uint32_t cache[4];
    int64_t cb = -1;
    char *p = igi_data(t);
    for (int64_t i = 0; i < n; i++) {
        uint32_t w0 = word_at(seed, start, 2 * i, cache, &cb);
        uint32_t w1 = word_at(seed, start, 2 * i + 1, cache, &cb);
        double v;
        if (normal) {
            /* Box-Muller, one value per pair: u1 in (0,1], u2 in [0,1). */
            double u1 = ((double)w0 + 1.0) / 4294967296.0;
            double u2 = (double)w1 / 4294967296.0;
            v = sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
        } else if (dt == IG_F32) {
            v = (double)(w0 >> 8) * (1.0 / 16777216.0);
        } else if (dt == IG_BF16) {
            v = (double)(w0 >> 24) * (1.0 / 256.0); /* 8 bits: exact in bf16, so never rounds up to 1 */
        } else {
            uint64_t bits = ((uint64_t)w0 << 21) ^ (uint64_t)(w1 >> 11);
            v = (double)(bits & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0);
        }
        if (dt == IG_F32) ((float *)p)[i] = (float)v;
        else if (dt == IG_BF16) ((uint16_t *)(void *)p)[i] = igi_bf16_from_f32((float)v);
        else ((double *)p)[i] = v;
    }
    return t;
}

ig_tensor *ig_rand(int ndim, const int64_t *shape, ig_dtype dt) {
    return rand_impl("ig_rand", ndim, shape, dt, false);
}

ig_tensor *ig_randn(int ndim, const int64_t *shape, ig_dtype dt) {
    return rand_impl("ig_randn", ndim, shape, dt, true);
}

ig_tensor *ig_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, ig_dtype dt) {
    if (high <= low) {
        igi_error(IG_ERR_ARG, "ig_randint: empty range [%lld, %lld)", (long long)low, (long long)high);
        return NULL;
    }
    if ((unsigned)dt >= IG_DTYPE_COUNT) {
        igi_error(IG_ERR_DTYPE, "ig_randint: invalid dtype %d", (int)dt);
        return NULL;
    }
    /* The integers each dtype holds exactly (bf16: 8 significant bits). */
    double lo_lim = dt == IG_U8 ? 0 : dt == IG_I32 ? -2147483648.0 : dt == IG_F32 ? -16777216.0
                  : dt == IG_BF16 ? -256.0 : -9.007199254740992e15;
    double hi_lim = dt == IG_U8 ? 256 : dt == IG_I32 ? 2147483648.0 : dt == IG_F32 ? 16777216.0
                  : dt == IG_BF16 ? 256.0 : 9.007199254740992e15;
    if (dt == IG_I64) { lo_lim = -9.3e18; hi_lim = 9.3e18; }
    if ((double)low < lo_lim || (double)high > hi_lim) {
        igi_error(IG_ERR_ARG, "ig_randint: range [%lld, %lld) does not fit %s", (long long)low,
                  (long long)high, ig_dtype_name(dt));
        return NULL;
    }
    ig_tensor *t = igi_tensor_new("ig_randint", ndim, shape, dt, IG_CPU);
    if (!t) return NULL;
    int64_t n = igi_numel(ndim, t->shape);
    uint64_t seed;
    uint64_t start = igi_rng_reserve(2 * n, &seed);
    uint32_t cache[4];
    int64_t cb = -1;
    /* Unsigned arithmetic: high - low overflows int64 for ranges wider than 2^63. */
    uint64_t range = (uint64_t)high - (uint64_t)low;
    size_t es = ig_dtype_size(dt);
    char *p = igi_data(t);
    for (int64_t i = 0; i < n; i++) {
        uint64_t w = ((uint64_t)word_at(seed, start, 2 * i, cache, &cb) << 32) |
                     word_at(seed, start, 2 * i + 1, cache, &cb);
        /* Modulo bias is below 2^-32 relative for ranges under 2^32; fine for sampling. */
        /* low + (w % range) < high, so the sum fits int64; add in uint64 (no signed
         * overflow) and convert back (two's complement, as every target ignis supports). */
        int64_t v = (int64_t)((uint64_t)low + w % range);
        if (dt == IG_I64) *(int64_t *)(p + (size_t)i * es) = v;
        else igi_store(dt, p + (size_t)i * es, (double)v);
    }
    return t;
}
