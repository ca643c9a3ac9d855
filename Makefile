# Two commands for a newcomer: `make demo` and `make test`. Everything else is plumbing.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp
TYPINGS = .typings
NODE_STAMP = hil/node_modules/.installed-stamp
# RP2040 test equipment (a MicroPython image and the bootrom, third-party downloads kept outside the
# repository): ../shared/pico when it exists, else whatever $ITBPUMP_PICO_DIR says (docs/rp2040.md)
ITBPUMP_PICO_DIR ?= $(wildcard $(abspath ../shared/pico))
export ITBPUMP_PICO_DIR
STUBS   = micropython-rp2-rpi-pico-stubs micropython-stdlib-stubs

.PHONY: demo test unit typecheck bench bench-month soak hil hil-rp2040 clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(TYPINGS)/.stamp: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --target $(TYPINGS) $(STUBS)
	touch $@

demo: $(STAMP)
	$(PY) -m host_tools.demo

# rp2040js for the emulated RP2040 (hil/package-lock.json); without npm those tests skip
$(NODE_STAMP): hil/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix hil --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the emulated RP2040 tests will be skipped"; fi

test: $(STAMP) typecheck $(NODE_STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

# the pump firmware, then the HIL fixture board's (its own flash root, so its own module names)
typecheck: $(TYPINGS)/.stamp
	$(PY) -m mypy --config-file mypy-firmware.ini
	$(PY) -m mypy --config-file mypy-firmware.ini --no-namespace-packages hil/fixture/main.py hil/fixture/fixture.py

# the HIL scenario library on virtual Picos, with the HTML report (docs/hil.md)
hil: $(STAMP)
	$(VENV)/bin/itbpump-hil run hil/scenarios --jobs 2 --report hil/reports

# the library on the emulated RP2040: hours of wall time, not in make test (docs/rp2040.md section 8)
hil-rp2040: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/itbpump-hil run hil/scenarios --rig rp2040 --jobs 2 --report hil/reports/rp2040

bench: $(STAMP) $(NODE_STAMP)
	$(PY) bench/run_all.py

# peak heap over a 30-day run on the emulated RP2040 (spec section 11): about an hour of wall time
bench-month: $(STAMP) $(NODE_STAMP)
	$(PY) bench/rp2040_month.py

soak: $(STAMP)
	$(PY) -m pytest -q -m soak

clean:
	rm -rf $(VENV) $(TYPINGS) .pytest_cache .mypy_cache hil/reports hil/node_modules
