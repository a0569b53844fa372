# The cost of the Julia wrapper: a training epoch run from Julia
# (FeedbackAlign.Learn.learn! over eachbatch) against the same epoch run by
# the C trainer build/tools/fa-train, on Fashion-MNIST, 784-1000-10 tanh,
# softmax cross-entropy, Adam (lr 1e-3), batch 128, one BLAS thread, for each
# rule.  Both call the same library, so the difference is the wrapper: batch
# shuffling and gathering, the iterator and strategy protocol, argument checks
# and the ccall.  The two are interleaved (for each repeat: for each rule:
# fa-train, then Julia), so that load from other processes falls on both.
#
#   benchmarks/run-julia-overhead.sh build [options]      (sets up Julia and the library)
#   julia --project=julia/FeedbackAlign benchmarks/julia_overhead.jl [options]
#
# Options:
#   --build DIR      meson build directory with tools/fa-train [build]
#   --data DIR       Fashion-MNIST IDX files (.gz) [/usr/share/datasets/fashion-mnist]
#   --rules LIST     comma-separated rules, or "all" (every rule the library knows) [all]
#   --repeats N      timed epochs per rule and side [3]; the minimum and the
#                    median are reported (on a busy machine the minimum is the
#                    steadier estimate: interference only ever adds time)
#   --limit N        use only the first N training samples (0: all 60000) [0]
#   --threads N      BLAS threads on both sides [1]
#   --csv FILE       also write one row per rule [none]
#
# What is timed.  fa-train: its own per-epoch time (`mean_epoch_s` of its
# last line): shuffling, gathering each batch, one-hot targets and
# fa_net_train_step, after fa_net_reserve; its data loading and test
# evaluation are not timed.  Julia: the wall time of
#     learn!(net, strategy(FeedbackLearner(), MaxIter(steps)),
#            eachbatch((X, Y); size = 128, shuffle = true, rng = rng))
# on a network that was set up (rule, Adam, lr, reserve!) and warmed up
# (compiled) before; the one-hot targets are made once, as a data set would
# be.  Rules fa-train does not accept are timed on the Julia side only.

using Printf
using Random

const ROOT = normpath(joinpath(@__DIR__, ".."))

function parse_args(args)
    o = Dict{String,String}("build" => "build", "data" => "/usr/share/datasets/fashion-mnist",
                            "rules" => "all", "repeats" => "3", "limit" => "0", "threads" => "1",
                            "csv" => "")
    i = 1
    while i <= length(args)
        a = args[i]
        if a in ("-h", "--help")
            println(read(@__FILE__, String)[1:findfirst("using Printf", read(@__FILE__, String))[1]-1])
            exit(0)
        end
        startswith(a, "--") || error("julia_overhead: unexpected argument '$a' (see --help)")
        k, v = occursin('=', a) ? split(a[3:end], '='; limit = 2) : (a[3:end], i < length(args) ? args[i+1] : "")
        occursin('=', a) || (i += 1)
        haskey(o, k) || error("julia_overhead: unknown option --$k (see --help)")
        o[k] = v
        i += 1
    end
    return o
end

const OPTS = parse_args(ARGS)
const BUILD = isdir(OPTS["build"]) ? abspath(OPTS["build"]) : joinpath(ROOT, OPTS["build"])
const THREADS = parse(Int, OPTS["threads"])
const REPEATS = parse(Int, OPTS["repeats"])
const LIMIT = parse(Int, OPTS["limit"])
const BATCH = 128

# The library of the build directory, with the same thread count as fa-train.
haskey(ENV, "FEEDBACKALIGN_LIB") || (ENV["FEEDBACKALIGN_LIB"] = joinpath(BUILD, "libfeedbackalign.so"))
ENV["OPENBLAS_NUM_THREADS"] = string(THREADS)
using FeedbackAlign, FeedbackAlign.Learn
const FA = FeedbackAlign
FA.set_threads(THREADS)

const FATRAIN = joinpath(BUILD, "tools", "fa-train")
isfile(FATRAIN) || error("julia_overhead: $FATRAIN not found (meson compile -C $(OPTS["build"]))")

# ------------------------------------------------------------------ data

"""An IDX file (gzip or plain) as (dims, bytes), read with the standard library and gzip."""
function read_idx(path)
    raw = endswith(path, ".gz") ? read(pipeline(`gzip -dc $path`)) : read(path)
    (raw[1] == 0 && raw[2] == 0 && raw[3] == 0x08) || error("$path: not an IDX file of unsigned bytes")
    nd = Int(raw[4])
    dims = [Int(ntoh(reinterpret(UInt32, raw[5+4k:8+4k])[1])) for k in 0:nd-1]
    data = raw[5+4nd:end]
    length(data) == prod(dims) || error("$path: $(length(data)) bytes for dims $dims")
    return dims, data
end

function find_idx(dir, name)
    for f in (joinpath(dir, name * ".gz"), joinpath(dir, name))
        isfile(f) && return f
    end
    error("julia_overhead: $name(.gz) not found in $dir")
end

"""Training images as (784, n) Float32 in [0, 1] (pixel / 255, as fa-train) and one-hot labels (10, n)."""
function load_train(dir, limit)
    dims, px = read_idx(find_idx(dir, "train-images-idx3-ubyte"))
    _, lab = read_idx(find_idx(dir, "train-labels-idx1-ubyte"))
    n = dims[1]
    limit > 0 && (n = min(n, limit))
    f = dims[2] * dims[3]                 # rows × columns, row-major: feature x + W*y
    X = Matrix{Float32}(undef, f, n)
    @inbounds for j in 1:n, i in 1:f
        X[i, j] = px[(j-1)*f+i] / 255f0
    end
    Y = zeros(Float32, 10, n)
    for j in 1:n
        Y[lab[j]+1, j] = 1
    end
    return X, Y
end

# ---------------------------------------------------------------- timing

"""fa-train's epoch time for one rule, or `nothing` if it does not accept the rule."""
function fatrain_epoch(rule)
    cmd = `$FATRAIN --data $(OPTS["data"]) --rule $rule --arch 784-1000-10 --act tanh --loss softmax-ce
           --opt adam --lr 0.001 --batch $BATCH --epochs 1 --seed 1 --threads $THREADS
           --align-batch 0 --progress off --limit-test 1000 --limit-train $LIMIT`
    out = IOBuffer(); err = IOBuffer()
    p = run(pipeline(ignorestatus(setenv(cmd, merge(ENV, Dict("OPENBLAS_NUM_THREADS" => string(THREADS))))),
                     stdout = out, stderr = err))
    text = String(take!(out))
    if p.exitcode != 0
        msg = String(take!(err))
        occursin("--rule", msg) && return nothing
        error("fa-train failed (status $(p.exitcode)): $msg")
    end
    m = match(r"mean_epoch_s=([0-9.]+)", text)
    m === nothing && error("fa-train printed no mean_epoch_s:\n$text")
    return parse(Float64, m[1])
end

function julia_net(rule)
    net = Network([784, 1000, 10], [:tanh, :identity]; loss = :softmax_ce, seed = 1)
    rule!(net, rule)
    optimizer!(net, :adam; lr = 1e-3)
    reserve!(net, BATCH)
    return net
end

"""One timed Julia epoch (the network set up beforehand, as fa-train does)."""
function julia_epoch(net, X, Y, seed)
    steps = cld(size(X, 2), BATCH)
    data = eachbatch((X, Y); size = BATCH, shuffle = true, rng = MersenneTwister(seed))
    strat = strategy(FeedbackLearner(), MaxIter(steps))
    GC.gc()
    t = @elapsed learn!(net, strat, data)
    isfinite(lastloss(net)) || error("the Julia epoch diverged")
    return t
end

median(v) = (s = sort(v); n = length(s); isodd(n) ? s[(n+1)÷2] : (s[n÷2] + s[n÷2+1]) / 2)

function main()
    rules = OPTS["rules"] == "all" ? FA.choices(:rule) : Symbol.(split(OPTS["rules"], ','))
    X, Y = load_train(OPTS["data"], LIMIT)
    n = size(X, 2)
    println("# julia_overhead: 784-1000-10 tanh, softmax-CE, Adam lr 1e-3, batch $BATCH, ",
            "$n training samples ($(cld(n, BATCH)) steps per epoch), $THREADS BLAS thread",
            THREADS == 1 ? "" : "s", ", $REPEATS interleaved repeats")
    println("# Julia ", VERSION, ", library ", FA.library_version(), " at ", FA.library_path())
    println("# BLAS: ", FA.blas_info())
    FA.blas_generic() && println("# (OpenBLAS runs generic kernels on this CPU: see FeedbackAlign.versioninfo())")
    println("# load average: ", strip(read("/proc/loadavg", String)))
    # Compile everything once, outside the timing.
    warm = julia_net(:bp)
    learn!(warm, strategy(FeedbackLearner(), MaxIter(2)),
           eachbatch((X, Y); size = BATCH, shuffle = true, rng = MersenneTwister(0)))
    close(warm)
    tc = Dict(r => Float64[] for r in rules)
    tj = Dict(r => Float64[] for r in rules)
    accepted = Dict(r => true for r in rules)
    for rep in 1:REPEATS, r in rules
        if accepted[r]
            t = fatrain_epoch(r)
            t === nothing ? (accepted[r] = false) : push!(tc[r], t)
        end
        net = julia_net(r)
        push!(tj[r], julia_epoch(net, X, Y, rep))
        close(net)
        @printf(stderr, "  repeat %d %-8s fa-train %s  julia %.3f s\n", rep, r,
                accepted[r] ? @sprintf("%.3f s", tc[r][end]) : "   n/a ", tj[r][end])
        flush(stderr)
    end
    # Epoch times in seconds: minimum and median over the repeats.
    @printf("%-8s %10s %10s %8s   %10s %10s %8s\n", "rule", "fatrain_min", "julia_min", "ratio",
            "fatrain_med", "julia_med", "ratio")
    rmin = Float64[]; rmed = Float64[]
    csv = isempty(OPTS["csv"]) ? nothing : open(OPTS["csv"], "w")
    csv === nothing || println(csv, "rule,fatrain_min_s,julia_min_s,ratio_min,fatrain_median_s,",
                               "julia_median_s,ratio_median,samples,threads,repeats")
    for r in rules
        jm, jd = minimum(tj[r]), median(tj[r])
        if accepted[r]
            cm, cd = minimum(tc[r]), median(tc[r])
            push!(rmin, jm / cm); push!(rmed, jd / cd)
            @printf("%-8s %10.3f %10.3f %8.3f   %10.3f %10.3f %8.3f\n", r, cm, jm, jm / cm, cd, jd, jd / cd)
            csv === nothing || @printf(csv, "%s,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%d,%d,%d\n", r, cm, jm,
                                       jm / cm, cd, jd, jd / cd, n, THREADS, REPEATS)
        else
            @printf("%-8s %10s %10.3f %8s   %10s %10.3f %8s   (fa-train does not accept --rule %s)\n",
                    r, "n/a", jm, "-", "n/a", jd, "-", r)
            csv === nothing || @printf(csv, "%s,,%.4f,,,%.4f,,%d,%d,%d\n", r, jm, jd, n, THREADS, REPEATS)
        end
    end
    csv === nothing || close(csv)
    if !isempty(rmin)
        @printf("julia/fa-train over %d rules: from the minima %.3f (rules %.3f..%.3f), from the medians %.3f (%.3f..%.3f)\n",
                length(rmin), median(rmin), minimum(rmin), maximum(rmin), median(rmed), minimum(rmed), maximum(rmed))
    end
    println("# load average after: ", strip(read("/proc/loadavg", String)))
end

main()
