/* SPDX-License-Identifier: MIT */
/*
 * A model of libmmn's invalidation protocol (libmmn/notifier.c), for spin.
 *
 * Modelled: the state's sequence number and its parity, the count of
 * running invalidations, the tree membership of each subscription and the
 * deferred list, each subscription's stamp (invalidate_seq), the lock-free
 * read_begin (two separate loads) and its wait, read_retry under the
 * subscriber's cache lock, remove's deferral and its wait, insert during
 * running invalidations, and non-blocking refusals.
 *
 * Each atomic block is one critical section under the lock it names; the
 * lock-free loads are steps of their own, so spin tries every interleaving.
 *
 * Configuration: two invalidators over the whole space; a reader on A;
 * a remover of B; a thread that inserts C and then reads it.
 *
 * Properties (assertions, plus spin's check that every process ends):
 *  - a callback, the tree walk and the deferred list never touch a
 *    subscription after its remove returned (it is freed then);
 *  - when memory changes, no cache holds a value computed from it;
 *  - a reader installs only a value computed from current memory;
 *  - every process ends (no lost wakeup: a waiting remove or read_begin
 *    always wakes), and at rest seq is even and nothing is deferred.
 *
 * Deliberate bugs, each of which the check must catch (spin -DBUG_...):
 *  BUG_REMOVE_EARLY	remove returns without waiting for the last end;
 *  BUG_SEQ_BEFORE_APPLY	the last end advances seq, drops the lock, and
 *			only then applies the deferred list;
 *  BUG_READ_NO_WAIT	read_begin does not wait when the subscription
 *			was stamped by a running invalidation;
 *  BUG_INSERT_NO_STAMP	insert during running invalidations neither
 *			stamps the subscription nor makes seq odd.
 */

#define NSUBS 3
#define A 0
#define B 1
#define C 2

byte seq = 2;
byte nactive = 0;
bool in_tree[NSUBS];
bool pending[NSUBS];		/* on the deferred list */
bool freed[NSUBS];
byte holders[NSUBS];		/* invalidators whose walk may touch it */
byte stamp[NSUBS];
bool cache_valid[NSUBS];	/* the subscriber's cache holds a translation */
byte mem = 0;			/* version of the memory, all of it */

/* Under the state's lock, by the last invalidation to end. */
inline apply_deferred()
{
	for (i : 0 .. NSUBS - 1) {
		if
		:: pending[i] ->
			assert(!freed[i]);
			if
			:: in_tree[i] -> assert(holders[i] == 0); in_tree[i] = false
			:: else -> in_tree[i] = true
			fi;
			pending[i] = false
		:: else -> skip
		fi
	}
}

proctype invalidator()
{
	bool hit[NSUBS];
	bool refused = false;
	byte cur, i;

	/* range_begin, under the lock: count, find, make seq odd. */
	atomic {
		nactive++;
		for (i : 0 .. NSUBS - 1) {
			hit[i] = in_tree[i];
			if
			:: hit[i] -> holders[i]++
			:: else -> skip
			fi
		}
		if
		:: (hit[A] || hit[B] || hit[C]) && seq % 2 == 0 -> seq++
		:: else -> skip
		fi;
		cur = seq
	}
	/* The walk and the callbacks, without the state's lock. */
	for (i : 0 .. NSUBS - 1) {
		if
		:: hit[i] && !refused ->
			if
			:: true ->	/* ->invalidate() under the cache lock */
				atomic {
					assert(!freed[i]);
					stamp[i] = cur;
					cache_valid[i] = false
				}
			:: true ->	/* non-blockable, and it refuses */
				assert(!freed[i]);
				refused = true
			fi;
			holders[i]--
		:: hit[i] && refused -> holders[i]--
		:: else -> skip
		fi
	}
	if
	:: !refused ->
		/* The change itself: nothing may still be cached. */
		atomic {
			for (i : 0 .. NSUBS - 1) {
				assert(!cache_valid[i])
			}
			mem++
		}
	:: else -> skip
	fi;
	/* range_end, under the lock. */
#ifndef BUG_SEQ_BEFORE_APPLY
	atomic {
		nactive--;
		if
		:: nactive == 0 && seq % 2 == 1 -> apply_deferred(); seq++
		:: else -> skip
		fi
	}
#else
	bool last = false;
	atomic {
		nactive--;
		if
		:: nactive == 0 && seq % 2 == 1 -> seq++; last = true
		:: else -> skip
		fi
	}
	if
	:: last -> atomic { apply_deferred() }
	:: else -> skip
	fi
#endif
}

/* The fault pattern on subscription S, until it installs once. */
inline read_and_install(s)
{
	byte r, v;
again:
	r = stamp[s];		/* acquire load of invalidate_seq */
	if
	:: r == seq ->		/* acquire load of seq: stamped by a running one */
#ifndef BUG_READ_NO_WAIT
		(seq != r)	/* sleeps under the lock until seq moves on */
#else
		skip
#endif
	:: else -> skip
	fi;
	v = mem;		/* translate, no lock held */
	atomic {		/* the cache lock, then read_retry */
		if
		:: stamp[s] != r -> skip
		:: else ->
			assert(v == mem);
			cache_valid[s] = true
		fi
	}
	if
	:: !cache_valid[s] -> goto again
	:: else -> skip
	fi
}

proctype reader()
{
	read_and_install(A)
}

proctype remover()
{
	byte wait_for = 0;

	atomic {
		assert(!pending[B]);
		if
		:: seq % 2 == 1 ->
			pending[B] = true;	/* walkers may hold it: defer */
			wait_for = seq
		:: else -> in_tree[B] = false
		fi
	}
#ifndef BUG_REMOVE_EARLY
	(wait_for == 0 || seq != wait_for);
#endif
	/* Returned: the caller frees it. libmmn must hold no pointer now. */
	atomic {
		assert(holders[B] == 0 && !pending[B] && !in_tree[B]);
		freed[B] = true
	}
}

proctype inserter()
{
	atomic {
#ifndef BUG_INSERT_NO_STAMP
		if
		:: nactive > 0 ->
			if
			:: seq % 2 == 1 -> pending[C] = true
			:: else -> seq++; in_tree[C] = true
			fi;
			stamp[C] = seq
		:: else -> stamp[C] = seq - 1; in_tree[C] = true
		fi
#else
		stamp[C] = seq - 1 - seq % 2;
		if
		:: seq % 2 == 1 -> pending[C] = true
		:: else -> in_tree[C] = true
		fi
#endif
	}
	read_and_install(C)
}

init {
	atomic {
		in_tree[A] = true; stamp[A] = seq - 1;
		in_tree[B] = true; stamp[B] = seq - 1;
		run invalidator();
		run invalidator();
		run reader();
		run remover();
		run inserter()
	}
	/* At rest: seq even, nothing running, nothing deferred. */
	(_nr_pr == 1);
	assert(nactive == 0 && seq % 2 == 0);
	assert(!pending[A] && !pending[B] && !pending[C])
}
