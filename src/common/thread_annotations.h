// Lock rules checked by the compiler: macros for clang's thread-safety analysis
// (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html), built with -Wthread-safety by the
// `tsa` preset. Under clang they expand to the analysis' attributes; under any other compiler
// (g++ builds the dev and release presets) to nothing, so they cost nothing and change nothing.
//
// The usual shape (see common/mutex.h for the annotated Mutex these refer to):
//   Mutex mu_;
//   int count_ GUARDED_BY(mu_) = 0;         // read or written only with mu_ held
//   void BumpLocked() REQUIRES(mu_);        // the caller holds mu_
//   void Bump() EXCLUDES(mu_);              // takes mu_ itself: the caller must not hold it
// A lambda that reads guarded members while its caller holds the lock (a condition variable's
// predicate) says so too: `[&]() REQUIRES(mu_) { return count_ > 0; }`.
#pragma once

#if defined(__clang__)
#define CUSTODY_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define CUSTODY_THREAD_ANNOTATION_(x)
#endif

// A type that is a lock (a "capability"); the string names it in diagnostics.
#define CAPABILITY(x) CUSTODY_THREAD_ANNOTATION_(capability(x))
#define LOCKABLE CUSTODY_THREAD_ANNOTATION_(lockable)
// An RAII type that holds a capability for its lifetime (MutexLock).
#define SCOPED_CAPABILITY CUSTODY_THREAD_ANNOTATION_(scoped_lockable)
#define SCOPED_LOCKABLE SCOPED_CAPABILITY

// Data members: the member itself (GUARDED_BY) or what a pointer member points to
// (PT_GUARDED_BY) may be touched only with the capability held.
#define GUARDED_BY(x) CUSTODY_THREAD_ANNOTATION_(guarded_by(x))
#define PT_GUARDED_BY(x) CUSTODY_THREAD_ANNOTATION_(pt_guarded_by(x))

// Lock order between capabilities (checked only with -Wthread-safety-beta; documents it anyway).
#define ACQUIRED_BEFORE(...) CUSTODY_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) CUSTODY_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))

// Functions: the caller must hold the capabilities (exclusively, or at least shared).
#define REQUIRES(...) CUSTODY_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) CUSTODY_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
#define EXCLUSIVE_LOCKS_REQUIRED(...) REQUIRES(__VA_ARGS__)
#define SHARED_LOCKS_REQUIRED(...) REQUIRES_SHARED(__VA_ARGS__)

// Functions that take or give up a capability and keep it past their return. With no argument
// on a member function of a capability (or scoped capability) type, `this` is meant.
#define ACQUIRE(...) CUSTODY_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) CUSTODY_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) CUSTODY_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) CUSTODY_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) CUSTODY_THREAD_ANNOTATION_(release_generic_capability(__VA_ARGS__))
// Acquires the capability only when the function returns the given value (true, usually).
#define TRY_ACQUIRE(...) CUSTODY_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#define TRY_ACQUIRE_SHARED(...) \
  CUSTODY_THREAD_ANNOTATION_(try_acquire_shared_capability(__VA_ARGS__))
#define EXCLUSIVE_LOCK_FUNCTION(...) ACQUIRE(__VA_ARGS__)
#define SHARED_LOCK_FUNCTION(...) ACQUIRE_SHARED(__VA_ARGS__)
#define UNLOCK_FUNCTION(...) RELEASE(__VA_ARGS__)
#define EXCLUSIVE_TRYLOCK_FUNCTION(...) TRY_ACQUIRE(__VA_ARGS__)
#define SHARED_TRYLOCK_FUNCTION(...) TRY_ACQUIRE_SHARED(__VA_ARGS__)

// The caller must not hold the capability (the function takes it; holding it would deadlock).
#define EXCLUDES(...) CUSTODY_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define LOCKS_EXCLUDED(...) EXCLUDES(__VA_ARGS__)

// A run-time check that the capability is held; after it the analysis assumes it is.
#define ASSERT_CAPABILITY(x) CUSTODY_THREAD_ANNOTATION_(assert_capability(x))
#define ASSERT_SHARED_CAPABILITY(x) CUSTODY_THREAD_ANNOTATION_(assert_shared_capability(x))
#define ASSERT_EXCLUSIVE_LOCK(...) CUSTODY_THREAD_ANNOTATION_(assert_exclusive_lock(__VA_ARGS__))
#define ASSERT_SHARED_LOCK(...) CUSTODY_THREAD_ANNOTATION_(assert_shared_lock(__VA_ARGS__))

// A function returning a reference to (or pointer to) the capability.
#define RETURN_CAPABILITY(x) CUSTODY_THREAD_ANNOTATION_(lock_returned(x))
#define LOCK_RETURNED(x) RETURN_CAPABILITY(x)

// Turns the analysis off for one function. Use it only where a correct pattern is beyond the
// analysis, with a comment saying why.
#define NO_THREAD_SAFETY_ANALYSIS CUSTODY_THREAD_ANNOTATION_(no_thread_safety_analysis)
