/* SPDX-License-Identifier: MIT */
/*
 * The one place where cbd's atomics live: every index or word that
 * another process (possibly on another host) reads or writes goes through
 * these wrappers, and so do the few words private memory shares between
 * threads; no volatile, no bare atomics elsewhere.  Each call site says in
 * a comment what it pairs with.
 */
#ifndef CBD_TRANSPORT_BARRIER_H
#define CBD_TRANSPORT_BARRIER_H

#include <stdbool.h>

/* Publish: everything written before is visible to whoever acquires p. */
#define smp_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Observe: everything published before the paired release is visible. */
#define smp_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)

/* A word read or written whole, without ordering (e.g. a counter sample);
 * like the kernel's and liburing's, they take the word itself. */
#define READ_ONCE(x)	 __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* Full barrier: orders earlier stores against later loads (doorbells). */
#define smp_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)

/*
 * Compare-and-swap on a shared word: true and *p = desired if *p == *expected,
 * else false and *expected = current value.  Acquire+release on success.
 */
#define cmpxchg(p, expected, desired)                                  \
	__atomic_compare_exchange_n((p), (expected), (desired), false, \
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

/* Atomic add returning the new value (heartbeats); release ordering. */
#define atomic_add_release(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELEASE)

/* Atomic subtract returning the new value; acquire + release (a last
 * reference drop sees everything the others did before theirs). */
#define atomic_sub_return(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_ACQ_REL)

/* Atomic add returning the old value, no ordering (counters, round robin). */
#define atomic_fetch_add_relaxed(p, v) \
	__atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

#endif /* CBD_TRANSPORT_BARRIER_H */
