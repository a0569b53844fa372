# The user layer: a Network owning one library handle, and every library
# feature as a Julia function.  Sizes and element types are checked here,
# before any ccall, so that a mistake is a Julia exception naming the argument;
# what only the library can judge comes back as a FeedbackAlignError.

"""
    Network(sizes, activations; loss=:mse, seed=0, rule=:bp)

A dense network with `length(sizes)-1` weight layers mapping `sizes[1]` inputs
to `sizes[end]` outputs.  `activations` has one symbol per weight layer (or
one symbol for all of them): `:identity`, `:tanh`, `:sigmoid`, `:relu`,
`:leaky_relu`.  `loss` is `:mse`, `:softmax_ce` or `:sigmoid_bce` (the latter
two need `:identity` on the last layer; `predict` then returns
probabilities).  `seed` seeds the network's own random generator (weights,
feedback matrices, dropout): the same seed gives the same network.

The network owns library memory.  It is freed by the garbage collector, or at
once by `close(net)`; any use after `close` throws.

    Network(sizes, activations; loss=:softmax_ce, seed=1)   # e.g. [784, 1000, 10], [:tanh, :identity]
"""
mutable struct Network
    ptr::Ptr{Cvoid}
    sizes::Vector{Int}        # n_0 .. n_L (fixed for the life of the handle)
    nparams::Int
    data::Ptr{Float32}        # borrowed parameter block; C_NULL once closed
    lastloss::Float32         # loss of the last train_step! (NaN before any)

    function Network(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(ArgumentError("Network: null handle"))
        net = new(ptr, Int[], 0, Ptr{Float32}(C_NULL), NaN32)
        # Register the finalizer first, so the handle is freed even if one of
        # the queries below fails.
        finalizer(close, net)
        nl = Ref{Int32}(0)
        check(LibFA.fa_net_num_layers(ptr, nl))
        sz = Vector{Int32}(undef, nl[] + 1)
        check(LibFA.fa_net_get_sizes(ptr, sz, length(sz)))
        np = Ref{Int64}(0)
        check(LibFA.fa_net_param_count(ptr, np))
        dp = Ref{Ptr{Float32}}(C_NULL)
        check(LibFA.fa_net_params_data(ptr, dp))
        net.sizes = Vector{Int}(sz)
        net.nparams = Int(np[])
        net.data = dp[]
        return net
    end
end

function Network(sizes::AbstractVector{<:Integer}, activations;
                 loss::Symbol = :mse, seed::Integer = 0, rule::Symbol = :bp)
    length(sizes) >= 2 ||
        throw(ArgumentError("sizes must list at least the input and output widths, got $(repr(sizes))"))
    for (i, n) in enumerate(sizes)
        1 <= n <= typemax(Int32) ||
            throw(ArgumentError("sizes[$i] = $n: every layer width must be between 1 and $(typemax(Int32))"))
    end
    L = length(sizes) - 1
    acts = activations isa Symbol ? fill(activations, L) : collect(activations)
    length(acts) == L ||
        throw(ArgumentError("activations has $(length(acts)) entries but the network has $L weight layers (one activation per layer)"))
    actv = Int32[enumvalue(ACTIVATIONS, a, "activation") for a in acts]
    lossv = enumvalue(LOSSES, loss, "loss")
    seed >= 0 || throw(ArgumentError("seed must be >= 0, got $seed"))
    szv = Int32.(collect(sizes))
    out = Ref{Ptr{Cvoid}}(C_NULL)
    GC.@preserve szv actv check(LibFA.fa_net_create(out, L, szv, actv, lossv, UInt64(seed)))
    net = Network(out[])
    rule === :bp || rule!(net, rule)
    return net
end

"""
    close(net::Network)

Free the library handle now instead of waiting for the garbage collector.
Idempotent.  Afterwards every use of `net` (and of its `weights`/`biases`
views) throws.
"""
function Base.close(net::Network)
    p = net.ptr
    if p != C_NULL
        net.ptr = C_NULL
        net.data = Ptr{Float32}(C_NULL)
        LibFA.fa_net_free(p)
    end
    return nothing
end

Base.isopen(net::Network) = net.ptr != C_NULL

@noinline throw_closed() =
    throw(InvalidStateException("the Network has been closed; create or load a new one", :closed))

"""The handle of an open network (throws if closed)."""
@inline function handle(net::Network)
    p = net.ptr
    p == C_NULL && throw_closed()
    return p
end

function Base.show(io::IO, net::Network)
    if !isopen(net)
        print(io, "Network(closed)")
        return
    end
    acts = [activation(net, l) for l in 1:nlayers(net)]
    print(io, "Network(", net.sizes, ", ", acts, "; loss=", repr(losstype(net)),
          ", rule=", repr(rule(net)), ", optimizer=", repr(optimizer(net)), ")")
end

# --------------------------------------------------------------- structure

"""Number of weight layers L."""
nlayers(net::Network) = (handle(net); length(net.sizes) - 1)

"""Layer widths `[n_0, n_1, ..., n_L]`."""
layer_sizes(net::Network) = (handle(net); copy(net.sizes))

"""Number of parameters (all weights and biases)."""
nparams(net::Network) = (handle(net); net.nparams)

function checklayer(net::Network, l::Integer, range::UnitRange, name = "layer")
    l in range || throw(ArgumentError("$name = $l is out of range $(range.start):$(range.stop) for a network with $(nlayers(net)) weight layers"))
    return Int32(l)
end

"""Activation of weight layer `l` (1 ≤ l ≤ L), as a symbol."""
function activation(net::Network, l::Integer)
    h = handle(net)
    li = checklayer(net, l, 1:nlayers(net))
    a = Ref{Int32}(0)
    GC.@preserve net check(LibFA.fa_net_get_activation(h, li, a))
    return enumsymbol(ACTIVATIONS, a[])
end

# The enum getters share one shape: an Int32 out-parameter read back as a symbol.
function getenum(cfun, net::Network, table)
    h = handle(net)
    v = Ref{Int32}(0)
    GC.@preserve net check(cfun(h, v))
    return enumsymbol(table, v[])
end

"""The network's loss, as a symbol."""
losstype(net::Network) = getenum(LibFA.fa_net_get_loss, net, LOSSES)

"""
    reserve!(net, max_batch)

Pre-size the network's workspaces for batches up to `max_batch`, so that no
later step allocates.
"""
function reserve!(net::Network, max_batch::Integer)
    h = handle(net)
    1 <= max_batch <= typemax(Int32) ||
        throw(ArgumentError("max_batch must be between 1 and $(typemax(Int32)), got $max_batch"))
    GC.@preserve net check(LibFA.fa_net_reserve(h, Int32(max_batch)))
    return net
end

# ------------------------------------------------------------------- rules

"""
    rule!(net, r)

Switch the learning rule to `:bp`, `:fa` or `:dfa`; allowed at any time.
Feedback matrices are drawn the first time a rule needs them and kept after.
"""
function rule!(net::Network, r::Symbol)
    h = handle(net)
    v = enumvalue(RULES, r, "rule")
    GC.@preserve net check(LibFA.fa_net_set_rule(h, v))
    return net
end

"""Current learning rule (`:bp`, `:fa` or `:dfa`)."""
rule(net::Network) = getenum(LibFA.fa_net_get_rule, net, RULES)

"""
    feedback_init!(net, dist=:uniform; scale=0)

How feedback matrices are drawn: `:uniform` (U[-s, s]), `:gaussian`
(N(0, s²)) or `:sign` (±s).  `scale = 0` means 1/√n with n the width of the
receiving layer.  Matrices already drawn are redrawn.
"""
function feedback_init!(net::Network, dist::Symbol = :uniform; scale::Real = 0)
    h = handle(net)
    v = enumvalue(DISTRIBUTIONS, dist, "feedback distribution")
    (isfinite(scale) && scale >= 0) ||
        throw(ArgumentError("scale must be finite and >= 0 (0 = 1/sqrt(n)), got $scale"))
    GC.@preserve net check(LibFA.fa_net_set_feedback_init(h, v, Float64(scale)))
    return net
end

"""
    dfa_variant!(net, v)

Where DFA injects the projected error: `:after_activation` (Nøkland, the
default: δ = (Gᵀe) ⊙ f') or `:before_activation` (without the f' factor).
"""
function dfa_variant!(net::Network, v::Symbol)
    h = handle(net)
    n = enumvalue(DFA_VARIANTS, v, "DFA variant")
    GC.@preserve net check(LibFA.fa_net_set_dfa_variant(h, n))
    return net
end

"""Current DFA variant."""
dfa_variant(net::Network) = getenum(LibFA.fa_net_get_dfa_variant, net, DFA_VARIANTS)

function feedback_layer_range(net::Network, r::Symbol)
    L = nlayers(net)
    r === :fa && return 2:L
    r === :dfa && return 1:L-1
    r === :bp && throw(ArgumentError("rule :bp has no feedback matrices; use :fa or :dfa"))
    enumvalue(RULES, r, "rule")  # throws for unknown symbols
end

"""
    feedback_shape(net, rule, l) -> (rows, cols)

Shape of a feedback matrix: for `:fa`, F_l (2 ≤ l ≤ L) has the shape of W_l,
`(n_l, n_{l-1})`; for `:dfa`, G_l (1 ≤ l ≤ L-1) is `(n_L, n_l)`.
"""
function feedback_shape(net::Network, r::Symbol, l::Integer)
    h = handle(net)
    range = feedback_layer_range(net, r)
    li = checklayer(net, l, range)
    rows = Ref{Int32}(0)
    cols = Ref{Int32}(0)
    GC.@preserve net check(LibFA.fa_net_feedback_shape(h, enumvalue(RULES, r, "rule"), li, rows, cols))
    return (Int(rows[]), Int(cols[]))
end

"""
    feedback(net, rule, l) -> Matrix{Float32}

A copy of feedback matrix F_l (`:fa`) or G_l (`:dfa`); see `feedback_shape`.
"""
function feedback(net::Network, r::Symbol, l::Integer)
    rows, cols = feedback_shape(net, r, l)
    M = Matrix{Float32}(undef, rows, cols)
    h = handle(net)
    GC.@preserve net M check(LibFA.fa_net_get_feedback(h, enumvalue(RULES, r, "rule"),
                                                       Int32(l), M, length(M)))
    return M
end

"""
    feedback!(net, rule, l, M)

Replace feedback matrix F_l (`:fa`) or G_l (`:dfa`) by `M` (copied), which
must have the shape `feedback_shape(net, rule, l)`.
"""
function feedback!(net::Network, r::Symbol, l::Integer, M::AbstractMatrix)
    rows, cols = feedback_shape(net, r, l)
    size(M) == (rows, cols) ||
        throw(DimensionMismatch("M is $(size(M, 1))×$(size(M, 2)) but the $r feedback matrix of layer $l is $(rows)×$(cols)"))
    Mc = densecopy32(M, "M")
    h = handle(net)
    GC.@preserve net Mc check(LibFA.fa_net_set_feedback(h, enumvalue(RULES, r, "rule"),
                                                        Int32(l), Mc, length(Mc)))
    return net
end

# ------------------------------------------------- weights and dropout

"""
    init_weights!(net, scheme=:default)

Re-draw all forward weights (`:default`, `:xavier_uniform`, `:xavier_normal`,
`:he_uniform`, `:he_normal`, `:zero`); biases become 0 and the optimiser state
is reset.
"""
function init_weights!(net::Network, scheme::Symbol = :default)
    h = handle(net)
    v = enumvalue(INITS, scheme, "weight initialisation")
    GC.@preserve net check(LibFA.fa_net_init_weights(h, v))
    return net
end

"""
    dropout!(net, l, p)

Inverted dropout with drop probability `p` in [0, 1) on the output of hidden
layer `l` (1 ≤ l ≤ L-1), during training only.  `p = 0` turns it off.
"""
function dropout!(net::Network, l::Integer, p::Real)
    h = handle(net)
    li = checklayer(net, l, 1:nlayers(net)-1, "hidden layer")
    (isfinite(p) && 0 <= p < 1) || throw(ArgumentError("dropout probability p must be in [0, 1), got $p"))
    GC.@preserve net check(LibFA.fa_net_set_dropout(h, li, Float64(p)))
    return net
end

"""Dropout probability of hidden layer `l`."""
function dropout(net::Network, l::Integer)
    h = handle(net)
    li = checklayer(net, l, 1:nlayers(net)-1, "hidden layer")
    p = Ref{Float64}(0)
    GC.@preserve net check(LibFA.fa_net_get_dropout(h, li, p))
    return p[]
end

# ---------------------------------------------------------------- optimiser

"""
    optimizer!(net, opt; hparams...)

Choose the optimiser (`:sgd`, `:momentum`, `:nesterov`, `:adam`,
`:rmsprop`); its state starts from zero.  Keyword arguments set
hyperparameters at the same time, e.g. `optimizer!(net, :adam; lr=1e-3)`.
"""
function optimizer!(net::Network, opt::Symbol; hparams...)
    h = handle(net)
    v = enumvalue(OPTIMIZERS, opt, "optimizer")
    GC.@preserve net check(LibFA.fa_net_set_optimizer(h, v))
    isempty(hparams) || hparam!(net; hparams...)
    return net
end

"""Current optimiser, as a symbol."""
optimizer(net::Network) = getenum(LibFA.fa_net_get_optimizer, net, OPTIMIZERS)

"""
    hparam!(net, name, value)
    hparam!(net; name=value, ...)

Set hyperparameters: `:lr`, `:momentum`, `:beta1`, `:beta2`, `:epsilon`,
`:weight_decay`, `:rms_decay`, `:leaky_slope`.  Allowed between any two steps.
"""
function hparam!(net::Network, name::Symbol, value::Real)
    h = handle(net)
    v = enumvalue(HPARAMS, name, "hyperparameter")
    GC.@preserve net check(LibFA.fa_net_set_hparam(h, v, Float64(value)))
    return net
end

function hparam!(net::Network; kw...)
    for (k, v) in kw
        hparam!(net, k, v)
    end
    return net
end

"""Read a hyperparameter (see `hparam!`)."""
function hparam(net::Network, name::Symbol)
    h = handle(net)
    v = enumvalue(HPARAMS, name, "hyperparameter")
    out = Ref{Float64}(0)
    GC.@preserve net check(LibFA.fa_net_get_hparam(h, v, out))
    return out[]
end

"""Reset the optimiser state (velocities, moments, step count) to zero."""
function reset_optimizer!(net::Network)
    h = handle(net)
    GC.@preserve net check(LibFA.fa_net_reset_optimizer(h))
    return net
end

# ------------------------------------------------------- data arguments

# The library reads (rows, batch) column-major blocks with a leading
# dimension.  A Float32 array whose first stride is 1 (a Matrix, a Vector,
# view(X, :, a:b), view(X, 2:5, :)) is passed as it is, with its column
# stride as the leading dimension; anything else of a floating type the
# library can take is converted once into a new Matrix{Float32}.  Other
# element types are refused rather than silently converted, because a Float16
# or Int matrix is usually a mistake upstream.

const ACCEPTED = "Float32 (passed without copy) or Float64 (converted to Float32)"

function check_eltype(X, name)
    T = eltype(X)
    (T === Float32 || T === Float64) ||
        throw(ArgumentError("$name has element type $T; expected $ACCEPTED"))
    return nothing
end

"""
    dataarg(X, name, rows) -> (A, ld, batch)

`A` is an array the library may read through `pointer`-conversion, `ld` its
leading dimension, `batch` its number of columns.
"""
function dataarg(X::AbstractVecOrMat, name::AbstractString, rows::Integer)
    check_eltype(X, name)
    size(X, 1) == rows ||
        throw(DimensionMismatch("$name has $(size(X, 1)) rows but the network needs $rows (one observation per column)"))
    batch = size(X, 2)
    batch >= 1 || throw(DimensionMismatch("$name has no columns (an empty batch)"))
    batch <= typemax(Int32) ||
        throw(DimensionMismatch("$name has $batch columns; the library takes at most $(typemax(Int32)) per call"))
    if X isa StridedVecOrMat{Float32} && stride(X, 1) == 1
        ld = batch > 1 ? stride(X, 2) : rows
        ld <= typemax(Int32) || return (Matrix{Float32}(X), rows, batch)
        return (X, ld, batch)
    end
    return (Matrix{Float32}(reshape(X, size(X, 1), batch)), rows, batch)
end

function dataarg(X, name::AbstractString, rows::Integer)
    X isa AbstractArray ||
        throw(ArgumentError("$name must be a matrix with one observation per column, got a $(typeof(X))"))
    throw(ArgumentError("$name must be a vector or a matrix with one observation per column, got a $(ndims(X))-dimensional array"))
end

"""A contiguous Float32 copy (or the array itself if it already is one)."""
function densecopy32(v::AbstractArray, name::AbstractString)
    check_eltype(v, name)
    v isa DenseArray{Float32} && return v
    return Array{Float32}(v)
end

"""Output buffer check: must be writable Float32 memory of the right shape."""
function outarg(Y, name::AbstractString, rows::Integer, batch::Integer)
    (Y isa StridedVecOrMat{Float32} && stride(Y, 1) == 1) ||
        throw(ArgumentError("$name must be a Float32 Matrix (or a contiguous column view of one) to be written in place, got a $(typeof(Y))"))
    (size(Y, 1) == rows && size(Y, 2) == batch) ||
        throw(DimensionMismatch("$name is $(size(Y, 1))×$(size(Y, 2)) but the output is $(rows)×$(batch)"))
    return batch > 1 ? stride(Y, 2) : rows
end

ptr32(A) = Base.unsafe_convert(Ptr{Float32}, A)

# Each call that takes data is split in two: the outer function checks the
# arguments and gets them as Float32 (`dataarg`, whose result is a view or a
# new Matrix: a Union type), the inner `*_call` function receives them as
# concrete types and makes the ccall under GC.@preserve.  This function
# barrier is needed, not only tidy: Julia 1.5's code generator aborts on a
# GC.@preserve of a Union-typed variable.

# ------------------------------------------------------ forward and train

"""
    predict(net, X) -> Matrix{Float32}
    net(X)

The network's output for every column of `X` (n_0 × batch), without dropout.
For the `:softmax_ce` and `:sigmoid_bce` losses the output is probabilities.
A vector `X` (one observation) gives a vector.
"""
function predict(net::Network, X::AbstractVecOrMat)
    handle(net)
    Y = Matrix{Float32}(undef, net.sizes[end], size(X, 2))
    predict!(Y, net, X)
    return X isa AbstractVector ? vec(Y) : Y
end
predict(net::Network, X) = dataarg(X, "X", net.sizes[1])  # throws the right error

(net::Network)(X) = predict(net, X)

"""
    predict!(Y, net, X) -> Y

`predict` into a preallocated Float32 matrix `Y` (n_L × batch).
"""
function predict!(Y, net::Network, X)
    handle(net)
    Xc, ldx, batch = dataarg(X, "X", net.sizes[1])
    ldy = outarg(Y, "Y", net.sizes[end], batch)
    return forward_call!(Y, ldy, net, Xc, ldx, batch)
end

function forward_call!(Y, ldy, net::Network, Xc, ldx, batch)
    h = handle(net)
    GC.@preserve net Xc Y check(LibFA.fa_net_forward(h, ptr32(Xc), ldx, batch, ptr32(Y), ldy))
    return Y
end

function data_pair(net::Network, X, T)
    Xc, ldx, batch = dataarg(X, "X", net.sizes[1])
    Tc, ldt, bt = dataarg(T, "T", net.sizes[end])
    bt == batch ||
        throw(DimensionMismatch("X has $batch observations (columns) but T has $bt"))
    return Xc, ldx, Tc, ldt, batch
end

"""
    loss(net, X, T) -> Float32

Mean loss on the batch `(X, T)` (no dropout; nothing changes).
"""
function loss(net::Network, X, T)
    handle(net)
    return loss_call(net, data_pair(net, X, T)...)
end

function loss_call(net::Network, Xc, ldx, Tc, ldt, batch)
    h = handle(net)
    out = Ref{Float32}(0)
    GC.@preserve net Xc Tc check(LibFA.fa_net_loss(h, ptr32(Xc), ldx, ptr32(Tc), ldt, batch, out))
    return out[]
end

"""
    train_step!(net, X, T) -> Float32

One training step on the batch: forward pass (with dropout), the current
rule's update and the optimiser step.  Returns the batch's mean loss before
the update.  A non-finite loss raises a FeedbackAlignError and leaves the
network as it was.
"""
function train_step!(net::Network, X, T)
    handle(net)
    return train_call(net, data_pair(net, X, T)...)
end

function train_call(net::Network, Xc, ldx, Tc, ldt, batch)
    h = handle(net)
    out = Ref{Float32}(0)
    GC.@preserve net Xc Tc check(LibFA.fa_net_train_step(h, ptr32(Xc), ldx, ptr32(Tc), ldt, batch, out))
    net.lastloss = out[]
    return out[]
end

"""Loss returned by the last `train_step!` (NaN if there was none)."""
lastloss(net::Network) = net.lastloss

function check_flat(g, net::Network, name)
    length(g) == net.nparams ||
        throw(DimensionMismatch("$name has $(length(g)) entries but the network has $(net.nparams) parameters"))
end

"""
    compute_update!(g, net, X, T) -> Float32

The current rule's update for the batch (the exact gradient under `:bp`),
written into the flat `Vector{Float32}` `g` in the layout of `params(net)`;
returns the loss.  Parameters and optimiser state are not touched, so an
outside optimiser can use `g` and `params!`, or `apply_update!` applies the
network's own optimiser.
"""
function compute_update!(g::AbstractVector, net::Network, X, T)
    h = handle(net)
    (g isa DenseVector{Float32}) ||
        throw(ArgumentError("g must be a Vector{Float32} (it is written in place), got a $(typeof(g))"))
    check_flat(g, net, "g")
    return update_call(g, net, data_pair(net, X, T)...)
end

function update_call(g, net::Network, Xc, ldx, Tc, ldt, batch)
    h = handle(net)
    out = Ref{Float32}(0)
    GC.@preserve net Xc Tc g check(LibFA.fa_net_compute_update(h, ptr32(Xc), ldx, ptr32(Tc), ldt,
                                                               batch, ptr32(g), length(g), out))
    return out[]
end

"""
    grad(net, X, T) -> Vector{Float32}

A new flat vector holding the current rule's update on the batch (see
`compute_update!`).
"""
function grad(net::Network, X, T)
    g = Vector{Float32}(undef, nparams(net))
    compute_update!(g, net, X, T)
    return g
end

"""
    apply_update!(net, g)

One step of the network's optimiser with the flat update `g` (layout of
`params(net)`); weight decay is added here.
"""
function apply_update!(net::Network, g::AbstractVector)
    h = handle(net)
    check_flat(g, net, "g")
    gc = densecopy32(g, "g")
    GC.@preserve net gc check(LibFA.fa_net_apply_update(h, gc, length(gc)))
    return net
end

# --------------------------------------------------------------- parameters

"""
    params(net) -> Vector{Float32}

A copy of all parameters as one flat vector `[vec(W_1); b_1; vec(W_2); b_2; ...]`
(each W_l column-major, n_l × n_{l-1}).
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
    LayerView

Zero-copy, read-only view of one layer's weights or biases inside the
network's parameter block.  Every element access checks that the network is
still open, so a view kept past `close(net)` throws instead of reading freed
memory.  The values follow training in place.  `copy(v)` gives an ordinary
Array.
"""
struct LayerView{N} <: AbstractArray{Float32,N}
    net::Network
    offset::Int               # in floats, from the start of the block
    dims::NTuple{N,Int}
end

Base.size(A::LayerView) = A.dims
Base.IndexStyle(::Type{<:LayerView}) = IndexLinear()

@inline function Base.getindex(A::LayerView, i::Int)
    @boundscheck checkbounds(A, i)
    net = A.net
    p = net.data
    p == C_NULL && throw_closed()
    return GC.@preserve net unsafe_load(p, A.offset + i)
end

Base.setindex!(::LayerView, v, i::Int) =
    throw(ArgumentError("weights/biases views are read-only; change parameters with params!(net, v)"))

function Base.show(io::IO, m::MIME"text/plain", A::LayerView)
    if isopen(A.net)
        invoke(show, Tuple{IO,MIME"text/plain",AbstractArray}, io, m, A)
    else
        print(io, join(A.dims, "×"), " LayerView of a closed Network")
    end
end

function layer_offsets(net::Network, l::Integer)
    h = handle(net)
    li = checklayer(net, l, 1:nlayers(net))
    w = Ref{Int64}(0)
    b = Ref{Int64}(0)
    GC.@preserve net check(LibFA.fa_net_layer_offsets(h, li, w, b))
    return Int(w[]), Int(b[])
end

"""
    weights(net, l) -> LayerView (n_l × n_{l-1})

Zero-copy read-only view of W_l; it cannot outlive the network (see
`LayerView`).
"""
function weights(net::Network, l::Integer)
    w, _ = layer_offsets(net, l)
    return LayerView{2}(net, w, (net.sizes[l+1], net.sizes[l]))
end

"""
    biases(net, l) -> LayerView (n_l)

Zero-copy read-only view of b_l.
"""
function biases(net::Network, l::Integer)
    _, b = layer_offsets(net, l)
    return LayerView{1}(net, b, (net.sizes[l+1],))
end

# -------------------------------------------------------------- diagnostics

"""
    alignment(net, X, T) -> Vector{Float32}

For each hidden layer, the angle in degrees between the current rule's
weight update and the exact backprop gradient on the batch (0 under `:bp`).
"""
function alignment(net::Network, X, T)
    handle(net)
    return alignment_call(net, data_pair(net, X, T)...)
end

function alignment_call(net::Network, Xc, ldx, Tc, ldt, batch)
    h = handle(net)
    angles = Vector{Float32}(undef, nlayers(net) - 1)
    GC.@preserve net Xc Tc angles check(LibFA.fa_net_alignment(h, ptr32(Xc), ldx, ptr32(Tc), ldt,
                                                                batch, ptr32(angles), length(angles)))
    return angles
end

"""
    feedback_angles(net, rule) -> Vector{Float32}

Angles in degrees between forward weights and the feedback standing in for
them: for `:fa`, angle(W_l, F_l) for l = 2..L; for `:dfa`, the angle between
G_l and the product W_L⋯W_{l+1} for l = 1..L-1.
"""
function feedback_angles(net::Network, r::Symbol)
    h = handle(net)
    feedback_layer_range(net, r)
    angles = Vector{Float32}(undef, nlayers(net) - 1)
    GC.@preserve net angles check(LibFA.fa_net_feedback_angles(h, enumvalue(RULES, r, "rule"),
                                                               ptr32(angles), length(angles)))
    return angles
end

# -------------------------------------------------------------- model files

"""
    FeedbackAlign.save(net, path)

Save the whole network (architecture, rule, feedback matrices, optimiser and
its state, RNG state, parameters) to `path`; a loaded copy continues training
bit-for-bit.  The file is replaced atomically.
"""
function save(net::Network, path::AbstractString)
    h = handle(net)
    GC.@preserve net check(LibFA.fa_net_save(h, String(path)))
    return path
end

"""
    FeedbackAlign.load(path) -> Network

Load a network saved by `save` (from Julia, C or any other caller).  A corrupt,
truncated or foreign file raises a FeedbackAlignError that says which.
"""
function load(path::AbstractString)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(LibFA.fa_net_load(out, String(path)))
    return Network(out[])
end

# ------------------------------------------------------------- losses alone

"""
    loss_eval(kind, Y, T; grad=true) -> (value, dY)

Evaluate a loss (`:mse`, `:softmax_ce`, `:sigmoid_bce`) on outputs `Y`
(logits for the last two) and targets `T`, both n × batch.  `dY` is dL/dY
(already divided by the batch size), or `nothing` with `grad=false`.
"""
function loss_eval(kind::Symbol, Y, T; grad::Bool = true)
    k = enumvalue(LOSSES, kind, "loss")
    (Y isa AbstractVecOrMat) || throw(ArgumentError("Y must be a vector or matrix"))
    Yc, ldy, batch = dataarg(Y, "Y", size(Y, 1))
    Tc, ldt, bt = dataarg(T, "T", size(Y, 1))
    bt == batch || throw(DimensionMismatch("Y has $batch columns but T has $bt"))
    value, dY = loss_eval_call(k, Yc, ldy, Tc, ldt, Int32(size(Y, 1)), batch, grad)
    return value, (Y isa AbstractVector && dY !== nothing ? vec(dY) : dY)
end

function loss_eval_call(k, Yc, ldy, Tc, ldt, n, batch, grad)
    value = Ref{Float32}(0)
    if grad
        dY = Matrix{Float32}(undef, n, batch)
        GC.@preserve Yc Tc dY check(LibFA.fa_loss_eval(k, ptr32(Yc), ldy, ptr32(Tc), ldt, n, batch,
                                                      value, ptr32(dY), n))
        return value[], dY
    else
        GC.@preserve Yc Tc check(LibFA.fa_loss_eval(k, ptr32(Yc), ldy, ptr32(Tc), ldt, n, batch,
                                                   value, Ptr{Float32}(C_NULL), n))
        return value[], nothing
    end
end
