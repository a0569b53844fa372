# Finding and opening libfeedbackalign, and the version check.

"""Directory of this package (julia/FeedbackAlign)."""
const PKGDIR = normpath(joinpath(@__DIR__, ".."))

"""Path of the library in use and its dlopen handle (set by `__init__`)."""
const LIBPATH = Ref{String}("")
const LIBHANDLE = Ref{Ptr{Cvoid}}(C_NULL)

"""
    library_candidates() -> Vector{String}

Where the library is looked for, in order:
1. the environment variable `FEEDBACKALIGN_LIB` (a path to the .so; if set it
   is the only candidate, so a typo is reported rather than silently ignored);
2. meson build directories `../../build*/libfeedbackalign.so` relative to this
   package, i.e. `build*/` at the top of the source tree: `build/` first, then
   the others newest first, leaving out sanitizer builds (a library linked
   against libasan/libubsan/libtsan cannot be loaded into a process that did
   not start with that runtime: the runtime aborts the process);
3. the installed `libfeedbackalign.so.0`, through the system's loader.
"""
function library_candidates()
    env = get(ENV, "FEEDBACKALIGN_LIB", "")
    isempty(env) || return [env]
    root = normpath(joinpath(PKGDIR, "..", ".."))
    found = String[]
    if isdir(root)
        for d in readdir(root)
            startswith(d, "build") || continue
            p = joinpath(root, d, "libfeedbackalign.so")
            isfile(p) && !sanitizer_build(p) && push!(found, p)
        end
    end
    sort!(found; by = p -> (basename(dirname(p)) != "build", -mtime(p)))
    push!(found, "libfeedbackalign.so.0")
    return found
end

"""True if the shared library at `path` links a sanitizer runtime."""
function sanitizer_build(path)
    text = try read(path, String) catch; return true end
    return any(name -> occursin(name, text), ("libasan.so", "libubsan.so", "libtsan.so", "liblsan.so"))
end

function load_library!()
    candidates = library_candidates()
    env = get(ENV, "FEEDBACKALIGN_LIB", "")
    if !isempty(env) && !isfile(env)
        error("FeedbackAlign: FEEDBACKALIGN_LIB is set to \"$env\", which is not a file. ",
              "Point it at a built libfeedbackalign.so or unset it.")
    end
    handle = C_NULL
    path = ""
    errors = String[]
    for c in candidates
        h = Libdl.dlopen(c, Libdl.RTLD_LAZY | Libdl.RTLD_LOCAL; throw_error = false)
        if h === nothing || h == C_NULL
            push!(errors, c)
            continue
        end
        handle = h
        path = c
        break
    end
    if handle == C_NULL
        error("FeedbackAlign: libfeedbackalign not found (tried: ", join(errors, ", "), "). ",
              "Build it with `meson setup build && meson compile -C build` at the top of ",
              "the source tree (or run `Pkg.build(\"FeedbackAlign\")`), install it, or set ",
              "FEEDBACKALIGN_LIB to the path of libfeedbackalign.so.")
    end
    # Check the version before anything else: a library of another version may
    # lack symbols or number its enums differently.
    vsym = Libdl.dlsym(handle, :fa_version_number; throw_error = false)
    if vsym === nothing || vsym == C_NULL
        Libdl.dlclose(handle)
        error("FeedbackAlign: $path does not export fa_version_number; it is not libfeedbackalign.")
    end
    v = ccall(vsym, Int32, ())
    if v != REQUIRED_VERSION
        Libdl.dlclose(handle)
        error("FeedbackAlign: $path is libfeedbackalign version ", version_text(v),
              " but this package needs version ", version_text(REQUIRED_VERSION),
              ". Rebuild the library from the same source tree as the package, or set ",
              "FEEDBACKALIGN_LIB to a matching library.")
    end
    missing_syms = LibFA.resolve!(handle)
    if !isempty(missing_syms)
        error("FeedbackAlign: $path lacks the functions ", join(missing_syms, ", "),
              "; it does not match include/feedbackalign.h of this version.")
    end
    LIBHANDLE[] = handle
    LIBPATH[] = Libdl.dlpath(handle)
    return LIBPATH[]
end

version_text(v::Integer) = string(div(v, 10000), ".", div(rem(v, 10000), 100), ".", rem(v, 100))

"""
    library_path() -> String

Path of the libfeedbackalign that was loaded.
"""
library_path() = LIBPATH[]

"""
    library_version() -> VersionNumber

Version of the loaded library (from `fa_version_string`).
"""
library_version() = VersionNumber(unsafe_string(LibFA.fa_version_string()))

# ------------------------------------------------------------------- errors

"""
    FeedbackAlignError(code, message)

An error reported by libfeedbackalign: `code` is the library's negative
`fa_status` (e.g. -3 for `FA_ERR_SIZE`), `message` the library's detail
message (`fa_last_error()`), which names the function and the argument.
"""
struct FeedbackAlignError <: Exception
    code::Int
    message::String
end

function status_name(code::Integer)
    p = LibFA.p_fa_status_string[] == C_NULL ? C_NULL : LibFA.fa_status_string(code)
    return p == C_NULL ? "status $code" : unsafe_string(p)
end

function Base.showerror(io::IO, e::FeedbackAlignError)
    print(io, "FeedbackAlignError: ", status_name(e.code), " (", e.code, "): ", e.message)
end

"""Throw a FeedbackAlignError carrying the library's message if `rc` is not FA_OK."""
@inline function check(rc::Integer)
    rc == 0 && return nothing
    throw_fa_error(rc)
end

@noinline function throw_fa_error(rc::Integer)
    msg = unsafe_string(LibFA.fa_last_error())
    throw(FeedbackAlignError(Int(rc), msg))
end

# ------------------------------------------------------------ BLAS, threads

"""
    FeedbackAlign.blas_info() -> String

One line describing the BLAS the library computes with (`fa_blas_info`),
e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... (core Haswell), 1 thread, pthreads".
This is the library's BLAS (the system OpenBLAS), not Julia's own.
"""
blas_info() = blas_query()[1]

"""
    FeedbackAlign.blas_generic() -> Bool

True when OpenBLAS runs its generic kernels (Prescott, Core2, ...) on a CPU
with AVX2 or AVX-512, where `OPENBLAS_CORETYPE` (e.g. Haswell, SkylakeX, Zen)
set before Julia starts would be several times faster.
"""
blas_generic() = blas_query()[2]

function blas_query()
    buf = Vector{UInt8}(undef, 512)
    generic = Ref{Int32}(0)
    GC.@preserve buf check(LibFA.fa_blas_info(buf, length(buf), generic))
    return String(buf[1:something(findfirst(iszero, buf), length(buf) + 1)-1]), generic[] != 0
end

"""
    FeedbackAlign.set_threads(n)

Number of threads for everything the library computes, in this process
(`fa_set_threads`): the thread count of the library's OpenBLAS and the split
of its element-wise work.  Julia's own BLAS (`LinearAlgebra.BLAS.set_num_threads`)
is separate.
"""
function set_threads(n::Integer)
    1 <= n <= typemax(Int32) || throw(ArgumentError("n must be >= 1, got $n"))
    check(LibFA.fa_set_threads(Int32(n)))
    return nothing
end

"""`FeedbackAlign.get_threads()`: the library's thread count (`fa_get_threads`)."""
get_threads() = Int(LibFA.fa_get_threads())

"""
    FeedbackAlign.versioninfo(io=stdout)

The package and library versions, the library's path, its BLAS and thread
count and the rules it knows; with a one-line warning when OpenBLAS runs its
generic kernels on an AVX2/AVX-512 CPU (see `blas_generic`).
"""
function versioninfo(io::IO = stdout)
    info, generic = blas_query()
    println(io, "FeedbackAlign.jl ", PKGVERSION, " on Julia ", VERSION)
    println(io, "libfeedbackalign ", library_version(), " at ", library_path())
    println(io, "BLAS: ", info)
    println(io, "threads: ", get_threads(), " (FeedbackAlign.set_threads)")
    println(io, "rules: ", join(choices(:rule), " "))
    if generic
        println(io, "WARNING: OpenBLAS runs its generic kernels on a CPU with AVX2/AVX-512; set ",
                "OPENBLAS_CORETYPE (e.g. Haswell, SkylakeX or Zen) before starting Julia for ",
                "several times the speed")
    end
    return nothing
end
