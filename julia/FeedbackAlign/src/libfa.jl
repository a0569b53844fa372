# Low-level layer: one Julia function per C function of include/feedbackalign.h,
# same name, same arguments, same return value (an Int32 status for the
# fallible ones).  This is the only file in which library symbols appear.
#
# Why pointers and not `ccall((:fa_f, lib), ...)`: on Julia 1.5 the library in
# that form must be a compile-time constant, but the library's path is only
# known at run time (environment variable, build directory, system loader).
# So `__init__` dlopens the library once and resolves every symbol into the
# Ref below; each wrapper then calls through the pointer.  The Refs start as
# C_NULL and are filled before any user code can run.
#
# Nothing here checks arguments: the user layer (network.jl) checks sizes and
# element types and keeps the buffers alive with GC.@preserve around the call.

module LibFA

using Libdl

const Fptr = Ref{Ptr{Cvoid}}

# Every function of include/feedbackalign.h, in the header's order.  For each
# name `fa_x` a constant `p_fa_x::Ref{Ptr{Cvoid}}` is defined below; resolve!
# fills them all.
const NAMES = (
    :fa_version_number, :fa_version_string, :fa_status_string, :fa_last_error,
    :fa_enum_count, :fa_enum_name, :fa_enum_description, :fa_enum_lookup, :fa_rule_info,
    :fa_rule_hidden,
    :fa_blas_info, :fa_set_threads, :fa_get_threads,
    :fa_spec_create, :fa_spec_free, :fa_spec_add_dense, :fa_spec_add_conv2d,
    :fa_spec_add_pool, :fa_spec_parse, :fa_spec_format, :fa_spec_num_layers,
    :fa_spec_layer, :fa_spec_shape,
    :fa_net_create, :fa_net_create_from_spec, :fa_net_get_spec, :fa_net_clone,
    :fa_net_free, :fa_net_num_layers, :fa_net_get_sizes, :fa_net_get_activation,
    :fa_net_layer_kind, :fa_net_weight_shape, :fa_net_get_loss, :fa_net_reserve,
    :fa_net_set_rule, :fa_net_get_rule, :fa_net_set_feedback_init,
    :fa_net_set_dfa_variant, :fa_net_get_dfa_variant, :fa_net_feedback_shape,
    :fa_net_get_feedback, :fa_net_set_feedback,
    :fa_net_init_weights, :fa_net_set_dropout, :fa_net_get_dropout, :fa_net_seed_dropout,
    :fa_net_set_optimizer, :fa_net_get_optimizer, :fa_net_set_hparam, :fa_net_get_hparam,
    :fa_net_reset_optimizer,
    :fa_net_forward, :fa_net_loss, :fa_net_train_step, :fa_net_compute_update,
    :fa_net_apply_update,
    :fa_net_param_count, :fa_net_get_params, :fa_net_set_params, :fa_net_params_data,
    :fa_net_layer_offsets,
    :fa_net_alignment, :fa_net_feedback_angles,
    :fa_net_save_image, :fa_net_load_image, :fa_net_save, :fa_net_load,
    :fa_loss_eval,
)

for name in NAMES
    @eval const $(Symbol(:p_, name)) = Fptr(C_NULL)
end

# Every symbol with the Ref it goes into; resolve! walks this list.
const SYMBOLS = Tuple(name => getfield(@__MODULE__, Symbol(:p_, name)) for name in NAMES)

"""
    resolve!(handle) -> Vector{Symbol}

Fill every function pointer from the dlopen'ed `handle`; returns the names of
the symbols that were not found (empty when the library is complete).
"""
function resolve!(handle::Ptr{Cvoid})
    missing_syms = Symbol[]
    for (name, ref) in SYMBOLS
        p = Libdl.dlsym(handle, name; throw_error = false)
        if p === nothing || p == C_NULL
            ref[] = C_NULL
            push!(missing_syms, name)
        else
            ref[] = p
        end
    end
    return missing_syms
end

# ------------------------------------------------------------------ version

fa_version_number() = ccall(p_fa_version_number[], Int32, ())
fa_version_string() = ccall(p_fa_version_string[], Cstring, ())

# ------------------------------------------------------------------- errors

fa_status_string(status) = ccall(p_fa_status_string[], Cstring, (Int32,), status)
fa_last_error() = ccall(p_fa_last_error[], Cstring, ())

# -------------------------------------------------------------------- enums

fa_enum_count(type) = ccall(p_fa_enum_count[], Int32, (Int32,), type)
fa_enum_name(type, value) = ccall(p_fa_enum_name[], Cstring, (Int32, Int32), type, value)
fa_enum_description(type, value) =
    ccall(p_fa_enum_description[], Cstring, (Int32, Int32), type, value)
fa_enum_lookup(type, name, value) =
    ccall(p_fa_enum_lookup[], Cint, (Int32, Cstring, Ptr{Int32}), type, name, value)
fa_rule_info(rule, kind, stored, learns, parallel) =
    ccall(p_fa_rule_info[], Cint, (Int32, Ptr{Int32}, Ptr{Int32}, Ptr{Int32}, Ptr{Int32}),
          rule, kind, stored, learns, parallel)
fa_rule_hidden(rule, mode) =
    ccall(p_fa_rule_hidden[], Cint, (Int32, Ptr{Int32}), rule, mode)

# ----------------------------------------------------------- BLAS, threads

fa_blas_info(buf, len, generic) =
    ccall(p_fa_blas_info[], Cint, (Ptr{UInt8}, Int64, Ptr{Int32}), buf, len, generic)
fa_set_threads(n) = ccall(p_fa_set_threads[], Cint, (Int32,), n)
fa_get_threads() = ccall(p_fa_get_threads[], Int32, ())

# ------------------------------------------------------------ network spec

fa_spec_create(out, channels, height, width) =
    ccall(p_fa_spec_create[], Cint, (Ptr{Ptr{Cvoid}}, Int32, Int32, Int32),
          out, channels, height, width)
fa_spec_free(spec) = ccall(p_fa_spec_free[], Cvoid, (Ptr{Cvoid},), spec)
fa_spec_add_dense(spec, units, activation) =
    ccall(p_fa_spec_add_dense[], Cint, (Ptr{Cvoid}, Int32, Int32), spec, units, activation)
fa_spec_add_conv2d(spec, channels, kernel_h, kernel_w, stride, pad, activation) =
    ccall(p_fa_spec_add_conv2d[], Cint,
          (Ptr{Cvoid}, Int32, Int32, Int32, Int32, Int32, Int32),
          spec, channels, kernel_h, kernel_w, stride, pad, activation)
fa_spec_add_pool(spec, kind, size, stride) =
    ccall(p_fa_spec_add_pool[], Cint, (Ptr{Cvoid}, Int32, Int32, Int32), spec, kind, size, stride)
fa_spec_parse(out, text, hidden_activation, output_activation) =
    ccall(p_fa_spec_parse[], Cint, (Ptr{Ptr{Cvoid}}, Cstring, Int32, Int32),
          out, text, hidden_activation, output_activation)
fa_spec_format(spec, buf, len, needed) =
    ccall(p_fa_spec_format[], Cint, (Ptr{Cvoid}, Ptr{UInt8}, Int64, Ptr{Int64}),
          spec, buf, len, needed)
fa_spec_num_layers(spec, n_layers) =
    ccall(p_fa_spec_num_layers[], Cint, (Ptr{Cvoid}, Ptr{Int32}), spec, n_layers)
fa_spec_layer(spec, layer, kind, units, kernel_h, kernel_w, stride, pad, activation) =
    ccall(p_fa_spec_layer[], Cint,
          (Ptr{Cvoid}, Int32, Ptr{Int32}, Ptr{Int32}, Ptr{Int32}, Ptr{Int32}, Ptr{Int32},
           Ptr{Int32}, Ptr{Int32}),
          spec, layer, kind, units, kernel_h, kernel_w, stride, pad, activation)
fa_spec_shape(spec, layer, channels, height, width) =
    ccall(p_fa_spec_shape[], Cint, (Ptr{Cvoid}, Int32, Ptr{Int32}, Ptr{Int32}, Ptr{Int32}),
          spec, layer, channels, height, width)

# --------------------------------------------------------------- the handle

fa_net_create(out, n_layers, sizes, activations, loss, seed) =
    ccall(p_fa_net_create[], Cint,
          (Ptr{Ptr{Cvoid}}, Int32, Ptr{Int32}, Ptr{Int32}, Int32, UInt64),
          out, n_layers, sizes, activations, loss, seed)
fa_net_create_from_spec(out, spec, loss, seed) =
    ccall(p_fa_net_create_from_spec[], Cint, (Ptr{Ptr{Cvoid}}, Ptr{Cvoid}, Int32, UInt64),
          out, spec, loss, seed)
fa_net_get_spec(net, out) =
    ccall(p_fa_net_get_spec[], Cint, (Ptr{Cvoid}, Ptr{Ptr{Cvoid}}), net, out)
fa_net_clone(out, net) = ccall(p_fa_net_clone[], Cint, (Ptr{Ptr{Cvoid}}, Ptr{Cvoid}), out, net)
fa_net_free(net) = ccall(p_fa_net_free[], Cvoid, (Ptr{Cvoid},), net)
fa_net_num_layers(net, n_layers) =
    ccall(p_fa_net_num_layers[], Cint, (Ptr{Cvoid}, Ptr{Int32}), net, n_layers)
fa_net_get_sizes(net, sizes, n) =
    ccall(p_fa_net_get_sizes[], Cint, (Ptr{Cvoid}, Ptr{Int32}, Int64), net, sizes, n)
fa_net_get_activation(net, layer, activation) =
    ccall(p_fa_net_get_activation[], Cint, (Ptr{Cvoid}, Int32, Ptr{Int32}),
          net, layer, activation)
fa_net_layer_kind(net, layer, kind) =
    ccall(p_fa_net_layer_kind[], Cint, (Ptr{Cvoid}, Int32, Ptr{Int32}), net, layer, kind)
fa_net_weight_shape(net, layer, rows, cols) =
    ccall(p_fa_net_weight_shape[], Cint, (Ptr{Cvoid}, Int32, Ptr{Int32}, Ptr{Int32}),
          net, layer, rows, cols)
fa_net_get_loss(net, loss) =
    ccall(p_fa_net_get_loss[], Cint, (Ptr{Cvoid}, Ptr{Int32}), net, loss)
fa_net_reserve(net, max_batch) =
    ccall(p_fa_net_reserve[], Cint, (Ptr{Cvoid}, Int32), net, max_batch)

# -------------------------------------------------------------------- rules

fa_net_set_rule(net, rule) = ccall(p_fa_net_set_rule[], Cint, (Ptr{Cvoid}, Int32), net, rule)
fa_net_get_rule(net, rule) =
    ccall(p_fa_net_get_rule[], Cint, (Ptr{Cvoid}, Ptr{Int32}), net, rule)
fa_net_set_feedback_init(net, distribution, scale) =
    ccall(p_fa_net_set_feedback_init[], Cint, (Ptr{Cvoid}, Int32, Cdouble),
          net, distribution, scale)
fa_net_set_dfa_variant(net, variant) =
    ccall(p_fa_net_set_dfa_variant[], Cint, (Ptr{Cvoid}, Int32), net, variant)
fa_net_get_dfa_variant(net, variant) =
    ccall(p_fa_net_get_dfa_variant[], Cint, (Ptr{Cvoid}, Ptr{Int32}), net, variant)
fa_net_feedback_shape(net, rule, layer, rows, cols) =
    ccall(p_fa_net_feedback_shape[], Cint,
          (Ptr{Cvoid}, Int32, Int32, Ptr{Int32}, Ptr{Int32}), net, rule, layer, rows, cols)
fa_net_get_feedback(net, rule, layer, buf, n) =
    ccall(p_fa_net_get_feedback[], Cint, (Ptr{Cvoid}, Int32, Int32, Ptr{Cfloat}, Int64),
          net, rule, layer, buf, n)
fa_net_set_feedback(net, rule, layer, buf, n) =
    ccall(p_fa_net_set_feedback[], Cint, (Ptr{Cvoid}, Int32, Int32, Ptr{Cfloat}, Int64),
          net, rule, layer, buf, n)

# ---------------------------------------------------- weights and dropout

fa_net_init_weights(net, scheme) =
    ccall(p_fa_net_init_weights[], Cint, (Ptr{Cvoid}, Int32), net, scheme)
fa_net_set_dropout(net, layer, p) =
    ccall(p_fa_net_set_dropout[], Cint, (Ptr{Cvoid}, Int32, Cdouble), net, layer, p)
fa_net_get_dropout(net, layer, p) =
    ccall(p_fa_net_get_dropout[], Cint, (Ptr{Cvoid}, Int32, Ptr{Cdouble}), net, layer, p)
fa_net_seed_dropout(net, seed) =
    ccall(p_fa_net_seed_dropout[], Cint, (Ptr{Cvoid}, UInt64), net, seed)

# ---------------------------------------------------------------- optimiser

fa_net_set_optimizer(net, optimizer) =
    ccall(p_fa_net_set_optimizer[], Cint, (Ptr{Cvoid}, Int32), net, optimizer)
fa_net_get_optimizer(net, optimizer) =
    ccall(p_fa_net_get_optimizer[], Cint, (Ptr{Cvoid}, Ptr{Int32}), net, optimizer)
fa_net_set_hparam(net, hparam, value) =
    ccall(p_fa_net_set_hparam[], Cint, (Ptr{Cvoid}, Int32, Cdouble), net, hparam, value)
fa_net_get_hparam(net, hparam, value) =
    ccall(p_fa_net_get_hparam[], Cint, (Ptr{Cvoid}, Int32, Ptr{Cdouble}), net, hparam, value)
fa_net_reset_optimizer(net) = ccall(p_fa_net_reset_optimizer[], Cint, (Ptr{Cvoid},), net)

# -------------------------------------------------------- forward and train

fa_net_forward(net, x, ldx, batch, y, ldy) =
    ccall(p_fa_net_forward[], Cint,
          (Ptr{Cvoid}, Ptr{Cfloat}, Int32, Int32, Ptr{Cfloat}, Int32),
          net, x, ldx, batch, y, ldy)
fa_net_loss(net, x, ldx, t, ldt, batch, loss) =
    ccall(p_fa_net_loss[], Cint,
          (Ptr{Cvoid}, Ptr{Cfloat}, Int32, Ptr{Cfloat}, Int32, Int32, Ptr{Cfloat}),
          net, x, ldx, t, ldt, batch, loss)
fa_net_train_step(net, x, ldx, t, ldt, batch, loss) =
    ccall(p_fa_net_train_step[], Cint,
          (Ptr{Cvoid}, Ptr{Cfloat}, Int32, Ptr{Cfloat}, Int32, Int32, Ptr{Cfloat}),
          net, x, ldx, t, ldt, batch, loss)
fa_net_compute_update(net, x, ldx, t, ldt, batch, grad, n, loss) =
    ccall(p_fa_net_compute_update[], Cint,
          (Ptr{Cvoid}, Ptr{Cfloat}, Int32, Ptr{Cfloat}, Int32, Int32, Ptr{Cfloat}, Int64,
           Ptr{Cfloat}),
          net, x, ldx, t, ldt, batch, grad, n, loss)
fa_net_apply_update(net, grad, n) =
    ccall(p_fa_net_apply_update[], Cint, (Ptr{Cvoid}, Ptr{Cfloat}, Int64), net, grad, n)

# --------------------------------------------------------------- parameters

fa_net_param_count(net, count) =
    ccall(p_fa_net_param_count[], Cint, (Ptr{Cvoid}, Ptr{Int64}), net, count)
fa_net_get_params(net, buf, n) =
    ccall(p_fa_net_get_params[], Cint, (Ptr{Cvoid}, Ptr{Cfloat}, Int64), net, buf, n)
fa_net_set_params(net, buf, n) =
    ccall(p_fa_net_set_params[], Cint, (Ptr{Cvoid}, Ptr{Cfloat}, Int64), net, buf, n)
fa_net_params_data(net, data) =
    ccall(p_fa_net_params_data[], Cint, (Ptr{Cvoid}, Ptr{Ptr{Cfloat}}), net, data)
fa_net_layer_offsets(net, layer, w_offset, b_offset) =
    ccall(p_fa_net_layer_offsets[], Cint, (Ptr{Cvoid}, Int32, Ptr{Int64}, Ptr{Int64}),
          net, layer, w_offset, b_offset)

# -------------------------------------------------------------- diagnostics

fa_net_alignment(net, x, ldx, t, ldt, batch, angles, n) =
    ccall(p_fa_net_alignment[], Cint,
          (Ptr{Cvoid}, Ptr{Cfloat}, Int32, Ptr{Cfloat}, Int32, Int32, Ptr{Cfloat}, Int64),
          net, x, ldx, t, ldt, batch, angles, n)
fa_net_feedback_angles(net, rule, angles, n) =
    ccall(p_fa_net_feedback_angles[], Cint, (Ptr{Cvoid}, Int32, Ptr{Cfloat}, Int64),
          net, rule, angles, n)

# ------------------------------------------------------ model files, images

fa_net_save_image(net, buf, len, needed) =
    ccall(p_fa_net_save_image[], Cint, (Ptr{Cvoid}, Ptr{UInt8}, Int64, Ptr{Int64}),
          net, buf, len, needed)
fa_net_load_image(out, buf, len) =
    ccall(p_fa_net_load_image[], Cint, (Ptr{Ptr{Cvoid}}, Ptr{UInt8}, Int64), out, buf, len)

fa_net_save(net, path) = ccall(p_fa_net_save[], Cint, (Ptr{Cvoid}, Cstring), net, path)
fa_net_load(out, path) = ccall(p_fa_net_load[], Cint, (Ptr{Ptr{Cvoid}}, Cstring), out, path)

# ------------------------------------------------------------- losses alone

fa_loss_eval(loss, y, ldy, t, ldt, n, batch, value, dy, lddy) =
    ccall(p_fa_loss_eval[], Cint,
          (Int32, Ptr{Cfloat}, Int32, Ptr{Cfloat}, Int32, Int32, Int32, Ptr{Cfloat},
           Ptr{Cfloat}, Int32),
          loss, y, ldy, t, ldt, n, batch, value, dy, lddy)

end # module LibFA
