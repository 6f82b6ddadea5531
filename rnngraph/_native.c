/* rnngraph's native time loops: whole sequences without gradients, in one call.
 *
 * A time step of a 500-unit reservoir is a few microseconds of arithmetic, but a torch
 * call costs several microseconds of dispatch, so a Python loop of torch calls is
 * dominated by overhead. These loops run all steps of a chunk in C. They are used
 * only where autograd is off and the result is the same as the generic loop's up to
 * rounding (the loops may sum in a different order).
 *
 * Compiled twice by rnngraph/_native.py, with REAL = double and REAL = float, without
 * finite-math assumptions: NaN and infinities propagate as in the torch path (each
 * function says where that takes care). Arrays are C-contiguous and row-major; CSR
 * indices are int32. The Python side checks every array's shape and dtype before a call.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <tgmath.h> /* tanh is tanhf for float */
#ifdef RNNGRAPH_LIBMVEC
/* glibc's vector tanh (libmvec, x86-64, glibc >= 2.35), which math.h declares only under
 * -ffast-math: the loops over units call it 4 or 8 lanes at a time. Its results for NaN
 * and +-inf are the scalar tanh's (NaN, +-1). */
__attribute__((simd("notinbranch"))) double(tanh)(double);
__attribute__((simd("notinbranch"))) float(tanhf)(float);
#endif
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define HAVE_AVX2 1
#endif

#ifndef REAL
#define REAL double
#define REAL_DOUBLE 1
#endif
typedef REAL real;

/* y = A x for a CSR matrix A (n rows), x (in L1) read through the column indices.
 *
 * With AVX2 the products of 8 nonzeros at a time are two vector FMAs of 4 lanes on values
 * gathered by scalar loads and lane inserts: two loads per nonzero (index, x) instead of
 * three, and faster here than the vector gather instruction (2x slower than scalar code).
 * Otherwise scalar loads with eight partial sums per row. */
#if defined(HAVE_AVX2) && defined(REAL_DOUBLE)
typedef __m256d vec4;
#define VZERO _mm256_setzero_pd()
#define VLOAD _mm256_loadu_pd
#define VFMA _mm256_fmadd_pd
#define VADD _mm256_add_pd
static inline vec4 gather4(const double *x, const int32_t *ix)
{
    const __m128d lo = _mm_loadh_pd(_mm_load_sd(x + ix[0]), x + ix[1]);
    const __m128d hi = _mm_loadh_pd(_mm_load_sd(x + ix[2]), x + ix[3]);
    return _mm256_insertf128_pd(_mm256_castpd128_pd256(lo), hi, 1);
}
static inline double vsum(vec4 a)
{
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}
#elif defined(HAVE_AVX2)
typedef __m128 vec4;
#define VZERO _mm_setzero_ps()
#define VLOAD _mm_loadu_ps
#define VFMA _mm_fmadd_ps
#define VADD _mm_add_ps
static inline vec4 gather4(const float *x, const int32_t *ix)
{
    return _mm_set_ps(x[ix[3]], x[ix[2]], x[ix[1]], x[ix[0]]);
}
static inline float vsum(vec4 a)
{
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    return _mm_cvtss_f32(_mm_add_ss(a, _mm_shuffle_ps(a, a, 1)));
}
#endif

#ifdef HAVE_AVX2
static void csr_matvec(int64_t n, const int32_t *restrict indptr,
                       const int32_t *restrict indices, const real *restrict vals,
                       const real *restrict x, real *restrict y)
{
    for (int64_t i = 0; i < n; ++i) {
        vec4 a0 = VZERO, a1 = VZERO;
        int32_t k = indptr[i];
        const int32_t end = indptr[i + 1];
        for (; k + 8 <= end; k += 8) {
            a0 = VFMA(VLOAD(vals + k), gather4(x, indices + k), a0);
            a1 = VFMA(VLOAD(vals + k + 4), gather4(x, indices + k + 4), a1);
        }
        real acc = vsum(VADD(a0, a1));
        for (; k < end; ++k)
            acc += vals[k] * x[indices[k]];
        y[i] = acc;
    }
}
#else
__attribute__((optimize("no-tree-vectorize"))) static void
csr_matvec(int64_t n, const int32_t *restrict indptr, const int32_t *restrict indices,
           const real *restrict vals, const real *restrict x, real *restrict y)
{
    for (int64_t i = 0; i < n; ++i) {
        real a[8] = {0};
        int32_t k = indptr[i];
        const int32_t end = indptr[i + 1];
        for (; k + 8 <= end; k += 8)
            for (int j = 0; j < 8; ++j) /* unrolled by the compiler, kept scalar */
                a[j] += vals[k + j] * x[indices[k + j]];
        for (; k < end; ++k)
            a[0] += vals[k] * x[indices[k]];
        y[i] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    }
}
#endif

/* torch.lerp(a, b, w): a + w (b - a) for |w| < 0.5, else b - (b - a)(1 - w); the two
 * forms differ for infinite a or b (inf + w (x - inf) is NaN, x - (x - inf)(1 - w) is inf) */
static inline real lerp(real a, real b, real w)
{
    return fabs(w) < (real)0.5 ? a + w * (b - a) : b - (b - a) * (1 - w);
}

static int all_finite(int64_t n, const real *restrict x)
{
    int ok = 1;
    for (int64_t j = 0; j < n; ++j)
        ok &= isfinite(x[j]) != 0;
    return ok;
}

/* a . b over n values, in 8 partial sums (lane k sums the terms j = k mod 8, then the
 * lanes are added pairwise), so that the compiler keeps the lanes in vector registers
 * without reordering any sum itself: the build assumes no fast math. One sum in order
 * would be a chain of n dependent additions; this is several times faster for n >= 64. */
static real dot(int64_t n, const real *restrict a, const real *restrict b)
{
    real acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; ++k)
            acc[k] += a[j + k] * b[j + k];
    real s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < n; ++j)
        s += a[j] * b[j];
    return s;
}

/* u = W x for dense W (n, n), or for the CSR matrix (indptr, indices, vals) of its nonzeros
 * when indptr is not NULL. The CSR product skips W's zeros, where the dense one gives
 * 0 * inf = NaN: with both, a step whose x is not all finite takes the dense product. */
static void recurrent(int64_t n, const real *restrict W, const int32_t *restrict indptr,
                      const int32_t *restrict indices, const real *restrict vals,
                      const real *restrict x, real *restrict u)
{
    if (indptr && (!W || all_finite(n, x))) {
        csr_matvec(n, indptr, indices, vals, x, u);
        return;
    }
    for (int64_t i = 0; i < n; ++i)
        u[i] = dot(n, W + i * n, x);
}

/* A leaky integrator with a tanh output and one recurrent edge (RectiPy's leaky-integrator
 * template, rnngraph's "li"), for one sample. The linear ODE tau v' = -v + tau (k r_in +
 * I_ext + eta) with its input held over the step has the affine one-step map
 * v <- g v + (1 - g) tau d of every explicit integrator (g per integrator, d the drive),
 * so with per-unit constants g, c_rec = (1 - g) tau k, c_ext = (1 - g) tau and c0:
 *
 *     v(t) = g v(t-1) + c_rec (W r(t-1)) + c_ext P(t) + c0,    r(t) = tanh(v(t))
 *
 * Arguments as for esn_run (below) with m = 1; v is the state (in/out), prev
 * what the recurrent edge reads at the first step, X (n_steps, n) receives r(t) and V
 * (n_steps, n) v(t). An infinite v gives NaN at the next step, as every integrator's torch
 * step does (v + h (-v / tau + ...) is inf - inf).
 */
void li_run(int64_t n_steps, int64_t n, const real *restrict P, int64_t p_stride,
            const real *restrict W, const int32_t *restrict indptr,
            const int32_t *restrict indices, const real *restrict vals,
            const real *restrict g, const real *restrict c_rec, const real *restrict c_ext,
            const real *restrict c0, real *restrict v, const real *prev, real *X, real *V,
            real *restrict u)
{
    for (int64_t t = 0; t < n_steps; ++t) {
        const real *p = P + t * p_stride;
        real *xt = X + t * n, *vt = V + t * n;
        recurrent(n, W, indptr, indices, vals, prev, u);
        for (int64_t i = 0; i < n; ++i) {
            const real vi = g[i] * v[i] + c_rec[i] * u[i] + c_ext[i] * p[i] + c0[i];
            v[i] = isinf(v[i]) ? (real)NAN : vi;
            vt[i] = v[i];
            xt[i] = tanh(v[i]);
        }
        prev = xt;
    }
}

/* A leaky map on the input read out through a gain and a shift per unit (reservoirpy's
 * reservoir with intrinsic plasticity, rnngraph's GainMap), for one sample:
 *
 *     r(t) = (1 - lr) r(t-1) + lr (W x(t-1) + P(t) + c),    x(t) = f(a r(t) + b)
 *
 * with f = tanh, or the logistic sigmoid 1 / (1 + exp(-z)) when sigmoid is 1. With rule
 * not NULL ({eta, c0, c1, c2, c3}), every step from step `from` on then adds the rule's
 * step to a and b (in place), read by the next step:
 *
 *     db = c0 + x (c1 + x (c2 + x c3)),    a += eta / a + db r,    b += db.
 *
 * Arguments as for li_run; r is the state (in/out), X (n_steps, n) receives x(t) and V
 * (n_steps, n) r(t). The arithmetic is the torch step's, term by term, so NaN and
 * infinities come out as there.
 */
void gain_run(int64_t n_steps, int64_t n, const real *restrict P, int64_t p_stride,
              const real *restrict W, const int32_t *restrict indptr,
              const int32_t *restrict indices, const real *restrict vals,
              const real *restrict lr, const real *restrict c, real *restrict a,
              real *restrict b, int64_t sigmoid, const real *restrict rule, int64_t from,
              real *restrict r, const real *prev, real *X, real *V, real *restrict u)
{
    for (int64_t t = 0; t < n_steps; ++t) {
        const real *p = P + t * p_stride;
        real *xt = X + t * n, *vt = V + t * n;
        recurrent(n, W, indptr, indices, vals, prev, u);
        for (int64_t i = 0; i < n; ++i) {
            r[i] = (1 - lr[i]) * r[i] + lr[i] * ((u[i] + p[i]) + c[i]);
            vt[i] = r[i];
            const real z = a[i] * r[i] + b[i];
            xt[i] = sigmoid ? 1 / (1 + exp(-z)) : tanh(z);
        }
        if (rule && t >= from)
            for (int64_t i = 0; i < n; ++i) {
                const real x = xt[i];
                const real db = rule[1] + x * (rule[2] + x * (rule[3] + x * rule[4]));
                a[i] += rule[0] / a[i] + db * r[i];
                b[i] += db;
            }
        prev = xt;
    }
}

/* One recursive-least-squares update of a readout from one sample, in place. P is
 * symmetric and only its upper triangle (j >= i) is read and written; the caller
 * mirrors it when it needs the whole matrix. With features q = [r, 1] (the 1 when the
 * readout has a bias, has_bias = 1) and target f:
 *
 *     e = w r + b - f,   k = P q,   c = 1 / (lambda + q.k)
 *     P <- (P - c k k^T) / lambda,   [w, b] <- [w, b] - c e k^T
 *
 * f_dim        F = n + has_bias, the size of P
 * n, n_out     features and outputs; w is (n_out, n), b (n_out,) or NULL
 * r, f         (n,) features and (n_out,) target
 * err          out: (n_out,) the a-priori error e
 * k            (F,) scratch
 */
/* One least-mean-squares (delta rule) update of a readout from one sample, in place:
 *
 *     e = W r + b - y,    W <- W - rate e r^T,    b <- b - rate e   (b NULL: no bias)
 *
 * W (n_out, n), b (n_out,), r (n,), y (n_out,); e (n_out,) receives the a-priori error. */
void lms_update(int64_t n_out, int64_t n, real *restrict W, real *restrict b,
                const real *restrict r, const real *restrict y, real rate, real *restrict e)
{
    for (int64_t k = 0; k < n_out; ++k)
        e[k] = dot(n, W + k * n, r) + (b ? b[k] : 0) - y[k];
    for (int64_t k = 0; k < n_out; ++k) {
        const real s = rate * e[k];
        real *restrict w = W + k * n;
        for (int64_t j = 0; j < n; ++j)
            w[j] -= s * r[j];
        if (b)
            b[k] -= s;
    }
}

/* m LMS updates one after another (lms_update on each): sample u's features from
 * R + u rs, its target from Y + u ys, its rate rates[u]; its a-priori error into E + u n_out. */
void lms_run(int64_t m, int64_t n_out, int64_t n, real *restrict W, real *restrict b,
             const real *R, int64_t rs, const real *Y, int64_t ys, const real *rates, real *E)
{
    for (int64_t u = 0; u < m; ++u)
        lms_update(n_out, n, W, b, R + u * rs, Y + u * ys, rates[u], E + u * n_out);
}

void rls_update(int64_t f_dim, int64_t n, int64_t n_out, real *restrict P,
                const real *restrict r, real *restrict w, real *restrict b,
                const real *restrict f, real *restrict err, real lambda, real *restrict k)
{
    for (int64_t o = 0; o < n_out; ++o) {
        const real *wo = w + o * n;
        real acc = b ? b[o] : 0;
        for (int64_t j = 0; j < n; ++j)
            acc += wo[j] * r[j];
        err[o] = acc - f[o];
    }
    /* k = P q from the upper triangle: row i adds P_ij q_j to k_i and P_ij q_i to k_j */
    for (int64_t i = 0; i < f_dim; ++i)
        k[i] = 0;
    for (int64_t i = 0; i < f_dim; ++i) {
        const real *row = P + i * f_dim;
        const real qi = i < n ? r[i] : 1;
        real acc = row[i] * qi;
        for (int64_t j = i + 1; j < n; ++j) {
            acc += row[j] * r[j];
            k[j] += row[j] * qi;
        }
        if (b && i < n) { /* the bias column j = n, q_n = 1 */
            acc += row[n];
            k[n] += row[n] * qi;
        }
        k[i] += acc;
    }
    real qk = 0;
    for (int64_t i = 0; i < n; ++i)
        qk += r[i] * k[i];
    if (b)
        qk += k[n];
    const real c = 1 / (lambda + qk), inv = 1 / lambda;
    for (int64_t i = 0; i < f_dim; ++i) {
        real *row = P + i * f_dim;
        const real cki = c * k[i];
        for (int64_t j = i; j < f_dim; ++j)
            row[j] = (row[j] - cki * k[j]) * inv;
    }
    for (int64_t o = 0; o < n_out; ++o) {
        real *wo = w + o * n;
        const real ce = c * err[o];
        for (int64_t j = 0; j < n; ++j)
            wo[j] -= ce * k[j];
        if (b)
            b[o] -= ce * k[n];
    }
}

/* The leaky-tanh update of a batch, elementwise (the recurrent product is done before,
 * by a BLAS GEMM): for m rows of n units,
 *
 *     x_new = lerp(x, tanh(u + b), lr)     (torch.lerp, see lerp above)
 *
 * x_new, x, u  (m, n); lr, b (n,)
 */
void leaky_tanh(int64_t m, int64_t n, real *restrict x_new, const real *restrict x,
                const real *restrict u, const real *restrict lr, const real *restrict b)
{
    for (int64_t r = 0; r < m; ++r) {
        const int64_t o = r * n;
        for (int64_t i = 0; i < n; ++i)
            x_new[o + i] = lerp(x[o + i], tanh(u[o + i] + b[i]), lr[i]);
    }
}

/* One no-gradient step of a LIF-type membrane (rnngraph.nodes._spiking.lif_kernel_nograd)
 * for m rows of n units, elementwise, with per-unit constants:
 *
 *     u = u0 + r_m in,   v' = lerp(u, v, g)           (held at v while ref > 0)
 *     v' -= drop z      (subtract reset of the previous spike, when subtract = 1)
 *     z' = v' > th and not held;  v' = v_reset where z' (value reset, subtract = 0)
 *     ref' = hold where z', else clamp(ref - 1, min 0)
 *
 * lerp is torch's; with refractory = 0 ref is neither read nor changed (ref' = ref), as in
 * the torch step. NaN as in torch: NaN > 0 is false (not held), clamp keeps a NaN.
 */
void lif_step(int64_t m, int64_t n, const real *restrict in, const real *restrict v,
              const real *restrict z, const real *restrict ref, real *restrict v_out,
              real *restrict z_out, real *restrict ref_out, const real *restrict u0,
              const real *restrict r_m, const real *restrict g, const real *restrict th,
              const real *restrict v_reset, const real *restrict drop,
              const real *restrict hold, int64_t subtract, int64_t refractory)
{
    const real keep = subtract ? 0 : 1; /* reset by subtraction, or to v_reset */
    for (int64_t r = 0; r < m; ++r) { /* row pointers, no branches: the inner loop vectorises */
        const real *restrict in_r = in + r * n, *restrict v_r = v + r * n;
        const real *restrict z_r = z + r * n, *restrict ref_r = ref + r * n;
        real *restrict v_o = v_out + r * n, *restrict z_o = z_out + r * n;
        real *restrict ref_o = ref_out + r * n;
        for (int64_t i = 0; i < n; ++i) {
            const real vv = v_r[i], u = u0[i] + r_m[i] * in_r[i], rf = ref_r[i];
            const int held = refractory && rf > 0;
            real vi = held ? vv : lerp(u, vv, g[i]);
            if (subtract)
                vi = vi - z_r[i] * drop[i];
            const real spiked = vi > th[i] && !held ? 1 : 0;
            v_o[i] = spiked * keep > 0 ? v_reset[i] : vi;
            z_o[i] = spiked;
            const real r1 = rf - 1;
            ref_o[i] = !refractory ? rf : spiked > 0 ? hold[i] : r1 < 0 ? 0 : r1;
        }
    }
}

/* out += z W^T for spikes z (m, n_in), mostly zeros, and Wt = W^T (n_in, n_out): only the
 * rows of Wt whose presynaptic unit spiked (z != 0, NaN included) are added (event-driven
 * input). The result is the dense product's, summed in another order, for finite weights
 * (a silent unit's row is skipped, where the dense product gives 0 * inf = NaN).
 */
void event_add(int64_t m, int64_t n_in, int64_t n_out, const real *restrict z,
               const real *restrict Wt, real *restrict out)
{
    for (int64_t r = 0; r < m; ++r) {
        const real *restrict z_r = z + r * n_in;
        real *restrict o = out + r * n_out;
        for (int64_t j = 0; j < n_in; ++j) {
            const real s = z_r[j];
            if (s == 0)
                continue;
            const real *restrict w = Wt + j * n_out;
            for (int64_t i = 0; i < n_out; ++i)
                o[i] += s * w[i];
        }
    }
}

/* out = lerp(x, tanh(u + p + b), lr) for m rows of n units; row r reads lr and b at
 * offset r * cs (cs = 0: one vector for all rows, cs = n: one per row) */
static void leaky_rows(int64_t m, int64_t n, const real *restrict x, const real *restrict u,
                       const real *restrict p, const real *restrict lr, const real *restrict b,
                       int64_t cs, real *restrict out)
{
    for (int64_t r = 0; r < m; ++r) {
        const real *restrict x_r = x + r * n, *restrict u_r = u + r * n, *restrict p_r = p + r * n;
        const real *restrict lr_r = lr + r * cs, *restrict b_r = b + r * cs;
        real *restrict o = out + r * n;
        for (int64_t i = 0; i < n; ++i)
            o[i] = lerp(x_r[i], tanh(u_r[i] + p_r[i] + b_r[i]), lr_r[i]);
    }
}

/* The batched CSR product works on the rows in blocks of RB (two vectors of GCC's vector
 * type, 32 bytes: 8 doubles or 16 floats), transposed: block k holds XT_k (n, RB), unit j's
 * values of its rows side by side. A block is 32 KiB for n = 500 (it stays in L1), each
 * nonzero of W is read once per block, and the sums are held in registers, in 4 interleaved
 * partial sums (nonzero k goes to sum k mod 4, added at the end) so that 8 independent
 * chains keep the FMA units busy. */
typedef real rvec __attribute__((vector_size(32)));
#define LANES ((int64_t)(sizeof(rvec) / sizeof(real)))
#define RB (2 * LANES)

static inline rvec load(const real *p)
{
    rvec v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* UT = W XT for the blocked transposed rows (see above) of the m rows' blocks. Each block
 * is summed H vectors wide (H = 2, or 1 for a last block of at most LANES rows, whose other
 * half is padding): lane by lane the same sums in the same order either way. */
static inline __attribute__((always_inline)) void csr_block(int64_t n, int H, const int32_t *restrict indptr,
                             const int32_t *restrict indices, const real *restrict vals,
                             const real *restrict xb, real *restrict ub)
{
    for (int64_t i = 0; i < n; ++i) {
        rvec acc[4][2] = {{{0}}};
        int32_t k = indptr[i];
        const int32_t end = indptr[i + 1];
        for (; k + 4 <= end; k += 4)
            for (int s = 0; s < 4; ++s) {
                const rvec v = (rvec){0} + vals[k + s];
                const real *restrict xj = xb + (int64_t)indices[k + s] * RB;
                for (int h = 0; h < H; ++h)
                    acc[s][h] += v * load(xj + h * LANES);
            }
        for (; k < end; ++k) {
            const rvec v = (rvec){0} + vals[k];
            const real *restrict xj = xb + (int64_t)indices[k] * RB;
            for (int h = 0; h < H; ++h)
                acc[0][h] += v * load(xj + h * LANES);
        }
        for (int h = 0; h < 2; ++h) { /* a padding half is written as zeros */
            const rvec sum = (acc[0][h] + acc[1][h]) + (acc[2][h] + acc[3][h]);
            memcpy(ub + i * RB + h * LANES, &sum, sizeof sum);
        }
    }
}

static void csr_rows(int64_t m, int64_t n, const int32_t *restrict indptr,
                     const int32_t *restrict indices, const real *restrict vals,
                     const real *restrict xt, real *restrict ut)
{
    for (int64_t blk = 0; blk * RB < m; ++blk) {
        const real *restrict xb = xt + blk * n * RB;
        real *restrict ub = ut + blk * n * RB;
        if (m - blk * RB > LANES)
            csr_block(n, 2, indptr, indices, vals, xb, ub);
        else
            csr_block(n, 1, indptr, indices, vals, xb, ub);
    }
}

/* rows r < min(rows, RB) of the block xb (n, RB) into y (row stride n): y[r n + i] =
 * xb[i RB + r], unit by unit (each unit's RB values are adjacent in xb, and the rows'
 * writes advance together) */
static void from_block(int64_t rows, int64_t n, const real *restrict xb, real *restrict y)
{
    rows = rows < RB ? rows : RB;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t r = 0; r < rows; ++r)
            y[r * n + i] = xb[i * RB + r];
}

/* the inverse: rows r < min(rows, RB) of y (row stride n) into the block xb (n, RB); the
 * block's other rows stay as they are */
static void into_block(int64_t rows, int64_t n, const real *restrict y, real *restrict xb)
{
    rows = rows < RB ? rows : RB;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t r = 0; r < rows; ++r)
            xb[i * RB + r] = y[r * n + i];
}

/* the m rows x (m, n) into the blocked transposed layout of csr_rows, rows past m zero */
static void to_blocks(int64_t m, int64_t n, const real *restrict x, real *restrict xt)
{
    const int64_t nb = (m + RB - 1) / RB;
    memset(xt, 0, (size_t)(nb * RB * n) * sizeof(real));
    for (int64_t blk = 0; blk < nb; ++blk)
        into_block(m - blk * RB, n, x + blk * RB * n, xt + blk * n * RB);
}

/* the m rows (m, n) back from the blocked layout ut into y */
static void from_blocks(int64_t m, int64_t n, const real *restrict ut, real *restrict y)
{
    for (int64_t blk = 0; blk * RB < m; ++blk)
        from_block(m - blk * RB, n, ut + blk * n * RB, y + blk * RB * n);
}

/* U = X W^T for m rows X (m, n) of the recurrent input: row by row for m = 1 or a dense
 * product; for CSR weights and m > 1 as one sparse-times-dense product on the transposed
 * rows (scratch: 2 RB n per block of RB rows, see csr_rows). Row r is then
 * multiplied by gain[r] when gain is not NULL (rows that share W up to a scale). */
static void recurrent_rows(int64_t m, int64_t n, const real *restrict W,
                           const int32_t *restrict indptr, const int32_t *restrict indices,
                           const real *restrict vals, const real *restrict x,
                           real *restrict u, real *restrict scratch, const real *restrict gain)
{
    if (m == 1 || !indptr || (W && !all_finite(m * n, x))) {
        for (int64_t r = 0; r < m; ++r)
            recurrent(n, W, indptr, indices, vals, x + r * n, u + r * n);
    } else {
        const int64_t nb = (m + RB - 1) / RB;
        to_blocks(m, n, x, scratch);
        csr_rows(m, n, indptr, indices, vals, scratch, scratch + nb * RB * n);
        from_blocks(m, n, scratch + nb * RB * n, u);
    }
    for (int64_t r = 0; r < m && gain; ++r)
        for (int64_t i = 0; i < n; ++i)
            u[r * n + i] *= gain[r];
}

/* The leaky-tanh (echo-state) map with one recurrent edge, for m samples:
 *
 *     U(t) = g * (X(t-1) W^T),    X(t) = M(t) + lr * (tanh(U(t) + P(t) + b) - M(t))
 *
 * with M(t) = X(t-1), or X(t-1) O^T for a matrix O that mixes the previous values (ES2N's
 * (1 - lr) O x(t-1) + lr tanh(...)).
 *
 * n_steps, m, n   steps in this chunk, samples (rows), units
 * P            the input projected by the static edges (all steps at once), step t's m
 *              rows from P + t p_stride (p_stride = 0: one block repeated)
 * W            dense W (or NULL) and/or the CSR weights (indptr, indices, vals: n + 1, nnz,
 *              nnz; indptr NULL for none), the product computed here (see recurrent_rows)
 * lr, b        leak rate and bias (node bias plus recurrent-edge bias): (n,) for all rows
 *              when cs = 0, (m, n) one per row when cs = n
 * g            (m,) a gain per row on the recurrent product, or NULL for 1
 * x            (m, n) the state x(t-1) on entry, x(n_steps - 1) on return
 * prev         (m, n) what the recurrent edge reads at the first step (its delay line)
 * X, xs       out: x(t) for every step, step t's m rows from X + t xs (xs = m n for an
 *              (n_steps, m, n) array; more for m rows of a larger batch)
 * u, scratch   (m, n) and (2 m n) scratch
 * O, v         (n, n) the mixing matrix (or NULL) and (m, n) scratch for X(t-1) O^T
 * c            the width of a linear readout fed back into the recurrent input (0: none;
 *              m = 1 only): U(t) += z(t-1) A^T with z(t) = X(t) R^T + rb, the readout
 * A, R, rb     (n, c) feedback weights, (c, n) readout weights, (c,) readout bias (or NULL)
 * z            (1, c) the fed-back readout the first step reads on entry, z(n_steps - 1)
 *              on return
 */
/* O x for the dense (n, n) O into v, returning v; x itself when O is NULL */
static const real *mixed(int64_t n, const real *restrict O, const real *x, real *restrict v)
{
    if (!O)
        return x;
    for (int64_t i = 0; i < n; ++i)
        v[i] = dot(n, O + i * n, x);
    return v;
}

/* esn_rows's loop for m > 1 rows and CSR weights alone: the rows stay in csr_rows's blocked
 * transposed layout from step to step (the leaky map writes each new row there too), so
 * that a step is one product and one pass over the rows. */
static void esn_blocked(int64_t n_steps, int64_t m, int64_t n, const real *P, int64_t p_stride,
                        const int32_t *restrict indptr, const int32_t *restrict indices,
                        const real *restrict vals, const real *restrict lr,
                        const real *restrict b, int64_t cs, const real *restrict g, real *x,
                        const real *prev, real *X, int64_t xs, real *restrict u,
                        real *restrict scratch, const real *restrict O, real *restrict v)
{
    const int64_t nb = (m + RB - 1) / RB;
    real *restrict xt = scratch, *restrict ut = scratch + nb * RB * n;
    to_blocks(m, n, prev, xt);
    for (int64_t t = 0; t < n_steps; ++t) {
        const real *x0 = t ? X + (t - 1) * xs : x;
        real *xo = X + t * xs;
        csr_rows(m, n, indptr, indices, vals, xt, ut);
        from_blocks(m, n, ut, u); /* the products back into rows */
        for (int64_t r = 0; r < m; ++r) {
            real *restrict ur = u + r * n;
            for (int64_t i = 0; i < n && g; ++i)
                ur[i] *= g[r];
            leaky_rows(1, n, mixed(n, O, x0 + r * n, v + r * n), ur, P + t * p_stride + r * n,
                       lr + r * cs, b + r * cs, 0, xo + r * n);
        }
        /* the new rows into the blocks, whose padding rows stay zero */
        for (int64_t blk = 0; blk < nb; ++blk)
            into_block(m - blk * RB, n, xo + blk * RB * n, xt + blk * n * RB);
    }
    if (n_steps > 0)
        memcpy(x, X + (n_steps - 1) * xs, (size_t)(m * n) * sizeof(real));
}

static void esn_rows(int64_t n_steps, int64_t m, int64_t n, const real *P, int64_t p_stride,
                     const real *W, const int32_t *restrict indptr,
                     const int32_t *restrict indices, const real *restrict vals,
                     const real *restrict lr, const real *restrict b, int64_t cs,
                     const real *restrict g, real *x, const real *prev, real *X, int64_t xs,
                     real *restrict u, real *restrict scratch, const real *restrict O,
                     real *restrict v, int64_t c, const real *restrict A,
                     const real *restrict R, const real *restrict rb, real *restrict z)
{
    if (m > 1 && indptr && !W && !c) {
        esn_blocked(n_steps, m, n, P, p_stride, indptr, indices, vals, lr, b, cs, g, x, prev, X,
                    xs, u, scratch, O, v);
        return;
    }
    for (int64_t t = 0; t < n_steps; ++t) {
        const real *x0 = t ? X + (t - 1) * xs : x; /* x(t-1): the state is the output */
        real *xt = X + t * xs;
        recurrent_rows(m, n, W, indptr, indices, vals, prev, u, scratch, g);
        for (int64_t i = 0; i < n && c; ++i)
            u[i] += dot(c, A + i * c, z);
        for (int64_t r = 0; r < m && O; ++r)
            mixed(n, O, x0 + r * n, v + r * n);
        leaky_rows(m, n, O ? v : x0, u, P + t * p_stride, lr, b, cs, xt);
        for (int64_t k = 0; k < c; ++k)
            z[k] = dot(n, R + k * n, xt) + (rb ? rb[k] : 0);
        prev = xt;
    }
    if (n_steps > 0)
        memcpy(x, X + (n_steps - 1) * xs, (size_t)(m * n) * sizeof(real));
}

/* esn_run: the rows [bounds[k], bounds[k + 1]) of each of the `groups` groups run as one
 * loop each (esn_rows), the groups in parallel in OpenMP threads when the library is built
 * with it: the threads of torch's own OpenMP runtime, so that none waits on another's
 * spinning workers. Rows are independent, so the result is the same in any split. Each
 * group's scratch is 2 RB n per block of RB of its rows, one after another; P, lr, b and g
 * are read at the group's first row (P: at row offset r n also with p_stride 0, an (m, n)
 * block), v (the mixing scratch) likewise when O is given. */
void esn_run(int64_t n_steps, int64_t m, int64_t n, const real *P, int64_t p_stride,
             const real *W, const int32_t *indptr, const int32_t *indices, const real *vals,
             const real *lr, const real *b, int64_t cs, const real *g, real *x,
             const real *prev, real *X, int64_t xs, real *u, real *scratch, const real *O,
             real *v, int64_t c, const real *A, const real *R, const real *rb, real *z,
             int64_t groups, const int64_t *bounds)
{
    (void)m;
#pragma omp parallel for num_threads(groups) schedule(static, 1) if (groups > 1)
    for (int64_t k = 0; k < groups; ++k) {
        const int64_t r0 = bounds[k], mk = bounds[k + 1] - r0;
        int64_t off = 0;
        for (int64_t j = 0; j < k; ++j)
            off += 2 * RB * ((bounds[j + 1] - bounds[j] + RB - 1) / RB) * n;
        esn_rows(n_steps, mk, n, P + r0 * n, p_stride, W, indptr, indices, vals, lr + r0 * cs,
                 b + r0 * cs, cs, g ? g + r0 : NULL, x + r0 * n, prev + r0 * n, X + r0 * n, xs,
                 u + r0 * n, scratch + off, O, O ? v + r0 * n : v, c, A, R, rb, z);
    }
}
