# tests/fuzz/fuzz.mk: libFuzzer targets for the parsers that see outside input (included by the Makefile).
#
# Everything builds with clang into build/fuzz/ (the library objects with coverage, ASan and UBSan; the targets linked
# with libFuzzer), so the normal build and the SANITIZE build are untouched.
#   make fuzz-build       builds build/fuzz/fuzz_<name> for every tests/fuzz/fuzz_<name>.c
#   make fuzz             runs each for FUZZ_S seconds (default 60), one at a time, from tests/fuzz/corpus/<name>/
#                         (read only: new inputs go to build/fuzz/corpus/<name>/); a finding is written to
#                         build/fuzz/findings/<name>/ and fails the target with its path printed; a libFuzzer
#                         dictionary tests/fuzz/<name>.dict is used when there is one
#   make fuzz-regress     runs every target once over each input of its seed corpus (`make test` runs it)
# FUZZ_ARGS adds libFuzzer flags to `make fuzz` (e.g. FUZZ_ARGS=-jobs=2).

FUZZ_CC := clang
FUZZ_S ?= 60
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -g -O1 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
               -DH2O_USE_LIBUV=0 -D_GNU_SOURCE -Iinclude $(FUZZ_SAN)
FUZZ_LIB_OBJS := $(patsubst sidecar/%.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_BINS := $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_NAMES))
# the run-time options of every run: sanitizer reports abort (libFuzzer then saves the input), leaks are findings
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0

.PHONY: fuzz fuzz-build fuzz-regress

$(FUZZ_BUILD)/obj/%.o: sidecar/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libcorral.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_BUILD)/libcorral.a $(HDRS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $< $(FUZZ_BUILD)/libcorral.a $(LIBS)

fuzz-build: $(FUZZ_BINS)

# One target at a time (the machine may be small); the first finding stops the run with its input's path.
fuzz: fuzz-build
	@set -e; for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$n $(FUZZ_BUILD)/findings/$$n; \
	  echo "fuzz: $$n for $(FUZZ_S) s"; \
	  if ! $(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_S) -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
	       -artifact_prefix=$(FUZZ_BUILD)/findings/$$n/ $$(test -f tests/fuzz/$$n.dict && echo -dict=tests/fuzz/$$n.dict) \
	       $(FUZZ_ARGS) $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n \
	       > $(FUZZ_BUILD)/fuzz_$$n.log 2>&1; then \
	    tail -n 60 $(FUZZ_BUILD)/fuzz_$$n.log; \
	    echo "fuzz: $$n FAILED; input(s):"; ls -1 $(FUZZ_BUILD)/findings/$$n/* 2>/dev/null || true; exit 1; \
	  fi; \
	  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' $(FUZZ_BUILD)/fuzz_$$n.log | sed "s/^/fuzz: $$n /"; \
	done

# The seed corpus as a regression test: every input once (-runs=0 only loads, i.e. executes, the corpus).
fuzz-regress: fuzz-build
	@set -e; for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_BUILD)/findings/regress; \
	  if ! $(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_$$n -runs=0 -timeout=10 -artifact_prefix=$(FUZZ_BUILD)/findings/regress/$$n- \
	       tests/fuzz/corpus/$$n > $(FUZZ_BUILD)/regress_$$n.log 2>&1; then \
	    tail -n 60 $(FUZZ_BUILD)/regress_$$n.log; echo "fuzz-regress: $$n FAILED (log $(FUZZ_BUILD)/regress_$$n.log)"; exit 1; \
	  fi; \
	  echo "fuzz-regress: $$n: $$(ls tests/fuzz/corpus/$$n | wc -l) inputs ok"; \
	done
