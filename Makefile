# ordersync — top-level Makefile: drives the extension (src/extension) and
# the relay (src/relay), each with its own Makefile, the way pg_repack keeps
# lib/ and bin/ apart.
#
#   make            build both parts (one line per part; V=1: every command)
#   make install    install the extension and ordersyncd (as root)
#   make installcheck  the regression and isolation suites against a running
#                   server (PGHOST, PGPORT, PGUSER: a superuser; the
#                   extension installed where that server looks)
#   make deb        Debian packages postgresql-15-ordersync and ordersyncd in dist/
#   make demo       throwaway cluster + a scripted flash sale, ends by itself
#   make test       every suite on a throwaway cluster; ends "N passed, N failed"
#   make bench      benchmarks (ratios measured side by side)
#   make fuzz       long fuzzing run of the relay's parser
#   make deps       install missing Debian packages (idempotent)

PG_CONFIG ?= pg_config
PARTS := src/extension $(wildcard src/relay)

# Quiet by default, as PostgreSQL's own `make -s`: a line per part, and the
# compilers' warnings and errors (on stderr) as they come. V=1: every command.
ifeq ($(V),1)
SUB := $(MAKE) --no-print-directory
say = :
else
SUB := $(MAKE) -s --no-print-directory
say = echo
endif

.PHONY: all install installcheck deb deps demo test bench fuzz clean

all:
	+@for d in $(PARTS); do $(say) "  BUILD    $$d"; $(SUB) -C $$d PG_CONFIG=$(PG_CONFIG) || exit 1; done

install: all
	+@for d in $(PARTS); do $(say) "  INSTALL  $$d"; $(SUB) -C $$d PG_CONFIG=$(PG_CONFIG) install >/dev/null || exit 1; done

# As PGXS's installcheck (REGRESS, then ISOLATION): pg_regress and
# pg_isolation_regress with the server's psql against the server that
# PGHOST/PGPORT/PGUSER name; they create (dropping first) their databases,
# ordersync_regress and ordersync_isolation. The server needs what
# scripts/cluster.sh sets up: wal_level = logical, max_prepared_transactions
# > 0, wal2json among output_plugin_libraries.
PGXS_DIR = $(dir $(shell $(PG_CONFIG) --pgxs))..
PG_BINDIR = $(shell $(PG_CONFIG) --bindir)
installcheck:
	$(PGXS_DIR)/test/regress/pg_regress --bindir='$(PG_BINDIR)' \
		--inputdir=test/regress --outputdir=test/regress \
		--dbname=ordersync_regress --schedule=test/regress/schedule
	$(PGXS_DIR)/test/isolation/pg_isolation_regress --bindir='$(PG_BINDIR)' \
		--inputdir=test/isolation --outputdir=test/isolation/output_iso \
		--dbname=ordersync_isolation --schedule=test/isolation/schedule

deb: deps
	@scripts/deb.sh

deps:
	@scripts/deps.sh

demo: deps
	@$(MAKE) --no-print-directory install
	@scripts/demo.sh

test: deps
	@$(MAKE) --no-print-directory install
	@scripts/test.sh

bench: deps
	@$(MAKE) --no-print-directory install
	@bench/run.sh

fuzz: deps
	@$(MAKE) --no-print-directory all
	@test/fuzz/run.sh long

clean:
	@for d in $(PARTS); do $(MAKE) --no-print-directory -C $$d clean; done
	rm -rf test/regress/results test/regress/regression.* test/isolation/output_iso dist
