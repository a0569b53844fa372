# Run by `Pkg.build("FeedbackAlign")`: builds libfeedbackalign with meson in
# the source tree this package sits in (julia/FeedbackAlign inside it), so
# that the package's library lookup finds build/libfeedbackalign.so.
# FEEDBACKALIGN_BUILDDIR chooses another build directory.

const ROOT = normpath(joinpath(@__DIR__, "..", "..", ".."))
const BUILDDIR = get(ENV, "FEEDBACKALIGN_BUILDDIR", joinpath(ROOT, "build"))

if !isfile(joinpath(ROOT, "meson.build")) || !isfile(joinpath(ROOT, "include", "feedbackalign.h"))
    error("FeedbackAlign build: no libfeedbackalign source tree at $ROOT. ",
          "Install the library (meson install) or set FEEDBACKALIGN_LIB to a built libfeedbackalign.so.")
end
meson = Sys.which("meson")
meson === nothing &&
    error("FeedbackAlign build: meson not found on PATH (Debian: apt-get install meson ninja-build " *
          "pkg-config libopenblas-dev; or run tools/install-deps.sh)")

if !isfile(joinpath(BUILDDIR, "build.ninja"))
    run(`$meson setup $BUILDDIR $ROOT`)
end
run(`$meson compile -C $BUILDDIR`)
lib = joinpath(BUILDDIR, "libfeedbackalign.so")
isfile(lib) || error("FeedbackAlign build: meson finished but $lib is missing")
println("FeedbackAlign build: built $lib")
