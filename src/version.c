/* version.c -- runtime twins of the version macros. */
#include "internal.h"

#define FA_STR2(x) #x
#define FA_STR(x) FA_STR2(x)

FA_API int32_t fa_version_number(void)
{
    return FA_VERSION_NUMBER;
}

FA_API const char *fa_version_string(void)
{
    return FA_STR(FA_VERSION_MAJOR) "." FA_STR(FA_VERSION_MINOR) "." FA_STR(FA_VERSION_PATCH);
}
