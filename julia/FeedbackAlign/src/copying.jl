# Copies of a network go through the library: fa_net_clone for copy and
# deepcopy, the model image (fa_net_save_image / fa_net_load_image) for
# serialisation.  Julia's default deepcopy/serialize would copy the handle
# pointer and share (or lose) the library's memory.

"""
    copy(net::Network) -> Network

An independent network (`fa_net_clone`): parameters, feedback matrices of
every rule, optimiser and its state, hyperparameters, dropout rates and both
random streams.  The copy trains bit for bit as the original would;
training, closing or collecting one does not affect the other.
"""
function Base.copy(net::Network)
    h = handle(net)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    GC.@preserve net check(LibFA.fa_net_clone(out, h))
    c = Network(out[])
    c.lastloss = net.lastloss
    return c
end

# deepcopy: the same clone, recorded in `dict` so that a network reached
# twice (e.g. a network and a view of it in one structure) is copied once.
function Base.deepcopy_internal(net::Network, dict::IdDict)
    haskey(dict, net) && return dict[net]::Network
    c = copy(net)
    dict[net] = c
    return c
end

"""
    FeedbackAlign.image(net) -> Vector{UInt8}

The network's model image: the bytes of a model file (`fa_net_save_image`),
everything needed to continue training bit for bit.  `Network(image)` reads
it back; `write(path, image(net))` gives a file that `FeedbackAlign.load`
(and the C library's `fa_net_load`) reads.
"""
function image(net::Network)
    h = handle(net)
    needed = Ref{Int64}(0)
    GC.@preserve net check(LibFA.fa_net_save_image(h, Ptr{UInt8}(C_NULL), 0, needed))
    buf = Vector{UInt8}(undef, needed[])
    GC.@preserve net buf check(LibFA.fa_net_save_image(h, buf, length(buf), needed))
    return buf
end

"""
    Network(image::AbstractVector{UInt8})

A network from a model image (`FeedbackAlign.image`, or the bytes of a model
file).  A corrupt, truncated or foreign image raises a FeedbackAlignError
(`FA_ERR_FORMAT`) whose message says which.
"""
function Network(img::AbstractVector{UInt8})
    buf = img isa Vector{UInt8} ? img : Vector{UInt8}(img)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    GC.@preserve buf check(LibFA.fa_net_load_image(out, buf, length(buf)))
    return Network(out[])
end

# ------------------------------------------------------------ serialisation

# A Network is written as: the object header (with cycle tracking, so one
# network reached twice is written once), a format byte, the image length and
# bytes, and `lastloss`.  Nothing else of the Julia object needs saving: the
# rest is read back from the handle.
const SERIAL_FORMAT = 0x01

function Serialization.serialize(s::Serialization.AbstractSerializer, net::Network)
    isopen(net) ||
        throw(InvalidStateException("cannot serialize a closed Network (it has no parameters any more)", :closed))
    img = image(net)
    Serialization.serialize_cycle_header(s, net) && return
    write(s.io, SERIAL_FORMAT)
    write(s.io, Int64(length(img)))
    write(s.io, img)
    write(s.io, net.lastloss)
    return nothing
end

function Serialization.deserialize(s::Serialization.AbstractSerializer, ::Type{Network})
    fmt = read(s.io, UInt8)
    fmt == SERIAL_FORMAT ||
        error("FeedbackAlign: serialized Network of unknown format $fmt (this package writes $SERIAL_FORMAT)")
    n = read(s.io, Int64)
    0 <= n <= typemax(Int) || error("FeedbackAlign: serialized Network with a corrupt length $n")
    img = read(s.io, n)
    length(img) == n || throw(EOFError())
    lastloss = read(s.io, Float32)
    net = Network(img)
    net.lastloss = lastloss
    Serialization.deserialize_cycle(s, net)
    return net
end

# A view is written as its network (itself tracked, so views of one network
# share it after deserialisation) and its place in the parameter block.
function Serialization.serialize(s::Serialization.AbstractSerializer, A::ParamView{N}) where {N}
    isopen(A) || throw_view_closed()
    Serialization.serialize_cycle_header(s, A) && return
    Serialization.serialize(s, A.net)
    write(s.io, Int64(A.offset))
    for d in A.dims
        write(s.io, Int64(d))
    end
    return nothing
end

function Serialization.deserialize(s::Serialization.AbstractSerializer, ::Type{ParamView{N}}) where {N}
    net = Serialization.deserialize(s)::Network
    offset = read(s.io, Int64)
    dims = ntuple(_ -> Int(read(s.io, Int64)), N)
    (offset >= 0 && all(>=(0), dims) && offset + prod(dims) <= net.nparams) ||
        error("FeedbackAlign: serialized parameter view outside its network's parameter block")
    A = ParamView{N}(net, offset, dims)
    Serialization.deserialize_cycle(s, A)
    return A
end
