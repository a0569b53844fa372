/* rules.c -- the forward pass shared by every rule, and the three ways the
 * output error reaches the hidden layers (BP, FA, DFA), side by side.
 *
 * Workspace layout for a batch of m (see struct fa_net):
 *   z[l]     (n_l, m)        f(A_l)
 *   e        (n_L, m)        output error dL/dA_L (already / m, from the loss)
 *   delta    (n_hidden, m)   hidden errors stacked: delta_l is the row block
 *                            hid_off[l] .. hid_off[l]+n_l, leading dim n_hidden
 * Stacking the hidden errors is what lets DFA produce all of them with one
 * GEMM against the stacked feedback G = [G_1 | ... | G_{L-1}] (n_L, n_hidden):
 * delta = G^T e.  No hidden error waits for another.
 */
#include <string.h>

#include "internal.h"

void fa_forward_pass(fa_net *net, const float *x, int32_t ldx, int32_t batch,
                     int train)
{
    const int32_t L = net->n_layers;
    const float slope = (float)net->hp[FA_HP_LEAKY_SLOPE];
    const float *in = x;
    int32_t ldin = ldx;
    for (int32_t l = 1; l <= L; l++) {
        const int32_t n = net->sizes[l], n_in = net->sizes[l - 1];
        const float *w = net->params + net->w_off[l];
        const float *b = net->params + net->b_off[l];
        float *z = net->z[l];
        /* A_l = W_l H_{l-1} + b_l: bias broadcast first, then GEMM with beta 1 */
        for (int32_t j = 0; j < batch; j++)
            memcpy(z + (size_t)j * (size_t)n, b, (size_t)n * sizeof *z);
        fa_gemm(0, 0, n, batch, n_in, 1.0f, w, n, in, ldin, 1.0f, z, n);
        fa_act_forward(net->act[l], slope, z, n, batch, n);
        net->h[l] = z;
        if (l < L && train && net->dropout[l] > 0.0) {
            /* inverted dropout: keep with prob 1-p, scale by 1/(1-p) */
            const float p = (float)net->dropout[l];
            const float keep = 1.0f / (1.0f - p);
            float *mk = net->mask[l], *hb = net->hbuf[l];
            const size_t cnt = (size_t)n * (size_t)batch;
            for (size_t i = 0; i < cnt; i++) {
                mk[i] = fa_rng_uniform(&net->rng) < p ? 0.0f : keep;
                hb[i] = z[i] * mk[i];
            }
            net->h[l] = hb;
        }
        in = net->h[l];
        ldin = n;
    }
}

/* dW_l = delta_l H_{l-1}^T and db_l = delta_l 1: the same for every rule. */
static void layer_grad(fa_net *net, int32_t l, const float *x, int32_t ldx,
                       const float *d, int32_t ldd, int32_t batch, float *grad)
{
    const int32_t n = net->sizes[l], n_in = net->sizes[l - 1];
    const float *hin = l == 1 ? x : net->h[l - 1];
    const int32_t ldh = l == 1 ? ldx : n_in;
    /* dW_l (n, n_in) = delta_l (n, m) H_{l-1}^T (m, n_in) */
    fa_gemm(0, 1, n, n_in, batch, 1.0f, d, ldd, hin, ldh, 0.0f,
            grad + net->w_off[l], n);
    /* db_l (n) = delta_l (n, m) 1 (m) */
    fa_gemv(0, n, batch, 1.0f, d, ldd, net->ones, 0.0f, grad + net->b_off[l]);
}

/* delta_l .*= f'(A_l) (unless skipped) and the dropout mask of this pass. */
static void local_factor(fa_net *net, int32_t l, float *d, int32_t ldd,
                         int32_t batch, int with_deriv)
{
    const int32_t n = net->sizes[l];
    if (with_deriv)
        fa_act_deriv_mul(net->act[l], (float)net->hp[FA_HP_LEAKY_SLOPE],
                         net->z[l], n, d, ldd, n, batch);
    if (net->h[l] != net->z[l]) {
        const float *mk = net->mask[l];
        for (int32_t j = 0; j < batch; j++)
            for (int32_t i = 0; i < n; i++)
                d[i + (size_t)j * (size_t)ldd] *= mk[i + (size_t)j * (size_t)n];
    }
}

void fa_compute_grad(fa_net *net, int32_t rule, const float *x, int32_t ldx,
                     const float *t, int32_t ldt, int32_t batch, int train,
                     float *grad, double *loss)
{
    const int32_t L = net->n_layers;
    const int32_t nL = net->sizes[L];
    const int32_t nh = net->n_hidden;

    fa_forward_pass(net, x, ldx, batch, train);

    /* e = dL/dA_L = dL/dY .* f_L'(A_L); the loss divides by the batch */
    *loss = fa_loss_compute(net->loss, net->z[L], nL, t, ldt, nL, batch,
                            net->e, nL);
    fa_act_deriv_mul(net->act[L], (float)net->hp[FA_HP_LEAKY_SLOPE],
                     net->z[L], nL, net->e, nL, nL, batch);
    layer_grad(net, L, x, ldx, net->e, nL, batch, grad);
    if (L == 1)
        return;

    if (rule == FA_RULE_DFA) {
        /* All hidden errors at once: delta (n_hidden, m) = G^T (n_hidden, n_L) e (n_L, m) */
        fa_gemm(1, 0, nh, batch, nL, 1.0f, net->fb_dfa, nL, net->e, nL, 0.0f,
                net->delta, nh);
        const int with_deriv = net->dfa_variant == FA_DFA_AFTER_ACTIVATION;
        /* Independent per layer: nothing below reads another layer's delta. */
        for (int32_t l = 1; l < L; l++) {
            float *d = net->delta + net->hid_off[l];
            local_factor(net, l, d, nh, batch, with_deriv);
            layer_grad(net, l, x, ldx, d, nh, batch, grad);
        }
        return;
    }

    /* BP and FA: the error travels down one layer at a time, through W^T
     * (BP) or through the fixed F^T standing in for it (FA). */
    for (int32_t l = L - 1; l >= 1; l--) {
        const int32_t n = net->sizes[l], n_up = net->sizes[l + 1];
        const float *b = rule == FA_RULE_FA ? net->fb_fa + net->fa_off[l + 1]
                                            : net->params + net->w_off[l + 1];
        const float *d_up = l + 1 == L ? net->e : net->delta + net->hid_off[l + 1];
        const int32_t ld_up = l + 1 == L ? nL : nh;
        float *d = net->delta + net->hid_off[l];
        /* delta_l (n, m) = B_{l+1}^T (n, n_up) delta_{l+1} (n_up, m) */
        fa_gemm(1, 0, n, batch, n_up, 1.0f, b, n_up, d_up, ld_up, 0.0f, d, nh);
        local_factor(net, l, d, nh, batch, 1);
        layer_grad(net, l, x, ldx, d, nh, batch, grad);
    }
}
