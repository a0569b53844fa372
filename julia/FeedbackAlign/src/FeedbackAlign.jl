"""
    FeedbackAlign

Julia interface to libfeedbackalign: networks of dense, convolutional and
pooling layers trained by backpropagation and the feedback-alignment family
(`:fa`, `:dfa`, `:usf`, `:brsf`, `:frsf`, `:kp`, `:wm`, `:drtp`, `:sdfa`,
`:shallow`, …: every rule the loaded library knows, by its name;
`FeedbackAlign.choices(:rule)` lists them).

Data are arrays with one observation per column, `(features, batch)`, or for
images `(channels, width, height, batch)`.  The library computes in
`Float32`: `Float32` matrices and contiguous column views such as
`view(X, :, a:b)` are passed to it without a copy; `Float64` input is
converted to `Float32` once per call.

Exported names are this package's own (`Network`, `train_step!`, `predict`,
`rule!`, …).  Generic verbs stay in the module, so that `using Flux,
FeedbackAlign` has no clash: `FeedbackAlign.params`, `.grad`, `.loss`,
`.train!`, `.weights`, `.biases`, `.save`, `.load`; the layer constructors
are in `FeedbackAlign.Layers`, the LearningStrategies-style loop in
`FeedbackAlign.Learn`.
"""
module FeedbackAlign

using Libdl
using LinearAlgebra
using Random
using Printf
using Serialization

export Network, FeedbackAlignError, ParamView,
       rule!, rule, feedback_init!, dfa_variant!, dfa_variant, feedback, feedback!,
       feedback_shape, feedback_layers, optimizer!, optimizer, hparam!, hparam,
       reset_optimizer!, seed_dropout!, init_weights!, reserve!,
       predict, predict!, train_step!, lastloss, compute_update!, apply_update!,
       params!, nparams, layer_sizes, layer_shape, layer_kind, nlayers, activation, losstype,
       alignment, feedback_angles, loss_eval, StopTraining

"""The library version this package was written for (MAJOR*10000 + MINOR*100 + PATCH)."""
const REQUIRED_VERSION = 200

"""Version of this package (from Project.toml)."""
const PKGVERSION = VersionNumber(match(r"(?m)^version\s*=\s*\"([^\"]+)\"",
                                       read(joinpath(@__DIR__, "..", "Project.toml"), String))[1])
include_dependency(joinpath(@__DIR__, "..", "Project.toml"))

include("libfa.jl")
include("library.jl")
include("enums.jl")
include("network.jl")
include("views.jl")
include("copying.jl")
include("layers.jl")
include("batches.jl")
include("Learn.jl")

function __init__()
    load_library!()
    load_names!()
end

end # module
