# libFuzzer targets of the validators (ASan + UBSan), built with clang into
# build-fuzz/ whatever $(CC) and $(BUILD) are:
#   make fuzz        60 s per fuzzer (FUZZ_SECONDS=N to change)
#   make fuzz-smoke  15 s per fuzzer (part of make check-asan)
# The seed corpora live in tests/fuzz/corpus/NAME; new inputs go to
# build-fuzz/corpus/NAME, crashes to build-fuzz/artifacts/.
FUZZERS += fuzz-info fuzz-entry fuzz-kset

FUZZ_BUILD := build-fuzz
FUZZ_CC := clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
# Library code: others' sources need not be clang-warning clean to be fuzzed.
FUZZ_LIB_CFLAGS = $(BASEFLAGS) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_CFLAGS = $(BASEFLAGS) $(WARNFLAGS) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(LIBCBDT_SRCS))
FUZZ_BINS := $(addprefix $(FUZZ_BUILD)/,$(FUZZERS))
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 15

$(FUZZ_BUILD)/obj/transport/%.o: transport/%.c
	$(call msg,FUZZCC,$@)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_LIB_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/obj/tests/fuzz/%.o: tests/fuzz/%.c
	$(call msg,FUZZCC,$@)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BINS): $(FUZZ_BUILD)/%: $(FUZZ_BUILD)/obj/tests/fuzz/%.o $(FUZZ_LIB_OBJS)
	$(call msg,FUZZLD,$@)
	$(Q)$(FUZZ_CC) -pthread $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ \
		$(call pc_libs,libpmem2 libdaxctl) -lm

# fuzz_run NAME SECONDS: run one fuzzer on a scratch copy of its corpus.
fuzz_run = mkdir -p $(FUZZ_BUILD)/corpus/$(1) $(FUZZ_BUILD)/artifacts && \
	echo "  FUZZ    $(1) for $(2) s" && \
	$(FUZZ_BUILD)/$(1) -max_total_time=$(2) -max_len=12288 -timeout=10 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$(1)- \
		$(FUZZ_BUILD)/corpus/$(1) tests/fuzz/corpus/$(1) \
		>$(FUZZ_BUILD)/$(1).log 2>&1 || \
	{ tail -n 40 $(FUZZ_BUILD)/$(1).log; echo "fuzz: $(1) failed" >&2; exit 1; }; \
	grep -E '^stat::number_of_executed_units' $(FUZZ_BUILD)/$(1).log | \
		sed 's/^/          /'

.PHONY: fuzz fuzz-smoke fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@$(foreach f,$(FUZZERS),$(call fuzz_run,$(f),$(FUZZ_SECONDS)) &&) true

fuzz-smoke: $(FUZZ_BINS)
	@$(foreach f,$(FUZZERS),$(call fuzz_run,$(f),$(FUZZ_SMOKE_SECONDS)) &&) true

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
