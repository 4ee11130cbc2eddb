# ordersync — top-level Makefile: drives the extension (src/extension) and
# the relay (src/relay), each with its own Makefile, the way pg_repack keeps
# lib/ and bin/ apart.
#
#   make            build both parts
#   make install    install the extension and ordersyncd (as root)
#   make demo       throwaway cluster + a scripted flash sale, ends by itself
#   make test       every suite on a throwaway cluster; ends "N passed, N failed"
#   make bench      benchmarks (ratios measured side by side)
#   make fuzz       long fuzzing run of the relay's parser
#   make deps       install missing Debian packages (idempotent)

PG_CONFIG ?= pg_config
PARTS := src/extension $(wildcard src/relay)

.PHONY: all install deps demo test bench fuzz clean

all:
	@for d in $(PARTS); do $(MAKE) --no-print-directory -C $$d PG_CONFIG=$(PG_CONFIG) || exit 1; done

install: all
	@for d in $(PARTS); do $(MAKE) --no-print-directory -C $$d PG_CONFIG=$(PG_CONFIG) install >/dev/null || exit 1; done

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
	rm -rf test/regress/results test/regress/regression.* test/isolation/output_iso
