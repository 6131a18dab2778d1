/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * counters.cpp - counters.c in C++ (C++11): per-CPU counters in a multi-threaded program.
 *
 * Several std::threads count events three ways at once: a plain per-CPU integer bumped
 * with pcpu_this_inc(), a per-CPU struct whose fields are bumped with pcpu_this_add(), and
 * a struct pcpu_counter (the kernel's percpu_counter: per-CPU deltas folded in batches).
 * <pcpu.h> is the same header as in C: in C++ the pcpu_this_*() operations are function
 * templates over the same inline restartable sequences, and a type they cannot update
 * exactly (adding to a double, say) does not compile. The main thread folds the copies and
 * checks every total is exact; exit 1 if one is not.
 *
 *   counters-cpp [THREADS [ITERATIONS]]
 */
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <pcpu.h>

namespace {

struct req_stats {
	uint64_t requests;
	uint64_t bytes;
	int64_t balance; // goes up and down: signed copies that sum to the truth
};

// An owner for a per-CPU handle: pcpu_free() when it goes out of scope.
template <typename T> class percpu {
public:
	percpu() : h_(pcpu_alloc_type(T)) {}
	~percpu() { pcpu_free(h_); }
	percpu(const percpu &) = delete;
	percpu &operator=(const percpu &) = delete;

	T __pcpu *get() const { return h_; }
	explicit operator bool() const { return h_ != nullptr; }

	// Fold every CPU's copy with @f (called once per copy).
	template <typename F> void for_each_copy(F f) const
	{
		unsigned cpu;

		pcpu_for_each_cpu(cpu) f(*pcpu_ptr(h_, cpu));
	}

private:
	T __pcpu *h_;
};

} // namespace

int main(int argc, char **argv)
{
	long nthreads = argc > 1 ? atol(argv[1]) : 4;
	long iterations = argc > 2 ? atol(argv[2]) : 1000000;

	if (nthreads < 1 || nthreads > 1024 || iterations < 0) {
		fprintf(stderr, "usage: counters-cpp [THREADS [ITERATIONS]]\n");
		return 2;
	}
	percpu<uint64_t> events;    // one uint64_t per CPU
	percpu<req_stats> stats;    // one struct per CPU
	struct pcpu_counter hits;   // percpu_counter semantics
	if (!events || !stats || pcpu_counter_init(&hits, 0)) {
		perror("counters-cpp: allocation");
		return 1;
	}

	std::vector<std::thread> threads;
	for (long t = 0; t < nthreads; t++)
		threads.emplace_back([&] {
			uint64_t __pcpu *ev = events.get();
			req_stats __pcpu *st = stats.get();

			for (long i = 0; i < iterations; i++) {
				// Each is one restartable sequence on this CPU's copy: no lock, no
				// atomic instruction, inline as in C.
				pcpu_this_inc(ev);
				pcpu_this_inc(&st->requests);
				pcpu_this_add(&st->bytes, static_cast<uint64_t>(i & 1023));
				if (i & 1)
					pcpu_this_dec(&st->balance);
				else
					pcpu_this_inc(&st->balance);
				pcpu_counter_add(&hits, 1);
			}
		});
	for (std::thread &t : threads)
		t.join();

	// Every writer is done: folding the copies gives exact totals.
	uint64_t nevents = 0, nrequests = 0, nbytes = 0, want_bytes = 0;
	int64_t balance = 0;
	events.for_each_copy([&](uint64_t v) { nevents += v; });
	stats.for_each_copy([&](const req_stats &s) {
		nrequests += s.requests;
		nbytes += s.bytes;
		balance += s.balance;
	});
	for (long i = 0; i < iterations; i++)
		want_bytes += static_cast<uint64_t>(i & 1023);
	want_bytes *= static_cast<uint64_t>(nthreads);
	const int64_t approx = pcpu_counter_read(&hits);
	const int64_t sum = pcpu_counter_sum(&hits);

	printf("%ld threads x %ld iterations on %u possible CPUs\n", nthreads, iterations,
	       pcpu_nr_cpus());
	printf("events    %llu\n", static_cast<unsigned long long>(nevents));
	printf("requests  %llu\n", static_cast<unsigned long long>(nrequests));
	printf("bytes     %llu\n", static_cast<unsigned long long>(nbytes));
	printf("balance   %lld\n", static_cast<long long>(balance));
	printf("hits      %lld (pcpu_counter_sum), %lld (pcpu_counter_read, approximate)\n",
	       static_cast<long long>(sum), static_cast<long long>(approx));

	const uint64_t want = static_cast<uint64_t>(nthreads) * static_cast<uint64_t>(iterations);
	const int64_t want_balance = static_cast<int64_t>(nthreads) * (iterations & 1);
	bool bad = false;

	if (nevents != want || nrequests != want) {
		fprintf(stderr, "counters-cpp: events %llu, requests %llu, expected %llu\n",
			static_cast<unsigned long long>(nevents),
			static_cast<unsigned long long>(nrequests),
			static_cast<unsigned long long>(want));
		bad = true;
	}
	if (nbytes != want_bytes || balance != want_balance) {
		fprintf(stderr,
			"counters-cpp: bytes %llu (expected %llu), balance %lld (expected %lld)\n",
			static_cast<unsigned long long>(nbytes),
			static_cast<unsigned long long>(want_bytes),
			static_cast<long long>(balance), static_cast<long long>(want_balance));
		bad = true;
	}
	if (static_cast<uint64_t>(sum) != want ||
	    pcpu_counter_compare(&hits, static_cast<int64_t>(want))) {
		fprintf(stderr, "counters-cpp: pcpu_counter_sum %lld, expected %llu\n",
			static_cast<long long>(sum), static_cast<unsigned long long>(want));
		bad = true;
	}
	// read() may lag by at most batch * nr_cpus.
	if (llabs(approx - static_cast<int64_t>(want)) >
	    static_cast<long long>(pcpu_counter_batch()) * pcpu_nr_cpus()) {
		fprintf(stderr, "counters-cpp: pcpu_counter_read %lld too far from %llu\n",
			static_cast<long long>(approx), static_cast<unsigned long long>(want));
		bad = true;
	}
	puts(bad ? "FAILED: totals are not exact" : "all totals exact");
	pcpu_counter_destroy(&hits);
	return bad ? 1 : 0;
}
