# Mini-batch iterators in the JuliaML convention: observations are the last
# dimension (columns of a matrix, entries of a vector).  `data` is one array
# or a tuple of arrays with the same number of observations, e.g. (X, Y); each
# batch has the same form.

nobs(A::AbstractArray) = size(A, ndims(A))
function nobs(data::Tuple)
    isempty(data) && throw(ArgumentError("data is an empty tuple"))
    n = nobs(data[1])
    for (i, A) in enumerate(data)
        A isa AbstractArray ||
            throw(ArgumentError("data[$i] must be an array with observations as its last dimension, got a $(typeof(A))"))
        nobs(A) == n ||
            throw(DimensionMismatch("data[1] has $n observations but data[$i] has $(nobs(A))"))
    end
    return n
end
nobs(x) = throw(ArgumentError("data must be an array or a tuple of arrays (observations as the last dimension), got a $(typeof(x))"))

# view(X, :, a:b) of a Matrix is contiguous and passes to the library without copy.
obsview(A::AbstractArray, idx) = view(A, ntuple(_ -> Colon(), ndims(A) - 1)..., idx)
obsview(data::Tuple, idx) = map(A -> obsview(A, idx), data)
obsgather(A::AbstractArray, idx) = A[ntuple(_ -> Colon(), ndims(A) - 1)..., idx]
# An Array's observations are contiguous blocks: copy each with one copyto!
# (a memcpy), several times faster than the generic indexing above for
# image-sized observations.  The result is the same new Array.
function obsgather(A::Array{T,N}, idx::AbstractVector{<:Integer}) where {T,N}
    N == 1 && return A[idx]
    m = prod(ntuple(d -> size(A, d), N - 1))
    B = similar(A, (ntuple(d -> size(A, d), N - 1)..., length(idx)))
    n = size(A, N)
    for (k, j) in enumerate(idx)
        1 <= j <= n || throw(BoundsError(A, (ntuple(_ -> Colon(), N - 1)..., j)))
        copyto!(B, (k - 1) * m + 1, A, (j - 1) * m + 1, m)
    end
    return B
end
obsgather(data::Tuple, idx) = map(A -> obsgather(A, idx), data)

function checkbatchsize(size::Integer)
    size >= 1 || throw(ArgumentError("batch size must be >= 1, got $size"))
    return Int(size)
end

# The iterators are fully typed: the data, the RNG (a type parameter, not an
# abstract field) and whether batches are shuffled (S) are parameters, so
# `iterate` infers a concrete batch type and a training loop over them is
# type-stable.

struct BatchIter{D,R<:AbstractRNG,S}
    data::D
    size::Int
    n::Int
    partial::Bool
    rng::R
end

"""
    eachbatch(data; size, partial=true, shuffle=false, rng=Random.GLOBAL_RNG)

Iterate over `data` (an array or a tuple such as `(X, Y)`, observations as
the last dimension) in consecutive batches of `size` observations.  Without
shuffling each batch is a view (`view(X, :, a:b)`), which the library reads
without a copy.  With `shuffle=true` every pass draws a new order from `rng`
and each batch is a new array.  `partial=false` drops a last, smaller batch.
(Also exported by `FeedbackAlign.Learn`.)
"""
function eachbatch(data; size::Integer, partial::Bool = true, shuffle::Bool = false,
                   rng::AbstractRNG = Random.GLOBAL_RNG)
    n = nobs(data)
    bs = checkbatchsize(size)
    return shuffle ? BatchIter{typeof(data),typeof(rng),true}(data, bs, n, partial, rng) :
                     BatchIter{typeof(data),typeof(rng),false}(data, bs, n, partial, rng)
end

Base.length(it::BatchIter) = it.partial ? cld(it.n, it.size) : div(it.n, it.size)
Base.eltype(::Type{BatchIter{D,R,false}}) where {D,R} =
    Base.promote_op(obsview, D, UnitRange{Int})
Base.eltype(::Type{BatchIter{D,R,true}}) where {D,R} =
    Base.promote_op(obsgather, D, Vector{Int})

batch_range(it::BatchIter, start::Int) = start:min(start + it.size - 1, it.n)
function lastbatch(it::BatchIter, start::Int)
    start > it.n && return true
    return it.n - start + 1 < it.size && !it.partial
end

function Base.iterate(it::BatchIter{D,R,false}, start::Int = 1) where {D,R}
    lastbatch(it, start) && return nothing
    r = batch_range(it, start)
    return obsview(it.data, r), last(r) + 1
end

function Base.iterate(it::BatchIter{D,R,true}) where {D,R}
    return iterate(it, (1, randperm(it.rng, it.n)))
end

function Base.iterate(it::BatchIter{D,R,true}, state::Tuple{Int,Vector{Int}}) where {D,R}
    start, order = state
    lastbatch(it, start) && return nothing
    r = batch_range(it, start)
    return obsgather(it.data, order[r]), (last(r) + 1, order)
end

"""
    RandomBatches(data; size, count=nothing, rng=Random.GLOBAL_RNG)

Batches of `size` observations drawn at random (with replacement, as
MLDataPattern's `RandomBatches`) from `data`; `count` batches, or an endless
stream with `count=nothing` (stop it with a strategy such as `MaxIter`).
Each batch is a new array.  (Also exported by `FeedbackAlign.Learn`.)
"""
struct RandomBatches{D,R<:AbstractRNG}
    data::D
    size::Int
    count::Int          # -1: endless
    n::Int
    rng::R
end

function RandomBatches(data; size::Integer, count::Union{Integer,Nothing} = nothing,
                       rng::AbstractRNG = Random.GLOBAL_RNG)
    n = nobs(data)
    n >= 1 || throw(ArgumentError("data has no observations"))
    count === nothing || count >= 0 || throw(ArgumentError("count must be >= 0, got $count"))
    return RandomBatches(data, checkbatchsize(size), count === nothing ? -1 : Int(count), n, rng)
end

isendless(it::RandomBatches) = it.count < 0

Base.IteratorSize(::Type{<:RandomBatches}) = Base.SizeUnknown()
Base.eltype(::Type{RandomBatches{D,R}}) where {D,R} = Base.promote_op(obsgather, D, Vector{Int})
Base.length(it::RandomBatches) =
    isendless(it) ? throw(ArgumentError("RandomBatches without count is endless")) : it.count

function Base.iterate(it::RandomBatches, i::Int = 1)
    !isendless(it) && i > it.count && return nothing
    idx = rand(it.rng, 1:it.n, it.size)
    return obsgather(it.data, idx), i + 1
end

# --------------------------------------------------------- Flux-style loop

"""
    StopTraining()

Throw it from a `train!` callback to end training early (as `Flux.stop()`).
"""
struct StopTraining <: Exception end

"""
    FeedbackAlign.train!(net, data; epochs=1, cb=nothing) -> Vector{Float64}

Flux-style loop: for each epoch, one `train_step!` per batch `(X, Y)` of
`data` (any iterable of pairs, e.g. `eachbatch((X, Y); size=64)`).  `cb()` is
called after every step; throwing `StopTraining()` from it ends training.
Returns the mean training loss of each epoch run.
"""
function train!(net::Network, data; epochs::Integer = 1, cb = nothing)
    epochs >= 0 || throw(ArgumentError("epochs must be >= 0, got $epochs"))
    if data isa RandomBatches && isendless(data)
        throw(ArgumentError("train! needs finite data; give RandomBatches a count, or use Learn.learn! with MaxIter"))
    end
    means = Float64[]
    try
        for _ in 1:epochs
            total = 0.0
            steps = 0
            for batch in data
                (batch isa Tuple && length(batch) == 2) ||
                    throw(ArgumentError("train! expects batches (X, Y), got a $(typeof(batch))"))
                total += train_step!(net, batch[1], batch[2])
                steps += 1
                cb === nothing || cb()
            end
            push!(means, steps == 0 ? NaN : total / steps)
        end
    catch e
        e isa StopTraining || rethrow()
    end
    return means
end
