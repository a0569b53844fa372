/*
 * A stand-in for libfeedbackalign that reports version 0.0.99 and has no
 * other function.  The Julia tests point FEEDBACKALIGN_LIB at it to check
 * that the package refuses a library of another version with a clear
 * message instead of calling into it.
 */
#include <stdint.h>

int32_t fa_version_number(void);

int32_t fa_version_number(void)
{
    return 99;
}
