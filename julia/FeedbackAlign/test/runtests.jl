# Tests of FeedbackAlign.jl against a built libfeedbackalign.
#
#   FEEDBACKALIGN_LIB=build/libfeedbackalign.so \
#   FEEDBACKALIGN_ROUNDTRIP=build/tests/interop/fa-model-roundtrip \
#   julia --project=julia/FeedbackAlign julia/FeedbackAlign/test/runtests.jl
#
# (tools/test-julia.sh BUILD_DIR sets all of this up.)  The last line printed
# is "N passed, N failed"; with FEEDBACKALIGN_TEST_COUNTS set it is also
# written to that file.

using Test
using LinearAlgebra
using Random

# Julia's own BLAS before the library is loaded: a reference to compare with
# after loading it (the library links the system OpenBLAS, Julia its own
# 64_-suffixed one; the two must not disturb each other).
naive_mul(A, B) = [sum(A[i, k] * B[k, j] for k in 1:size(A, 2)) for i in 1:size(A, 1), j in 1:size(B, 2)]
function blas_ok()
    rng = MersenneTwister(7)
    A = randn(rng, 37, 23); B = randn(rng, 23, 19)
    A32 = Float32.(A); B32 = Float32.(B)
    ok64 = isapprox(A * B, naive_mul(A, B); rtol = 1e-12)
    ok32 = isapprox(A32 * B32, naive_mul(A32, B32); rtol = 1e-5)
    okinv = norm(A[1:23, :] * inv(A[1:23, :]) - I) < 1e-8
    return ok64 && ok32 && okinv
end
const BLAS_BEFORE = blas_ok()

using FeedbackAlign
using FeedbackAlign.Learn
using FeedbackAlign.Layers
using Serialization
const FA = FeedbackAlign

relerr(a, b) = norm(a .- b) / max(norm(b), eps(Float32))

# XOR, observations as columns.
const XX = Float32[0 0 1 1; 0 1 0 1]
const XY = Float32[0 1 1 0]

# The fixed batch of tests/interop/fa-model-roundtrip.c, computed in Float32
# arithmetic exactly as the C code does (in Float64 the last bits differ).
fixed_x(n0, batch = 4) = Float32[Float32((7i + 3j) % 11) / 10f0 - 0.5f0 for i in 0:n0-1, j in 0:batch-1]
fixed_t(nl, batch = 4) = Float32[Float32((5i + 2j) % 7) / 6f0 for i in 0:nl-1, j in 0:batch-1]

# Data from a random teacher network: 3 classes, one-hot targets.
function teacher_data(rng, n)
    W1 = randn(rng, 16, 6); W2 = randn(rng, 3, 16)
    X = randn(rng, Float32, 6, n)
    S = W2 * tanh.(W1 * X)
    Y = zeros(Float32, 3, n)
    for j in 1:n
        Y[argmax(S[:, j]), j] = 1
    end
    return X, Y
end
accuracy(net, X, Y) = count(j -> argmax(predict(net, X)[:, j]) == argmax(Y[:, j]), 1:size(X, 2)) / size(X, 2)

function count_results(ts)
    passed = ts.n_passed
    failed = 0
    for r in ts.results
        if r isa Test.DefaultTestSet
            p, f = count_results(r)
            passed += p; failed += f
        elseif r isa Test.Fail || r isa Test.Error
            failed += 1
        end
    end
    return passed, failed
end

function report(passed, failed)
    line = "$passed passed, $failed failed"
    path = get(ENV, "FEEDBACKALIGN_TEST_COUNTS", "")
    isempty(path) || write(path, line * "\n")
    println(line)
end

const TMP = mktempdir()

# Create and drop n networks inside a function, so that no local variable of
# the caller keeps the last one alive; returns weak references to a few.
function churn_networks(n)
    refs = WeakRef[]
    for i in 1:n
        net = Network([8, 16, 4], [:tanh, :identity]; seed = i)
        i % 2 == 0 && train_step!(net, ones(Float32, 8, 2), zeros(Float32, 4, 2))
        i % 700 == 0 && push!(refs, WeakRef(FA.weights(net, 1)))  # views die too
        i % 3 == 0 && close(net)                 # a mix of closed and not
        i % 500 == 0 && push!(refs, WeakRef(net))
    end
    return refs
end

# A strategy written outside the package, as one is written for
# LearningStrategies.jl (used in the "strategies" test set).
mutable struct CountingLearner <: Learn.LearningStrategy
    n::Int
end
Learn.update!(m::Network, s::CountingLearner, batch) = (s.n += 1; train_step!(m, batch...); nothing)

ts = try
@testset "FeedbackAlign" begin

@testset "library and version" begin
    @test FA.library_version() == v"0.2.0"
    @test FA.REQUIRED_VERSION == 200 && FA.PKGVERSION == v"0.2.0"
    @test FA.LibFA.fa_version_number() == FA.REQUIRED_VERSION
    if haskey(ENV, "FEEDBACKALIGN_LIB")
        @test realpath(FA.library_path()) == realpath(ENV["FEEDBACKALIGN_LIB"])
    end
    # Every function pointer was resolved.
    @test all(p -> p[2][] != C_NULL, FA.LibFA.SYMBOLS)
    @test occursin("FA_ERR_SIZE", unsafe_string(FA.LibFA.fa_status_string(-3)))
    # Lookup order without the override: build directories, then the system.
    cands = withenv(() -> FA.library_candidates(), "FEEDBACKALIGN_LIB" => nothing)
    @test cands[end] == "libfeedbackalign.so.0"
    @test all(c -> !FA.sanitizer_build(c), cands[1:end-1])
    @test withenv(() -> FA.library_candidates(), "FEEDBACKALIGN_LIB" => "/x/y.so") == ["/x/y.so"]
    @test !FA.sanitizer_build(FA.library_path())
end

@testset "BLAS of Julia and of the library in one process" begin
    @test BLAS_BEFORE
    net = Network([6, 16, 3], [:tanh, :identity]; loss = :softmax_ce, seed = 3)
    X, Y = teacher_data(MersenneTwister(1), 64)
    for _ in 1:5
        train_step!(net, X, Y)
    end
    @test blas_ok()
    # And the library's products are still right after Julia used its BLAS:
    # a linear network's output is W X + b.
    lin = Network([5, 4], [:identity]; seed = 2)
    Xl = randn(MersenneTwister(2), Float32, 5, 7)
    @test isapprox(predict(lin, Xl), Matrix(FA.weights(lin, 1)) * Xl .+ Vector(FA.biases(lin, 1)); rtol = 1e-5)
end

@testset "construction and settings" begin
    net = Network([4, 8, 6, 2], [:tanh, :relu, :identity]; loss = :mse, seed = 11)
    @test nlayers(net) == 3
    @test layer_sizes(net) == [4, 8, 6, 2]
    @test nparams(net) == 8 * 4 + 8 + 6 * 8 + 6 + 2 * 6 + 2
    @test [activation(net, l) for l in 1:3] == [:tanh, :relu, :identity]
    @test losstype(net) == :mse
    @test rule(net) == :bp
    @test optimizer(net) == :sgd
    @test sprint(show, net) == "Network(\"4-8:tanh-6:relu-2:identity\"; loss=:mse, rule=:bp)"
    @test FA.spec(net) == "4-8:tanh-6:relu-2:identity"
    @test occursin("108 parameters", sprint(show, MIME"text/plain"(), net))
    @test [layer_kind(net, l) for l in 1:3] == [:dense, :dense, :dense]
    @test layer_shape(net, 0) == (4, 1, 1) && layer_shape(net, 2) == (6, 1, 1)
    for r in (:fa, :dfa, :bp)
        rule!(net, r)
        @test rule(net) == r
    end
    optimizer!(net, :adam; lr = 1e-3, beta2 = 0.99)
    @test optimizer(net) == :adam
    @test hparam(net, :lr) ≈ 1e-3
    @test hparam(net, :beta2) ≈ 0.99
    hparam!(net; momentum = 0.5, weight_decay = 1e-4)
    @test hparam(net, :momentum) ≈ 0.5
    @test hparam(net, :weight_decay) ≈ 1e-4
    FA.dropout!(net, 2, 0.25)
    @test FA.dropout(net, 2) ≈ 0.25
    @test FA.dropout(net, 1) == 0
    @test seed_dropout!(net, 7) === net
    dfa_variant!(net, :before_activation)
    @test dfa_variant(net) == :before_activation
    dfa_variant!(net, :after_activation)
    @test reserve!(net, 128) === net
    @test reset_optimizer!(net) === net
    feedback_init!(net, :sign; scale = 0.5)
    @test all(x -> abs(x) == 0.5f0, feedback(net, :fa, 2))
    @test all(x -> abs(x) == 0.5f0, feedback(net, :dfa, 1))
    @test feedback_shape(net, :fa, 3) == (2, 6)
    @test feedback_shape(net, :dfa, 1) == (2, 8)
    init_weights!(net, :zero)
    @test all(iszero, FA.weights(net, 1)) && all(iszero, FA.weights(net, 3))
    init_weights!(net, :xavier_uniform)
    r = sqrt(6 / (4 + 8))
    @test all(x -> abs(x) <= r, FA.weights(net, 1)) && !all(iszero, FA.weights(net, 1))
    # The same seed gives the same network.
    a = Network([4, 8, 2], [:tanh, :identity]; seed = 5)
    b = Network([4, 8, 2], [:tanh, :identity]; seed = 5)
    c = Network([4, 8, 2], [:tanh, :identity]; seed = 6)
    @test FA.params(a) == FA.params(b)
    @test FA.params(a) != FA.params(c)
    @test Network([4, 2], :identity; seed = 1, rule = :dfa) isa Network
end

@testset "equivalences through the ABI" begin
    rng = MersenneTwister(5)
    # FA with F_l := W_l is backprop.
    net = Network([5, 7, 6, 3], [:tanh, :sigmoid, :identity]; loss = :mse, seed = 21)
    X = randn(rng, Float32, 5, 9); T = randn(rng, Float32, 3, 9)
    g_bp = FA.grad(net, X, T)
    rule!(net, :fa)
    g_fa_random = FA.grad(net, X, T)
    for l in 2:3
        feedback!(net, :fa, l, copy(FA.weights(net, l)))
    end
    g_fa = FA.grad(net, X, T)
    @test relerr(g_fa, g_bp) < 1e-5
    @test relerr(g_fa_random, g_bp) > 1e-2      # random feedback does differ
    @test maximum(feedback_angles(net, :fa)) < 1e-2
    # DFA on one hidden layer with G_1 := W_2 is backprop.
    net2 = Network([5, 7, 3], [:tanh, :identity]; loss = :softmax_ce, seed = 22)
    T2 = zeros(Float32, 3, 9); for j in 1:9; T2[mod1(j, 3), j] = 1; end
    g_bp2 = FA.grad(net2, X, T2)
    rule!(net2, :dfa)
    @test relerr(FA.grad(net2, X, T2), g_bp2) > 1e-2
    feedback!(net2, :dfa, 1, Matrix(FA.weights(net2, 2)))
    g_dfa = FA.grad(net2, X, T2)
    @test relerr(g_dfa, g_bp2) < 1e-5
    # The output layer's update is the same for every rule.
    w2, _ = FA.layer_offsets(net2, 2)
    @test g_dfa[w2+1:end] ≈ g_bp2[w2+1:end]
    # BP's update is the gradient: central differences in Float64 on the
    # Float32 network, with a tolerance that float rounding allows.
    small = Network([3, 4, 2], [:tanh, :identity]; seed = 23)
    Xs = randn(rng, Float32, 3, 5); Ts = randn(rng, Float32, 2, 5)
    gs = FA.grad(small, Xs, Ts)
    p0 = FA.params(small)
    fd = similar(gs)
    h = 1f-2
    for k in eachindex(p0)
        p = copy(p0); p[k] += h; params!(small, p); lp = Float64(FA.loss(small, Xs, Ts))
        p[k] -= 2h; params!(small, p); lm = Float64(FA.loss(small, Xs, Ts))
        fd[k] = (lp - lm) / (2h)
    end
    params!(small, p0)
    @test relerr(gs, fd) < 1e-2
    # alignment: 0 under BP, an angle under FA.
    @test all(a -> a < 1e-2, alignment(net, X, T)) # F = W still
    rule!(net, :bp)
    @test all(a -> a < 1e-2, alignment(net, X, T))
end

@testset "learning with learn! ($r)" for r in (:bp, :fa, :dfa)
    net = Network([2, 16, 1], [:tanh, :identity]; loss = :mse, seed = 31)
    learner = FeedbackLearner(rule = r, optimizer = :adam, lr = 0.05)
    tracer = Tracer(Float64, m -> FA.loss(m, XX, XY), 10)
    conv = Converged(m -> FA.loss(m, XX, XY); tol = 1e-9, every = 50)
    learn!(net, strategy(learner, MaxIter(3000), conv, tracer), Iterators.repeated((XX, XY)))
    @test rule(net) == r
    @test 1 <= learner.steps <= 3000
    @test learner.loss == lastloss(net)
    @test length(tracer.storage) == div(learner.steps, 10)
    @test tracer.iters[1] == 10
    @test tracer.storage[end] < 1e-3 < tracer.storage[1]
    @test FA.loss(net, XX, XY) < 1e-3
    @test round.(predict(net, XX)) == XY
end

@testset "learning a teacher network ($r)" for r in (:bp, :fa, :dfa)
    X, Y = teacher_data(MersenneTwister(41), 512)
    net = Network([6, 32, 3], [:tanh, :identity]; loss = :softmax_ce, seed = 42)
    before = accuracy(net, X, Y)
    learn!(net, strategy(FeedbackLearner(rule = r, optimizer = :adam, lr = 1e-2),
                         MaxIter(600)),
           RandomBatches((X, Y); size = 32, rng = MersenneTwister(43)))
    @test accuracy(net, X, Y) > max(0.85, before)
    P = predict(net, X)
    @test all(s -> isapprox(s, 1; atol = 1e-5), sum(P; dims = 1))  # probabilities
end

@testset "outside optimiser through compute_update!" begin
    # A tiny Adam written here, using only compute_update! and params!.
    net = Network([2, 16, 1], [:tanh, :identity]; seed = 51)
    rule!(net, :fa)
    p = FA.params(net)
    g = similar(p)
    m = zero(p); v = zero(p)
    b1, b2, lr, ϵ = 0.9f0, 0.999f0, 0.05f0, 1f-8
    first_loss = FA.loss(net, XX, XY)
    for t in 1:1000
        l = compute_update!(g, net, XX, XY)
        @. m = b1 * m + (1 - b1) * g
        @. v = b2 * v + (1 - b2) * g^2
        @. p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + ϵ)
        params!(net, p)
    end
    @test first_loss > 0.1
    @test FA.loss(net, XX, XY) < 1e-3
    # compute_update! leaves the parameters alone; apply_update! with SGD is
    # p - lr*g.
    before = FA.params(net)
    g2 = FA.grad(net, XX, XY)
    @test FA.params(net) == before
    optimizer!(net, :sgd; lr = 0.1)
    apply_update!(net, g2)
    @test FA.params(net) ≈ before .- 0.1f0 .* g2
    apply_update!(net, Float64.(g2))     # Float64 converted
    @test FA.params(net) ≈ before .- 0.2f0 .* g2 rtol = 1e-5
end

@testset "Flux-style train! and batch iterators" begin
    X, Y = teacher_data(MersenneTwister(61), 300)
    it = eachbatch((X, Y); size = 64)
    @test length(it) == 5
    bs = collect(it)
    @test size(bs[end][1]) == (6, 300 - 4 * 64)
    @test bs[1][1] isa SubArray && bs[1][1] == X[:, 1:64] && bs[1][2] == Y[:, 1:64]
    @test length(eachbatch((X, Y); size = 64, partial = false)) == 4
    s1 = collect(eachbatch((X, Y); size = 100, shuffle = true, rng = MersenneTwister(1)))
    s2 = collect(eachbatch((X, Y); size = 100, shuffle = true, rng = MersenneTwister(1)))
    @test s1 == s2 && s1[1][1] != X[:, 1:100]
    @test sort(vcat([vec(b[1][1, :]) for b in s1]...)) == sort(X[1, :])
    rb = RandomBatches((X, Y); size = 16, count = 7, rng = MersenneTwister(2))
    @test length(collect(rb)) == 7 && size(first(rb)[1]) == (6, 16)
    @test collect(eachbatch(1:10; size = 4))[3] == [9, 10]
    @test_throws DimensionMismatch eachbatch((X, Y[:, 1:10]); size = 4)
    @test_throws ArgumentError eachbatch((X, Y); size = 0)
    net = Network([6, 32, 3], [:relu, :identity]; loss = :softmax_ce, seed = 62)
    rule!(net, :dfa); optimizer!(net, :momentum; lr = 0.05)
    calls = Ref(0)
    losses = FA.train!(net, eachbatch((X, Y); size = 32); epochs = 8, cb = () -> calls[] += 1)
    @test length(losses) == 8 && calls[] == 8 * 10
    @test losses[end] < losses[1]
    n = Ref(0)
    FA.train!(net, eachbatch((X, Y); size = 32); epochs = 3,
           cb = () -> (n[] += 1; n[] == 4 && throw(StopTraining())))
    @test n[] == 4
    @test_throws ArgumentError FA.train!(net, RandomBatches((X, Y); size = 8))
end

@testset "strategies" begin
    net = Network([2, 8, 1], [:tanh, :identity]; seed = 71)
    calls = Int[]
    learn!(net, strategy(FeedbackLearner(lr = 0.1), IterFunction((m, i) -> push!(calls, i), 5),
                         Breaker(m -> length(calls) == 3), TimeLimit(1e6)),
           Iterators.repeated((XX, XY)))
    @test calls == [5, 10, 15]
    # ConvergedTo a goal the loss reaches.
    l = FeedbackLearner(rule = :bp, optimizer = :adam, lr = 0.05)
    learn!(net, strategy(l, MaxIter(5000), ConvergedTo(m -> FA.loss(m, XX, XY), 0.0; tol = 1e-2)),
           Iterators.repeated((XX, XY)))
    @test FA.loss(net, XX, XY) <= 1e-2 && l.steps < 5000
    # Verbose: progress lines, and the wrapper form.
    io = IOBuffer()
    learn!(net, strategy(FeedbackLearner(), MaxIter(20), Verbose(; every = 10, io = io)),
           Iterators.repeated((XX, XY)))
    out = String(take!(io))
    @test occursin("iter       10  loss", out) && occursin("iter       20", out)
    learn!(net, strategy(FeedbackLearner(), Verbose(MaxIter(3); io = io)), Iterators.repeated((XX, XY)))
    @test occursin("MaxIter finished the loop at iteration 3", String(take!(io)))
    # A strategy written outside the package, as a user would write one for
    # LearningStrategies.jl: subtype, extend update!/hook, run with learn!.
    c = CountingLearner(0)
    learn!(net, strategy(c, MaxIter(4)), Iterators.repeated((XX, XY)))
    @test c.n == 4
    # learn! without data iterates until a strategy stops it.
    k = Ref(0)
    learn!(net, strategy(IterFunction(m -> k[] += 1), MaxIter(6)))
    @test k[] == 6
    @test_throws ArgumentError learn!(net, strategy(FeedbackLearner(), MaxIter(2)))
end

@testset "zero-copy data and views" begin
    net = Network([3, 5, 2], [:tanh, :identity]; seed = 81)
    P = randn(MersenneTwister(3), Float32, 6, 200)
    # A row block of a bigger matrix: leading dimension 6, not 3.
    @test predict(net, view(P, 2:4, :)) == predict(net, P[2:4, :])
    @test predict(net, view(P, 1:3, 10:20)) == predict(net, P[1:3, 10:20])
    @test net(P[1:3, 5]) == predict(net, P[1:3, 5:5])[:, 1]     # a vector: one observation
    Q = permutedims(P[1:3, :])                   # 200×3; Q' is not strided: copied
    @test predict(net, Q') == predict(net, P[1:3, :])
    @test predict(net, Float64.(P[1:3, :])) == predict(net, P[1:3, :])
    # No copy for Float32 matrices and contiguous column views: a forward pass
    # into a preallocated output allocates a few small objects, independent
    # of the data size, while Float64 data is converted (one Float32 copy).
    X32 = randn(MersenneTwister(4), Float32, 3, 4000)
    X64 = Float64.(X32)
    Y = zeros(Float32, 2, 1000)
    V = view(X32, :, 1001:2000)
    predict!(Y, net, V); predict!(Y, net, view(X64, :, 1001:2000))
    @test (@allocated predict!(Y, net, V)) < 2000
    @test (@allocated predict!(Y, net, view(X64, :, 1001:2000))) >= 3 * 1000 * 4
    @test Y == predict(net, X32[:, 1001:2000])
    Yv = zeros(Float32, 4, 1000)                 # output into a row block view
    @test_throws ArgumentError predict!(view(Yv, 1:2:3, :), net, V)  # stride 2: refused
    predict!(view(Yv, 2:3, :), net, V)
    @test Yv[2:3, :] == Y

    # weights/biases: zero-copy read-only views into the parameter block.
    W1 = FA.weights(net, 1); b1 = FA.biases(net, 1); W2 = FA.weights(net, 2)
    @test size(W1) == (5, 3) && size(b1) == (5,) && size(W2) == (2, 5)
    p = FA.params(net)
    @test vec(Matrix(W1)) == p[1:15] && Vector(b1) == p[16:20] && vec(Matrix(W2)) == p[21:30]
    optimizer!(net, :sgd; lr = 0.1)
    train_step!(net, P[1:3, 1:8], P[4:5, 1:8])
    @test vec(Matrix(W1)) == FA.params(net)[1:15] != p[1:15]     # the view follows training
    @test_throws ArgumentError (W1[1, 1] = 0f0)
    # A view keeps its network alive ...
    v = FA.weights(Network([3, 4], [:identity]; seed = 1), 1)
    GC.gc(); GC.gc()
    @test size(v) == (4, 3) && isfinite(sum(v))
    # ... and after close it raises instead of reading freed memory.
    close(net)
    @test_throws InvalidStateException W1[1, 1]
    @test_throws InvalidStateException sum(b1)
    @test_throws InvalidStateException copy(W2)
    @test occursin("closed", sprint(show, MIME"text/plain"(), W1))
end

@testset "errors" begin
    net = Network([2, 4, 3], [:tanh, :identity]; loss = :softmax_ce, seed = 91)
    X = rand(Float32, 2, 5); T = zeros(Float32, 3, 5); T[1, :] .= 1
    # Wrong sizes: checked in Julia, before the library is called.
    e = try predict(net, rand(Float32, 3, 5)); nothing catch err; err end
    @test e isa DimensionMismatch && occursin("X has 3 rows", e.msg) && occursin("needs 2", e.msg)
    @test_throws DimensionMismatch train_step!(net, X, T[:, 1:4])
    @test_throws DimensionMismatch train_step!(net, X, T[1:2, :])
    @test_throws DimensionMismatch FA.loss(net, zeros(Float32, 2, 0), zeros(Float32, 3, 0))
    @test_throws DimensionMismatch params!(net, zeros(Float32, 3))
    @test_throws DimensionMismatch compute_update!(zeros(Float32, 2), net, X, T)
    @test_throws DimensionMismatch feedback!(net, :dfa, 1, zeros(Float32, 4, 3))
    @test_throws DimensionMismatch predict!(zeros(Float32, 3, 4), net, X)
    @test_throws ArgumentError FA.dropout!(net, 2, 0.5)      # not a hidden layer
    @test_throws ArgumentError FA.dropout!(net, 1, 1.0)
    @test_throws ArgumentError FA.weights(net, 3)
    @test_throws ArgumentError feedback(net, :fa, 1)      # F_1 does not exist
    @test_throws ArgumentError feedback(net, :bp, 1)
    @test_throws ArgumentError Network([2], [:tanh])
    @test_throws ArgumentError Network([2, 0, 1], [:tanh, :identity])
    @test_throws ArgumentError Network([2, 3, 1], [:tanh])
    @test_throws ArgumentError Network([2, 3, 1], [:tanh, :identity]; seed = -1)
    # Wrong element types.
    e = try train_step!(net, Float16.(X), T); nothing catch err; err end
    @test e isa ArgumentError && occursin("Float16", e.msg) && occursin("X", e.msg)
    e = try predict(net, rand(1:3, 2, 5)); nothing catch err; err end
    @test e isa ArgumentError && occursin("Int", e.msg)
    @test_throws ArgumentError FA.loss(net, X, rand(Bool, 3, 5))
    @test_throws ArgumentError compute_update!(zeros(Float64, nparams(net)), net, X, T)
    @test_throws ArgumentError params!(net, zeros(Int, nparams(net)))
    @test_throws ArgumentError predict(net, rand(Float32, 2, 2, 2))
    @test_throws ArgumentError predict(net, "not data")
    # Unknown symbols: the message lists the valid ones.
    e = try Network([2, 3], [:tanhh]); nothing catch err; err end
    @test e isa ArgumentError && occursin(":tanhh", e.msg) && occursin(":leaky_relu", e.msg)
    @test_throws ArgumentError Network([2, 3], [:identity]; loss = :hinge)
    e = try rule!(net, :nosuchrule); nothing catch err; err end
    @test e isa ArgumentError && occursin(":dfa", e.msg) && occursin(":kp", e.msg) && occursin(":nosuchrule", e.msg)
    # Strings go through the library's lookup: any case, '-' for '_'.
    @test rule!(net, "SDFA") === net && rule(net) == :sdfa
    @test activation(Network([2, 3], ["Leaky-ReLU"]), 1) == :leaky_relu
    rule!(net, :bp)
    @test_throws ArgumentError optimizer!(net, :adagrad)
    @test_throws ArgumentError hparam!(net, :learning_rate, 0.1)
    @test_throws ArgumentError feedback_init!(net, :cauchy)
    @test_throws ArgumentError init_weights!(net, :orthogonal)
    @test_throws ArgumentError dfa_variant!(net, :sideways)
    @test_throws ArgumentError loss_eval(:hinge, X, X)
    # Errors only the library can judge come back with its message.
    e = try hparam!(net, :lr, -1.0); nothing catch err; err end
    @test e isa FeedbackAlignError && e.code == -2 && !isempty(e.message)
    @test occursin("FA_ERR_ARG", sprint(showerror, e))
    e = try Network([2, 3], [:tanh]; loss = :softmax_ce); nothing catch err; err end
    @test e isa FeedbackAlignError && e.code == -2
    Xn = copy(X); Xn[1, 1] = NaN32
    p = FA.params(net)
    e = try train_step!(net, Xn, T); nothing catch err; err end
    @test e isa FeedbackAlignError && e.code == -5
    @test FA.params(net) == p                                  # the step changed nothing
    pn = copy(p); pn[3] = Inf32
    @test_throws FeedbackAlignError params!(net, pn)
    @test FA.params(net) == p
    # Use after close: an exception, never a crash; close is idempotent.
    close(net)
    @test !isopen(net)
    @test_throws InvalidStateException predict(net, X)
    @test_throws InvalidStateException train_step!(net, X, T)
    @test_throws InvalidStateException FA.params(net)
    @test_throws InvalidStateException rule!(net, :fa)
    @test_throws InvalidStateException FA.save(net, joinpath(TMP, "closed.fam"))
    @test close(net) === nothing
    @test sprint(show, net) == "Network(closed)"
    # Corrupt, truncated, foreign and missing model files.
    good = Network([3, 4, 2], [:relu, :identity]; seed = 92)
    path = joinpath(TMP, "good.fam")
    FA.save(good, path)
    bytes = read(path)
    flipped = copy(bytes); flipped[div(length(bytes), 2)] ⊻= 0x40
    write(joinpath(TMP, "flipped.fam"), flipped)
    write(joinpath(TMP, "short.fam"), bytes[1:end-9])
    write(joinpath(TMP, "foreign.fam"), "this is not a model file, just text
"^4)
    for name in ("flipped.fam", "short.fam", "foreign.fam")
        e = try FA.load(joinpath(TMP, name)); nothing catch err; err end
        @test e isa FeedbackAlignError && e.code == -7 && !isempty(e.message)
    end
    e = try FA.load(joinpath(TMP, "missing.fam")); nothing catch err; err end
    @test e isa FeedbackAlignError && e.code == -6 && occursin("missing.fam", e.message)
    @test FA.load(path) isa Network                         # the intact file loads
end

@testset "garbage collection" begin
    # Thousands of networks created and dropped: finalizers free them.
    refs = churn_networks(3000)
    GC.gc(); GC.gc()
    @test all(r -> r.value === nothing, refs)
    # Everything still works after the collections.
    net = Network([2, 8, 1], [:tanh, :identity]; seed = 101)
    @test isfinite(train_step!(net, XX, XY))
end

@testset "save and load in Julia" begin
    net = Network([4, 6, 3], [:sigmoid, :identity]; loss = :sigmoid_bce, seed = 111)
    rule!(net, :dfa); dfa_variant!(net, :before_activation)
    optimizer!(net, :rmsprop; lr = 1e-3); FA.dropout!(net, 1, 0.1)
    X = rand(MersenneTwister(5), Float32, 4, 16); T = Float32.(rand(MersenneTwister(6), 3, 16) .> 0.5)
    for _ in 1:3
        train_step!(net, X, T)
    end
    path = joinpath(TMP, "j.fam")
    FA.save(net, path)
    back = FA.load(path)
    @test rule(back) == :dfa && dfa_variant(back) == :before_activation
    @test optimizer(back) == :rmsprop && hparam(back, :lr) ≈ 1e-3 && FA.dropout(back, 1) ≈ 0.1
    @test losstype(back) == :sigmoid_bce && layer_sizes(back) == [4, 6, 3]
    @test FA.params(back) == FA.params(net)
    @test feedback(back, :dfa, 1) == feedback(net, :dfa, 1)
    # Training continues bit-for-bit (optimiser state and RNG survive).
    @test train_step!(back, X, T) == train_step!(net, X, T)
    @test FA.params(back) == FA.params(net)
end

@testset "model files between Julia and C" begin
    prog = get(ENV, "FEEDBACKALIGN_ROUNDTRIP", "")
    if isempty(prog) && haskey(ENV, "FEEDBACKALIGN_LIB")
        prog = joinpath(dirname(ENV["FEEDBACKALIGN_LIB"]), "tests", "interop", "fa-model-roundtrip")
    end
    @test isfile(prog)       # fails with a clear name if the C program was not built
    if isfile(prog)
        function c_forward(path)
            lines = readlines(`$prog forward $path`)
            n0, nl, batch = parse.(Int, split(lines[1]))
            return n0, reshape(parse.(Float32, lines[2:end]), nl, batch)
        end
        # Julia saves, C loads: the same outputs, bit for bit.
        net = Network([5, 7, 4, 2], [:relu, :tanh, :identity]; seed = 121)
        rule!(net, :fa); optimizer!(net, :nesterov; lr = 0.02)
        train_step!(net, fixed_x(5), fixed_t(2))
        path = joinpath(TMP, "from-julia.fam")
        FA.save(net, path)
        n0, Yc = c_forward(path)
        @test n0 == 5
        @test Yc == predict(net, fixed_x(5))
        # C saves, Julia loads.
        cpath = joinpath(TMP, "from-c.fam")
        lines = readlines(`$prog create $cpath`)
        Ycreate = reshape(parse.(Float32, lines[2:end]), 2, 4)
        m = FA.load(cpath)
        @test layer_sizes(m) == [3, 5, 2] && rule(m) == :fa && optimizer(m) == :adam
        @test hparam(m, :lr) ≈ 0.01
        @test predict(m, fixed_x(3)) == Ycreate
        # And a training step continues identically on both sides.
        stepped = joinpath(TMP, "from-c-stepped.fam")
        run(`$prog step $cpath $stepped`)
        train_step!(m, fixed_x(3), fixed_t(2))
        @test FA.params(FA.load(stepped)) == FA.params(m)
        # The C program rejects a file Julia corrupted, with the library's message.
        bad = joinpath(TMP, "bad.fam")
        b = read(path); b[end-2] ⊻= 0xff; write(bad, b)
        err = IOBuffer()
        proc = run(pipeline(ignorestatus(`$prog forward $bad`); stdout = devnull, stderr = err))
        @test proc.exitcode == 1 && occursin("FA_ERR_FORMAT", String(take!(err)))
    end
end

@testset "library lookup and version check" begin
    # A fresh Julia process per case: the library is chosen when the package loads.
    function load_with(lib)
        env = copy(ENV)
        env["FEEDBACKALIGN_LIB"] = lib
        cmd = `$(Base.julia_cmd()) --startup-file=no --project=$(FA.PKGDIR) -e "using FeedbackAlign"`
        err = IOBuffer()
        p = run(pipeline(ignorestatus(setenv(cmd, env)); stdout = devnull, stderr = err))
        return p.exitcode, String(take!(err))
    end
    interop = haskey(ENV, "FEEDBACKALIGN_LIB") ?
        joinpath(dirname(ENV["FEEDBACKALIGN_LIB"]), "tests", "interop") : ""
    wrong = joinpath(interop, "libfa-wrong-version.so")
    @test isfile(wrong)      # built by tests/interop/meson.build
    if isfile(wrong)
        code, msg = load_with(wrong)
        @test code != 0
        @test occursin("version 0.0.99", msg) && occursin("needs version 0.2.0", msg)
    end
    code, msg = load_with(joinpath(TMP, "no-such-lib.so"))
    @test code != 0 && occursin("FEEDBACKALIGN_LIB", msg) && occursin("not a file", msg)
    @test FA.version_text(10203) == "1.2.3"
end

@testset "losses alone" begin
    Y = Float32[0.5 -1; 2 0]; T = Float32[0 1; 1 0]
    v, dY = loss_eval(:mse, Y, T)
    @test v ≈ sum(abs2, Y - T) / (2 * 2)
    @test dY ≈ (Y - T) / 2
    v2, d2 = loss_eval(:softmax_ce, Y, T; grad = false)
    P = exp.(Y) ./ sum(exp.(Y); dims = 1)
    @test v2 ≈ -sum(T .* log.(P)) / 2 rtol = 1e-5
    @test d2 === nothing
    @test_throws DimensionMismatch loss_eval(:mse, Y, T[:, 1:1])
end


end # outer testset
catch e
    e isa Test.TestSetException || rethrow()
    e
end

if ts isa Test.TestSetException
    report(ts.pass, ts.fail + ts.error)
    exit(1)
else
    p, f = count_results(ts)
    report(p, f)
    exit(f == 0 ? 0 : 1)
end
