# Layer descriptions for the Flux-like constructor
#     Network(Conv((5, 5), 1 => 6, :tanh; pad = 2), MaxPool(2), ...,
#             Dense(120 => 84, :tanh), Dense(84 => 10); input = (1, 28, 28))
# and the spec-string constructor, both through the library's spec builder
# (fa_spec_*), which checks every layer against the shape so far.
#
# The constructors are not exported from FeedbackAlign (Flux exports Dense,
# Conv and MaxPool): `using FeedbackAlign.Layers` brings them in, or write
# `FeedbackAlign.Dense(...)`.

"""A layer description for `Network(layers...; input)`: `Dense`, `Conv`, `MaxPool`, `AvgPool`."""
abstract type Layer end

# An activation given as a Symbol (:tanh), a string ("leaky-relu") or a
# function whose name is the library's (tanh, identity, or relu/sigmoid from
# another package).
actname(a::Symbol) = a
actname(a::AbstractString) = String(a)
actname(a::Function) = nameof(a)
actname(a) = throw(ArgumentError("an activation is a Symbol such as :tanh, got $(repr(a))"))

function posint(x, what)
    (x isa Integer && 1 <= x <= typemax(Int32)) ||
        throw(ArgumentError("$what must be an integer between 1 and $(typemax(Int32)), got $(repr(x))"))
    return Int(x)
end

"""
    Dense(in => out, act=:identity)
    Dense(out, act=:identity)

A dense layer of `out` units; `in` (optional) is checked against the number
of features the previous layer gives (C·H·W for an image).
"""
struct Dense <: Layer
    in::Int                 # 0: not declared
    out::Int
    act::Union{Symbol,String}
end
Dense(p::Pair{<:Integer,<:Integer}, act = :identity) =
    Dense(posint(p.first, "Dense's input size"), posint(p.second, "Dense's output size"), actname(act))
Dense(out::Integer, act = :identity) = Dense(0, posint(out, "Dense's output size"), actname(act))

"""
    Conv((kh, kw), in => out, act=:identity; stride=1, pad=0)
    Conv(k, in => out, act=:identity; stride=1, pad=0)      # k×k

A 2-D convolution of `out` channels with a kernel of `kh` rows and `kw`
columns (height, width: the order of `input = (C, H, W)`), stride and zero
padding the same along both axes.  `in` is checked against the channels the
previous layer gives.
"""
struct Conv <: Layer
    kernel::NTuple{2,Int}   # (kh, kw)
    in::Int
    out::Int
    act::Union{Symbol,String}
    stride::Int
    pad::Int
end
function Conv(k::Tuple{Integer,Integer}, ch::Pair{<:Integer,<:Integer}, act = :identity;
              stride::Integer = 1, pad::Integer = 0)
    pad >= 0 || throw(ArgumentError("Conv's pad must be >= 0, got $pad"))
    return Conv((posint(k[1], "Conv's kernel height"), posint(k[2], "Conv's kernel width")),
                posint(ch.first, "Conv's input channels"), posint(ch.second, "Conv's output channels"),
                actname(act), posint(stride, "Conv's stride"), Int(pad))
end
Conv(k::Integer, ch::Pair{<:Integer,<:Integer}, act = :identity; kw...) = Conv((k, k), ch, act; kw...)

"""
    MaxPool(k; stride=k)        MaxPool((k, k); stride=k)

Maximum over k×k windows (the library's windows are square).
"""
struct MaxPool <: Layer
    size::Int
    stride::Int
end

"""
    AvgPool(k; stride=k)        AvgPool((k, k); stride=k)

Mean over k×k windows.
"""
struct AvgPool <: Layer
    size::Int
    stride::Int
end

for P in (:MaxPool, :AvgPool)
    @eval begin
        $P(k::Integer; stride::Integer = k) = $P(posint(k, "$($P)'s window"), posint(stride, "$($P)'s stride"))
        function $P(k::Tuple{Integer,Integer}; stride = k[1])
            k[1] == k[2] ||
                throw(ArgumentError("$($P)$(k): the library's pooling windows are square"))
            st = stride isa Tuple ? (stride[1] == stride[2] ? stride[1] :
                 throw(ArgumentError("$($P): the stride must be the same along both axes"))) : stride
            return $P(k[1]; stride = st)
        end
    end
end

Base.show(io::IO, d::Dense) =
    print(io, "Dense(", d.in == 0 ? "" : "$(d.in) => ", d.out, ", ", repr(Symbol(d.act)), ")")
Base.show(io::IO, c::Conv) =
    print(io, "Conv(", c.kernel, ", ", c.in, " => ", c.out, ", ", repr(Symbol(c.act)),
          c.stride == 1 ? "" : "; stride=$(c.stride)", c.pad == 0 ? "" : (c.stride == 1 ? "; " : ", ") * "pad=$(c.pad)", ")")
Base.show(io::IO, p::Union{MaxPool,AvgPool}) =
    print(io, nameof(typeof(p)), "(", p.size, p.stride == p.size ? "" : "; stride=$(p.stride)", ")")

# ------------------------------------------------------- spec building

# The spec is an opaque library object: created, filled and freed here.
function with_spec(f, out::Ref{Ptr{Cvoid}})
    spec = out[]
    try
        return f(spec)
    finally
        LibFA.fa_spec_free(spec)
    end
end

# The network of a finished spec (the spec stays the caller's), trained by `rule`.
function network_from_spec(spec::Ptr{Cvoid}, lossv, sd, rule)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(LibFA.fa_net_create_from_spec(out, spec, lossv, sd))
    net = Network(out[])
    rule === :bp || rule!(net, rule)
    return net
end

function spec_shape(spec::Ptr{Cvoid}, l::Integer)
    c = Ref{Int32}(0); h = Ref{Int32}(0); w = Ref{Int32}(0)
    check(LibFA.fa_spec_shape(spec, l, c, h, w))
    return (Int(c[]), Int(h[]), Int(w[]))
end

function add_layer!(spec::Ptr{Cvoid}, d::Dense, i::Integer, prev::NTuple{3,Int})
    n = prod(prev)
    d.in == 0 || d.in == n ||
        throw(DimensionMismatch("layer $i, $d, declares $(d.in) input features but " *
                                (i == 1 ? "the input" : "layer $(i-1)") * " gives $(shape_features(prev))"))
    check(LibFA.fa_spec_add_dense(spec, d.out, enumvalue(E_ACTIVATION, d.act)))
end

function add_layer!(spec::Ptr{Cvoid}, c::Conv, i::Integer, prev::NTuple{3,Int})
    c.in == prev[1] ||
        throw(DimensionMismatch("layer $i, $c, declares $(c.in) input channels but " *
                                (i == 1 ? "the input" : "layer $(i-1)") * " gives $(prev[1]) " *
                                "(shape $(join(prev, "×")), channels × height × width)"))
    check(LibFA.fa_spec_add_conv2d(spec, c.out, c.kernel[1], c.kernel[2], c.stride, c.pad,
                                   enumvalue(E_ACTIVATION, c.act)))
end

add_layer!(spec::Ptr{Cvoid}, p::MaxPool, i::Integer, prev::NTuple{3,Int}) =
    check(LibFA.fa_spec_add_pool(spec, enumvalue(E_LAYER, :maxpool), p.size, p.stride))
add_layer!(spec::Ptr{Cvoid}, p::AvgPool, i::Integer, prev::NTuple{3,Int}) =
    check(LibFA.fa_spec_add_pool(spec, enumvalue(E_LAYER, :avgpool), p.size, p.stride))

shape_features(s::NTuple{3,Int}) =
    s[2] == 1 && s[3] == 1 ? "$(s[1]) features" : "$(join(s, "×")) = $(prod(s)) features"

inputshape(n::Integer) = (posint(n, "input"), 1, 1)
function inputshape(t::Tuple{Integer,Integer,Integer})
    return (posint(t[1], "input channels"), posint(t[2], "input height"), posint(t[3], "input width"))
end
inputshape(x) =
    throw(ArgumentError("input must be a number of features or a (channels, height, width) tuple, got $(repr(x))"))

"""
    Network(layers::Layer...; input, loss=:mse, seed=0, rule=:bp)

A network from layer descriptions (`using FeedbackAlign.Layers`, or
`FeedbackAlign.Dense` etc.), Flux style:

    Network(Conv((5, 5), 1 => 6, :tanh; pad = 2), MaxPool(2),
            Conv((5, 5), 6 => 16, :tanh), MaxPool(2),
            Dense(16 * 5 * 5 => 120, :tanh), Dense(120 => 84, :tanh), Dense(84 => 10);
            input = (1, 28, 28), loss = :softmax_ce, seed = 1)

`input` is the shape of one observation, (channels, height, width), or a
number of features.  The declared input channels of a `Conv` and input
features of a `Dense` are checked against what the previous layer gives,
with an error that names the layer; every other check (kernel larger than
its input, sizes that do not divide) is the library's, prefixed with the
layer's number.  Image data are then (C·H·W, batch) matrices, or
(C, W, H, batch) arrays (see `predict`).
"""
function Network(layer1::Layer, layers::Layer...; input, loss = :mse, seed::Integer = 0,
                 rule = :bp)
    all_layers = (layer1, layers...)
    C, H, W = inputshape(input)
    lossv = enumvalue(E_LOSS, loss)
    sd = checkseed(seed)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(LibFA.fa_spec_create(out, C, H, W))
    return with_spec(out) do spec
        prev = (C, H, W)
        for (i, layer) in enumerate(all_layers)
            try
                add_layer!(spec, layer, i, prev)
            catch e
                e isa FeedbackAlignError || rethrow()
                throw(FeedbackAlignError(e.code, "layer $i, $layer: " * e.message))
            end
            prev = spec_shape(spec, i)
        end
        return network_from_spec(spec, lossv, sd, rule)
    end
end

"""
    Network(spec::AbstractString; act=:tanh, out=:identity, loss=:mse, seed=0, rule=:bp)

A network from the library's text form of an architecture (`fa_spec_parse`):
'-'-separated tokens, the input first (`N` features or `CxHxW`), then one per
layer: `N` (dense, N units), `cNkK` (convolution, N channels, K×K kernel,
optional `sS` stride and `pP` padding), `mK` / `aK` (max / average pooling,
optional `sS`); `xR` repeats a token, `:NAME` gives its activation.  Layers
without one take `act`, the last layer `out`.

    Network("1x28x28-c6k5p2-m2-c16k5-m2-c120k5-84-10"; act=:tanh, loss=:softmax_ce)
    Network("784-1000-10"; act=:relu, loss=:softmax_ce)

`show(net)` and `FeedbackAlign.spec(net)` print this form back.
"""
function Network(text::AbstractString; act = :tanh, out = :identity, loss = :mse,
                 seed::Integer = 0, rule = :bp)
    occursin('\0', text) && throw(ArgumentError("the spec text contains a NUL character"))
    hidden = enumvalue(E_ACTIVATION, actname(act))
    output = enumvalue(E_ACTIVATION, actname(out))
    lossv = enumvalue(E_LOSS, loss)
    sd = checkseed(seed)
    sp = Ref{Ptr{Cvoid}}(C_NULL)
    check(LibFA.fa_spec_parse(sp, String(text), hidden, output))
    return with_spec(spec -> network_from_spec(spec, lossv, sd, rule), sp)
end

"""
    FeedbackAlign.Layers

The layer constructors `Dense`, `Conv`, `MaxPool`, `AvgPool` for
`Network(layers...; input)`.  Kept out of `FeedbackAlign`'s exports because
Flux exports `Dense`, `Conv` and `MaxPool` too: without Flux, write
`using FeedbackAlign, FeedbackAlign.Layers`; beside Flux, qualify them
(`FeedbackAlign.Dense`, or `const FA = FeedbackAlign; FA.Conv(...)`).
"""
module Layers
using ..FeedbackAlign: Layer, Dense, Conv, MaxPool, AvgPool
export Dense, Conv, MaxPool, AvgPool
end
