/* rnngraph's native time loops: whole sequences without gradients, in one call.
 *
 * A time step of a 500-unit reservoir is a few microseconds of arithmetic, but a torch
 * call costs several microseconds of dispatch, so a Python loop of torch calls is
 * dominated by overhead. These loops run all steps of a chunk in C. They are used
 * only where autograd is off and the result is the same as the generic loop's up to
 * rounding (the loops may sum in a different order).
 *
 * Compiled twice by rnngraph/network/_native.py, with REAL = double and REAL = float.
 * Arrays are C-contiguous and row-major; indices are int64 (torch's CSR layout).
 */
#include <stdint.h>
#include <tgmath.h> /* tanh is tanhf for float */

#ifndef REAL
#define REAL double
#endif
typedef REAL real;

/* The leaky-tanh (echo-state) map with one recurrent edge, for one sample:
 *
 *     u(t) = P(t) + W x(t-1) + b
 *     x(t) = x(t-1) + lr * (tanh(u(t)) - x(t-1))
 *
 * n_steps, n   steps in this chunk, units
 * P            (n_steps, n) the input projected by the static edges (all steps at once),
 *              or one row repeated when p_stride = 0
 * W            (n, n) dense recurrent weights (row i feeds unit i), or NULL for CSR:
 * indptr, indices, vals   the CSR recurrent weights (n + 1, nnz, nnz)
 * lr, b        (n,) leak rate and bias (node bias plus recurrent-edge bias)
 * x            (n,) the state x(t-1) on entry, x(n_steps - 1) on return
 * prev         (n,) what the recurrent edge reads at the first step (its delay line)
 * X            (n_steps, n) out: x(t) for every step
 * u            (n,) scratch
 */
void esn_run(int64_t n_steps, int64_t n, const real *P, int64_t p_stride, const real *W,
             const int64_t *indptr, const int64_t *indices, const real *vals, const real *lr,
             const real *b, real *x, const real *prev, real *X, real *u)
{
    for (int64_t t = 0; t < n_steps; ++t) {
        const real *p = P + t * p_stride;
        real *xt = X + t * n;
        if (W) {
            for (int64_t i = 0; i < n; ++i) {
                const real *row = W + i * n;
                real acc = 0;
                for (int64_t j = 0; j < n; ++j)
                    acc += row[j] * prev[j];
                u[i] = p[i] + acc;
            }
        } else {
            for (int64_t i = 0; i < n; ++i) {
                real acc = p[i];
                for (int64_t k = indptr[i]; k < indptr[i + 1]; ++k)
                    acc += vals[k] * prev[indices[k]];
                u[i] = acc;
            }
        }
        for (int64_t i = 0; i < n; ++i) /* vectorised tanh (glibc's libmvec) */
            u[i] = tanh(u[i] + b[i]);
        for (int64_t i = 0; i < n; ++i) {
            x[i] += lr[i] * (u[i] - x[i]);
            xt[i] = x[i];
        }
        prev = xt;
    }
}
