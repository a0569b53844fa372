# Parameters: flat copies (params / params!) and zero-copy views into the
# library's parameter block (weights, biases, kernels, paramview).
#
# The block is 64-byte aligned and never moves for the life of the handle
# (fa_net_params_data), so a view is a pointer, a shape and the network.
#
# Safety design.  A view is a mutable `ParamView <: DenseArray{Float32,N}`:
#  - it holds its Network in a field, so the garbage collector cannot collect
#    (and finalize) a network while one of its views is reachable;
#  - it counts itself in `net.nviews` and registers a WeakRef in `net.views`;
#    its finalizer sets its pointer to C_NULL and uncounts it;
#  - `close(net)` (also the network's finalizer) sets the pointer of every
#    registered view to C_NULL, then frees the handle only if no view object
#    is left (`release!`); otherwise the finalizer of the last view frees it.
# Every read through a view (getindex, and `unsafe_convert`, which `pointer`,
# BLAS, `ccall` and the library itself use) checks the view's own pointer, so
# a closed view throws instead of reading, and no memory is freed while a
# view object that could still read it exists.  The check is a load of the
# view's own field, hoisted out of loops: broadcasting and reductions over a
# view vectorise as over an Array.

"""
    ParamView{N} <: DenseArray{Float32,N}

Zero-copy view of part of a network's parameter block (what `weights`,
`biases`, `kernels` and `paramview` return): a strided array whose `pointer`
is the library's memory, so `W * x`, `mul!`, `dot`, `W'`, broadcasting and
`view`s of it run at BLAS/SIMD speed.  The values follow training in place.

Guarantees:
- **Read-only by contract.**  `setindex!` (and so `fill!`, `copyto!(W, …)`,
  `W .= …`) throws.  Writing through `pointer(W)` or passing `W` as the
  destination of `mul!`/BLAS is undefined: it bypasses the library's checks
  and its optimiser state; change parameters with `params!(net, v)`.
- **Cannot outlive its memory.**  A view keeps its network from being
  garbage collected, and the library memory is released only when the
  network is closed *and* no view object is left.  So `pointer(W)` stays
  valid as long as `W` is reachable (`GC.@preserve W`), even across
  `close(net)`.
- **Refused after `close`.**  Once `close(net)` has been called (or the
  network is being finalized), every read through any of its views —
  indexing, iteration, `pointer`, BLAS calls, broadcasting, `copy`,
  `Array(W)` — throws an `InvalidStateException`.
- Like the network itself, a view may be used by one thread at a time, and
  not concurrently with `close` or training of its network.

`copy(W)` and `Array(W)` give an ordinary Array.  `deepcopy` gives a view of
the same part of a deep copy of the network; `serialize` writes the network
and the view's place in it.
"""
mutable struct ParamView{N} <: DenseArray{Float32,N}
    ptr::Ptr{Float32}       # C_NULL once closed
    dims::NTuple{N,Int}
    offset::Int             # in floats, from the start of the block
    net::Network

    function ParamView{N}(net::Network, offset::Integer, dims::NTuple{N,Int}) where {N}
        handle(net)
        v = new{N}(net.data + 4 * offset, dims, Int(offset), net)
        Threads.atomic_add!(net.nviews, 1)
        finalizer(finalize_view, v)
        register_view!(net, v)
        return v
    end
end

ParamView(net::Network, offset::Integer, dims::NTuple{N,Int}) where {N} =
    ParamView{N}(net, offset, dims)

function finalize_view(v::ParamView)
    v.ptr = Ptr{Float32}(C_NULL)
    net = v.net
    Threads.atomic_sub!(net.nviews, 1)
    release!(net)
    return nothing
end

function register_view!(net::Network, v::ParamView)
    if length(net.views) >= net.prune_at
        filter!(w -> w.value !== nothing, net.views)
        net.prune_at = max(32, 2 * length(net.views))
    end
    push!(net.views, WeakRef(v))
    return nothing
end

function invalidate_views!(net::Network)
    for w in net.views
        v = w.value
        v isa ParamView && (v.ptr = Ptr{Float32}(C_NULL))
    end
    empty!(net.views)
    return nothing
end

@noinline throw_view_closed() =
    throw(InvalidStateException("this parameter view's Network has been closed; views cannot be read after close(net)", :closed))

Base.size(A::ParamView) = A.dims
Base.IndexStyle(::Type{<:ParamView}) = IndexLinear()
Base.elsize(::Type{<:ParamView}) = sizeof(Float32)

@inline function Base.getindex(A::ParamView, i::Int)
    @boundscheck checkbounds(A, i)
    p = A.ptr
    p == C_NULL && throw_view_closed()
    # No GC.@preserve here (it would stop loops from vectorising): A is an
    # argument, kept alive by the caller for the whole call.
    return unsafe_load(p, i)
end

Base.setindex!(::ParamView, v, i::Int) =
    throw(ArgumentError("parameter views are read-only; change parameters with params!(net, v)"))

function Base.unsafe_convert(::Type{Ptr{Float32}}, A::ParamView)
    p = A.ptr
    p == C_NULL && throw_view_closed()
    return p
end

Base.isopen(A::ParamView) = A.ptr != C_NULL

function Base.show(io::IO, m::MIME"text/plain", A::ParamView)
    if isopen(A)
        invoke(show, Tuple{IO,MIME"text/plain",AbstractArray}, io, m, A)
    else
        print(io, join(A.dims, "×"), " ParamView of a closed Network")
    end
end

function Base.show(io::IO, A::ParamView)
    isopen(A) ? invoke(show, Tuple{IO,AbstractArray}, io, A) :
                print(io, "ParamView(closed)")
end

function Base.deepcopy_internal(A::ParamView{N}, dict::IdDict) where {N}
    haskey(dict, A) && return dict[A]::ParamView{N}
    net = Base.deepcopy_internal(A.net, dict)::Network
    B = ParamView{N}(net, A.offset, A.dims)
    dict[A] = B
    return B
end

# --------------------------------------------------------------- parameters

"""
    FeedbackAlign.params(net) -> Vector{Float32}

A copy of all parameters as one flat vector `[vec(W_1); b_1; vec(W_2); b_2; ...]`
(each W_l column-major in the shape of `weights(net, l)`; layers without
parameters take no space).  `paramview(net)` is the same without a copy.
"""
function params(net::Network)
    h = handle(net)
    v = Vector{Float32}(undef, net.nparams)
    GC.@preserve net v check(LibFA.fa_net_get_params(h, v, length(v)))
    return v
end

"""
    params!(net, v)

Replace all parameters from the flat vector `v` (layout of `params`); the
optimiser state is kept.
"""
function params!(net::Network, v::AbstractVector)
    h = handle(net)
    check_flat(v, net, "v")
    vc = densecopy32(v, "v")
    GC.@preserve net vc check(LibFA.fa_net_set_params(h, vc, length(vc)))
    return net
end

"""
    FeedbackAlign.paramview(net) -> ParamView{1}

Zero-copy read-only view of the whole parameter block, layout of `params`
(see `ParamView` for what is guaranteed).
"""
paramview(net::Network) = (handle(net); ParamView(net, 0, (net.nparams,)))

"""
    FeedbackAlign.weights(net, l) -> ParamView{2}

Zero-copy read-only view of W_l (see `ParamView`), in the library's layout:
- dense layer: (n_l, n_{l-1});
- convolution: (C_out, C_in·kh·kw), the lowered matrix the library
  multiplies with its im2col columns: column c + C_in·(kx + kw·ky) (0-based)
  holds the weight of input channel c at kernel row ky, column kx.
  `kernels(net, l)` is the same memory as a 4-D (C_out, C_in, kw, kh) array;
- pooling layer: an empty 0×0 view (no parameters).
"""
function weights(net::Network, l::Integer)
    handle(net)
    checklayer(net, l, 1:nlayers(net))
    return ParamView(net, net.offsets[l][1], net.wshapes[l])
end

"""
    FeedbackAlign.biases(net, l) -> ParamView{1}

Zero-copy read-only view of b_l (n_l entries, C_out for a convolution, none
for a pooling layer).
"""
function biases(net::Network, l::Integer)
    handle(net)
    checklayer(net, l, 1:nlayers(net))
    return ParamView(net, net.offsets[l][2], (net.wshapes[l][1],))
end

"""
    FeedbackAlign.kernels(net, l) -> ParamView{4}

The weights of convolution layer `l` as a zero-copy read-only 4-D view of
size (C_out, C_in, kw, kh): `K[o, c, kx, ky]` (1-based) is the weight from
input channel c at kernel column kx, row ky to output channel o.  This is
`weights(net, l)` reshaped, in the memory order of the library's layout
(and of image data, which is (C, W, H, batch) in Julia).  A dense layer
gives (n_l, n_{l-1}, 1, 1).
"""
function kernels(net::Network, l::Integer)
    handle(net)
    checklayer(net, l, 1:nlayers(net))
    li = net.layers[l]
    rows, cols = net.wshapes[l]
    if li.kind === :conv2d
        kh, kw = li.kernel
        dims = (rows, div(cols, kh * kw), kw, kh)
    elseif rows > 0
        dims = (rows, cols, 1, 1)
    else
        throw(ArgumentError("layer $l is a $(li.kind) layer: it has no parameters"))
    end
    return ParamView(net, net.offsets[l][1], dims)
end

"""
    FeedbackAlign.layer_offsets(net, l) -> (w_offset, b_offset)

Where W_l and b_l start in the flat parameter vector, in elements from its
start (`fa_net_layer_offsets`): `params(net)[w_offset+1 : w_offset+length(W_l)]`
is `vec(W_l)`.  A layer without parameters gives the offset where the next
layer's parameters start, twice.
"""
function layer_offsets(net::Network, l::Integer)
    handle(net)
    checklayer(net, l, 1:nlayers(net))
    return net.offsets[l]
end
