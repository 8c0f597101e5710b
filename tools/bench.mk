# cbd-bench: ring micro-benchmark (client + null handler in two processes;
# --cache: the handler is cbd-backend's cache engine on a backing image).
PROGS += cbd-bench

cbd_bench_SRCS := \
	backend/cache-index.c \
	backend/cache-io.c \
	backend/cache-wb.c \
	backend/cache.c \
	backend/store.c \
	tools/bench-run.c \
	tools/cbd-bench.c
