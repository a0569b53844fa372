"""
    FeedbackAlign.Learn

The LearningStrategies.jl protocol (v0.4), written out with the standard
library only, plus `FeedbackLearner`, a strategy whose `update!` runs the
library's training step:

    using FeedbackAlign, FeedbackAlign.Learn
    learn!(net, strategy(FeedbackLearner(rule=:dfa, optimizer=:adam, lr=1e-3),
                         MaxIter(10_000), Verbose()),
           RandomBatches((X, Y); size=64))

It also exports the batch iterators `eachbatch` and `RandomBatches`
(MLDataPattern look-alikes).  The protocol function `update!` is not
exported (Flux exports an `update!` of its own): extend it as
`Learn.update!`, as one extends `LearningStrategies.update!`.

`learn!(model, strat, data)` calls `setup!(strat, model, data)`, then for each
`(i, item)` in `enumerate(data)`: `update!(model, strat, i, item)`,
`hook(strat, model, data, i)`, and stops when `finished(strat, model, data, i)`;
finally `cleanup!(strat, model)`.  Each function falls back to the shorter
form without `data`/`i`, so a strategy implements only what it needs.  Your
own strategies subtype `Learn.LearningStrategy` and extend these functions,
exactly as with LearningStrategies.jl.
"""
module Learn

using ..FeedbackAlign: Network, train_step!, lastloss, rule!, optimizer!, hparam!,
                       feedback_init!, dfa_variant!, dropout!, reserve!, eachbatch,
                       RandomBatches
using LinearAlgebra: norm
using Printf

export LearningStrategy, MetaStrategy, strategy, learn!, setup!, hook, finished,
       cleanup!, MaxIter, TimeLimit, Converged, ConvergedTo, IterFunction, Tracer, Breaker,
       Verbose, FeedbackLearner, eachbatch, RandomBatches

abstract type LearningStrategy end

# -------------------------------------------------------------- protocol

setup!(s::LearningStrategy, model, data) = setup!(s, model)
setup!(s::LearningStrategy, model) = nothing
update!(model, s::LearningStrategy, i, item) = update!(model, s, item)
update!(model, s::LearningStrategy, item) = nothing
hook(s::LearningStrategy, model, data, i) = hook(s, model, i)
hook(s::LearningStrategy, model, i) = nothing
finished(s::LearningStrategy, model, data, i) = finished(s, model, i)
finished(s::LearningStrategy, model, i) = false
cleanup!(s::LearningStrategy, model) = nothing

"""An endless stream of `nothing`: the data of `learn!(model, strat)`."""
struct InfiniteNothing end
Base.iterate(::InfiniteNothing, state = nothing) = (nothing, nothing)
Base.IteratorSize(::Type{InfiniteNothing}) = Base.IsInfinite()

"""
    learn!(model, strat, data=endless nothing) -> model

Run the strategy over the data (see the module's documentation).
"""
function learn!(model, strat::LearningStrategy, data)
    setup!(strat, model, data)
    for (i, item) in enumerate(data)
        update!(model, strat, i, item)
        hook(strat, model, data, i)
        finished(strat, model, data, i) && break
    end
    cleanup!(strat, model)
    return model
end
learn!(model, strat::LearningStrategy) = learn!(model, strat, InfiniteNothing())

# Call f(model, i) if f takes two arguments, else f(model): LearningStrategies
# callbacks come in both forms.
callf(f, model, i) = applicable(f, model, i) ? f(model, i) : f(model)

# ----------------------------------------------------------- MetaStrategy

"""
    MetaStrategy(strategies) / strategy(s...)

Runs several strategies together: each protocol call goes to every one in
order; `finished` is true as soon as one of them is.
"""
struct MetaStrategy{T<:Tuple} <: LearningStrategy
    strategies::T
end

strategy(s::LearningStrategy...) = MetaStrategy(s)
strategy(m::MetaStrategy, s::LearningStrategy...) = MetaStrategy((m.strategies..., s...))

Base.show(io::IO, m::MetaStrategy) = print(io, "MetaStrategy", m.strategies)

# The strategies are a Tuple of different types: walk it by recursion (not a
# loop, whose element type would be abstract), so that every call is
# resolved at compile time and one iteration of learn! is type-stable.
@inline teach(f, t::Tuple) = (f(first(t)); teach(f, Base.tail(t)))
@inline teach(f, ::Tuple{}) = nothing
@inline tany(f, t::Tuple) = f(first(t))::Bool | tany(f, Base.tail(t))
@inline tany(f, ::Tuple{}) = false

setup!(m::MetaStrategy, model, data) = teach(s -> setup!(s, model, data), m.strategies)
update!(model, m::MetaStrategy, i, item) = teach(s -> update!(model, s, i, item), m.strategies)
hook(m::MetaStrategy, model, data, i) = teach(s -> hook(s, model, data, i), m.strategies)
# Every strategy is asked (as LearningStrategies does, so a Verbose wrapper
# can report), and the loop ends if one of them is finished.
finished(m::MetaStrategy, model, data, i) = tany(s -> finished(s, model, data, i), m.strategies)
cleanup!(m::MetaStrategy, model) = teach(s -> cleanup!(s, model), m.strategies)

# ------------------------------------------------------------- built-ins

"""`MaxIter(n)`: finish after `n` iterations."""
struct MaxIter <: LearningStrategy
    n::Int
    function MaxIter(n::Integer)
        n >= 1 || throw(ArgumentError("MaxIter needs n >= 1, got $n"))
        new(n)
    end
end
finished(s::MaxIter, model, i) = i >= s.n

"""`TimeLimit(seconds)`: finish once that much wall time has passed since `setup!`."""
mutable struct TimeLimit <: LearningStrategy
    secs::Float64
    t0::Float64
    TimeLimit(secs::Real) = secs > 0 ? new(Float64(secs), 0.0) :
        throw(ArgumentError("TimeLimit needs seconds > 0, got $secs"))
end
setup!(s::TimeLimit, model) = (s.t0 = time(); nothing)
finished(s::TimeLimit, model, i) = time() - s.t0 >= s.secs

"""
    Converged(f; tol=1e-6, every=1)

Finish when `f(model)` (a number or an array of numbers) changes by at most
`tol` (in norm) between two checks `every` iterations apart.  The last value
is kept as a `Vector{Float64}`, so the check is type-stable whatever `f`
returns.
"""
mutable struct Converged{F} <: LearningStrategy
    f::F
    tol::Float64
    every::Int
    last::Vector{Float64}
    haslast::Bool
end
Converged(f; tol::Real = 1e-6, every::Integer = 1) =
    every >= 1 ? Converged(f, Float64(tol), Int(every), Float64[], false) :
    throw(ArgumentError("Converged needs every >= 1, got $every"))
setup!(s::Converged, model) = (s.haslast = false; nothing)
function finished(s::Converged, model, i)
    i % s.every == 0 || return false
    return converged!(s, s.f(model))
end
# A function barrier: f's result may be of any type.
function converged!(s::Converged, v)
    n = length(v)
    done = false
    if s.haslast && length(s.last) == n
        d2 = 0.0
        for k in 1:n
            d2 += abs2(Float64(v[k]) - s.last[k])
        end
        done = sqrt(d2) <= s.tol
    end
    resize!(s.last, n)
    for k in 1:n
        s.last[k] = Float64(v[k])
    end
    s.haslast = true
    return done
end

"""
    ConvergedTo(f, goal; tol=1e-6, every=1)

Finish when `f(model)` is within `tol` (in norm) of `goal`.
"""
struct ConvergedTo{F,G} <: LearningStrategy
    f::F
    goal::G
    tol::Float64
    every::Int
end
ConvergedTo(f, goal; tol::Real = 1e-6, every::Integer = 1) =
    every >= 1 ? ConvergedTo(f, goal, Float64(tol), Int(every)) :
    throw(ArgumentError("ConvergedTo needs every >= 1, got $every"))
finished(s::ConvergedTo, model, i) = i % s.every == 0 && norm(s.f(model) .- s.goal) <= s.tol

"""`IterFunction(f, every=1)`: call `f(model, i)` (or `f(model)`) every `every` iterations."""
struct IterFunction{F} <: LearningStrategy
    f::F
    every::Int
end
IterFunction(f) = IterFunction(f, 1)
hook(s::IterFunction, model, i) = (i % s.every == 0 && callf(s.f, model, i); nothing)

"""
    Tracer(T, f, every=1)

Every `every` iterations store `f(model, i)` (or `f(model)`), converted to
`T`, in `tracer.storage`; the iteration numbers go to `tracer.iters`.
"""
struct Tracer{T,F} <: LearningStrategy
    f::F
    every::Int
    storage::Vector{T}
    iters::Vector{Int}
end
Tracer(::Type{T}, f, every::Integer = 1) where {T} =
    every >= 1 ? Tracer{T,typeof(f)}(f, Int(every), T[], Int[]) :
    throw(ArgumentError("Tracer needs every >= 1, got $every"))
function hook(s::Tracer{T}, model, i) where {T}
    if i % s.every == 0
        push!(s.storage, convert(T, callf(s.f, model, i)))
        push!(s.iters, i)
    end
    return nothing
end

"""`Breaker(f)`: finish as soon as `f(model, i)` (or `f(model)`) returns true."""
struct Breaker{F} <: LearningStrategy
    f::F
end
finished(s::Breaker, model, i) = callf(s.f, model, i)::Bool

"""
    Verbose(s)                      report when strategy `s` ends the loop
    Verbose(; every=100, io=stdout) print the iteration and training loss

The first form wraps another strategy (as in LearningStrategies.jl) and
passes every call through to it.  The second prints a progress line every
`every` iterations, with the loss of the last training step when the model
is a `Network`.
"""
struct Verbose{S,I<:IO} <: LearningStrategy
    s::S
    every::Int
    io::I
end
Verbose(s::LearningStrategy; io::IO = stdout) = Verbose(s, 1, io)
Verbose(; every::Integer = 100, io::IO = stdout) =
    every >= 1 ? Verbose(nothing, Int(every), io) :
    throw(ArgumentError("Verbose needs every >= 1, got $every"))

setup!(v::Verbose{Nothing}, model) = nothing
function hook(v::Verbose{Nothing}, model, i)
    if i % v.every == 0
        if model isa Network
            @printf(v.io, "iter %8d  loss %.6g\n", i, lastloss(model))
        else
            @printf(v.io, "iter %8d\n", i)
        end
    end
    return nothing
end

setup!(v::Verbose{<:LearningStrategy}, model, data) = setup!(v.s, model, data)
update!(model, v::Verbose{<:LearningStrategy}, i, item) = update!(model, v.s, i, item)
hook(v::Verbose{<:LearningStrategy}, model, data, i) = hook(v.s, model, data, i)
function finished(v::Verbose{<:LearningStrategy}, model, data, i)
    done = finished(v.s, model, data, i)
    done && println(v.io, nameof(typeof(v.s)), " finished the loop at iteration ", i)
    return done
end
cleanup!(v::Verbose{<:LearningStrategy}, model) = cleanup!(v.s, model)

# ------------------------------------------------------- the learner

"""
    FeedbackLearner(; rule=nothing, optimizer=nothing, lr=nothing, feedback=nothing,
                    scale=0, dfa_variant=nothing, dropout=nothing, max_batch=nothing,
                    hparams...)

A strategy whose `update!(net, learner, (X, Y))` runs one library training
step on the batch.  At `setup!` it applies the settings that are not
`nothing` to the network: the rule (any of `FeedbackAlign.choices(:rule)`), the optimiser,
the learning rate `lr` and any other hyperparameter given by keyword
(`momentum`, `weight_decay`, `beta1`, `kp_decay`, `wm_lr`, ...: the
library's names), the feedback distribution
(`feedback=:uniform` with `scale`), the DFA variant, a dropout probability
for every hidden layer and a workspace reservation.  `learner.loss` holds
the last step's loss, `learner.steps` the number of steps taken.
"""
mutable struct FeedbackLearner <: LearningStrategy
    rule::Union{Symbol,Nothing}
    optimizer::Union{Symbol,Nothing}
    hparams::Vector{Pair{Symbol,Float64}}
    feedback::Union{Symbol,Nothing}
    scale::Float64
    dfa_variant::Union{Symbol,Nothing}
    dropout::Union{Float64,Nothing}
    max_batch::Union{Int,Nothing}
    loss::Float32
    steps::Int
end

function FeedbackLearner(; rule = nothing, optimizer = nothing, lr = nothing,
                         feedback = nothing, scale::Real = 0, dfa_variant = nothing,
                         dropout = nothing, max_batch = nothing, hparams...)
    hp = Pair{Symbol,Float64}[]
    lr === nothing || push!(hp, :lr => Float64(lr))
    for (k, v) in hparams
        push!(hp, k => Float64(v))
    end
    return FeedbackLearner(rule, optimizer, hp, feedback, Float64(scale), dfa_variant,
                           dropout === nothing ? nothing : Float64(dropout),
                           max_batch === nothing ? nothing : Int(max_batch), NaN32, 0)
end

function setup!(s::FeedbackLearner, net::Network)
    s.feedback === nothing || feedback_init!(net, s.feedback; scale = s.scale)
    s.rule === nothing || rule!(net, s.rule)
    s.dfa_variant === nothing || dfa_variant!(net, s.dfa_variant)
    s.optimizer === nothing || optimizer!(net, s.optimizer)
    for (k, v) in s.hparams
        hparam!(net, k, v)
    end
    if s.dropout !== nothing
        for l in 1:length(net.sizes)-2
            dropout!(net, l, s.dropout::Float64)
        end
    end
    s.max_batch === nothing || reserve!(net, s.max_batch)
    s.loss = NaN32
    s.steps = 0
    return nothing
end

function update!(net::Network, s::FeedbackLearner, item)
    (item isa Tuple && length(item) == 2) ||
        throw(ArgumentError("FeedbackLearner needs batches (X, Y) as data items, got $(typeof(item)); " *
                            "call learn!(net, strategy, data) with data such as eachbatch((X, Y); size=64)"))
    s.loss = train_step!(net, item[1], item[2])
    s.steps += 1
    return nothing
end

end # module Learn
