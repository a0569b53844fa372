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
using Distributed
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

# ---------------------------------------------------------------- helpers (0.2)

# Names that Flux exports (0.13 to 0.16, with what it re-exports from NNlib,
# Optimisers, Zygote and OneHotArrays): `using Flux, FeedbackAlign` must not
# make any of them ambiguous.
const FLUX_EXPORTS = Symbol[
    :Chain, :Dense, :Embedding, :EmbeddingBag, :Maxout, :SkipConnection, :Parallel,
    :PairwiseFusion, :RNNCell, :LSTMCell, :GRUCell, :GRUv3Cell, :RNN, :LSTM, :GRU, :GRUv3,
    :SamePad, :Conv, :CrossCor, :ConvTranspose, :DepthwiseConv, :AdaptiveMaxPool,
    :AdaptiveMeanPool, :GlobalMaxPool, :GlobalMeanPool, :MaxPool, :MeanPool, :Dropout,
    :AlphaDropout, :LayerNorm, :BatchNorm, :InstanceNorm, :GroupNorm, :MultiHeadAttention,
    :Upsample, :PixelShuffle, :Bilinear, :Scale, :fmap, :cpu, :gpu, :f16, :f32, :f64,
    :rand32, :randn32, :zeros32, :ones32, :testmode!, :trainmode!, :params, :gradient,
    :withgradient, :jacobian, :hessian, :pullback, :train!, :update!, :update, :setup,
    :stop, :Optimiser, :OptimiserChain, :destructure, :adjust, :adjust!, :freeze!,
    :thaw!, :trainables, :Descent, :Adam, :ADAM, :Momentum, :Nesterov, :RMSProp, :AdaGrad,
    :ADAGrad, :AdaMax, :AdaDelta, :ADADelta, :AMSGrad, :NAdam, :NADAM, :OAdam, :AdamW,
    :ADAMW, :RAdam, :RADAM, :AdaBelief, :InvDecay, :ExpDecay, :WeightDecay, :ClipValue,
    :ClipNorm, :ClipGrad, :Rprop, :Lion, :SignDecay, :AccumGrad, :onehot, :onehotbatch,
    :onecold, :DataLoader, :gpu_device, :cpu_device, :σ, :sigmoid, :hardσ, :hardsigmoid,
    :hardtanh, :relu, :leakyrelu, :relu6, :rrelu, :elu, :gelu, :swish, :hardswish, :selu,
    :celu, :softplus, :softsign, :logσ, :logsigmoid, :logcosh, :mish, :tanhshrink,
    :softshrink, :trelu, :lisht, :tanh_fast, :sigmoid_fast, :dropout, :dropout!, :softmax,
    :softmax!, :logsoftmax, :logsoftmax!, :logsumexp, :batched_mul, :batched_mul!,
    :batched_vec, :batched_transpose, :batched_adjoint, :conv, :conv!, :depthwiseconv,
    :maxpool, :maxpool!, :meanpool, :meanpool!, :pad_zeros, :upsample_nearest,
    :pixel_shuffle, :ctc_loss, :ConvDims, :DenseConvDims, :PoolDims,
    :dot_product_attention, :grid_sample, :bias_act!,
]

# Reference forward pass of the image layers, written from the documented
# layout only: an image is (C, W, H) in Julia; a convolution's W is
# (C_out, C_in*kh*kw) with column c + C_in*(kx + kw*ky) (0-based).
function ref_conv(X, Wm, b, kh, kw, stride, pad, f)
    C, Wd, Hd = size(X)
    Co = size(Wm, 1)
    Ho = div(Hd + 2pad - kh, stride) + 1
    Wo = div(Wd + 2pad - kw, stride) + 1
    Y = zeros(Float64, Co, Wo, Ho)
    for o in 1:Co, yo in 0:Ho-1, xo in 0:Wo-1
        s = Float64(b[o])
        for ky in 0:kh-1, kx in 0:kw-1, c in 0:C-1
            y = yo * stride + ky - pad
            x = xo * stride + kx - pad
            (0 <= y < Hd && 0 <= x < Wd) || continue
            s += Float64(Wm[o, 1+c+C*(kx+kw*ky)]) * Float64(X[c+1, x+1, y+1])
        end
        Y[o, xo+1, yo+1] = f(s)
    end
    return Y
end
function ref_pool(X, k, stride, op)
    C, Wd, Hd = size(X)
    Ho = div(Hd - k, stride) + 1
    Wo = div(Wd - k, stride) + 1
    Y = zeros(Float64, C, Wo, Ho)
    for c in 1:C, yo in 0:Ho-1, xo in 0:Wo-1
        Y[c, xo+1, yo+1] = op([X[c, xo*stride+kx+1, yo*stride+ky+1] for kx in 0:k-1, ky in 0:k-1])
    end
    return Y
end
relu(x) = max(x, zero(x))
mean(v) = sum(v) / length(v)

# Bars: class 1 a vertical bar, class 2 a horizontal one, in 1×6×6 images.
function bar_data(rng, n)
    X = 0.1f0 .* randn(rng, Float32, 1, 6, 6, n)     # (C, W, H, batch)
    Y = zeros(Float32, 2, n)
    for j in 1:n
        k = rand(rng, 1:6)
        if isodd(j)
            X[1, k, :, j] .+= 1      # one column x = k, every row: vertical
            Y[1, j] = 1
        else
            X[1, :, k, j] .+= 1      # one row: horizontal
            Y[2, j] = 1
        end
    end
    return X, Y
end

# Views and networks made inside a function, so that no variable of the
# caller keeps them: returns the (closed) network and weak references.
function closed_with_views()
    net = Network([7, 5, 3], [:tanh, :identity]; seed = 4)
    W = FA.weights(net, 1)
    b = FA.biases(net, 2)
    close(net)
    return net, WeakRef(W), WeakRef(b)
end

# The stress loop: thousands of small networks through copies, images,
# serialisation, views, close, explicit finalize and the collector.
function gc_stress(n)
    rng = MersenneTwister(17)
    X = randn(rng, Float32, 5, 4); T = randn(rng, Float32, 2, 4)
    pool = Any[]
    checked = 0
    for i in 1:n
        net = Network([5, 6, 2], [:tanh, :identity]; seed = i)
        iseven(i) && train_step!(net, X, T)
        k = i % 6
        obj = if k == 0
            c = deepcopy(net)
            predict(c, X) == predict(net, X) || error("deepcopy differs at $i")
            c
        elseif k == 1
            io = IOBuffer()
            serialize(io, (net, FA.weights(net, 1)))
            seekstart(io)
            t = deserialize(io)
            t[2].net === t[1] || error("view lost its network at $i")
            t
        elseif k == 2
            W = FA.weights(net, 2)
            close(net)                 # a closed network with a live view
            W
        elseif k == 3
            c = copy(net)
            finalize(net)              # the finalizer run by hand: close
            c
        elseif k == 4
            v = FA.paramview(net)
            finalize(v)                # a view finalized by hand is closed
            isopen(v) && error("finalized view still open at $i")
            Network(FA.image(net))
        else
            net
        end
        if length(pool) < 64
            push!(pool, obj)
        else
            pool[rand(rng, 1:64)] = obj
        end
        if i % 50 == 0
            for o in pool
                m = o isa Tuple ? o[1] : o
                if m isa Network && isopen(m)
                    isfinite(train_step!(m, X, T)) || error("non-finite loss")
                    checked += 1
                elseif m isa ParamView && !isopen(m)
                    try m[1]; error("closed view readable") catch e; e isa InvalidStateException || rethrow() end
                end
            end
        end
        i % 1000 == 0 && GC.gc(false)
    end
    return checked
end

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
    # Shuffled batches are gathered with one copy per observation.
    A4 = rand(Float32, 2, 3, 4, 5)
    @test FA.obsgather(A4, [5, 2, 2]) == A4[:, :, :, [5, 2, 2]]
    @test FA.obsgather(X, 3:7) == X[:, 3:7] && FA.obsgather(collect(1:5), [4, 1]) == [4, 1]
    @test_throws BoundsError FA.obsgather(X, [1, 301])
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


@testset "names from the library" begin
    L = FA.LibFA
    for (t, cat) in enumerate(FA.CATEGORIES)
        n = L.fa_enum_count(t - 1)
        @test n >= 1
        @test FA.choices(cat) == [Symbol(unsafe_string(L.fa_enum_name(t - 1, v))) for v in 0:n-1]
    end
    @test FA.choices(:rule)[1:11] == [:bp, :fa, :dfa, :usf, :brsf, :frsf, :kp, :wm, :drtp, :sdfa, :shallow]
    @test issubset([:kp_decay, :wm_lr, :wm_decay, :wm_noise, :wm_batch], FA.choices(:hparam))
    @test FA.choices(:layer) == [:dense, :conv2d, :maxpool, :avgpool]
    @test FA.description(:rule, :dfa) == unsafe_string(L.fa_enum_description(2, 2))
    @test_throws ArgumentError FA.choices(:colour)
    for (v, r) in enumerate(FA.choices(:rule))
        k = Ref{Int32}(0); s = Ref{Int32}(0); l = Ref{Int32}(0); p = Ref{Int32}(0)
        @test L.fa_rule_info(v - 1, k, s, l, p) == 0
        info = FA.rule_info(r)
        @test info.name == r && info.kind == FA.choices(:feedback_kind)[k[]+1]
        @test (info.stored, info.learns, info.parallel) == (s[] != 0, l[] != 0, p[] != 0)
        h = Ref{Int32}(-1)
        @test L.fa_rule_hidden(v - 1, h) == 0
        @test info.hidden == FA.choices(:hidden_mode)[h[]+1]
    end
    # BP and SHALLOW keep no feedback; the hidden mode tells them apart.
    @test FA.rule_info(:bp).hidden == :chain && FA.rule_info(:shallow).hidden == :none
    @test FA.rule_info(:dfa).hidden == :direct
    @test FA.choices(:hidden_mode) == [:chain, :direct, :none]
    # Hyperparameters by name, the new ones included.
    net = Network([4, 6, 3], [:tanh, :identity]; seed = 1)
    hparam!(net; kp_decay = 1e-3, wm_lr = 0.02, wm_batch = 16, wm_noise = 0.5)
    @test hparam(net, :kp_decay) ≈ 1e-3 && hparam(net, :wm_lr) ≈ 0.02
    @test hparam(net, :wm_batch) == 16 && hparam(net, "WM-NOISE") == 0.5
    @test first.(FA.hparams(net)) == FA.choices(:hparam)
    e = try hparam!(net; kp_decay = 1.5); nothing catch err; err end
    @test e isa FeedbackAlignError && e.code == -2
end

@testset "every rule by name ($r)" for r in FA.choices(:rule)
    # A conv layer, a pooling layer (no parameters) and two dense layers.
    net = Network(Conv((3, 3), 1 => 2, :tanh; pad = 1), MaxPool(2), Dense(8 => 6, :tanh), Dense(6 => 3);
                  input = (1, 4, 4), loss = :softmax_ce, seed = 2)
    X = randn(MersenneTwister(3), Float32, 1, 4, 4, 10)
    T = zeros(Float32, 3, 10); for j in 1:10; T[mod1(j, 3), j] = 1; end
    info = FA.rule_info(r)
    rule!(net, r)
    @test rule(net) == r
    fl = feedback_layers(net, r)
    @test fl == (info.kind === :layer ? [3, 4] : info.kind === :direct ? [1, 3] : Int[])
    for l in fl
        sh = feedback_shape(net, r, l)
        @test sh == (info.kind === :layer ? size(FA.weights(net, l)) : (3, layer_sizes(net)[l+1]))
        M = feedback(net, r, l)
        @test size(M) == sh && all(isfinite, M)
        if info.stored
            feedback!(net, r, l, M .* 0.5f0)
            @test feedback(net, r, l) == M .* 0.5f0
        else
            @test_throws ArgumentError feedback!(net, r, l, M)
        end
    end
    @test_throws ArgumentError feedback(net, r, 2)          # the pooling layer has none
    if info.kind === :none
        e = try feedback_angles(net, r); nothing catch err; err end
        @test e isa ArgumentError && occursin(":fa", e.msg)
    else
        a = feedback_angles(net, r)
        @test length(a) == 3
        if info.kind === :layer      # a[l-1] = angle(W_l, B_l), l = 2..4; layer 2 is the pooling layer
            @test isnan(a[1]) && isfinite(a[2]) && isfinite(a[3])
        else                         # a[l] = angle(G_l, W_4⋯W_{l+1}), l = 1..3; paths through pooling: NaN
            @test isnan(a[1]) && isnan(a[2]) && isfinite(a[3])
        end
    end
    al = alignment(net, X, T)
    @test length(al) == 3 && isnan(al[2]) && isfinite(al[1]) && isfinite(al[3])
    r === :bp && @test all(a -> a < 1e-2, al[[1, 3]])
    r === :shallow && @test al[[1, 3]] == [90f0, 90f0]
    p0 = FA.params(net)
    @test isfinite(train_step!(net, X, T))
    @test FA.params(net) != p0
    if r === :shallow     # only the last layer learns
        w4, _ = FA.layer_offsets(net, 4)
        @test FA.params(net)[1:w4] == p0[1:w4]
    end
end

@testset "copy and deepcopy" begin
    X, Y = teacher_data(MersenneTwister(201), 32)
    net = Network([6, 16, 3], [:tanh, :identity]; loss = :softmax_ce, seed = 5)
    rule!(net, :kp); optimizer!(net, :adam; lr = 1e-2); FA.dropout!(net, 1, 0.2)
    train_step!(net, X, Y)
    c = copy(net)
    d = deepcopy(net)
    @test c isa Network && d isa Network
    @test c.ptr != net.ptr && d.ptr != net.ptr && c.ptr != d.ptr
    @test FA.image(c) == FA.image(net) == FA.image(d)        # everything, RNG streams included
    @test lastloss(c) === lastloss(net) && rule(d) == :kp && FA.dropout(d, 1) ≈ 0.2
    # Train the original: the copies do not change.
    p0 = FA.params(c); f0 = feedback(c, :kp, 2)
    l = train_step!(net, X, Y)
    @test FA.params(c) == p0 && FA.params(d) == p0 && feedback(d, :kp, 2) == f0
    # The copies take the same step bit for bit (dropout and optimiser state too).
    @test train_step!(c, X, Y) == l == train_step!(d, X, Y)
    @test FA.params(c) == FA.params(net) == FA.params(d)
    @test feedback(c, :kp, 2) == feedback(net, :kp, 2)
    # The issue's case: close the original, use the copy.
    net2 = deepcopy(net)
    close(net)
    @test predict(net2, X) == predict(c, X)
    @test isfinite(train_step!(net2, X, Y))
    @test_throws InvalidStateException copy(net)
    @test_throws InvalidStateException deepcopy(net)
    # Collect the original: the copy lives on.
    function copy_of_dropped()
        n = Network([6, 16, 3], [:tanh, :identity]; seed = 6)
        return deepcopy(n), WeakRef(n)
    end
    cp, wr = copy_of_dropped()
    GC.gc(); GC.gc()
    @test wr.value === nothing
    @test size(predict(cp, X)) == (3, 32)
    # deepcopy of a structure keeps sharing: one network copied once, its
    # view pointing into the copy.
    s = (a = cp, b = [cp, cp], w = FA.weights(cp, 2))
    s2 = deepcopy(s)
    @test s2.a === s2.b[1] === s2.b[2] !== cp
    @test s2.w.net === s2.a && s2.w == s.w && pointer(s2.w) != pointer(s.w)
end

@testset "serialize and images" begin
    X, Y = teacher_data(MersenneTwister(211), 32)
    net = Network([6, 12, 8, 3], [:relu, :tanh, :identity]; loss = :softmax_ce, seed = 7)
    rule!(net, :wm); optimizer!(net, :momentum; lr = 0.05); FA.dropout!(net, 2, 0.1)
    hparam!(net; wm_batch = 8)
    for _ in 1:3
        train_step!(net, X, Y)
    end
    io = IOBuffer()
    serialize(io, net)
    seekstart(io)
    back = deserialize(io)
    @test back isa Network && back.ptr != net.ptr
    @test FA.image(back) == FA.image(net)
    @test FA.params(back) == FA.params(net) && lastloss(back) === lastloss(net)
    @test rule(back) == :wm && optimizer(back) == :momentum && FA.hparams(back) == FA.hparams(net)
    @test all(feedback(back, :wm, l) == feedback(net, :wm, l) for l in 2:3)
    # Training continues bit for bit (optimiser state, both RNG streams).
    for _ in 1:2
        @test train_step!(back, X, Y) == train_step!(net, X, Y)
    end
    @test FA.params(back) == FA.params(net)
    @test all(feedback(back, :wm, l) == feedback(net, :wm, l) for l in 2:3)
    # Through a file, inside a structure: sharing survives, views come back
    # as views of the deserialized network.
    path = joinpath(TMP, "nets.jls")
    other = copy(net)
    serialize(path, (a = net, b = [net, other], w = FA.weights(net, 2), k = FA.kernels(net, 1)))
    t = deserialize(path)
    @test t.a === t.b[1] && t.b[2] !== t.a && FA.params(t.b[2]) == FA.params(other)
    @test t.w isa ParamView{2} && t.w.net === t.a && t.w == FA.weights(net, 2)
    @test t.k isa ParamView{4} && t.k.net === t.a && size(t.k) == (12, 6, 1, 1)
    # Images.
    img = FA.image(net)
    @test img isa Vector{UInt8}
    FA.save(net, joinpath(TMP, "img.fam"))
    @test read(joinpath(TMP, "img.fam")) == img
    @test FA.params(Network(img)) == FA.params(net)
    @test FA.params(FA.load(joinpath(TMP, "img.fam"))) == FA.params(Network(view(img, :)))
    e = try Network(img[1:end-1]); nothing catch err; err end
    @test e isa FeedbackAlignError && e.code == -7
    # A closed network cannot be serialized, nor a view of one.
    W = FA.weights(other, 1)
    close(other)
    e = try serialize(IOBuffer(), other); nothing catch err; err end
    @test e isa InvalidStateException && occursin("closed", e.msg)
    @test_throws InvalidStateException serialize(IOBuffer(), W)
    @test_throws InvalidStateException FA.image(other)
    # A stream of another format is refused.
    io = IOBuffer(); serialize(io, net); bytes = take!(io)
    img = FA.image(net)
    q = findfirst(k -> bytes[k:k+63] == img[1:64], 1:length(bytes)-63)   # where the image starts
    @test bytes[q-9] == FA.SERIAL_FORMAT && reinterpret(Int64, bytes[q-8:q-1])[1] == length(img)
    bad = copy(bytes); bad[q-9] = 0x7f
    e = try deserialize(IOBuffer(bad)); nothing catch err; err end
    @test e isa ErrorException && occursin("unknown format", e.msg)
    bad = copy(bytes); bad[q+20] ⊻= 0x01                                  # a corrupt image
    e = try deserialize(IOBuffer(bad)); nothing catch err; err end
    @test e isa FeedbackAlignError && e.code == -7
end

@testset "networks through Distributed" begin
    # remotecall serialises its arguments and results with Serialization:
    # networks go to a worker process and come back through their images.
    X, Y = teacher_data(MersenneTwister(231), 16)
    net = Network([6, 8, 3], [:tanh, :identity]; loss = :softmax_ce, seed = 9, rule = :dfa)
    w = addprocs(1; exeflags = `--startup-file=no --project=$(FA.PKGDIR)`)[1]
    try
        Distributed.remotecall_eval(Main, w, :(using FeedbackAlign))
        # There: train a copy one step; here: the same step.
        back = remotecall_fetch((n, X, Y) -> (train_step!(n, X, Y); n), w, net, X, Y)
        train_step!(net, X, Y)
        @test back isa Network && FA.params(back) == FA.params(net)
        @test feedback(back, :dfa, 1) == feedback(net, :dfa, 1)
        made = remotecall_fetch(() -> Network("4-5-2"; seed = 3), w)
        @test FA.params(made) == FA.params(Network("4-5-2"; seed = 3))
    finally
        rmprocs(w)
    end
end

@testset "views are strided and BLAS-backed" begin
    net = Network([30, 20, 5], [:tanh, :identity]; seed = 3)
    params!(net, randn(MersenneTwister(8), Float32, nparams(net)))   # non-zero biases
    W = FA.weights(net, 1); b = FA.biases(net, 1); P = FA.paramview(net)
    @test W isa ParamView{2} && W isa StridedMatrix{Float32} && W isa DenseMatrix{Float32}
    @test b isa StridedVector{Float32} && P isa StridedVector{Float32}
    @test strides(W) == (1, 20) && size(W) == (20, 30)
    dp = Ref{Ptr{Float32}}(C_NULL)
    @test FA.LibFA.fa_net_params_data(net.ptr, dp) == 0
    wo, bo = FA.layer_offsets(net, 1)
    @test pointer(W) == dp[] + 4wo && pointer(b) == dp[] + 4bo && pointer(P) == dp[]
    @test pointer(FA.weights(net, 2)) == dp[] + 4 * FA.layer_offsets(net, 2)[1]
    @test UInt(pointer(P)) % 64 == 0
    @test P == FA.params(net) && vec(W) == FA.params(net)[wo+1:wo+600]
    rng = MersenneTwister(9)
    x = randn(rng, Float32, 30); Xm = randn(rng, Float32, 30, 7)
    M = Matrix(W)
    @test W * x == M * x == LinearAlgebra.BLAS.gemv('N', 1f0, W, x)
    @test W * Xm == M * Xm
    @test W' * ones(Float32, 20) == M' * ones(Float32, 20)
    y = zeros(Float32, 20)
    mul!(y, W, x)
    @test y == M * x && (@allocated mul!(y, W, x)) == 0
    @test tanh.(W * Xm .+ b) == tanh.(M * Xm .+ Vector(b))
    @test predict(net, Xm) ≈ FA.weights(net, 2) * tanh.(W * Xm .+ b) .+ FA.biases(net, 2) rtol = 1e-5
    @test sum(W) == sum(M) && dot(b, b) == dot(Vector(b), Vector(b))
    V = view(W, :, 3:4)
    @test V isa StridedMatrix{Float32} && pointer(V) == pointer(W) + 4 * 2 * 20 && V == M[:, 3:4]
    @test reshape(W, :) == vec(M) && copy(W) isa Matrix{Float32} && copy(W) == M
    @test_throws ArgumentError (W[1] = 0f0)
    @test_throws ArgumentError fill!(W, 0f0)
    @test_throws ArgumentError predict!(FA.weights(net, 2), net, randn(Float32, 30, 20))  # not an output buffer
    # Views follow training in place.
    optimizer!(net, :sgd; lr = 0.1)
    train_step!(net, Xm, randn(rng, Float32, 5, 7))
    @test Matrix(W) != M && vec(W) == FA.params(net)[wo+1:wo+600]
    # Convolution weights: the (C_out, C_in*kh*kw) matrix and the 4-D kernels.
    cn = Network(Conv((2, 3), 2 => 4, :relu), Dense(1); input = (2, 4, 5), seed = 10)
    Wc = FA.weights(cn, 1); K = FA.kernels(cn, 1)
    @test size(Wc) == (4, 2 * 2 * 3) && size(K) == (4, 2, 3, 2)   # (C_out, C_in, kw, kh)
    @test K isa StridedArray{Float32,4} && pointer(K) == pointer(Wc)
    @test all(K[o, c+1, kx+1, ky+1] == Wc[o, 1+c+2*(kx+3*ky)] for o in 1:4, c in 0:1, kx in 0:2, ky in 0:1)
    @test size(FA.kernels(cn, 2)) == (1, 4 * 3 * 3, 1, 1)
end

@testset "views after close" begin
    net = Network([30, 20, 5], [:tanh, :identity]; seed = 3)
    W = FA.weights(net, 1); b = FA.biases(net, 1); P = FA.paramview(net)
    V = view(W, :, 1:2); R = reshape(W, :); Wt = W'
    x = ones(Float32, 30); y = zeros(Float32, 20)
    M = Matrix(W)
    p = pointer(W)
    @test isopen(W)
    close(net)
    @test !isopen(W) && !isopen(b) && !isopen(P)
    # Every read through a view is refused.
    @test_throws InvalidStateException W[1]
    @test_throws InvalidStateException W[3, 4]
    @test_throws InvalidStateException b[1]
    @test_throws InvalidStateException sum(W)
    @test_throws InvalidStateException copy(W)
    @test_throws InvalidStateException Array(P)
    @test_throws InvalidStateException collect(b)
    @test_throws InvalidStateException pointer(W)
    @test_throws InvalidStateException W * x
    @test_throws InvalidStateException mul!(y, W, x)
    @test_throws InvalidStateException Wt * ones(Float32, 20)
    @test_throws InvalidStateException W .+ 1
    @test_throws InvalidStateException V[1]
    @test_throws InvalidStateException V * ones(Float32, 2)
    @test_throws InvalidStateException R[5]
    @test_throws InvalidStateException FA.weights(net, 1)      # no new views either
    @test_throws InvalidStateException predict(Network([20, 2], [:identity]), b)
    @test occursin("closed", sprint(show, MIME"text/plain"(), W)) && sprint(show, W) == "ParamView(closed)"
    # ... and yet the memory is still allocated while views exist: a pointer
    # taken before close stays valid as long as its view is reachable.
    GC.@preserve W begin
        @test unsafe_load(p, 1) == M[1] && unsafe_load(p, 600) == M[600]
    end
    @test net.owned[] != 0 && net.nviews[] >= 3
    # Once the views are collected, the handle is freed.
    n2, w1, w2 = closed_with_views()
    @test n2.owned[] != 0                   # views alive inside the function until it returned
    GC.gc(); GC.gc()
    @test w1.value === nothing && w2.value === nothing
    @test n2.nviews[] == 0 && n2.owned[] == 0
    # Without views, close frees at once.
    n3 = Network([3, 2], [:identity])
    close(n3)
    @test n3.owned[] == 0
    # A view keeps its network from being collected, however long it lives.
    v = FA.weights(Network([3, 4], [:identity]; seed = 1), 1)
    GC.gc(); GC.gc()
    @test isopen(v) && isopen(v.net) && isfinite(sum(v))
end

@testset "type stability" begin
    X, Y = teacher_data(MersenneTwister(221), 64)
    net = Network([6, 16, 3], [:tanh, :identity]; loss = :softmax_ce, seed = 8)
    @inferred train_step!(net, X, Y)
    @inferred train_step!(net, view(X, :, 1:8), view(Y, :, 1:8))
    @inferred predict(net, X)
    @inferred predict(net, X[:, 1])
    @inferred FA.loss(net, X, Y)
    @inferred FA.grad(net, X, Y)
    @inferred FA.weights(net, 1)
    cn = Network(Conv((3, 3), 1 => 2, :tanh; pad = 1), AvgPool(2), Dense(2); input = (1, 4, 4), seed = 1)
    @inferred predict(cn, rand(Float32, 1, 4, 4, 3))
    it = eachbatch((X, Y); size = 16)
    its = eachbatch((X, Y); size = 16, shuffle = true, rng = MersenneTwister(1))
    rb = RandomBatches((X, Y); size = 16, rng = MersenneTwister(2))
    @test fieldtype(typeof(its), :rng) === MersenneTwister
    @test fieldtype(typeof(rb), :rng) === MersenneTwister
    @test all(T -> isconcretetype(T), fieldtypes(typeof(it)))
    for b in (it, its, rb)
        s = @inferred Nothing iterate(b)
        @inferred Nothing iterate(b, s[2])
        @inferred first(b)
        @test eltype(typeof(b)) == typeof(first(b))
    end
    # One learn! iteration: every protocol call inferred.
    strat = strategy(FeedbackLearner(lr = 0.01), MaxIter(3),
                     Converged(m -> FA.loss(m, X, Y); tol = 1e-12), Tracer(Float64, m -> lastloss(m)),
                     IterFunction(m -> nothing, 5), Verbose(every = 1000, io = devnull))
    @test all(T -> isconcretetype(T), fieldtypes(typeof(Converged(identity))))
    @test isconcretetype(typeof(Verbose(every = 10, io = devnull)))
    Learn.setup!(strat, net, it)
    batch = first(it)
    @inferred Learn.update!(net, strat, 1, batch)
    @inferred Learn.hook(strat, net, it, 1)
    @inferred Learn.finished(strat, net, it, 1)
    @inferred learn!(net, strat, it)
    # ... and the loop allocates nothing per iteration.
    loop(n) = learn!(net, strategy(FeedbackLearner(lr = 0.001), MaxIter(n)), Iterators.repeated((X, Y)))
    loop(2)
    a10 = @allocated loop(10)
    a1010 = @allocated loop(1010)
    @test a1010 - a10 < 1000
end

@testset "exports beside Flux" begin
    ours = names(FeedbackAlign)
    @test isempty(intersect(ours, FLUX_EXPORTS))
    @test isempty(intersect(names(FeedbackAlign.Learn), FLUX_EXPORTS))
    for n in (:params, :grad, :loss, :train!, :weights, :biases, :dropout, :dropout!, :Dense, :Conv,
              :MaxPool, :save, :load)
        @test !(n in ours)
        @test isdefined(FeedbackAlign, n)          # reached through the module
    end
    @test issubset([:Dense, :Conv, :MaxPool, :AvgPool], names(FeedbackAlign.Layers))
    # A module using a stand-in for Flux (its exported names) and FeedbackAlign:
    # every name of both resolves, none is ambiguous.
    sandbox = Module(:Sandbox)
    Core.eval(sandbox, :(module FakeFlux end))
    fake = Core.eval(sandbox, :FakeFlux)
    for n in FLUX_EXPORTS
        Core.eval(fake, :(const $n = $(QuoteNode(n))))
    end
    Core.eval(fake, Expr(:export, FLUX_EXPORTS...))
    Core.eval(sandbox, :(using .FakeFlux, FeedbackAlign, FeedbackAlign.Learn))
    @test all(n -> Core.eval(sandbox, n) === n, FLUX_EXPORTS)
    @test all(n -> Core.eval(sandbox, n) === getfield(FeedbackAlign, n), filter(!=(:FeedbackAlign), ours))
end

@testset "conv networks" begin
    lenet = Network(Conv((5, 5), 1 => 6, :tanh; pad = 2, stride = 1), MaxPool(2),
                    Conv((5, 5), 6 => 16, :tanh), MaxPool(2),
                    Dense(16 * 5 * 5 => 120, :tanh), Dense(120 => 84, :tanh), Dense(84 => 10);
                    input = (1, 28, 28), loss = :softmax_ce, seed = 1)
    same = Network("1x28x28-c6k5p2-m2-c16k5-m2-120-84-10"; act = :tanh, loss = :softmax_ce, seed = 1)
    @test FA.spec(lenet) == FA.spec(same) == "1x28x28-c6k5p2:tanh-m2-c16k5:tanh-m2-120:tanh-84:tanh-10:identity"
    @test FA.params(lenet) == FA.params(same)
    @test sprint(show, lenet) == "Network(\"$(FA.spec(lenet))\"; loss=:softmax_ce, rule=:bp)"
    @test occursin("conv2d 6, 5×5, pad 2", sprint(show, MIME"text/plain"(), lenet))
    @test layer_sizes(lenet) == [784, 6 * 28 * 28, 6 * 14 * 14, 1600, 400, 120, 84, 10]
    @test [layer_kind(lenet, l) for l in 1:7] == [:conv2d, :maxpool, :conv2d, :maxpool, :dense, :dense, :dense]
    @test layer_shape(lenet, 0) == (1, 28, 28) && layer_shape(lenet, 4) == (16, 5, 5)
    @test nparams(lenet) == 61706
    @test size(FA.weights(lenet, 1)) == (6, 25) && size(FA.kernels(lenet, 3)) == (16, 6, 5, 5)
    @test size(FA.weights(lenet, 2)) == (0, 0) && isempty(FA.biases(lenet, 2))
    @test_throws ArgumentError FA.kernels(lenet, 2)
    l2 = Network("1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10"; act = :tanh, loss = :softmax_ce, seed = 1)
    @test layer_kind(l2, 5) == :conv2d && nparams(l2) == 61706
    # Image data: (C, W, H, batch) arrays, reshaped without a copy.
    X4 = rand(MersenneTwister(1), Float32, 1, 28, 28, 3)
    Xm = reshape(X4, 784, 3)
    P = predict(lenet, X4)
    @test P == predict(lenet, Xm) && size(P) == (10, 3)
    @test predict(lenet, view(X4, :, :, :, 2:3)) == P[:, 2:3]
    Y = zeros(Float32, 10, 3)
    predict!(Y, lenet, X4)
    @test (@allocated predict!(Y, lenet, X4)) < 2000
    T = zeros(Float32, 10, 3); T[1, :] .= 1
    @test FA.loss(lenet, X4, T) == FA.loss(lenet, Xm, T)
    e = try predict(lenet, rand(Float32, 1, 27, 28, 2)); nothing catch err; err end
    @test e isa DimensionMismatch && occursin("(1, 28, 28, batch)", e.msg)
    @test_throws ArgumentError predict(lenet, rand(Float32, 28, 28, 2))
    # Declared sizes are checked, naming the layer.
    e = try Network(Conv((5, 5), 3 => 6, :tanh), Dense(10); input = (1, 28, 28)); nothing catch err; err end
    @test e isa DimensionMismatch && occursin("layer 1", e.msg) && occursin("3 input channels", e.msg) &&
          occursin("gives 1", e.msg)
    e = try Network(Conv((5, 5), 1 => 16), MaxPool(2), Dense(100 => 10); input = (1, 14, 14)); nothing catch err; err end
    @test e isa DimensionMismatch && occursin("layer 3", e.msg) && occursin("16×5×5 = 400", e.msg)
    e = try Network(Conv((9, 9), 1 => 2), Dense(2); input = (1, 4, 4)); nothing catch err; err end
    @test e isa FeedbackAlignError && e.code == -3 && occursin("layer 1", e.message)
    e = try Network("1x28x28-c6q5-10"); nothing catch err; err end
    @test e isa FeedbackAlignError && e.code == -2
    e = try Network(Dense(4 => 3, :tanh), MaxPool(2); input = 4); nothing catch err; err end
    @test e isa FeedbackAlignError
    @test_throws ArgumentError MaxPool((2, 3))
    @test_throws ArgumentError Network(Dense(2); input = (1, 2))
    @test_throws ArgumentError Conv((3, 3), 1 => 2, :tanh; pad = -1)
    # Dense-only constructors keep working, with or without declared inputs.
    d1 = Network(Dense(4 => 8, :tanh), Dense(2); input = 4, seed = 3)
    d2 = Network([4, 8, 2], [:tanh, :identity]; seed = 3)
    d3 = Network("4-8-2"; act = :tanh, seed = 3)
    @test FA.spec(d1) == FA.spec(d2) == FA.spec(d3) && FA.params(d1) == FA.params(d2) == FA.params(d3)
    @test_throws DimensionMismatch Network(Dense(5 => 8, :tanh), Dense(2); input = 4)
    @test Network(FeedbackAlign.Dense(3, tanh); input = 2) isa Network     # a function for the activation
end

@testset "conv forward by hand" begin
    # Non-square images and kernels, so that height and width cannot be mixed up.
    net = Network(Conv((3, 2), 2 => 3, :tanh; pad = 1), MaxPool(2), Dense(27 => 2);
                  input = (2, 6, 5), seed = 12)
    @test layer_shape(net, 1) == (3, 6, 6) && layer_shape(net, 2) == (3, 3, 3)
    params!(net, 0.5f0 .* randn(MersenneTwister(13), Float32, nparams(net)))
    X = randn(MersenneTwister(14), Float32, 2, 5, 6, 4)      # (C, W, H, batch)
    W1 = FA.weights(net, 1); b1 = FA.biases(net, 1); W3 = FA.weights(net, 3); b3 = FA.biases(net, 3)
    ref = zeros(Float64, 2, 4)
    for j in 1:4
        A = ref_conv(X[:, :, :, j], W1, b1, 3, 2, 1, 1, tanh)
        Pm = ref_pool(A, 2, 2, maximum)
        ref[:, j] = Float64.(W3) * vec(Pm) .+ Float64.(b3)
    end
    @test predict(net, X) ≈ ref rtol = 1e-5
    # Stride, average pooling, relu.
    net2 = Network(Conv(3, 2 => 2, :relu; stride = 2, pad = 1), AvgPool(3), Dense(2 => 1, :identity);
                   input = (2, 5, 5), seed = 15)
    params!(net2, 0.5f0 .* randn(MersenneTwister(16), Float32, nparams(net2)))
    X2 = randn(MersenneTwister(17), Float32, 2, 5, 5, 3)
    ref2 = zeros(Float64, 1, 3)
    for j in 1:3
        A = ref_conv(X2[:, :, :, j], FA.weights(net2, 1), FA.biases(net2, 1), 3, 3, 2, 1, relu)
        Pm = ref_pool(A, 3, 3, mean)
        ref2[:, j] = Float64.(FA.weights(net2, 3)) * vec(Pm) .+ Float64.(FA.biases(net2, 3))
    end
    @test predict(net2, X2) ≈ ref2 rtol = 1e-5
end

@testset "a conv network trains ($r)" for r in (:bp, :dfa)
    X, Y = bar_data(MersenneTwister(31), 256)
    net = Network(Conv((3, 3), 1 => 4, :relu; pad = 1), MaxPool(2), Dense(36 => 2);
                  input = (1, 6, 6), loss = :softmax_ce, seed = 32, rule = r)
    before = FA.loss(net, X, Y)
    learn!(net, strategy(FeedbackLearner(optimizer = :adam, lr = 0.01), MaxIter(150)),
           RandomBatches((X, Y); size = 32, rng = MersenneTwister(33)))
    @test FA.loss(net, X, Y) < before / 2
    Xt, Yt = bar_data(MersenneTwister(34), 128)
    @test accuracy(net, Xt, Yt) > 0.9
end

@testset "BLAS info and threads" begin
    s = FA.blas_info()
    @test occursin("core", s) && occursin("thread", s)
    # The header's format: "OpenBLAS 0.3.21 DYNAMIC_ARCH ..., core Zen, 2 threads, pthreads"
    # (OpenBLAS's own configuration string already starts with its name).
    @test startswith(s, "OpenBLAS ") && !occursin("OpenBLAS OpenBLAS", s)
    @test FA.blas_generic() isa Bool
    io = IOBuffer()
    FA.versioninfo(io)
    out = String(take!(io))
    @test occursin("libfeedbackalign 0.2.0", out) && occursin("BLAS: " * s, out)
    @test occursin("rules: bp fa dfa", out)
    @test occursin("WARNING", out) == FA.blas_generic()
    n0 = FA.get_threads()
    FA.set_threads(1)
    @test FA.get_threads() == 1
    FA.set_threads(n0)
    @test FA.get_threads() == n0
    @test_throws ArgumentError FA.set_threads(0)
end

@testset "GC stress: copies, images, views, close, finalizers" begin
    t = @elapsed checked = gc_stress(4000)
    GC.gc(); GC.gc()
    @test checked > 0
    @test t < 60
    net = Network([2, 8, 1], [:tanh, :identity]; seed = 301)
    @test isfinite(train_step!(net, XX, XY))
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
