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
obsgather(data::Tuple, idx) = map(A -> obsgather(A, idx), data)

function checkbatchsize(size::Integer)
    size >= 1 || throw(ArgumentError("batch size must be >= 1, got $size"))
    return Int(size)
end

struct BatchIter{D}
    data::D
    size::Int
    n::Int
    partial::Bool
    shuffle::Bool
    rng::AbstractRNG
end

"""
    eachbatch(data; size, partial=true, shuffle=false, rng=Random.GLOBAL_RNG)

Iterate over `data` (an array or a tuple such as `(X, Y)`, observations as
columns) in consecutive batches of `size` observations.  Without shuffling
each batch is a view (`view(X, :, a:b)`), which the library reads without a
copy.  With `shuffle=true` every pass draws a new order from `rng` and each
batch is a copy.  `partial=false` drops a last, smaller batch.
"""
function eachbatch(data; size::Integer, partial::Bool = true, shuffle::Bool = false,
                   rng::AbstractRNG = Random.GLOBAL_RNG)
    n = nobs(data)
    return BatchIter(data, checkbatchsize(size), n, partial, shuffle, rng)
end

Base.length(it::BatchIter) = it.partial ? cld(it.n, it.size) : div(it.n, it.size)
Base.eltype(::Type{<:BatchIter}) = Any

function Base.iterate(it::BatchIter, state = nothing)
    if state === nothing
        order = it.shuffle ? randperm(it.rng, it.n) : nothing
        state = (1, order)
    end
    start, order = state
    stop = min(start + it.size - 1, it.n)
    start > it.n && return nothing
    (stop - start + 1 < it.size && !it.partial) && return nothing
    batch = order === nothing ? obsview(it.data, start:stop) : obsgather(it.data, order[start:stop])
    return batch, (stop + 1, order)
end

"""
    RandomBatches(data; size, count=nothing, rng=Random.GLOBAL_RNG)

Batches of `size` observations drawn at random (with replacement, as
MLDataPattern's `RandomBatches`) from `data`; `count` batches, or an endless
stream with `count=nothing` (stop it with a strategy such as `MaxIter`).
Each batch is a new array.
"""
struct RandomBatches{D}
    data::D
    size::Int
    count::Union{Int,Nothing}
    n::Int
    rng::AbstractRNG
end

function RandomBatches(data; size::Integer, count::Union{Integer,Nothing} = nothing,
                       rng::AbstractRNG = Random.GLOBAL_RNG)
    n = nobs(data)
    n >= 1 || throw(ArgumentError("data has no observations"))
    count === nothing || count >= 0 || throw(ArgumentError("count must be >= 0, got $count"))
    return RandomBatches(data, checkbatchsize(size), count === nothing ? nothing : Int(count), n, rng)
end

Base.IteratorSize(::Type{<:RandomBatches}) = Base.SizeUnknown()
Base.eltype(::Type{<:RandomBatches}) = Any
Base.length(it::RandomBatches) =
    it.count === nothing ? throw(ArgumentError("RandomBatches without count is endless")) : it.count

function Base.iterate(it::RandomBatches, i = 1)
    it.count !== nothing && i > it.count && return nothing
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
    train!(net, data; epochs=1, cb=nothing) -> Vector{Float64}

Flux-style loop: for each epoch, one `train_step!` per batch `(X, Y)` of
`data` (any iterable of pairs, e.g. `eachbatch((X, Y); size=64)`).  `cb()` is
called after every step; throwing `StopTraining()` from it ends training.
Returns the mean training loss of each epoch run.
"""
function train!(net::Network, data; epochs::Integer = 1, cb = nothing)
    epochs >= 0 || throw(ArgumentError("epochs must be >= 0, got $epochs"))
    if data isa RandomBatches && data.count === nothing
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
