# Symbols for the library's enums.  The numbers are the fixed ABI values of
# include/feedbackalign.h (they are never renumbered, so they can be written
# here directly).  Each table is ordered by value so that error messages list
# the valid names in the header's order.

const ACTIVATIONS = (identity = 0, tanh = 1, sigmoid = 2, relu = 3, leaky_relu = 4)
const LOSSES = (mse = 0, softmax_ce = 1, sigmoid_bce = 2)
const RULES = (bp = 0, fa = 1, dfa = 2)
const DFA_VARIANTS = (after_activation = 0, before_activation = 1)
const DISTRIBUTIONS = (uniform = 0, gaussian = 1, sign = 2)
const INITS = (default = 0, xavier_uniform = 1, xavier_normal = 2, he_uniform = 3,
               he_normal = 4, zero = 5)
const OPTIMIZERS = (sgd = 0, momentum = 1, nesterov = 2, adam = 3, rmsprop = 4)
const HPARAMS = (lr = 0, momentum = 1, beta1 = 2, beta2 = 3, epsilon = 4,
                 weight_decay = 5, rms_decay = 6, leaky_slope = 7)

"""
    enumvalue(table, x, what) -> Int32

The library number of symbol `x` in `table`; unknown symbols raise an
ArgumentError that lists the valid ones.
"""
function enumvalue(table::NamedTuple, x, what::AbstractString)
    if x isa Symbol && haskey(table, x)
        return Int32(table[x])
    end
    valid = join((":" * string(k) for k in keys(table)), ", ")
    throw(ArgumentError("unknown $what $(repr(x)); valid: $valid"))
end

"""The symbol for library number `v` in `table` (for getters)."""
function enumsymbol(table::NamedTuple, v::Integer)
    for (k, n) in pairs(table)
        n == v && return k
    end
    return Symbol("unknown_", v)
end
