/* error.c -- status names and the thread-local detail message. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

/* One buffer per thread: the only mutable state outside the handles. */
static _Thread_local char fa_err_msg[512];

int fa_fail(int status, const char *func, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(fa_err_msg, sizeof fa_err_msg, "%s: ", func);
    if (n < 0 || (size_t)n >= sizeof fa_err_msg)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(fa_err_msg + n, sizeof fa_err_msg - (size_t)n, fmt, ap);
    va_end(ap);
    return status;
}

FA_API const char *fa_last_error(void)
{
    return fa_err_msg;
}

FA_API const char *fa_status_string(int32_t status)
{
    switch (status) {
    case FA_OK: return "FA_OK: success";
    case FA_ERR_NULL: return "FA_ERR_NULL: a required pointer was NULL";
    case FA_ERR_ARG: return "FA_ERR_ARG: argument out of range or unknown enum value";
    case FA_ERR_SIZE: return "FA_ERR_SIZE: wrong size, leading dimension or length";
    case FA_ERR_NOMEM: return "FA_ERR_NOMEM: out of memory";
    case FA_ERR_NONFINITE: return "FA_ERR_NONFINITE: NaN or infinity";
    case FA_ERR_IO: return "FA_ERR_IO: file operation failed";
    case FA_ERR_FORMAT: return "FA_ERR_FORMAT: not a valid model file";
    case FA_ERR_STATE: return "FA_ERR_STATE: call does not fit the handle's state";
    default: return "unknown status";
    }
}
