# The user layer: a Network owning one library handle, and every library
# feature as a Julia function.  Sizes and element types are checked here,
# before any ccall, so that a mistake is a Julia exception naming the argument;
# what only the library can judge comes back as a FeedbackAlignError.

"""What the network's spec says about one layer (fixed for the life of the handle)."""
struct LayerInfo
    kind::Symbol            # :dense, :conv2d, :maxpool, :avgpool (the library's names)
    units::Int              # dense outputs or conv output channels; 0 for pooling
    kernel::NTuple{2,Int}   # (kh, kw): conv kernel or pooling window; (0, 0) for dense
    stride::Int
    pad::Int
    activation::Symbol
end

"""
    Network

A network held by libfeedbackalign: the layers, parameters, feedback
matrices, optimiser and its state, random generators and workspaces all live
in one library handle.  Built by

    Network(sizes, activations; loss=:mse, seed=0, rule=:bp)      # dense layers
    Network(layers...; input, loss=:mse, seed=0, rule=:bp)        # Dense, Conv, MaxPool, AvgPool
    Network(spec::String; act=:tanh, out=:identity, loss=:mse, seed=0, rule=:bp)
    Network(image::Vector{UInt8})                                 # from FeedbackAlign.image(net)
    FeedbackAlign.load(path), copy(net), deepcopy(net), deserialize(io)

The network owns library memory.  It is freed by the garbage collector, or at
once by `close(net)` (see `close` for what happens to live views).  Every use
of a closed network throws an `InvalidStateException`.

Copies are independent: `copy(net)` and `deepcopy(net)` clone the handle
(`fa_net_clone`): parameters, feedback, optimiser state and random
generators, so the copy trains bit for bit like the original would.
`Serialization.serialize` writes the library's model image, so networks pass
through files written with `serialize`, `Distributed` and `remotecall`.
"""
mutable struct Network
    ptr::Ptr{Cvoid}                  # the handle; C_NULL once closed
    data::Ptr{Float32}               # the parameter block (never moves); C_NULL once closed
    nparams::Int
    lastloss::Float32                # loss of the last train_step! (NaN before any)
    sizes::Vector{Int}               # n_0 .. n_L (feature counts)
    shapes::Vector{NTuple{3,Int}}    # (C, H, W) of the input (index 1) and of each layer's output
    layers::Vector{LayerInfo}        # layers 1..L
    wshapes::Vector{NTuple{2,Int}}   # shape of W_l, (0, 0) without parameters
    offsets::Vector{NTuple{2,Int}}   # (offset of W_l, offset of b_l) in floats
    spec::String                     # the text form (fa_spec_format)
    # Memory ownership, see close() and views.jl:
    owned::Threads.Atomic{UInt}      # the handle still to free (0 once freed)
    nviews::Threads.Atomic{Int}      # ParamView objects not yet finalized
    views::Vector{WeakRef}           # views to invalidate at close
    prune_at::Int

    function Network(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(ArgumentError("Network: null handle"))
        net = new(ptr, Ptr{Float32}(C_NULL), 0, NaN32, Int[], NTuple{3,Int}[], LayerInfo[],
                  NTuple{2,Int}[], NTuple{2,Int}[], "", Threads.Atomic{UInt}(UInt(ptr)),
                  Threads.Atomic{Int}(0), WeakRef[], 32)
        # Register the finalizer first, so the handle is freed even if one of
        # the queries below fails.
        finalizer(close, net)
        try
            describe!(net)
        catch
            close(net)
            rethrow()
        end
        return net
    end
end

# Everything about the layout that never changes for the life of the handle,
# asked once so that views and checks need no library call.
function describe!(net::Network)
    ptr = net.ptr
    nl = Ref{Int32}(0)
    check(LibFA.fa_net_num_layers(ptr, nl))
    L = Int(nl[])
    sz = Vector{Int32}(undef, L + 1)
    check(LibFA.fa_net_get_sizes(ptr, sz, length(sz)))
    np = Ref{Int64}(0)
    check(LibFA.fa_net_param_count(ptr, np))
    dp = Ref{Ptr{Float32}}(C_NULL)
    check(LibFA.fa_net_params_data(ptr, dp))
    wshapes = NTuple{2,Int}[]
    offsets = NTuple{2,Int}[]
    r = Ref{Int32}(0); c = Ref{Int32}(0); w = Ref{Int64}(0); b = Ref{Int64}(0)
    for l in 1:L
        check(LibFA.fa_net_weight_shape(ptr, l, r, c))
        check(LibFA.fa_net_layer_offsets(ptr, l, w, b))
        push!(wshapes, (Int(r[]), Int(c[])))
        push!(offsets, (Int(w[]), Int(b[])))
    end
    sp = Ref{Ptr{Cvoid}}(C_NULL)
    check(LibFA.fa_net_get_spec(ptr, sp))
    spec = sp[]
    try
        net.shapes = spec_shapes(spec, L)
        net.layers = spec_layers(spec, L)
        net.spec = spec_text(spec)
    finally
        LibFA.fa_spec_free(spec)
    end
    net.sizes = Vector{Int}(sz)
    net.nparams = Int(np[])
    net.wshapes = wshapes
    net.offsets = offsets
    net.data = dp[]
    return net
end

function spec_shapes(spec::Ptr{Cvoid}, L::Integer)
    c = Ref{Int32}(0); h = Ref{Int32}(0); w = Ref{Int32}(0)
    shapes = NTuple{3,Int}[]
    for l in 0:L
        check(LibFA.fa_spec_shape(spec, l, c, h, w))
        push!(shapes, (Int(c[]), Int(h[]), Int(w[])))
    end
    return shapes
end

function spec_layers(spec::Ptr{Cvoid}, L::Integer)
    kind = Ref{Int32}(0); units = Ref{Int32}(0); kh = Ref{Int32}(0); kw = Ref{Int32}(0)
    stride = Ref{Int32}(0); pad = Ref{Int32}(0); act = Ref{Int32}(0)
    layers = LayerInfo[]
    for l in 1:L
        check(LibFA.fa_spec_layer(spec, l, kind, units, kh, kw, stride, pad, act))
        push!(layers, LayerInfo(enumsymbol(E_LAYER, kind[]), units[], (Int(kh[]), Int(kw[])),
                                stride[], pad[], enumsymbol(E_ACTIVATION, act[])))
    end
    return layers
end

function spec_text(spec::Ptr{Cvoid})
    needed = Ref{Int64}(0)
    check(LibFA.fa_spec_format(spec, Ptr{UInt8}(C_NULL), 0, needed))
    buf = Vector{UInt8}(undef, needed[])
    check(LibFA.fa_spec_format(spec, buf, length(buf), needed))
    return String(buf[1:findfirst(iszero, buf)-1])
end

function checkseed(seed::Integer)
    0 <= seed <= typemax(UInt64) || throw(ArgumentError("seed must be in 0:typemax(UInt64), got $seed"))
    return UInt64(seed)
end

function Network(sizes::AbstractVector{<:Integer}, activations;
                 loss = :mse, seed::Integer = 0, rule = :bp)
    length(sizes) >= 2 ||
        throw(ArgumentError("sizes must list at least the input and output widths, got $(repr(sizes))"))
    for (i, n) in enumerate(sizes)
        1 <= n <= typemax(Int32) ||
            throw(ArgumentError("sizes[$i] = $n: every layer width must be between 1 and $(typemax(Int32))"))
    end
    L = length(sizes) - 1
    acts = activations isa Union{Symbol,AbstractString,Function} ? fill(activations, L) : collect(activations)
    length(acts) == L ||
        throw(ArgumentError("activations has $(length(acts)) entries but the network has $L weight layers (one activation per layer)"))
    actv = Int32[enumvalue(E_ACTIVATION, actname(a)) for a in acts]
    lossv = enumvalue(E_LOSS, loss)
    sd = checkseed(seed)
    szv = Int32.(collect(sizes))
    out = Ref{Ptr{Cvoid}}(C_NULL)
    GC.@preserve szv actv check(LibFA.fa_net_create(out, L, szv, actv, lossv, sd))
    net = Network(out[])
    rule === :bp || rule!(net, rule)
    return net
end

"""
    close(net::Network)

Close the network now instead of waiting for the garbage collector.
Idempotent.  Afterwards every use of `net` throws an `InvalidStateException`,
and so does every use of its `weights`/`biases`/`kernels`/`paramview` views
(indexing, iteration, `pointer`, BLAS calls, broadcasting, `copy`).

The library memory is released at once if no view of the network exists;
otherwise when the last view object is garbage collected (a view, even a
closed one, keeps the memory it points to allocated, so that nothing can
read freed memory through it).
"""
function Base.close(net::Network)
    if net.ptr != C_NULL
        net.ptr = C_NULL
        net.data = Ptr{Float32}(C_NULL)
        invalidate_views!(net)
    end
    release!(net)
    return nothing
end

# Free the handle once the network is closed and no view object is left.
# Called by close (and so by the network's finalizer) and by the finalizer of
# each view; the atomic exchange makes sure exactly one of them frees it.
function release!(net::Network)
    if net.ptr == C_NULL && net.nviews[] == 0
        p = Threads.atomic_xchg!(net.owned, UInt(0))
        p != 0 && LibFA.fa_net_free(Ptr{Cvoid}(p))
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
    print(io, "Network(", repr(net.spec), "; loss=", repr(losstype(net)), ", rule=",
          repr(rule(net)), ")")
end

function Base.show(io::IO, ::MIME"text/plain", net::Network)
    show(io, net)
    isopen(net) || return
    L = nlayers(net)
    print(io, "\n  input ", shape_text(net.shapes[1]))
    for l in 1:L
        li = net.layers[l]
        print(io, "\n  ", rpad(string(l), 4), rpad(layer_text(li), 22), " -> ",
              rpad(shape_text(net.shapes[l+1]), 12))
        li.kind in (:maxpool, :avgpool) || print(io, "  ", rpad(string(li.activation), 11))
        np = prod(net.wshapes[l]) + net.wshapes[l][1]
        np > 0 && print(io, "  ", np, " parameters")
    end
    print(io, "\n  ", net.nparams, " parameters, optimizer ", repr(optimizer(net)),
          " (lr=", hparam(net, :lr), ")")
end

shape_text(s::NTuple{3,Int}) = s[2] == 1 && s[3] == 1 ? string(s[1]) : join(s, "×")

function layer_text(li::LayerInfo)
    k = li.kind
    k === :dense && return "dense $(li.units)"
    s = li.stride == 1 ? "" : ", stride $(li.stride)"
    p = li.pad == 0 ? "" : ", pad $(li.pad)"
    k === :conv2d && return "conv2d $(li.units), $(li.kernel[1])×$(li.kernel[2])$s$p"
    return "$k $(li.kernel[1])×$(li.kernel[2])" * (li.stride == li.kernel[1] ? "" : ", stride $(li.stride)")
end

# --------------------------------------------------------------- structure

"""Number of layers L (weight and pooling layers)."""
nlayers(net::Network) = (handle(net); length(net.sizes) - 1)

"""Layer widths (feature counts) `[n_0, n_1, ..., n_L]`; an image layer of C×H×W has n = C*H*W."""
layer_sizes(net::Network) = (handle(net); copy(net.sizes))

"""Number of parameters (all weights and biases)."""
nparams(net::Network) = (handle(net); net.nparams)

"""
    layer_shape(net, l) -> (channels, height, width)

Shape of the output of layer `l` (`l = 0`: the input); a dense layer of n
units is `(n, 1, 1)`.
"""
function layer_shape(net::Network, l::Integer)
    handle(net)
    checklayer(net, l, 0:nlayers(net))
    return net.shapes[l+1]
end

"""
    layer_kind(net, l) -> Symbol

Kind of layer `l`: `:dense`, `:conv2d`, `:maxpool`, `:avgpool` (the library's names).
"""
function layer_kind(net::Network, l::Integer)
    handle(net)
    checklayer(net, l, 1:nlayers(net))
    return net.layers[l].kind
end

"""
    FeedbackAlign.spec(net) -> String

The network's architecture in the library's text form (`fa_spec_format`),
every activation written out; `Network(spec(net); loss=...)` builds the same
architecture.
"""
spec(net::Network) = (handle(net); net.spec)

function checklayer(net::Network, l::Integer, range::UnitRange, name = "layer")
    l in range || throw(ArgumentError("$name = $l is out of range $(range.start):$(range.stop) for a network with $(length(net.sizes)-1) layers"))
    return Int32(l)
end

hasparams(net::Network, l::Integer) = net.wshapes[l][1] > 0

"""Activation of layer `l` (1 ≤ l ≤ L), as a symbol (`:identity` for pooling layers)."""
function activation(net::Network, l::Integer)
    h = handle(net)
    li = checklayer(net, l, 1:nlayers(net))
    a = Ref{Int32}(0)
    GC.@preserve net check(LibFA.fa_net_get_activation(h, li, a))
    return enumsymbol(E_ACTIVATION, a[])
end

# The enum getters share one shape: an Int32 out-parameter read back as a symbol.
function getenum(cfun, net::Network, type::Int32)
    h = handle(net)
    v = Ref{Int32}(0)
    GC.@preserve net check(cfun(h, v))
    return enumsymbol(type, v[])
end

"""The network's loss, as a symbol."""
losstype(net::Network) = getenum(LibFA.fa_net_get_loss, net, E_LOSS)

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

Switch the learning rule; allowed at any time.  `r` is any name of
`FeedbackAlign.choices(:rule)`: `:bp`, `:fa`, `:dfa`, `:usf`, `:brsf`,
`:frsf`, `:kp`, `:wm`, `:drtp`, `:sdfa`, `:shallow`, and whatever the loaded
library adds (`FeedbackAlign.description(:rule, r)` says what each is).
Feedback matrices are drawn the first time a rule needs them and kept after.
"""
function rule!(net::Network, r)
    h = handle(net)
    v = enumvalue(E_RULE, r)
    GC.@preserve net check(LibFA.fa_net_set_rule(h, v))
    return net
end

"""Current learning rule, as a symbol."""
rule(net::Network) = getenum(LibFA.fa_net_get_rule, net, E_RULE)

"""
    feedback_init!(net, dist=:uniform; scale=0)

How feedback matrices are drawn: `:uniform` (U[-s, s]), `:gaussian`
(N(0, s²)) or `:sign` (±s).  `scale = 0` means 1/√n with n the width of the
receiving layer.  Matrices already drawn (of every rule) are redrawn.
"""
function feedback_init!(net::Network, dist = :uniform; scale::Real = 0)
    h = handle(net)
    v = enumvalue(E_DISTRIBUTION, dist)
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
function dfa_variant!(net::Network, v)
    h = handle(net)
    n = enumvalue(E_DFA_VARIANT, v)
    GC.@preserve net check(LibFA.fa_net_set_dfa_variant(h, n))
    return net
end

"""Current DFA variant."""
dfa_variant(net::Network) = getenum(LibFA.fa_net_get_dfa_variant, net, E_DFA_VARIANT)

"""
    feedback_layers(net, rule) -> Vector{Int}

The layers that have a feedback matrix under `rule`, from the rule's
feedback kind (`FeedbackAlign.rule_info`): `:layer` rules keep B_l for the
layers 2..L with parameters, `:direct` rules G_l for the layers 1..L-1 with
parameters; rules of kind `:none` (`:bp`, `:shallow`) have none.
"""
function feedback_layers(net::Network, r)
    handle(net)
    info = rule_info(r)
    L = length(net.sizes) - 1
    range = info.kind === :layer ? (2:L) : info.kind === :direct ? (1:L-1) : (1:0)
    return [l for l in range if hasparams(net, l)]
end

function check_feedback(net::Network, r, l::Integer; store::Bool = false)
    info = rule_info(r)
    if info.kind === :none
        withfb = [n for n in enumtable(E_RULE).names if RULE_INFO[enumvalue(E_RULE, n)+1].kind !== :none]
        throw(ArgumentError("rule $(repr(info.name)) has no feedback matrices; rules with feedback: " *
                            join(repr.(withfb), ", ")))
    end
    if store && !info.stored
        throw(ArgumentError("rule $(repr(info.name)) stores no feedback matrix to replace " *
                            "(its feedback is derived from the weights)"))
    end
    layers = feedback_layers(net, r)
    l in layers ||
        throw(ArgumentError("layer = $l has no $(repr(info.name)) feedback matrix; this network has them at layers " *
                            (isempty(layers) ? "(none)" : join(layers, ", ")) *
                            (info.kind === :layer ? " (layers 2..L with parameters)" :
                                                    " (layers 1..L-1 with parameters)")))
    return Int32(l)
end

"""
    feedback_shape(net, rule, l) -> (rows, cols)

Shape of the feedback matrix of `rule` at layer `l` (see `feedback_layers`):
W_l's shape for `:layer` rules, `(n_L, n_l)` for `:direct` ones.
"""
function feedback_shape(net::Network, r, l::Integer)
    h = handle(net)
    li = check_feedback(net, r, l)
    rows = Ref{Int32}(0)
    cols = Ref{Int32}(0)
    GC.@preserve net check(LibFA.fa_net_feedback_shape(h, enumvalue(E_RULE, r), li, rows, cols))
    return (Int(rows[]), Int(cols[]))
end

"""
    feedback(net, rule, l) -> Matrix{Float32}

A copy of the feedback matrix of `rule` at layer `l`, shape
`feedback_shape(net, rule, l)`: F_l of `:fa`, M_l of `:brsf`/`:frsf`, B_l of
`:kp`/`:wm`, G_l of `:dfa`/`:drtp`/`:sdfa`, and for `:usf` the derived
s_l sign(W_l).  Draws the rule's matrices if they were never drawn.
"""
function feedback(net::Network, r, l::Integer)
    rows, cols = feedback_shape(net, r, l)
    M = Matrix{Float32}(undef, rows, cols)
    h = handle(net)
    GC.@preserve net M check(LibFA.fa_net_get_feedback(h, enumvalue(E_RULE, r), Int32(l), M, length(M)))
    return M
end

"""
    feedback!(net, rule, l, M)

Replace the stored feedback matrix of `rule` at layer `l` by `M` (copied),
which must have the shape `feedback_shape(net, rule, l)`.  Rules that store
nothing (`:usf`) refuse.
"""
function feedback!(net::Network, r, l::Integer, M::AbstractMatrix)
    handle(net)
    check_feedback(net, r, l; store = true)
    rows, cols = feedback_shape(net, r, l)
    size(M) == (rows, cols) ||
        throw(DimensionMismatch("M is $(size(M, 1))×$(size(M, 2)) but the $r feedback matrix of layer $l is $(rows)×$(cols)"))
    Mc = densecopy32(M, "M")
    h = handle(net)
    GC.@preserve net Mc check(LibFA.fa_net_set_feedback(h, enumvalue(E_RULE, r), Int32(l), Mc, length(Mc)))
    return net
end

# ------------------------------------------------- weights and dropout

"""
    init_weights!(net, scheme=:default)

Re-draw all forward weights (`FeedbackAlign.choices(:init)`: `:default`,
`:xavier_uniform`, `:xavier_normal`, `:he_uniform`, `:he_normal`, `:zero`);
biases become 0 and the optimiser state is reset.
"""
function init_weights!(net::Network, scheme = :default)
    h = handle(net)
    v = enumvalue(E_INIT, scheme)
    GC.@preserve net check(LibFA.fa_net_init_weights(h, v))
    return net
end

"""
    FeedbackAlign.dropout!(net, l, p)

Inverted dropout with drop probability `p` in [0, 1) on the output of hidden
layer `l` (1 ≤ l ≤ L-1), during training only.  `p = 0` turns it off.
(Not exported: NNlib, and so Flux, export a `dropout!` of their own.)
"""
function dropout!(net::Network, l::Integer, p::Real)
    h = handle(net)
    li = checklayer(net, l, 1:nlayers(net)-1, "hidden layer")
    (isfinite(p) && 0 <= p < 1) || throw(ArgumentError("dropout probability p must be in [0, 1), got $p"))
    GC.@preserve net check(LibFA.fa_net_set_dropout(h, li, Float64(p)))
    return net
end

"""`FeedbackAlign.dropout(net, l)`: dropout probability of hidden layer `l`."""
function dropout(net::Network, l::Integer)
    h = handle(net)
    li = checklayer(net, l, 1:nlayers(net)-1, "hidden layer")
    p = Ref{Float64}(0)
    GC.@preserve net check(LibFA.fa_net_get_dropout(h, li, p))
    return p[]
end

"""
    seed_dropout!(net, seed)

Reseed the stream that draws dropout masks, and only it (the model stream of
weights and feedback is untouched): data-parallel copies of one network get
their own dropout seeds while their feedback stays identical.
"""
function seed_dropout!(net::Network, seed::Integer)
    h = handle(net)
    s = checkseed(seed)
    GC.@preserve net check(LibFA.fa_net_seed_dropout(h, s))
    return net
end

# ---------------------------------------------------------------- optimiser

"""
    optimizer!(net, opt; hparams...)

Choose the optimiser (`FeedbackAlign.choices(:optimizer)`: `:sgd`,
`:momentum`, `:nesterov`, `:adam`, `:rmsprop`); its state starts from zero.
Keyword arguments set hyperparameters at the same time, e.g.
`optimizer!(net, :adam; lr=1e-3)`.
"""
function optimizer!(net::Network, opt; hparams...)
    h = handle(net)
    v = enumvalue(E_OPTIMIZER, opt)
    GC.@preserve net check(LibFA.fa_net_set_optimizer(h, v))
    isempty(hparams) || hparam!(net; hparams...)
    return net
end

"""Current optimiser, as a symbol."""
optimizer(net::Network) = getenum(LibFA.fa_net_get_optimizer, net, E_OPTIMIZER)

"""
    hparam!(net, name, value)
    hparam!(net; name=value, ...)

Set hyperparameters by the library's names (`FeedbackAlign.choices(:hparam)`):
`:lr`, `:momentum`, `:beta1`, `:beta2`, `:epsilon`, `:weight_decay`,
`:rms_decay`, `:leaky_slope`, `:kp_decay`, `:wm_lr`, `:wm_decay`,
`:wm_noise`, `:wm_batch`, ….  Allowed between any two steps.
"""
function hparam!(net::Network, name, value::Real)
    h = handle(net)
    v = enumvalue(E_HPARAM, name)
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
function hparam(net::Network, name)
    h = handle(net)
    v = enumvalue(E_HPARAM, name)
    out = Ref{Float64}(0)
    GC.@preserve net check(LibFA.fa_net_get_hparam(h, v, out))
    return out[]
end

"""`FeedbackAlign.hparams(net)`: every hyperparameter, name => value, in the library's order."""
hparams(net::Network) = [n => hparam(net, n) for n in enumtable(E_HPARAM).names]

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
#
# Images: a batch of C×H×W images is the matrix (C*H*W, batch), channel
# fastest, then column, then row, which is a Julia array of size
# (C, W, H, batch); such a 4-D array is reshaped (no copy) into the matrix.

const ACCEPTED = "Float32 (passed without copy) or Float64 (converted to Float32)"

function check_eltype(X, name)
    T = eltype(X)
    (T === Float32 || T === Float64) ||
        throw(ArgumentError("$name has element type $T; expected $ACCEPTED"))
    return nothing
end

"""
    dataarg(X, name, rows) -> (A, ld, batch)
    dataarg(X, name, shape::NTuple{3,Int}) -> (A, ld, batch)

`A` is an array the library may read through `pointer`-conversion, `ld` its
leading dimension, `batch` its number of columns.  With a shape (C, H, W), a
4-D array of size (C, W, H, batch) is accepted too.
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
    throw(ArgumentError("$name must be a vector, a matrix with one observation per column or a 4-D (channels, width, height, batch) image array, got a $(ndims(X))-dimensional array"))
end

dataarg(X::AbstractVecOrMat, name::AbstractString, shape::NTuple{3,Int}) =
    dataarg(X, name, prod(shape))

function dataarg(X::AbstractArray{<:Any,4}, name::AbstractString, shape::NTuple{3,Int})
    C, H, W = shape
    (size(X, 1), size(X, 2), size(X, 3)) == (C, W, H) ||
        throw(DimensionMismatch("$name is a $(join(size(X), "×")) array but the network takes images of " *
                                "$C channels, height $H and width $W: a (channels, width, height, batch) " *
                                "array of size ($C, $W, $H, batch), or a ($(C*H*W), batch) matrix"))
    return dataarg(reshape(X, C * H * W, size(X, 4)), name, C * H * W)
end

dataarg(X, name::AbstractString, shape::NTuple{3,Int}) = dataarg(X, name, prod(shape))

"""A contiguous Float32 copy (or the array itself if it already is one)."""
function densecopy32(v::AbstractArray, name::AbstractString)
    check_eltype(v, name)
    v isa DenseArray{Float32} && !(v isa ParamView) && return v
    return Array{Float32}(v)
end

"""Output buffer check: must be writable Float32 memory of the right shape."""
function outarg(Y, name::AbstractString, rows::Integer, batch::Integer)
    (Y isa StridedVecOrMat{Float32} && stride(Y, 1) == 1 && !(Y isa ParamView)) ||
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

The network's output for every observation of `X` without dropout: `X` is
(n_0, batch), one observation per column, or for image input a 4-D
(channels, width, height, batch) array.  For the `:softmax_ce` and
`:sigmoid_bce` losses the output is probabilities.  A vector `X` (one
observation) gives a vector.
"""
function predict(net::Network, X::AbstractArray)
    handle(net)
    Xc, ldx, batch = dataarg(X, "X", net.shapes[1])
    Y = Matrix{Float32}(undef, net.sizes[end], batch)
    forward_call!(Y, net.sizes[end], net, Xc, ldx, batch)
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
    Xc, ldx, batch = dataarg(X, "X", net.shapes[1])
    ldy = outarg(Y, "Y", net.sizes[end], batch)
    return forward_call!(Y, ldy, net, Xc, ldx, batch)
end

function forward_call!(Y, ldy, net::Network, Xc, ldx, batch)
    h = handle(net)
    GC.@preserve net Xc Y check(LibFA.fa_net_forward(h, ptr32(Xc), ldx, batch, ptr32(Y), ldy))
    return Y
end

function data_pair(net::Network, X, T)
    Xc, ldx, batch = dataarg(X, "X", net.shapes[1])
    Tc, ldt, bt = dataarg(T, "T", net.shapes[end])
    bt == batch ||
        throw(DimensionMismatch("X has $batch observations (columns) but T has $bt"))
    return Xc, ldx, Tc, ldt, batch
end

"""
    FeedbackAlign.loss(net, X, T) -> Float32

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
rule's update, the optimiser step and the rule's own step on its feedback.
Returns the batch's mean loss before the update.  A non-finite loss raises a
FeedbackAlignError and leaves the network as it was.
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
written into the flat `Vector{Float32}` `g` in the layout of
`FeedbackAlign.params(net)`; returns the loss.  Parameters and optimiser
state are not touched, so an outside optimiser can use `g` and `params!`, or
`apply_update!` applies the network's own optimiser.
"""
function compute_update!(g::AbstractVector, net::Network, X, T)
    handle(net)
    (g isa DenseVector{Float32} && !(g isa ParamView)) ||
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
    FeedbackAlign.grad(net, X, T) -> Vector{Float32}

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
`FeedbackAlign.params(net)`); weight decay is added here.
"""
function apply_update!(net::Network, g::AbstractVector)
    h = handle(net)
    check_flat(g, net, "g")
    gc = densecopy32(g, "g")
    GC.@preserve net gc check(LibFA.fa_net_apply_update(h, gc, length(gc)))
    return net
end

# -------------------------------------------------------------- diagnostics

"""
    alignment(net, X, T) -> Vector{Float32}

For each hidden layer l = 1..L-1, the angle in degrees between the current
rule's weight update and the exact backprop gradient on the batch (0 under
`:bp`, 90 for a zero update such as `:shallow`'s; NaN for a layer without
parameters).
"""
function alignment(net::Network, X, T)
    handle(net)
    return alignment_call(net, data_pair(net, X, T)...)
end

function alignment_call(net::Network, Xc, ldx, Tc, ldt, batch)
    h = handle(net)
    angles = Vector{Float32}(undef, length(net.sizes) - 2)
    GC.@preserve net Xc Tc angles check(LibFA.fa_net_alignment(h, ptr32(Xc), ldx, ptr32(Tc), ldt,
                                                                batch, ptr32(angles), length(angles)))
    return angles
end

"""
    feedback_angles(net, rule) -> Vector{Float32}

Angles in degrees between forward weights and the feedback standing in for
them, L-1 entries: for `:layer` rules entry l-1 is angle(W_l, B_l) (l = 2..L,
B_l the matrix the rule uses: F_l, s·sign(W_l), |M_l|⊙sign(W_l), …); for
`:direct` rules entry l is the angle between G_l and W_L⋯W_{l+1}
(l = 1..L-1).  Entries without meaning (a layer without parameters, a path
through a convolution or pooling layer) are NaN.  Rules without feedback
(`:bp`, `:shallow`) are refused.
"""
function feedback_angles(net::Network, r)
    h = handle(net)
    info = rule_info(r)
    info.kind === :none && check_feedback(net, r, 0)   # throws the message listing rules with feedback
    angles = Vector{Float32}(undef, length(net.sizes) - 2)
    GC.@preserve net angles check(LibFA.fa_net_feedback_angles(h, enumvalue(E_RULE, r),
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

Evaluate a loss (`:mse`, `:softmax_ce`, `:sigmoid_bce`, …) on outputs `Y`
(logits for the fused losses) and targets `T`, both n × batch.  `dY` is
dL/dY (already divided by the batch size), or `nothing` with `grad=false`.
"""
function loss_eval(kind, Y, T; grad::Bool = true)
    k = enumvalue(E_LOSS, kind)
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
