/* SPDX-License-Identifier: MIT */
/*
 * A model of libmmn's invalidation protocol (libmmn/notifier.c), for spin.
 * Each inline or proctype below names the C function it stands for, and
 * each branch of those functions is a branch here: check-model.sh fails
 * when spin reports a state of this model unreached, so a branch the
 * configuration below cannot take is a failure, not a silent gap.
 *
 * Modelled: the state's seq and its parity, the count of running
 * invalidations, tree membership and the deferred inserts and removes,
 * each range subscription's stamp (invalidate_seq), the lock-free
 * read_begin (two separate loads) and its wait, read_retry under the
 * subscriber's cache lock, remove's three cases (direct, deferred and
 * waiting, cancel of a pending insert), insert's three cases (quiet,
 * invalidations running with seq even, with seq odd), non-blockable
 * refusals by a range subscriber, by a whole-space subscriber (with the
 * undo of those that accepted) and by the whole-space list's tryrdlock
 * when a writer waits, the range cancel op (present or not per
 * subscription), the writer-preferring rwlock of the list, and register
 * during invalidations: the quiet decision of range_begin() and of the
 * end side under the state's lock, the end's compare-and-swap on the
 * state's word when there is no whole-space side and it is not the last
 * end of an invalidation that hit, the count of open invalidations, and
 * the ends a new subscription skips (skip_ends).
 *
 * Each atomic block is one critical section under the lock it names; the
 * lock-free loads are steps of their own, so spin tries every interleaving.
 * The model is sequentially consistent: BUG_READ_LOAD_ORDER shows the
 * order of read_begin's two loads matters; that the acquire loads keep
 * that order on real machines is the C11 argument of notifier.c's essay
 * (tests/litmus-readside.c exercises it on the real code).
 *
 * Not modelled: misuse (a blockable refusal, double insert: debug aborts),
 * mmn_state_free(), mmn_sub_get()/put() reference counts (get links as
 * register does), and the condition variable (a wait is a guard on seq:
 * the real wait re-checks seq under the lock that changes it).
 *
 * Configuration: an address space of two pages, 0 and 1 (see also the
 * five CONFIG_ variants above init).
 *  - two invalidators, each over page 0, page 1 or both (spin tries each),
 *    blockable or not (the first one of CONFIG_RANGE always blockable);
 *  - range subscription A over page 1, inserted at start, and a reader
 *    that installs one translation of A;
 *  - range subscription C over both pages: a thread inserts it, perhaps
 *    reads it, and removes it;
 *  - whole-space subscriptions W0 and W1, registered at start, which may
 *    refuse non-blockable invalidations, and a thread that unregisters W1
 *    and then W0; or a thread that registers W0, then W1; or W0 at
 *    start, unregistered by one thread while another registers W1.
 *
 * Properties (assertions, plus spin's check that every process ends):
 *  - nothing touches a range subscription after its remove returned, and
 *    no whole-space callback runs after its unregister returned;
 *  - the tree changes only while no invalidation walks it;
 *  - when memory changes, no cache holds a translation of it;
 *  - a reader installs only a translation of current memory;
 *  - a whole-space subscriber registered at start hears
 *    ->invalidate_end() exactly for the starts it accepted: after the undo
 *    of a refusal, and after the end, no listed subscriber still has that
 *    invalidation open;
 *  - a whole-space subscriber never hears more ends than starts, a late
 *    one included;
 *  - with the range cancel op, a range subscriber hears
 *    ->invalidate_cancel() exactly when it accepted an invalidation that
 *    is then refused (by a later range subscriber or the whole-space side);
 *  - every process ends (no lost wakeup, no deadlock on the rwlock), and
 *    at rest seq is even, nothing is deferred, the open count is 0, and each listed whole-space subscriber has heard as many ends as
 *    starts and owes no skipped end.
 *
 * Deliberate bugs, each of which the check must catch (spin -DBUG_...):
 *  BUG_REMOVE_EARLY	   remove returns without waiting for the last end;
 *  BUG_SEQ_BEFORE_APPLY   the last end advances seq, drops the lock, and
 *			   only then applies the deferred list;
 *  BUG_END_NOT_LAST	   any end, not only the last, makes seq even;
 *  BUG_READ_NO_WAIT	   read_begin does not wait when the subscription
 *			   was stamped by a running invalidation;
 *  BUG_READ_LOAD_ORDER	   read_begin loads seq before the stamp (what a
 *			   relaxed first load would allow);
 *  BUG_INSERT_EVEN_NO_STAMP insert while invalidations run with seq even
 *			   neither makes seq odd nor stamps;
 *  BUG_REMOVE_PENDING_DEFERS remove of a pending insert defers a remove
 *			   instead of cancelling the insert;
 *  BUG_OVERLAP_STAB_START an invalidation finds only subscriptions that
 *			   contain its first page (partial overlaps missed);
 *  BUG_UNDO_SKIPS	   the undo of a whole-space refusal skips the
 *			   first subscriber;
 *  BUG_REFUSE_NO_END	   a range subscriber's refusal returns without
 *			   ending the range side;
 *  BUG_UNREGISTER_NO_WAIT unregister takes the list without waiting for
 *			   the invalidations that read it;
 *  BUG_RANGE_CANCEL_SKIPS the range cancel skips the first subscription;
 *  BUG_REGISTER_NO_SKIP   register does not count the open invalidations
 *			   (skip_ends stays 0);
 *  BUG_SKIP_UNLOCKED	   register reads the open count before taking the
 *			   state's lock, not under it;
 *  BUG_HEARD_AFTER_UNLOCK a whole-space start counts as open after
 *			   dropping the read lock;
 *  BUG_END_QUIET_UNLOCKED mmn_invalidate_end() trusts a separate read of
 *			   nr_subs == 0, not the word its compare-and-swap
 *			   changes;
 *  BUG_FAST_END_LAST	   the end's compare-and-swap also ends the last
 *			   invalidation that hit, which must apply the
 *			   deferred list and advance seq under the lock;
 *  BUG_QUIET_REFUSE_NO_END a range refusal of a quiet invalidation ends
 *			   only the range side, not the open count and
 *			   whole-space ends of end_locked().
 */

#define NPAGES	2
#define NRS	2		/* range subscriptions */
#define C	0		/* pages 0 and 1; first in the tree's order */
#define A	1		/* page 1 */
#define NWS	2		/* whole-space subscriptions W0, W1 */

#define LO(s)	(s == A -> 1 : 0)
#define HI(s)	1
#define OVERLAPS(s, lo, hi)	(LO(s) <= hi && lo <= HI(s))

/* struct mmn_state, range side; 'lock' is every atomic block. */
byte seq = 2;
byte nactive = 0;
byte walkers = 0;		/* invalidations walking the tree, no lock */
bool in_tree[NRS];		/* itree_node_linked() */
bool pend_ins[NRS];		/* on deferred_ins */
bool pend_rm[NRS];		/* on deferred_rm */
bool freed[NRS];		/* its remove returned */
byte stamp[NRS];		/* invalidate_seq */

/*
 * Which range subscriptions have the optional ->invalidate_cancel() op
 * (see RANGE CANCEL below); set by init, per configuration.
 */
bool has_cancel[NRS];

/* The subscribers' side: memory and each range subscriber's cache. */
byte mem[NPAGES];		/* version of each page */
bool cache_valid[NRS];

/* Whole-space side: the list, its count, the rwlock. */
bool listed[NWS];
byte nr_subs = 0;		/* read without the lock */
byte readers = 0;		/* rwlock held for reading */
byte wwait = 0;			/* writers waiting (they are preferred) */
bool wheld = false;		/* rwlock held for writing (register) */
bool unregistered[NWS];		/* its unregister returned */
byte wopen[NWS];		/* starts heard, minus ends heard */
/*
 * Registration during invalidations: nopen counts the invalidations past
 * their whole-space start (or its quiet skip) and not yet past their end;
 * it lives in the state's word, changed under the state's lock or by the
 * end's compare-and-swap, which fails while the lock is held. skipends[w] is struct mmn_sub's skip_ends; late[w]: W was
 * registered by the registerer, so it may skip the end of an invalidation
 * whose start it heard and hear one it did not (skipped ends are
 * interchangeable): only its counts are checked, not which end it hears.
 */
byte nopen = 0;			/* the word: lock, or the end's CAS */
byte skipends[NWS];
bool late[NWS];

inline tree_insert(s)
{
	assert(walkers == 0 && !in_tree[s]);
	in_tree[s] = true
}

inline tree_remove(s)
{
	assert(walkers == 0 && in_tree[s]);
	in_tree[s] = false
}

/* apply_deferred_locked(): removes, then inserts. */
inline apply_deferred()
{
	for (i : 0 .. NRS - 1) {
		if
		:: pend_rm[i] ->
			assert(!freed[i]);
			tree_remove(i);
			pend_rm[i] = false
		:: else -> skip
		fi
	}
	for (i : 0 .. NRS - 1) {
		if
		:: pend_ins[i] ->
			assert(!freed[i]);
			tree_insert(i);
			pend_ins[i] = false
		:: else -> skip
		fi
	}
}

/*
 * range_end_locked(): one invalidation is over; the last applies the list,
 * then advances seq. Inside an atomic block: the state's lock is held.
 */
inline range_end_locked()
{
	assert(nactive > 0);
	nactive--;
	if
#ifndef BUG_END_NOT_LAST
	:: nactive == 0 && seq % 2 == 1 ->
#else
	:: seq % 2 == 1 ->
#endif
#ifndef BUG_SEQ_BEFORE_APPLY
		apply_deferred(); seq++
#else
		seq++; last = true	/* and drops the lock */
#endif
	:: else -> skip
	fi
}

/* BUG_SEQ_BEFORE_APPLY only: the list applied under the lock taken again. */
inline range_end_tail()
{
#ifdef BUG_SEQ_BEFORE_APPLY
	if
	:: last -> atomic { apply_deferred(); last = false }
	:: else -> skip
	fi;
#endif
	skip
}

/* A whole-space subscriber's ->invalidate_end(). */
inline ws_end(w)
{
	atomic {
		/* Never more ends than starts; W0, W1 of init: only their own. */
		assert(!unregistered[w] && (late[w] || wstarted[w]) && wopen[w] > 0);
		wstarted[w] = false;
		wopen[w]--
	}
}

/*
 * subs_end_until(): the subscribers listed before STOP hear the end; but
 * for an undo (UNDO: they all heard this start) one that owes a skipped
 * end takes it instead (sub_skips_end(), a compare-and-swap).
 */
inline subs_end_until(stop, undo)
{
#ifndef BUG_UNDO_SKIPS
	for (j : 0 .. NWS - 1) {
#else
	for (j : 1 .. NWS - 1) {
#endif
		if
		:: j < stop && listed[j] ->
			if
			:: atomic { !undo && skipends[j] > 0 -> skipends[j]-- }
			:: else -> ws_end(j)
			fi
		:: else -> skip
		fi
	}
}

/*
 * Under the read lock: no listed subscriber of init has this invalidation
 * open (a late one may have skipped this end for another's).
 */
inline assert_none_open()
{
	for (j : 0 .. NWS - 1) {
		assert(!(listed[j] && !late[j] && wstarted[j]))
	}
}

/*
 * subs_invalidate_end(): under the read lock, the ends, then under the
 * state's lock the count and the range side's end.
 */
inline subs_invalidate_end()
{
	atomic { wwait == 0 && !wheld -> readers++ };
	subs_end_until(NWS, false);
	assert_none_open();
	atomic { assert(nopen > 0); nopen--; range_end_locked() };
	readers--;
	range_end_tail()
}

/*
 * RANGE CANCEL: range_cancel_until(STOP). A refused invalidation tells the
 * range subscriptions hit before STOP (NRS: all hit) that it is off. The
 * walk runs without the lock; seq is odd (something was hit), so the tree
 * stands still, which tree_insert()/tree_remove() check through walkers.
 */
inline range_cancel_until(stop)
{
		walkers++;
#ifndef BUG_RANGE_CANCEL_SKIPS
		for (j : 0 .. NRS - 1) {
#else
		for (j : 1 .. NRS - 1) {
#endif
			if
			:: j < stop && hit[j] ->
				if
				:: has_cancel[j] ->
					atomic {	/* ->invalidate_cancel() */
						assert(!freed[j] && raccepted[j]);
						raccepted[j] = false
					}
				:: else -> skip	/* no op: continue */
				fi
			:: else -> skip
			fi
		}
		walkers--;
		for (j : 0 .. NRS - 1) {
			assert(!(raccepted[j] && has_cancel[j]))
		}
}

/* mmn_invalidate_start() and, unless refused, the change and the end. */
proctype invalidator(bool may_refuse)
{
	bool blockable, found, quiet, refused = false, wrefused = false, rlocked;
	bool checkquiet = false, ended = false;
	bool hit[NRS], wstarted[NWS];
	bool raccepted[NRS];		/* range subscribers that accepted */
	byte lo, hi, cur, i, j, p;
#ifdef BUG_SEQ_BEFORE_APPLY
	bool last = false;
#endif

	atomic {
		if
		:: lo = 0; hi = 0
		:: lo = 1; hi = 1
		:: lo = 0; hi = 1
		fi;
		if
		:: blockable = true
		:: may_refuse -> blockable = false
		fi
	}

	/*
	 * range_begin(): count, decide under the lock whether there is a
	 * whole-space side (else count as open at once), find the first node,
	 * make seq odd.
	 */
	d_step {
		nactive++;
		quiet = nr_subs == 0;
		if
		:: quiet -> nopen++
		:: else -> skip
		fi;
		found = false;
		for (i : 0 .. NRS - 1) {
#ifndef BUG_OVERLAP_STAB_START
			hit[i] = in_tree[i] && OVERLAPS(i, lo, hi);
#else
			hit[i] = in_tree[i] && LO(i) <= lo && lo <= HI(i);
#endif
			found = found || hit[i]
		}
		if
		:: found && seq % 2 == 0 -> seq++
		:: else -> skip
		fi;
		cur = seq;
		if
		:: found -> walkers++
		:: else -> skip
		fi;
		i = 0
	}

	/* range_invalidate(): the walk and the callbacks, no state lock. */
	for (i : 0 .. NRS - 1) {
		if
		:: hit[i] && !refused ->
			assert(!freed[i]);
			if
			:: atomic {	/* ->invalidate() under the cache lock */
				stamp[i] = cur;
				cache_valid[i] = false;
				raccepted[i] = true
			   }
			:: !blockable ->	/* returns false */
				refused = true;
				range_cancel_until(i)
			fi
		:: else -> skip
		fi
	}
	if
	:: found -> walkers--
	:: else -> skip
	fi;
	if
	:: refused ->		/* -EAGAIN, after ending what range_begin began */
#ifdef BUG_REFUSE_NO_END
		goto out;
#endif
#ifndef BUG_QUIET_REFUSE_NO_END
		checkquiet = quiet;	/* counted as open: end_locked() */
#endif
		goto range_side_end
	:: else -> skip
	fi;

	/* subs_invalidate_start(), unless range_begin() found it quiet */
	if
	:: quiet -> skip
	:: else ->
		if
		:: blockable -> atomic { wwait == 0 && !wheld -> readers++; rlocked = true }
		:: else ->
			atomic {	/* tryrdlock: a writer refuses it */
				if
				:: wwait == 0 && !wheld -> readers++; rlocked = true
				:: else -> wrefused = true
				fi
			}
		fi;
		for (i : 0 .. NWS - 1) {
			if
			:: listed[i] && !wrefused ->
				assert(!unregistered[i]);
				if
				:: atomic { wstarted[i] = true; wopen[i]++ }
				:: !blockable ->	/* -EAGAIN: undo */
					wrefused = true;
					subs_end_until(i, true);
					assert_none_open()
				fi
			:: else -> skip
			fi
		}
		if
		:: rlocked && !wrefused ->
#ifndef BUG_HEARD_AFTER_UNLOCK
			atomic { nopen++; readers-- }
#else
			readers--;
			nopen++
#endif
		:: rlocked && wrefused -> readers--
		:: else -> skip
		fi
	fi;
	if
	:: wrefused ->		/* if (hit) range_cancel_until(); range_end() */
		if
		:: found -> range_cancel_until(NRS)
		:: else -> skip
		fi;
		goto range_side_end
	:: else -> skip
	fi;

	/* The change itself: nothing may still cache these pages. */
	d_step {
		for (i : 0 .. NRS - 1) {
			assert(!(cache_valid[i] && OVERLAPS(i, lo, hi)))
		}
		for (p : lo .. hi) {
			mem[p]++
		}
		i = 0;
		p = 0
	}

	/*
	 * mmn_invalidate_end(). The compare-and-swap of the state's word,
	 * which it can only make while the lock is free: W_SUBS says
	 * nr_subs != 0 (register raises both under the lock; unregister
	 * lowers nr_subs, then clears W_SUBS under the lock, so W_SUBS may
	 * still say subscriptions when there are none: then the end takes
	 * another of the paths, each of which is also always possible here),
	 * W_ODD says seq is odd. Else subs_invalidate_end(), which ends the
	 * range side under the read lock; else the lock and end_locked().
	 */
	if
#if !defined(BUG_END_QUIET_UNLOCKED)
	:: atomic {
#ifndef BUG_FAST_END_LAST
		nr_subs == 0 && !(nactive == 1 && seq % 2 == 1) ->
#else
		nr_subs == 0 ->
#endif
		assert(nactive > 0 && nopen > 0);
		nactive--;
		nopen--
	   };
	   goto out
#else
	:: nr_subs == 0 ->
		atomic { nopen--; range_end_locked() };
		range_end_tail();
		goto out
#endif
	:: goto subs_end
	:: checkquiet = true
	fi;

	/*
	 * The one place of the range side's end under the lock: range_end(),
	 * or with CHECKQUIET end_locked(), whose decision is made under the
	 * same lock: no whole-space subscription, so the open count and the
	 * range side at once; else unlock, then subs_invalidate_end().
	 */
range_side_end:
	atomic {
		if
		:: checkquiet && nr_subs != 0 -> checkquiet = false
		:: else ->
			if
			:: checkquiet -> nopen--
			:: else -> skip
			fi;
			range_end_locked();
			ended = true
		fi
	};
	if
	:: !ended -> skip
	:: else -> range_end_tail(); goto out
	fi;
subs_end:
	subs_invalidate_end();
out:
	skip
}

/* The fault pattern on range subscription S, until it installs once. */
inline read_and_install(s)
{
	do
	:: installed -> break
	:: else ->
		/* mmn_range_read_begin(): two acquire loads, no lock. */
#ifndef BUG_READ_LOAD_ORDER
		r = stamp[s];
		cs = seq;
#else
		cs = seq;
		r = stamp[s];
#endif
		if
		:: r == cs ->
#ifndef BUG_READ_NO_WAIT
			(seq != r)	/* read_begin_wait(): until seq moves on */
#else
			skip
#endif
		:: else -> skip
		fi;
		/* Translate, no lock held. */
		d_step {
			for (p : LO(s) .. HI(s)) {
				v[p] = mem[p]
			}
			p = 0
		}
		d_step {	/* the cache lock, then mmn_range_read_retry() */
			if
			:: stamp[s] != r -> skip	/* retry */
			:: else ->
				for (p : LO(s) .. HI(s)) {
					assert(v[p] == mem[p])
				}
				cache_valid[s] = true;
				installed = true
			fi;
			p = 0;
			v[0] = 0;
			v[1] = 0
		}
	od
}

proctype reader()
{
	byte r, cs, p, v[NPAGES];
	bool installed = false;

	read_and_install(A)
}

/* mmn_range_sub_insert(C), a read perhaps, mmn_range_sub_remove(C). */
proctype inserter()
{
	byte r, cs, p, v[NPAGES], wait_for = 0;
	bool installed = false;

	atomic {
		if
		:: nactive > 0 ->
			if
			:: seq % 2 == 1 ->	/* defer the insert */
				pend_ins[C] = true;
				stamp[C] = seq
			:: else ->		/* running, none hit the tree */
#ifndef BUG_INSERT_EVEN_NO_STAMP
				seq++;
				stamp[C] = seq;
#else
				stamp[C] = seq - 1;
#endif
				tree_insert(C)
			fi
		:: else ->
			stamp[C] = seq - 1;
			tree_insert(C)
		fi
	}

	if
	:: true -> read_and_install(C)
	:: skip
	fi;

	atomic {	/* the subscriber drops its cache: nothing guards it now */
		cache_valid[C] = false;
		assert(!pend_rm[C]);
		if
		:: seq % 2 == 1 ->
			if
			:: !in_tree[C] ->	/* a pending insert: cancel it */
#ifndef BUG_REMOVE_PENDING_DEFERS
				assert(pend_ins[C]);
				pend_ins[C] = false
#else
				pend_rm[C] = true;
				wait_for = seq
#endif
			:: else ->		/* walkers may hold it: defer */
				pend_rm[C] = true;
				wait_for = seq
			fi
		:: else -> tree_remove(C)
		fi
	}
#ifndef BUG_REMOVE_EARLY
	if
	:: wait_for != 0 -> (seq != wait_for)	/* wait_seq_change_locked() */
	:: else -> skip
	fi;
#endif
	/* Returned: the caller frees it. libmmn must hold no pointer now. */
	atomic {
		assert(!in_tree[C] && !pend_ins[C] && !pend_rm[C]);
		freed[C] = true
	}
}

/* mmn_sub_unregister() of W1, then of W0: the write lock waits out
 * every reader, and new readers wait for it (writer preference). */
proctype unregisterer(byte n)
{
	byte w = n;

	do
	:: w > 0 ->
		w--;
		wwait++;
		atomic {
#ifndef BUG_UNREGISTER_NO_WAIT
			readers == 0 && !wheld ->
#endif
			wwait--;
			listed[w] = false;
			nr_subs--;
			unregistered[w] = true
		}
	:: else -> break
	od
}

/*
 * mmn_sub_register() of W0, then of W1, while invalidations run:
 * sub_link_locked() under the write lock, then, under the state's lock,
 * skip_ends = the open count and nr_subs raised.
 */
proctype registerer(byte first)
{
	byte w = first;
#ifdef BUG_SKIP_UNLOCKED
	byte n;
#endif

	do
	:: w < NWS ->
		wwait++;
		atomic {	/* wrlock, then link */
			readers == 0 && !wheld ->
			wwait--;
			wheld = true;
			late[w] = true;
			listed[w] = true;
#ifdef BUG_SKIP_UNLOCKED
			n = nopen
#endif
		}
		atomic {	/* state_lock() ... unlock, then the write unlock */
#if defined(BUG_SKIP_UNLOCKED)
			skipends[w] = n;
#elif !defined(BUG_REGISTER_NO_SKIP)
			skipends[w] = nopen;
#endif
			nr_subs++;
			wheld = false
		}
		w++
	:: else -> break
	od
}

/*
 * Five configurations keep each search small; check-model.sh runs each
 * and counts a state reached when any of them reaches it. A has the range
 * cancel op in all of them.
 *  CONFIG_RANGE: the range side (invalidators, reader of A, insert, read
 *	and remove of C, which has no cancel op), no whole-space
 *	subscription;
 *  CONFIG_WHOLE: the whole-space side (W0, W1, their unregister), with A
 *	in the tree and nobody reading;
 *  CONFIG_CANCEL: as CONFIG_WHOLE, with C in the tree too, also with the
 *	cancel op: two range subscriptions that accepted a refused
 *	invalidation hear ->invalidate_cancel();
 *  CONFIG_REGISTER: no whole-space subscription at first; W0, then W1
 *	registered while invalidations run, with A in the tree;
 *  CONFIG_CHURN: W0 registered at first, then unregistered while W1 is
 *	registered: the counts of invalidations that W0 heard start must
 *	still add up for W1.
 */
init {
	byte i;

	atomic {
		in_tree[A] = true;
		stamp[A] = seq - 1;
		has_cancel[A] = true;
#if defined(CONFIG_RANGE)
		has_cancel[C] = true;
		run invalidator(false);
		run invalidator(true);
		run reader();
		run inserter()
#elif defined(CONFIG_WHOLE) || defined(CONFIG_CANCEL)
#ifdef CONFIG_CANCEL
		in_tree[C] = true;
		stamp[C] = seq - 1;
#endif
		listed[0] = true;
		listed[1] = true;
		nr_subs = NWS;
		run invalidator(true);
		run invalidator(true);
		run unregisterer(NWS)
#elif defined(CONFIG_REGISTER)
		run invalidator(true);
		run invalidator(true);
		run registerer(0)
#elif defined(CONFIG_CHURN)
		listed[0] = true;
		nr_subs = 1;
		run invalidator(true);
		run invalidator(true);
		run unregisterer(1);
		run registerer(1)
#else
#error "define CONFIG_RANGE, CONFIG_WHOLE, CONFIG_CANCEL or CONFIG_REGISTER"
#endif
	}
	/*
	 * At rest: seq even, nothing running, nothing deferred, the open
	 * counts back to zero, and every listed whole-space subscriber has
	 * heard as many ends as starts and owes no skipped end.
	 */
	(_nr_pr == 1);
	assert(nactive == 0 && seq % 2 == 0 && walkers == 0 && readers == 0);
	assert(nopen == 0);
	for (i : 0 .. NRS - 1) {
		assert(!pend_ins[i] && !pend_rm[i])
	}
	for (i : 0 .. NWS - 1) {
		assert(!listed[i] || (wopen[i] == 0 && skipends[i] == 0))
	}
}
