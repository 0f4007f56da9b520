# corral build. `make` builds build/corral; `make run` and `make test` install what is missing first.
# SANITIZE=address,undefined builds everything with ASan+UBSan into build/san/ and runs the same tests;
# SANITIZE=thread (TSan) builds into build/san-thread/.

CC ?= cc
PKGS := libh2o-evloop libmemcached zlib libbrotlienc libbrotlidec yaml-0.1 openssl jansson
TEST_PKGS := cunit libcurl zlib libbrotlidec jansson

ifeq ($(SANITIZE),)
BUILD := build
SANFLAGS :=
OPT := -O2
else
BUILD := build/san$(if $(findstring thread,$(SANITIZE)),-thread)
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT := -O1
export LSAN_OPTIONS := suppressions=$(abspath tests/lsan.supp):print_suppressions=0
export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS := halt_on_error=1:second_deadlock_stack=1
# e2e windows that a sanitized corral is too slow for are stretched by this factor (harness_time_scale)
export CORRAL_E2E_TIME_SCALE := $(if $(findstring thread,$(SANITIZE)),4,1)
export CORRAL_E2E_TSAN := $(if $(findstring thread,$(SANITIZE)),1,0)
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS = $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

# h2o's headers change struct layouts with H2O_USE_LIBUV; Debian's evloop build needs it set to 0 and pkg-config
# does not say so. Asserts stay on: NDEBUG is never defined.
CFLAGS := -std=gnu11 -g $(OPT) -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
          -DH2O_USE_LIBUV=0 -D_GNU_SOURCE -Iinclude $(SANFLAGS)
LDFLAGS := $(SANFLAGS)
LIBS = $(PKG_LIBS) -lpthread -lm

SRCS := $(wildcard sidecar/*.c sidecar/*/*.c)
LIB_SRCS := $(filter-out sidecar/main.c,$(SRCS))
LIB_OBJS := $(patsubst sidecar/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
MAIN_OBJ := $(BUILD)/obj/main.o
UNIT_SRCS := $(wildcard tests/unit/*.c tests/unit/*/*.c)
E2E_SRCS := $(wildcard tests/e2e/*.c)
HDRS := $(wildcard include/corral/*/*.h sidecar/*/*.h)

.PHONY: all deps run test unit e2e bench bench-store bench-purge clean asan soak layers helm-test
all: $(BUILD)/corral

deps:
	@tools/install-deps.sh

$(BUILD)/obj/%.o: sidecar/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

# the status page is embedded by the assembler (.incbin, status_page.c): rebuild its object when the page changes
$(BUILD)/obj/admin/status_page.o: sidecar/admin/status_page.html

$(BUILD)/libcorral.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/corral: $(MAIN_OBJ) $(BUILD)/libcorral.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/unit_tests: $(UNIT_SRCS) $(wildcard tests/unit/*.h) $(BUILD)/libcorral.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(PKG_CFLAGS) $(TEST_CFLAGS) -o $@ $(UNIT_SRCS) $(BUILD)/libcorral.a $(LIBS) $(TEST_LIBS)

$(BUILD)/e2e_tests: $(E2E_SRCS) $(wildcard tests/e2e/*.h) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) -o $@ $(E2E_SRCS) $(TEST_LIBS) -lpthread

unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

e2e: $(BUILD)/corral $(BUILD)/e2e_tests
	CORRAL_BIN=$(abspath $(BUILD)/corral) $(BUILD)/e2e_tests

layers:
	tools/check-layers.py --self-test

test: deps
	tools/check-layers.py --self-test
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory e2e
	$(MAKE) --no-print-directory fuzz-regress
	$(MAKE) --no-print-directory helm-test

# The Helm chart (helm/corral) and the Dockerfile, offline: lint, render, schema-validate, `corral -t` on every rendered
# corral.yaml, the image's shared-library packages (tests/helm/run.sh; tools/install-helm.sh brings helm).
# Its Dockerfile check reads the plain build/corral, the image's binary, also when SANITIZE is set.
helm-test: $(BUILD)/corral
	@[ -x build/corral ] || $(MAKE) --no-print-directory SANITIZE= all
	CORRAL_BIN=$(abspath $(BUILD)/corral) IMAGE_BIN=$(abspath build/corral) tests/helm/run.sh

run: deps
	$(MAKE) --no-print-directory all
	tools/run-demo.sh $(BUILD)/corral

# Benchmarks, not tests. `make bench BENCH_ARGS="--json out.json"`; tools/install-deps.sh --bench adds nginx, its
# brotli modules and Varnish, which the default install leaves out.
bench:
	@tools/install-deps.sh --bench
	$(MAKE) --no-print-directory all $(BUILD)/bare_h2o
	BENCH_BARE=$(BUILD)/bare_h2o tools/bench/run.sh $(BUILD)/corral $(BENCH_ARGS)

# The libh2o ceiling the bench measures beside corral: a static buffer served by a bare h2o handler.
$(BUILD)/bare_h2o: tools/bench/bare_h2o.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(PKG_LIBS)

$(BUILD)/bench_store: tools/bench/bench_store.c tools/bench/bench_common.h $(BUILD)/libcorral.a $(HDRS)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(BUILD)/libcorral.a $(LIBS)

bench-store: deps
	$(MAKE) --no-print-directory $(BUILD)/bench_store
	$(BUILD)/bench_store $(BENCH_STORE_ARGS)

$(BUILD)/bench_purge: tools/bench/bench_purge.c tools/bench/bench_common.h $(BUILD)/libcorral.a $(HDRS)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(BUILD)/libcorral.a $(LIBS)

# A tag purge of 10,000 of 1,000,000 objects while hits run on the other core (issue 5's benchmark).
bench-purge: deps
	$(MAKE) --no-print-directory $(BUILD)/bench_purge
	$(BUILD)/bench_purge $(BENCH_PURGE_ARGS)

asan:
	$(MAKE) SANITIZE=address,undefined test

# Not a test and not in CI: SOAK_S seconds of mixed traffic and abusive clients against $(BUILD)/corral, with RSS every
# 30 s; fails when a request got an outcome it should not, corral crashed, or RSS was not flat (tools/soak/soak.py).
SOAK_S ?= 600
soak: deps
	$(MAKE) --no-print-directory $(BUILD)/corral $(BUILD)/soak_load
	/usr/bin/python3 tools/soak/soak.py --corral $(BUILD)/corral --load $(BUILD)/soak_load --seconds $(SOAK_S)

$(BUILD)/soak_load: tools/soak/soak_load.c
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags libcurl) -o $@ $< $(shell pkg-config --libs libcurl)

clean:
	rm -rf build

# libFuzzer targets: `make fuzz` (FUZZ_S seconds each), `make fuzz-build`, `make fuzz-regress` (see the file).
include tests/fuzz/fuzz.mk
