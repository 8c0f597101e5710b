# cbd-bench: ring micro-benchmark (client + null handler in two processes).
PROGS += cbd-bench

cbd_bench_SRCS := \
	tools/bench-run.c \
	tools/cbd-bench.c
