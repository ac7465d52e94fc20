# MMN_CHECK_CFLAG(FLAG, [ACTION-IF-OK], [ACTION-IF-NOT])
# Compile an empty program with FLAG and -Werror, so that a compiler which
# only warns about an unknown flag counts as not supporting it.
AC_DEFUN([MMN_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([mmn_cv], [mmn_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [mmn_cv], [
    mmn_save_CFLAGS=$CFLAGS
    CFLAGS="$CFLAGS -Werror $1"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AS_VAR_SET([mmn_cv], [yes])], [AS_VAR_SET([mmn_cv], [no])])
    CFLAGS=$mmn_save_CFLAGS])
  AS_VAR_IF([mmn_cv], [yes], [$2], [$3])
  AS_VAR_POPDEF([mmn_cv])])
