# cbd: one non-recursive Makefile.  Each directory lists its sources in a
# small fragment (transport/build.mk, backend/build.mk, ...) included below;
# every rule lives here.
#
#   make            build/cbdfs build/cbd-backend build/cbd-status ...
#   make check      unit tests, then e2e tests (root: FUSE, loop, ext4)
#   make check-asan the same under ASan + UBSan (in build-asan/)
#   make check-vm   two-kernel scenarios in QEMU guests (tests/vm/)
#   make check-fresh  make demo in a fresh Debian chroot (tests/fresh/)
#   make fuzz       short libFuzzer runs of the validators
#   make demo       the main job on a file transport
#   make bench      benchmarks (not part of check)
#   make deps       install the Debian packages (only what is missing)
#   make install PREFIX=/usr/local, make uninstall
#   V=1             show the commands
#
# Two stages, so that nothing can ever use a library before it is
# installed: make first brings the machine up to date for the goals asked
# (tests/deps.sh installs what is missing, and does nothing when all is
# there), then runs itself again with CBD_STAGE=build for the real work.
# Only the second stage reads pkg-config, so every pkg-config use sees the
# installed packages, whatever the fragments do with it.

.DEFAULT_GOAL := all

ifneq ($(CBD_STAGE),build)
# ---- stage 1: dependencies ------------------------------------------
# The package groups of tests/deps.sh that each goal needs; a goal not
# listed needs "build run test" (check, bench, fuzz, check-asan, ...).
deps.all := build
deps.install := build
deps.demo := build run
deps.uninstall := none
deps.man := build
deps.install-man := build
deps.uninstall-man := none
deps.clean := none
deps.format := test
deps.format-check := test
deps.check-vm := build run test vm
deps.check-fresh := fresh
deps.deps := build run test vm fresh
GOALS := $(or $(MAKECMDGOALS),all)
DEPS := $(filter-out none,$(sort $(foreach g,$(GOALS),$(or $(deps.$(g)),build run test))))
BUILD_GOALS := $(filter-out deps,$(GOALS))

.PHONY: $(GOALS) cbd-stage2
$(GOALS): cbd-stage2 ; @:
cbd-stage2:
	$(if $(DEPS),@tests/deps.sh $(DEPS))
	$(if $(BUILD_GOALS),+@$(MAKE) --no-print-directory CBD_STAGE=build $(BUILD_GOALS))

else
# ---- stage 2: the build ---------------------------------------------
BUILD ?= build
PREFIX ?= /usr/local
VERSION := 0.1.0

CC ?= cc
CFLAGS ?= -O2 -g
WARNFLAGS := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-Wmissing-prototypes -Wstrict-prototypes
BASEFLAGS := -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread \
	-fno-strict-aliasing -DCBD_VERSION='"$(VERSION)"' -I. -Itransport -Icommon
SANFLAGS :=
ifeq ($(SANITIZE),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
endif

pc_cflags = $(shell pkg-config --cflags $(1))
pc_libs = $(shell pkg-config --libs $(1))

ALL_CFLAGS = $(BASEFLAGS) $(WARNFLAGS) $(CFLAGS) $(SANFLAGS)
ALL_LDFLAGS = -pthread $(LDFLAGS) $(SANFLAGS)

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-7s %s\n' $(1) $(2)
endif

.DEFAULT_GOAL := all
.SECONDEXPANSION:
.DELETE_ON_ERROR:

# ---- fragments: each sets its *_SRCS lists and appends to PROGS/UNIT_TESTS
PROGS :=
TEST_PROGS :=
UNIT_TESTS :=
FUZZERS :=
include transport/build.mk common/build.mk tests/build.mk
-include $(sort $(wildcard backend/*.mk cbdfs/*.mk docs/*.mk tools/*.mk tests/*/*.mk))

objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCBDT := $(BUILD)/libcbdt.a
LIBCOMMON := $(BUILD)/libcbdcommon.a

all: $(addprefix $(BUILD)/,$(PROGS))

# ---- compile --------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $(EXTRA_CFLAGS_$(subst /,_,$(dir $*))) -MMD -MP -c $< -o $@

$(LIBCBDT): $(call objs,$(LIBCBDT_SRCS))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBCOMMON): $(call objs,$(COMMON_SRCS))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Programs (PROGS: made by "all" and installed; TEST_PROGS: made for the
# tests only): $(NAME_SRCS) and $(NAME_LIBS) come from the fragments, with
# NAME the program name with '-' turned into '_' (cbd-backend -> cbd_backend).
pvar = $(subst -,_,$(1))
$(addprefix $(BUILD)/,$(PROGS) $(TEST_PROGS)): $(BUILD)/%: $$(call objs,$$($$(call pvar,$$*)_SRCS)) $(LIBCOMMON) $(LIBCBDT)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $($(call pvar,$*)_LIBS) $(call pc_libs,libpmem2 libdaxctl) -lm

# Unit tests: tests/unit/NAME.c plus $(NAME_EXTRA) sources (test-config_EXTRA).
UNIT_BINS := $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))
$(UNIT_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $$(call objs,$$($$*_EXTRA)) $(LIBCOMMON) $(LIBCBDT)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $($*_LIBS) $(call pc_libs,cmocka libpmem2 libdaxctl) -lm

# ---- tests ----------------------------------------------------------
.PHONY: check check-unit check-e2e check-vm check-asan fuzz
check: format-check check-unit check-e2e

check-unit: all $(UNIT_BINS)
	@BUILD=$(BUILD) tests/run-unit.sh $(UNIT_TESTS)

# Every e2e test with cbdfs on /dev/fuse, then the cbdfs ones again with
# its requests over io_uring (where the kernel has it).
check-e2e: all $(BUILD)/cbd-testclient
	@BUILD=$(abspath $(BUILD)) CBDFS_IO_URING=off tests/run-e2e.sh $(E2E)
	@BUILD=$(abspath $(BUILD)) tests/run-uring.sh $(E2E_CBDFS)

# Two kernels: QEMU guests on a shared emulated NVDIMM (tests/vm/lib.sh).
check-vm: all $(BUILD)/cbd-testclient
	@BUILD=$(abspath $(BUILD)) CBD_SUITE=vm CBD_TEST_TIMEOUT=1200 \
		tests/run-e2e.sh $(VM_TESTS)

check-asan:
	$(MAKE) BUILD=build-asan SANITIZE=1 CFLAGS='-O1 -g' check-unit
	$(MAKE) BUILD=build-asan SANITIZE=1 CFLAGS='-O1 -g' fuzz-smoke

# ---- install --------------------------------------------------------
# Everything under $(PREFIX) (systemd reads $(PREFIX)/lib/systemd/system
# for /usr/local and /usr), the example config under /etc/cbd; the units
# name the programs where this very install put them.  uninstall removes
# exactly what install wrote (never /etc/cbd/cbd.ini itself).
BINDIR = $(PREFIX)/bin
SBINDIR = $(PREFIX)/sbin
UNITDIR ?= $(PREFIX)/lib/systemd/system
UNITS := cbd-backend.service cbdfs@.service
BIN_PROGS := cbdfs cbd-status cbd-admin cbd-bench
SBIN_PROGS := cbd-backend

$(BUILD)/etc/%: etc/%.in
	$(call msg,GEN,$@)
	@mkdir -p $(@D)
	$(Q)sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' $< >$@

.PHONY: install uninstall
install: all man $(addprefix $(BUILD)/etc/,$(UNITS))
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)/etc/cbd
	install -m 0755 $(addprefix $(BUILD)/,$(BIN_PROGS)) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(addprefix $(BUILD)/,$(SBIN_PROGS)) $(DESTDIR)$(SBINDIR)/
	install -m 0644 $(addprefix $(BUILD)/etc/,$(UNITS)) $(DESTDIR)$(UNITDIR)/
	install -m 0644 cbd.ini.example $(DESTDIR)/etc/cbd/cbd.ini.example
	$(MAKE) --no-print-directory install-man

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(BIN_PROGS)) \
		$(addprefix $(DESTDIR)$(SBINDIR)/,$(SBIN_PROGS)) \
		$(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS)) \
		$(DESTDIR)/etc/cbd/cbd.ini.example
	$(MAKE) --no-print-directory uninstall-man

.PHONY: demo bench clean format format-check check-fresh
check-fresh:
	@tests/fresh/run.sh

demo: all
	@tests/demo.sh $(abspath $(BUILD))

bench: all
	@BUILD=$(abspath $(BUILD)) tests/bench/run.sh

clean:
	rm -rf build build-asan build-fuzz

# The tree's own sources: what git tracks, or every C file when there is
# no git (a tarball).
C_SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || \
	find . -path ./build -prune -o -name '*.[ch]' -print)

format:
	clang-format -i $(C_SOURCES)

# .clang-format describes the code as it is: make check keeps it so.
format-check:
	$(call msg,FORMAT,check)
	$(Q)clang-format --dry-run -Werror $(C_SOURCES) 2>&1 | head -n 20; \
		clang-format --dry-run -Werror $(C_SOURCES) >/dev/null 2>&1 || \
		{ echo "format-check: run make format" >&2; exit 1; }

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
endif
