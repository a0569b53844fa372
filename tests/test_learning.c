/*
 * test_learning.c -- every rule learns the problem it is made for, SHALLOW
 * is clearly worse where hidden learning is needed, and FA, KP and WM align.
 *
 * Problems (fixed data from the test's own generator, fixed network seeds):
 * - XOR: 2-8-1, tanh hidden, sigmoid-BCE output, the full batch of 4,
 *   momentum 0.9, lr 0.5, 300 steps; the mean loss starts near 0.7.
 * - TEACHER (Lillicrap et al.'s linear teacher): 30-20-10 linear student,
 *   MSE, a fixed random 10x30 teacher matrix, 64 Gaussian inputs, SGD
 *   lr 0.05, 600 steps; the loss starts near 55.
 * - CLASSES: the same 30 inputs and teacher, the label of a sample the
 *   argmax of the teacher's 10 outputs; 30-20-10 with tanh hidden units,
 *   softmax-CE, momentum 0.9, lr 0.1, 600 steps; the loss starts near 2.3.
 *
 * Each rule gets the problems it can learn, with a threshold on the final
 * mean loss (plus all predictions right for the classification problems):
 *
 *   rule              problem   threshold   worst of seeds 1..100
 *   BP                XOR       0.05        0.0012
 *   FA, DFA           XOR       0.05        0.0051  (one hidden layer:
 *                                                    DFA's G_1 is FA's F_2)
 *   USF               XOR       0.05        0.0019
 *   BRSF, FRSF        XOR       0.05        0.0049, 0.0068
 *   KP, WM            XOR       0.05        0.0014, 0.0014
 *   BP .. WM above    TEACHER   0.1         0.013 (FA); BP 3e-6
 *   SDFA              TEACHER   0.2         0.060
 *   BP .. WM above    CLASSES   0.05        0.0056 (FA)
 *   DRTP              CLASSES   0.05        0.0089
 *   SHALLOW           TEACHER   25          15.6   (from ~55: only W_2 learns)
 * Left out, and why: DRTP projects targets, not errors, so it has no signal
 * that vanishes when a regression is solved (on TEACHER it diverges) and
 * on XOR's single 0/1 output the samples of class 0 project nothing (worst
 * 0.69); SDFA's sign(e) never vanishes for softmax or sigmoid outputs, so
 * its hidden layers keep moving (CLASSES worst 0.25 with 7 errors, XOR
 * worst 0.35); SHALLOW's fixed random features cannot always separate XOR
 * (worst 0.68).
 * SHALLOW is clearly worse on TEACHER, which needs the hidden layer to
 * learn (its random 20x30 W_1 loses 10 of the 30 input directions): its
 * loss stays above 4 (best of 100 seeds 8.2) and above 20 times that of
 * every rule listed for TEACHER on the same seed (smallest ratio seen 183).
 *
 * Alignment on TEACHER after 600 steps (angles in degrees, range over seeds
 * 1..100): angle(W_2, B_2) starts at 77..99 for every rule with random
 * feedback; it ends at
 *   FA  43.7 .. 55.8   (asserted: above 30, "far above" KP and WM, and
 *                       below 80, so FA does align somewhat; the FA update
 *                       angle ends below 85, mean below 75)
 *   KP   2.0 ..  2.5   k = FA_HP_KP_DECAY = 0.005: B - W shrinks by
 *                      0.995^600 = 0.05.  The default 0.001 leaves 0.55 of
 *                      the initial difference after 600 steps (22..27
 *                      degrees): it is meant for runs of many thousands of
 *                      steps.  Akrout et al. report 3-4 degrees on MNIST.
 *   WM   2.0 ..  2.6   at the defaults eta = lambda = 0.01, sigma = 1,
 *                      k = 64 (set explicitly): B tends to
 *                      (eta sigma^2 / lambda) W = W with time constant 100
 *                      steps; what remains is the noise of the estimate.
 * asserted below 10 for KP and WM, and their hidden-update angle to BP
 * (fa_net_alignment; seen 2.2..4.7 for KP, 1.5..3.2 for WM) below 10.
 *
 * Calibration: the thresholds and the worst cases above come from running
 * this program with FA_LEARNING_SEEDS=100 (seeds 1..100 instead of 1..3;
 * it then prints the worst value of every row).  Each loss threshold is at
 * least 3 times the worst seen (SHALLOW's 1.6 times: its loss is a floor
 * set by the random W_1, not a rate of progress); the feedback angle bound
 * 10 is 3.8 times the worst, the update angle bound 10 (the target the
 * issue sets) 2.1 times; FA's lower bound 30 is 14 degrees below its best.
 * The runs take ~3 ms each natively; under valgrind the program is slow,
 * hence the 'slow' suite.
 */
#include "internal.h"
#include "testutil.h"

/* Seeds 1..n_seeds; 3 unless FA_LEARNING_SEEDS says otherwise. */
static int n_seeds(void)
{
    const char *s = getenv("FA_LEARNING_SEEDS");
    int n = s ? atoi(s) : 0;
    return n > 0 ? n : 3;
}

static int calibrating(void)
{
    return getenv("FA_LEARNING_SEEDS") != NULL;
}

/* ------------------------------------------------------------ problems */

enum { XOR, TEACHER, CLASSES };
static const char *const problem_name[] = {"XOR", "TEACHER", "CLASSES"};

#define NIN 30
#define NHID 20
#define NOUT 10
#define NS 64

static float tx[NIN * NS], tt[NOUT * NS], tlab[NOUT * NS];

/* Teacher inputs, regression targets and one-hot labels (argmax). */
static void teacher_data(void)
{
    static float T[NOUT * NIN];
    tu_lcg g = {2016};
    tu_fill(&g, T, NOUT * NIN, 1.0f);
    for (int k = 0; k < NIN * NS; k += 2) { /* Box-Muller pairs */
        double u1 = 0.5 * (tu_uniform(&g) + 1.0), u2 = 0.5 * (tu_uniform(&g) + 1.0);
        double r = sqrt(-2.0 * log(u1 > 1e-12 ? u1 : 1e-12));
        tx[k] = (float)(r * cos(6.283185307179586 * u2));
        tx[k + 1] = (float)(r * sin(6.283185307179586 * u2));
    }
    for (int j = 0; j < NS; j++) {
        int best = 0;
        double top = -INFINITY;
        for (int i = 0; i < NOUT; i++) {
            double s = 0;
            for (int k = 0; k < NIN; k++)
                s += (double)T[i + k * NOUT] * tx[k + j * NIN];
            tt[i + j * NOUT] = (float)s;
            if (s > top) {
                top = s;
                best = i;
            }
        }
        for (int i = 0; i < NOUT; i++)
            tlab[i + j * NOUT] = i == best ? 1.0f : 0.0f;
    }
}

static fa_net *teacher_net(int32_t rule, uint64_t seed)
{
    const int32_t sizes[] = {NIN, NHID, NOUT};
    const int32_t acts[] = {FA_ACT_IDENTITY, FA_ACT_IDENTITY};
    fa_net *net = tu_net(2, sizes, acts, FA_LOSS_MSE, seed);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, 0.05));
    return net;
}

typedef struct outcome {
    float first, last; /* mean loss before and after training */
    int wrong;         /* wrong predictions (classification problems) */
} outcome;

static outcome run_xor(int32_t rule, uint64_t seed)
{
    const int32_t sizes[] = {2, 8, 1};
    const int32_t acts[] = {FA_ACT_TANH, FA_ACT_IDENTITY};
    const float x[8] = {0, 0, 0, 1, 1, 0, 1, 1}, t[4] = {0, 1, 1, 0};
    fa_net *net = tu_net(2, sizes, acts, FA_LOSS_SIGMOID_BCE, seed);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_optimizer(net, FA_OPT_MOMENTUM));
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, 0.5));
    TU_OK(fa_net_set_hparam(net, FA_HP_MOMENTUM, 0.9));
    outcome o = {0, 0, 0};
    TU_OK(fa_net_loss(net, x, 2, t, 1, 4, &o.first));
    for (int k = 0; k < 300; k++)
        TU_OK(fa_net_train_step(net, x, 2, t, 1, 4, NULL));
    TU_OK(fa_net_loss(net, x, 2, t, 1, 4, &o.last));
    float p[4];
    TU_OK(fa_net_forward(net, x, 2, 4, p, 1));
    for (int j = 0; j < 4; j++)
        o.wrong += (p[j] > 0.5f) != (t[j] > 0.5f);
    fa_net_free(net);
    return o;
}

static outcome run_teacher(int32_t rule, uint64_t seed)
{
    fa_net *net = teacher_net(rule, seed);
    outcome o = {0, 0, 0};
    TU_OK(fa_net_loss(net, tx, NIN, tt, NOUT, NS, &o.first));
    for (int k = 0; k < 600; k++)
        TU_OK(fa_net_train_step(net, tx, NIN, tt, NOUT, NS, NULL));
    TU_OK(fa_net_loss(net, tx, NIN, tt, NOUT, NS, &o.last));
    fa_net_free(net);
    return o;
}

static outcome run_classes(int32_t rule, uint64_t seed)
{
    const int32_t sizes[] = {NIN, NHID, NOUT};
    const int32_t acts[] = {FA_ACT_TANH, FA_ACT_IDENTITY};
    fa_net *net = tu_net(2, sizes, acts, FA_LOSS_SOFTMAX_CE, seed);
    TU_OK(fa_net_set_rule(net, rule));
    TU_OK(fa_net_set_optimizer(net, FA_OPT_MOMENTUM));
    TU_OK(fa_net_set_hparam(net, FA_HP_LR, 0.1));
    TU_OK(fa_net_set_hparam(net, FA_HP_MOMENTUM, 0.9));
    outcome o = {0, 0, 0};
    TU_OK(fa_net_loss(net, tx, NIN, tlab, NOUT, NS, &o.first));
    for (int k = 0; k < 600; k++)
        TU_OK(fa_net_train_step(net, tx, NIN, tlab, NOUT, NS, NULL));
    TU_OK(fa_net_loss(net, tx, NIN, tlab, NOUT, NS, &o.last));
    static float p[NOUT * NS];
    TU_OK(fa_net_forward(net, tx, NIN, NS, p, NOUT));
    for (int j = 0; j < NS; j++) {
        int best = 0;
        for (int i = 1; i < NOUT; i++)
            if (p[i + j * NOUT] > p[best + j * NOUT])
                best = i;
        o.wrong += tlab[best + j * NOUT] != 1.0f;
    }
    fa_net_free(net);
    return o;
}

static outcome run(int problem, int32_t rule, uint64_t seed)
{
    switch (problem) {
    case XOR:
        return run_xor(rule, seed);
    case TEACHER:
        return run_teacher(rule, seed);
    default:
        return run_classes(rule, seed);
    }
}

/* Initial losses: untrained networks start well above every threshold
 * (XOR ~0.7, TEACHER ~55, CLASSES ~2.3), so reaching one means learning. */
static const float start_above[] = {0.4f, 20.0f, 1.5f};

/* ------------------------------------------------------------ the table */

typedef struct goal {
    int32_t rule;
    int problem;
    float below; /* final mean loss */
} goal;

#define FOR_RULES_THAT_LEARN_HIDDEN(P, T)                                             \
    {FA_RULE_BP, P, T}, {FA_RULE_FA, P, T}, {FA_RULE_DFA, P, T}, {FA_RULE_USF, P, T}, \
        {FA_RULE_BRSF, P, T}, {FA_RULE_FRSF, P, T}, {FA_RULE_KP, P, T}, {FA_RULE_WM, P, T}

static const goal goals[] = {
    FOR_RULES_THAT_LEARN_HIDDEN(XOR, 0.05f),
    FOR_RULES_THAT_LEARN_HIDDEN(TEACHER, 0.1f),
    {FA_RULE_SDFA, TEACHER, 0.2f},
    FOR_RULES_THAT_LEARN_HIDDEN(CLASSES, 0.05f),
    {FA_RULE_DRTP, CLASSES, 0.05f},
    {FA_RULE_SHALLOW, TEACHER, 25.0f},
};
#define N_GOALS ((int)(sizeof goals / sizeof goals[0]))

START_TEST(test_goal)
{
    const goal *gl = &goals[_i];
    const char *name = fa_enum_name(FA_ENUM_RULE, gl->rule);
    teacher_data();
    float worst = 0;
    int worst_wrong = 0;
    for (int s = 1; s <= n_seeds(); s++) {
        outcome o = run(gl->problem, gl->rule, (uint64_t)s);
        ck_assert_msg(o.first > start_above[gl->problem], "%s %s seed %d: initial loss %g",
                      name, problem_name[gl->problem], s, o.first);
        ck_assert_msg(o.last < gl->below, "%s %s seed %d: loss %g after training (from %g), "
                      "want below %g", name, problem_name[gl->problem], s, o.last, o.first,
                      gl->below);
        if (gl->problem != TEACHER)
            ck_assert_msg(o.wrong == 0, "%s %s seed %d: %d wrong predictions", name,
                          problem_name[gl->problem], s, o.wrong);
        worst = o.last > worst ? o.last : worst;
        worst_wrong = o.wrong > worst_wrong ? o.wrong : worst_wrong;
    }
    if (calibrating())
        printf("%-8s %-8s threshold %-6g worst %.3g (%d wrong) over %d seeds\n", name,
               problem_name[gl->problem], gl->below, worst, worst_wrong, n_seeds());
}
END_TEST

/* SHALLOW against every rule of the TEACHER rows, seed by seed. */
START_TEST(test_shallow_worse)
{
    teacher_data();
    double worst_ratio = INFINITY;
    for (int s = 1; s <= n_seeds(); s++) {
        float shallow = run_teacher(FA_RULE_SHALLOW, (uint64_t)s).last;
        ck_assert_msg(shallow > 4.0f, "seed %d: SHALLOW reached %g on the teacher", s,
                      shallow);
        for (int i = 0; i < N_GOALS; i++) {
            if (goals[i].problem != TEACHER || goals[i].rule == FA_RULE_SHALLOW)
                continue;
            float other = run_teacher(goals[i].rule, (uint64_t)s).last;
            ck_assert_msg(shallow > 20.0f * other, "seed %d: SHALLOW's loss %g is not 20 "
                          "times %s's %g", s, shallow,
                          fa_enum_name(FA_ENUM_RULE, goals[i].rule), other);
            worst_ratio = fmin(worst_ratio, shallow / other);
        }
    }
    if (calibrating())
        printf("SHALLOW / others on TEACHER: smallest ratio %.3g\n", worst_ratio);
}
END_TEST

/* -------------------------------------------------------------- alignment */

START_TEST(test_fa_alignment)
{
    teacher_data();
    double sum = 0, lo = INFINITY, hi = 0;
    for (int s = 1; s <= n_seeds(); s++) {
        fa_net *net = teacher_net(FA_RULE_FA, (uint64_t)s);
        float a0, a1, fb0, fb;
        TU_OK(fa_net_alignment(net, tx, NIN, tt, NOUT, NS, &a0, 1));
        TU_OK(fa_net_feedback_angles(net, FA_RULE_FA, &fb0, 1));
        for (int k = 0; k < 600; k++)
            TU_OK(fa_net_train_step(net, tx, NIN, tt, NOUT, NS, NULL));
        TU_OK(fa_net_alignment(net, tx, NIN, tt, NOUT, NS, &a1, 1));
        TU_OK(fa_net_feedback_angles(net, FA_RULE_FA, &fb, 1));
        ck_assert_msg(a0 > 60.0f && a0 < 120.0f, "seed %d: initial FA angle %g, want near 90",
                      s, a0);
        ck_assert_msg(fb0 > 60.0f, "seed %d: initial angle(W_2, F_2) %g", s, fb0);
        ck_assert_msg(a1 < 85.0f, "seed %d: FA angle %g after training (from %g)", s, a1, a0);
        ck_assert_msg(fb < 80.0f, "seed %d: angle(W_2, F_2) %g after training", s, fb);
        ck_assert_msg(fb > 30.0f, "seed %d: angle(W_2, F_2) %g: FA's fixed F_2 cannot come "
                      "this close to W_2 in 600 steps", s, fb);
        sum += a1;
        lo = fmin(lo, fb);
        hi = fmax(hi, fb);
        /* BP on the same net: exactly aligned with itself. */
        TU_OK(fa_net_set_rule(net, FA_RULE_BP));
        TU_OK(fa_net_alignment(net, tx, NIN, tt, NOUT, NS, &a1, 1));
        ck_assert_msg(a1 < 0.05f, "BP angle %g", a1);
        fa_net_free(net);
    }
    ck_assert_msg(sum / n_seeds() < 75.0, "mean FA angle after training %g", sum / n_seeds());
    if (calibrating())
        printf("FA: angle(W_2, F_2) after 600 steps %.3g .. %.3g\n", lo, hi);
}
END_TEST

/* KP (_i == 0) and WM (_i == 1): the feedback comes to W_2 within 10
 * degrees, and the hidden update to BP's. */
START_TEST(test_learned_alignment)
{
    const int32_t rule = _i == 0 ? FA_RULE_KP : FA_RULE_WM;
    const char *name = fa_enum_name(FA_ENUM_RULE, rule);
    teacher_data();
    double lo = INFINITY, hi = 0, ulo = INFINITY, uhi = 0;
    for (int s = 1; s <= n_seeds(); s++) {
        fa_net *net = teacher_net(rule, (uint64_t)s);
        TU_OK(fa_net_set_hparam(net, FA_HP_KP_DECAY, 0.005));
        TU_OK(fa_net_set_hparam(net, FA_HP_WM_LR, 0.01));
        TU_OK(fa_net_set_hparam(net, FA_HP_WM_DECAY, 0.01));
        TU_OK(fa_net_set_hparam(net, FA_HP_WM_NOISE, 1.0));
        TU_OK(fa_net_set_hparam(net, FA_HP_WM_BATCH, 64));
        float fb0, fb, a1;
        TU_OK(fa_net_feedback_angles(net, rule, &fb0, 1));
        for (int k = 0; k < 600; k++)
            TU_OK(fa_net_train_step(net, tx, NIN, tt, NOUT, NS, NULL));
        TU_OK(fa_net_feedback_angles(net, rule, &fb, 1));
        TU_OK(fa_net_alignment(net, tx, NIN, tt, NOUT, NS, &a1, 1));
        ck_assert_msg(fb0 > 60.0f, "%s seed %d: initial angle(W_2, B_2) %g, want near 90",
                      name, s, fb0);
        ck_assert_msg(fb < 10.0f, "%s seed %d: angle(W_2, B_2) %g after 600 steps (from %g)",
                      name, s, fb, fb0);
        ck_assert_msg(a1 < 10.0f, "%s seed %d: hidden update %g degrees from BP's", name, s,
                      a1);
        lo = fmin(lo, fb);
        hi = fmax(hi, fb);
        ulo = fmin(ulo, a1);
        uhi = fmax(uhi, a1);
        fa_net_free(net);
    }
    if (calibrating())
        printf("%s: angle(W_2, B_2) after 600 steps %.3g .. %.3g, update angle %.3g .. %.3g\n",
               name, lo, hi, ulo, uhi);
}
END_TEST

static Suite *learning_suite(void)
{
    Suite *s = suite_create("learning");
    TCase *tc = tcase_create("learning");
    /* 3 seeds take well under a second natively; 100 (calibration) ~30 s */
    tcase_set_timeout(tc, calibrating() ? 3600 : 60);
    tcase_add_loop_test(tc, test_goal, 0, N_GOALS);
    tcase_add_test(tc, test_shallow_worse);
    tcase_add_test(tc, test_fa_alignment);
    tcase_add_loop_test(tc, test_learned_alignment, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(learning_suite());
}
