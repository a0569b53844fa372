# Names of the library's enum values, asked of the library itself
# (fa_enum_count / fa_enum_name / fa_enum_description / fa_rule_info /
# fa_rule_hidden) once,
# in __init__.  Nothing here lists a value: a rule, activation, optimiser,
# hyperparameter or layer kind added to the C library is usable from Julia by
# its name with no Julia edit.
#
# What Julia does know are the enum *types* (fa_enum_type): they are the
# categories of arguments (`rule!` takes a rule, `hparam!` a hyperparameter),
# fixed by the header.

"""The categories of names (fa_enum_type), in the header's order: value v is `CATEGORIES[v+1]`."""
const CATEGORIES = (:activation, :loss, :rule, :dfa_variant, :distribution, :init,
                    :optimizer, :hparam, :layer, :feedback_kind, :hidden_mode)

const E_ACTIVATION = Int32(0)
const E_LOSS = Int32(1)
const E_RULE = Int32(2)
const E_DFA_VARIANT = Int32(3)
const E_DISTRIBUTION = Int32(4)
const E_INIT = Int32(5)
const E_OPTIMIZER = Int32(6)
const E_HPARAM = Int32(7)
const E_LAYER = Int32(8)
const E_FEEDBACK_KIND = Int32(9)
const E_HIDDEN_MODE = Int32(10)

"""Readable names of the categories, for error messages."""
const CATEGORY_TEXT = ("activation", "loss", "rule", "DFA variant", "feedback distribution",
                       "weight initialisation", "optimizer", "hyperparameter", "layer kind",
                       "feedback kind", "hidden-error mode")

"""One enum of the library: its value v has name `names[v+1]`."""
struct EnumTable
    type::Int32
    names::Vector{Symbol}
    descriptions::Vector{String}
    index::Dict{Symbol,Int32}
end

"""What `fa_rule_info` and `fa_rule_hidden` say about a rule."""
struct RuleInfo
    kind::Symbol        # :none, :layer or :direct (names from the library)
    stored::Bool
    learns::Bool
    parallel::Bool
    hidden::Symbol      # :chain, :direct or :none (names from the library)
end

# Filled by load_names!() in __init__ (empty while precompiling).
const ENUMS = EnumTable[]
const RULE_INFO = RuleInfo[]

function load_enum(type::Int32)
    n = LibFA.fa_enum_count(type)
    n >= 0 || error("FeedbackAlign: the library does not know enum type $type ($(CATEGORIES[type+1]))")
    names = Symbol[]
    descs = String[]
    index = Dict{Symbol,Int32}()
    for v in Int32(0):Int32(n - 1)
        p = LibFA.fa_enum_name(type, v)
        p == C_NULL && error("FeedbackAlign: the library has no name for value $v of $(CATEGORIES[type+1])")
        name = Symbol(unsafe_string(p))
        d = LibFA.fa_enum_description(type, v)
        push!(names, name)
        push!(descs, d == C_NULL ? "" : unsafe_string(d))
        index[name] = v
    end
    return EnumTable(type, names, descs, index)
end

function load_names!()
    tables = [load_enum(Int32(t)) for t in 0:length(CATEGORIES)-1]
    kinds = tables[E_FEEDBACK_KIND+1].names
    modes = tables[E_HIDDEN_MODE+1].names
    infos = RuleInfo[]
    for v in 0:length(tables[E_RULE+1].names)-1
        kind = Ref{Int32}(0); stored = Ref{Int32}(0); learns = Ref{Int32}(0); par = Ref{Int32}(0)
        check(LibFA.fa_rule_info(v, kind, stored, learns, par))
        mode = Ref{Int32}(0)
        check(LibFA.fa_rule_hidden(v, mode))
        push!(infos, RuleInfo(kinds[kind[]+1], stored[] != 0, learns[] != 0, par[] != 0,
                              modes[mode[]+1]))
    end
    empty!(ENUMS); append!(ENUMS, tables)
    empty!(RULE_INFO); append!(RULE_INFO, infos)
    return nothing
end

@inline enumtable(type::Int32) = @inbounds ENUMS[type+1]

function category_type(category::Symbol)
    i = findfirst(==(category), CATEGORIES)
    i === nothing &&
        throw(ArgumentError("unknown category $(repr(category)); valid: " *
                            join((":" * string(c) for c in CATEGORIES), ", ")))
    return Int32(i - 1)
end

"""
    enumvalue(type, x) -> Int32

The library number of name `x` (a Symbol such as `:leaky_relu`, or a string;
the library's own lookup accepts any case and '-' for '_').  Unknown names
raise an ArgumentError that lists the valid ones.
"""
function enumvalue(type::Int32, x::Symbol)
    v = get(enumtable(type).index, x, Int32(-1))
    v >= 0 && return v
    return enumvalue(type, string(x))
end

function enumvalue(type::Int32, x::AbstractString)
    out = Ref{Int32}(0)
    if !occursin('\0', x) && LibFA.fa_enum_lookup(type, String(x), out) == 0
        return out[]
    end
    throw_unknown(type, x)
end

enumvalue(type::Int32, x) = throw_unknown(type, x)

@noinline function throw_unknown(type::Int32, x)
    valid = join((":" * string(k) for k in enumtable(type).names), ", ")
    shown = x isa AbstractString ? repr(Symbol(x)) : repr(x)
    throw(ArgumentError("unknown $(CATEGORY_TEXT[type+1]) $shown; valid: $valid"))
end

"""The name (a Symbol) of library number `v` of enum `type`."""
function enumsymbol(type::Int32, v::Integer)
    names = enumtable(type).names
    return 0 <= v < length(names) ? names[v+1] : Symbol("unknown_", v)
end

"""
    FeedbackAlign.choices(category) -> Vector{Symbol}

The names the loaded library accepts for `category`, in the library's order:
`:rule`, `:activation`, `:loss`, `:optimizer`, `:hparam`, `:init`,
`:distribution`, `:dfa_variant`, `:layer` or `:feedback_kind`.

    FeedbackAlign.choices(:rule)   # [:bp, :fa, :dfa, :usf, :brsf, ...]
"""
choices(category::Symbol) = copy(enumtable(category_type(category)).names)

"""
    FeedbackAlign.description(category, name) -> String

The library's one-line description of a name, e.g.
`FeedbackAlign.description(:rule, :dfa)`.
"""
function description(category::Symbol, name)
    t = category_type(category)
    return enumtable(t).descriptions[enumvalue(t, name)+1]
end

"""
    FeedbackAlign.rule_info(rule) -> NamedTuple

What the library says about a learning rule (`fa_rule_info`):
`kind` (`:none`, `:layer`: one B_l per layer with parameters from layer 2 on,
or `:direct`: one G_l per hidden layer with parameters), `stored` (it keeps
matrices that `feedback`/`feedback!` read and write), `learns` (the library
changes them during training), `parallel` (hidden errors do not wait on each
other), `hidden` (how the hidden errors are made: `:chain` layer by layer,
`:direct` all at once from the output, `:none` the hidden layers do not
learn), and `description`.
"""
function rule_info(r)
    v = enumvalue(E_RULE, r)
    i = RULE_INFO[v+1]
    return (name = enumsymbol(E_RULE, v), kind = i.kind, stored = i.stored, learns = i.learns,
            parallel = i.parallel, hidden = i.hidden,
            description = enumtable(E_RULE).descriptions[v+1])
end
