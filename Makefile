# SPDX-License-Identifier: MIT
# Thin wrapper around meson: `make check` is what CI runs (.ci/run).
#
#   make setup    install missing Debian packages (scripts/setup)
#   make build    configure build/ if needed, compile
#   make run      build, then boot the default machine (pc, 4 GiB) under
#                 /dev/kvm with the built-in self-test guest
#   make check    normal tests, ASan+UBSan unit tests, TSan stress test,
#                 fuzz smoke tests,
#                 format check; ends with "check: N passed, N failed, N skipped"
#   make format   clang-format -i every C source
#   make clean    remove the build directories

MESON ?= meson
PYTHON ?= python3
CLANG_FORMAT ?= clang-format

BUILDDIR ?= build
ASANDIR ?= build-asan
FUZZDIR ?= build-fuzz
TSANDIR ?= build-tsan
# The format check's result, in meson's testlog.json format.
FORMATLOG = build-format/testlog.json

MEMVIRT = ./$(BUILDDIR)/tools/memvirt/memvirt
RUN_ARGS ?=
RUN ?= $(MEMVIRT) run $(RUN_ARGS)

ASAN_SETUP_OPTS = -Db_sanitize=address,undefined -Db_lundef=false -Db_lto=false
ASAN_TEST_ENV = ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
TSAN_SETUP_OPTS = -Db_sanitize=thread -Db_lundef=false -Db_lto=false
TSAN_TEST_ENV = TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 \
	suppressions=$(CURDIR)/tests/stress/tsan.supp"
FUZZ_SETUP_ENV = CC=clang
FUZZ_SETUP_OPTS = -Dfuzz=true -Db_lundef=false -Db_sanitize=address,undefined \
	-Db_lto=false

FORMAT_DIRS = src include tools tests bench guest

# $(call configure,DIR,SETUP_ENV,SETUP_OPTS): configure DIR unless it is;
# --reconfigure only when an earlier configure left DIR half done.
configure = if [ ! -f $(1)/build.ninja ]; then \
		if [ -f $(1)/meson-private/coredata.dat ]; then \
			$(2) $(MESON) setup --reconfigure $(1) $(3); \
		else \
			$(2) $(MESON) setup $(1) $(3); \
		fi; \
	fi

# $(call meson_stage,DIR,SETUP_ENV,SETUP_OPTS,TEST_ENV,TEST_OPTS):
# configure, compile and test DIR; record how far it got in DIR/check-status
# (ok, configure-failed, build-failed, test-failed) for scripts/check-summary.
define meson_stage
	@echo "=== check: $(1) ==="
	@rm -f $(1)/meson-logs/testlog.json $(1)/check-status; \
	st=ok; \
	{ $(call configure,$(1),$(2),$(3)); } || st=configure-failed; \
	if [ $$st = ok ]; then $(MESON) compile -C $(1) || st=build-failed; fi; \
	if [ $$st = ok ]; then \
		$(4) $(MESON) test -C $(1) --print-errorlogs $(5) || st=test-failed; \
	fi; \
	mkdir -p $(1) && echo $$st > $(1)/check-status; \
	echo "=== check: $(1): $$st ==="; \
	[ $$st = ok ]
endef

.PHONY: all setup build run check check-default check-asan check-tsan \
	check-fuzz check-format format clean

all: build

setup:
	@scripts/setup

build: setup
	@$(call configure,$(BUILDDIR),,)
	$(MESON) compile -C $(BUILDDIR)

run: build
	$(RUN)

# Every stage runs even if an earlier one failed; the summary decides.
check: setup
	-@$(MAKE) --no-print-directory check-default
	-@$(MAKE) --no-print-directory check-asan
	-@$(MAKE) --no-print-directory check-tsan
	-@$(MAKE) --no-print-directory check-fuzz
	-@$(MAKE) --no-print-directory check-format
	@$(PYTHON) scripts/check-summary $(BUILDDIR) $(ASANDIR) $(TSANDIR) \
		$(FUZZDIR) $(FORMATLOG)

check-default:
	$(call meson_stage,$(BUILDDIR),,,,)

check-asan:
	$(call meson_stage,$(ASANDIR),,$(ASAN_SETUP_OPTS),$(ASAN_TEST_ENV),--suite unit --suite kvm)

# The concurrent code (lock-free readers against a writer; vCPU threads
# against the host's commits and dirty harvests) under TSan.
check-tsan:
	$(call meson_stage,$(TSANDIR),,$(TSAN_SETUP_OPTS),$(TSAN_TEST_ENV),--suite stress --suite kvm)

check-fuzz:
	$(call meson_stage,$(FUZZDIR),$(FUZZ_SETUP_ENV),$(FUZZ_SETUP_OPTS),,--suite fuzz)

check-format:
	@echo "=== check: format ==="
	@mkdir -p $(dir $(FORMATLOG)); \
	if CLANG_FORMAT=$(CLANG_FORMAT) scripts/check-format; then r=OK; \
	else r=FAIL; fi; \
	echo "{\"name\": \"check-format\", \"result\": \"$$r\"}" > $(FORMATLOG); \
	[ $$r = OK ]

format: setup
	@dirs=$$(for d in $(FORMAT_DIRS); do [ -d $$d ] && echo $$d; done); \
	[ -z "$$dirs" ] || find $$dirs -type f \( -name '*.c' -o -name '*.h' \) \
		-print0 | xargs -0 -r $(CLANG_FORMAT) -i

clean:
	rm -rf $(BUILDDIR) $(ASANDIR) $(TSANDIR) $(FUZZDIR) $(dir $(FORMATLOG))
