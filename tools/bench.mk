# cbd-bench: ring micro-benchmark (client + null handler in two processes).
PROGS += cbd-bench

cbd_bench_SRCS := tools/cbd-bench.c
