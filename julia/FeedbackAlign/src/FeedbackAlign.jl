"""
    FeedbackAlign

Julia interface to libfeedbackalign: dense networks trained by backpropagation
(`:bp`), feedback alignment (`:fa`, Lillicrap et al. 2016) and direct feedback
alignment (`:dfa`, Nøkland 2016).

Data are matrices with one observation per column, `(features, batch)`.
The library computes in `Float32`: `Float32` matrices and contiguous column
views such as `view(X, :, a:b)` are passed to it without a copy; `Float64`
input is converted to `Float32` once per call (convert a data set up front
with `Float32.(X)` to avoid a copy per step).

See the README for a walk-through, and `FeedbackAlign.Learn` for the
LearningStrategies-style training loops.
"""
module FeedbackAlign

using Libdl
using LinearAlgebra
using Random
using Printf

export Network, FeedbackAlignError,
       rule!, rule, feedback_init!, dfa_variant!, dfa_variant, feedback, feedback!,
       feedback_shape, optimizer!, optimizer, hparam!, hparam, reset_optimizer!,
       dropout!, dropout, init_weights!, reserve!,
       predict, predict!, loss, train_step!, lastloss,
       params, params!, nparams, weights, biases, layer_sizes, nlayers, activation,
       losstype, grad, compute_update!, apply_update!, alignment, feedback_angles,
       loss_eval, eachbatch, RandomBatches, train!, StopTraining

"""The library version this package was written for (MAJOR*10000 + MINOR*100 + PATCH)."""
const REQUIRED_VERSION = 100

include("libfa.jl")
include("library.jl")
include("enums.jl")
include("network.jl")
include("batches.jl")
include("Learn.jl")

function __init__()
    load_library!()
end

end # module
