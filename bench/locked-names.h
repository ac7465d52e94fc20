/* SPDX-License-Identifier: MIT */
/*
 * Included first (-include) by the benchmark's second build of
 * libmmn/notifier.c, the one with MMN_BENCH_LOCKED_READ_BEGIN, and by the
 * code that calls it. That build is linked beside the real libmmn, so every
 * symbol notifier.c defines gets another name here. A symbol added to
 * notifier.c and missing here makes the benchmark fail to link ("multiple
 * definition"): add it.
 */
#ifndef MMN_BENCH_LOCKED_NAMES_H
#define MMN_BENCH_LOCKED_NAMES_H

#define mmn_state_new		mmn_locked_state_new
#define mmn_state_free		mmn_locked_state_free
#define mmn_state_stats		mmn_locked_state_stats
#define mmn_invalidate_start	mmn_locked_invalidate_start
#define mmn_invalidate_end	mmn_locked_invalidate_end
#define mmn_range_sub_insert	mmn_locked_range_sub_insert
#define mmn_range_sub_remove	mmn_locked_range_sub_remove
#define mmn_range_read_begin	mmn_locked_range_read_begin
#define mmn_sub_register	mmn_locked_sub_register
#define mmn_sub_unregister	mmn_locked_sub_unregister
#define mmn_sub_get		mmn_locked_sub_get
#define mmn_sub_put		mmn_locked_sub_put
#define state_lock		mmn_locked_state_lock
#define state_unlock		mmn_locked_state_unlock
#define notifier_check		mmn_locked_notifier_check
#define notifier_index_min	mmn_locked_notifier_index_min

#endif /* MMN_BENCH_LOCKED_NAMES_H */
