# floe — top-level build. Non-recursive: every module is found by wildcard.
#
# CC, CPPFLAGS, CFLAGS and LDFLAGS come from the caller (dpkg-buildflags, a
# cross toolchain, a developer) and are appended to, never replaced.

PKG_CONFIG ?= pkg-config
INSTALL ?= install
PYTHON ?= /usr/bin/python3
CLANG ?= clang
prefix ?= /usr
bindir ?= $(prefix)/bin
sbindir ?= $(prefix)/sbin
sysconfdir ?= /etc
DESTDIR ?=

CFLAGS ?= -O2 -g
FUZZ_TIME ?= 30
FUZZ_RUNS ?= 0

ifeq ($(SANITIZE),1)
B ?= build/san
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
B ?= build/out
SAN_FLAGS =
endif

PKGS = libcbor libzstd libsystemd jansson libmosquitto openssl sqlite3 libpq libcurl zlib
TEST_PKGS = cmocka

# Lazily evaluated: `make check` installs what is missing before these run.
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS))
TEST_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(TEST_PKGS))
TEST_LIBS = $(shell $(PKG_CONFIG) --libs $(TEST_PKGS))

LAKE_DIRS = uploader/parquet uploader/iceberg uploader/catalog uploader/store
MOD_INCLUDES = -Ilib -Iagent -Iboard -Icerts -Iuploader $(LAKE_DIRS:%=-I%)
# The build named in files floe writes (Parquet created_by): git describe, or the caller's.
FLOE_BUILD := $(or $(FLOE_BUILD),$(shell git describe --always --dirty 2>/dev/null),unknown)
# Its date (the agent's floor of plausible reading times): SOURCE_DATE_EPOCH (dpkg-buildpackage
# sets it from the changelog), else the commit's, else now.
FLOE_BUILD_EPOCH := $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),$(shell date +%s))
FLOE_CPPFLAGS = -D_GNU_SOURCE $(MOD_INCLUDES) -DFLOE_BUILD='"$(FLOE_BUILD)"' \
	-DFLOE_BUILD_EPOCH=$(FLOE_BUILD_EPOCH) -MMD -MP
FLOE_CFLAGS = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -fno-strict-aliasing \
	$(SAN_FLAGS) $(PKG_CFLAGS)
FLOE_LDFLAGS = $(SAN_FLAGS)

COMPILE = $(CC) $(FLOE_CPPFLAGS) $(CPPFLAGS) $(CFLAGS) $(FLOE_CFLAGS)
LINK = $(CC) $(CFLAGS) $(FLOE_CFLAGS) $(LDFLAGS) $(FLOE_LDFLAGS)

LIB_SRC = $(wildcard lib/*.c)
LIB_OBJ = $(LIB_SRC:%.c=$(B)/%.o)
LIBFLOE = $(B)/libfloe.a

# agent/ and board/ become libagent.a (everything but main.c) so unit tests
# can link the agent's modules.
AGENT_SRC = $(filter-out agent/main.c,$(wildcard agent/*.c board/*.c))
AGENT_OBJ = $(AGENT_SRC:%.c=$(B)/%.o)
LIBAGENT = $(B)/libagent.a

# certs/ becomes libcerts.a (everything but the two programs' mains).
CERTS_MAIN = certs/floe-ca.c certs/floe-enrolld.c
CERTS_SRC = $(filter-out $(CERTS_MAIN),$(wildcard certs/*.c))
CERTS_OBJ = $(CERTS_SRC:%.c=$(B)/%.o)
LIBCERTS = $(B)/libcerts.a

# The lake writer (Parquet, Iceberg metadata, catalog, storage) becomes
# liblake.a; floe-lake is its CLI.
LAKE_SRC = $(wildcard $(LAKE_DIRS:%=%/*.c))
LAKE_OBJ = $(LAKE_SRC:%.c=$(B)/%.o)
LIBLAKE = $(B)/liblake.a

# uploader/ (everything but the two programs' mains) becomes libuploader.a.
UPLOADER_MAIN = uploader/main.c uploader/floe-lake.c
UPLOADER_SRC = $(filter-out $(UPLOADER_MAIN),$(wildcard uploader/*.c))
UPLOADER_OBJ = $(UPLOADER_SRC:%.c=$(B)/%.o)
LIBUPLOADER = $(B)/libuploader.a

# Every module library (unit tests, replays and benches link them all).
MODLIBS = $(LIBUPLOADER) $(LIBAGENT) $(LIBCERTS) $(LIBLAKE)

TOOLS = $(B)/floe-batch $(if $(wildcard certs/floe-ca.c),$(B)/floe-ca) \
	$(if $(wildcard uploader/floe-lake.c),$(B)/floe-lake)
DAEMONS = $(if $(wildcard agent/main.c),$(B)/floe-agent) \
	$(if $(wildcard certs/floe-enrolld.c),$(B)/floe-enrolld) \
	$(if $(wildcard uploader/main.c),$(B)/floe-uploader)
BINS = $(TOOLS) $(DAEMONS)

UNIT_SRC = $(wildcard tests/unit/test-*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
UNIT_HELPER_SRC = $(wildcard tests/unit/helper-*.c)
UNIT_HELPER_OBJ = $(UNIT_HELPER_SRC:%.c=$(B)/%.o)

FUZZ_SRC = $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_REPLAY = $(FUZZ_SRC:tests/fuzz/%.c=$(B)/tests/replay-%)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)

BENCH_SRC = $(wildcard tests/bench/bench-*.c)
BENCH_BIN = $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)

.PHONY: all check unit system lint fuzz bench soak demo deb install clean deps \
	check-build replay
.DELETE_ON_ERROR:

all: $(LIBFLOE) $(MODLIBS) $(BINS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(COMPILE) -c -o $@ $<

$(LIBFLOE): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBAGENT): $(AGENT_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBCERTS): $(CERTS_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBLAKE): $(LAKE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBUPLOADER): $(UPLOADER_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/floe-uploader: $(B)/uploader/main.o $(LIBUPLOADER) $(LIBLAKE) $(LIBFLOE)
	$(LINK) -o $@ $^ $(PKG_LIBS) -lm

$(B)/floe-lake: $(B)/uploader/floe-lake.o $(LIBLAKE) $(LIBFLOE)
	$(LINK) -o $@ $^ $(PKG_LIBS) -lm

$(B)/floe-ca: $(B)/certs/floe-ca.o $(LIBCERTS) $(LIBFLOE)
	$(LINK) -o $@ $^ $(PKG_LIBS) -lm

$(B)/floe-enrolld: $(B)/certs/floe-enrolld.o $(LIBCERTS) $(LIBFLOE)
	$(LINK) -o $@ $^ $(PKG_LIBS) -lm

$(B)/floe-batch: $(B)/tools/floe-batch.o $(LIBFLOE)
	$(LINK) -o $@ $^ $(PKG_LIBS) -lm

$(B)/floe-agent: $(B)/agent/main.o $(LIBAGENT) $(LIBFLOE)
	$(LINK) -o $@ $^ $(PKG_LIBS) -lm

# Unit tests: one cmocka binary per tests/unit/test-<module>.c.
$(B)/tests/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(COMPILE) $(TEST_CFLAGS) -c -o $@ $<

$(B)/tests/test-%: $(B)/tests/test-%.o $(UNIT_HELPER_OBJ) $(MODLIBS) $(LIBFLOE)
	$(LINK) -o $@ $^ $(TEST_LIBS) $(PKG_LIBS) -lm

# Fuzz harnesses replayed over their seed corpus by a plain driver (make check).
$(B)/tests/replay-%: tests/fuzz/%.c tests/fuzz/replay.c $(MODLIBS) $(LIBFLOE)
	@mkdir -p $(dir $@)
	$(COMPILE) -o $@ tests/fuzz/$*.c tests/fuzz/replay.c $(MODLIBS) $(LIBFLOE) \
		$(LDFLAGS) $(FLOE_LDFLAGS) $(PKG_LIBS) -lm

$(B)/bench/%: tests/bench/%.c $(MODLIBS) $(LIBFLOE)
	@mkdir -p $(dir $@)
	$(COMPILE) -o $@ $< $(MODLIBS) $(LIBFLOE) $(LDFLAGS) $(FLOE_LDFLAGS) $(PKG_LIBS) -lm

deps:
	@scripts/install-deps --if-needed

check-build: $(LIBFLOE) $(MODLIBS) $(BINS) $(UNIT_BIN) $(FUZZ_REPLAY)

# `check` first makes sure every dependency is present, then builds and runs
# unit tests, fuzz-corpus replays and the system tests against real servers.
check: deps
	@$(MAKE) --no-print-directory check-build
	@$(MAKE) --no-print-directory unit replay system

unit: $(UNIT_BIN)
	@scripts/run-unit $(UNIT_BIN)

replay: $(FUZZ_REPLAY)
	@set -e; for r in $(FUZZ_REPLAY); do \
		n=$${r##*/replay-fuzz-}; echo "replay $$n"; \
		$$r tests/fuzz/corpus/$$n; done

system: $(BINS)
	FLOE_BIN=$(CURDIR)/$(B) $(PYTHON) -m pytest -q -p no:cacheprovider tests/system

# libFuzzer with clang: lib/ is rebuilt instrumented under build/fuzz.
FUZZ_CFLAGS = -g -O1 -std=c11 -D_GNU_SOURCE $(MOD_INCLUDES) -Wall -Wextra -Werror \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all $(PKG_CFLAGS)
FUZZ_LIB_OBJ = $(LIB_SRC:%.c=build/fuzz/%.o) $(AGENT_SRC:%.c=build/fuzz/%.o) \
	$(CERTS_SRC:%.c=build/fuzz/%.o) $(LAKE_SRC:%.c=build/fuzz/%.o) \
	$(UPLOADER_SRC:%.c=build/fuzz/%.o)

build/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

build/fuzz/fuzz-%: tests/fuzz/fuzz-%.c $(FUZZ_LIB_OBJ)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) -lm

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@scripts/run-fuzz $(FUZZ_TIME) $(FUZZ_RUNS) $(FUZZ_BIN)

bench: deps
	@$(MAKE) --no-print-directory B=build/bench SANITIZE= $(BENCH_SRC:tests/bench/%.c=build/bench/bench/%) build/bench/floe-batch build/bench/floe-agent \
		build/bench/floe-ca build/bench/floe-enrolld build/bench/floe-lake \
		$(if $(wildcard uploader/main.c),build/bench/floe-uploader)
	@scripts/run-bench build/bench

# Long fault marathons kept out of `make check` (figures go into the issue notes).
soak: deps
	@$(MAKE) --no-print-directory all
	FLOE_BIN=$(CURDIR)/$(B) FLOE_UPLOADER_STORM=1 $(PYTHON) -m pytest -q -p no:cacheprovider \
		tests/system/test_uploader.py tests/system/test_uploader_scale.py -k storm

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo $(B)

# Debian packages of the working tree into build/deb/ (scripts/make-deb --help);
# ARCH=arm64: cross-built into build/deb-arm64/ (docs/packaging.md, "arm64").
deb: deps
	@scripts/make-deb $(if $(ARCH),--arch $(ARCH))

lint:
	@scripts/lint

install: all
	$(INSTALL) -d $(DESTDIR)$(bindir)
	$(INSTALL) -m 0755 $(TOOLS) $(DESTDIR)$(bindir)/
	$(INSTALL) -d $(DESTDIR)$(sbindir)
	$(if $(DAEMONS),$(INSTALL) -m 0755 $(DAEMONS) $(DESTDIR)$(sbindir)/)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
