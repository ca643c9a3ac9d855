# Two commands for a newcomer: `make demo` and `make test`. Everything else is plumbing.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp
TYPINGS = .typings
STUBS   = micropython-rp2-rpi-pico-stubs micropython-stdlib-stubs

.PHONY: demo test unit typecheck bench soak hil clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(TYPINGS)/.stamp: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --target $(TYPINGS) $(STUBS)
	touch $@

demo: $(STAMP)
	$(PY) -m host_tools.demo

test: $(STAMP) typecheck
	$(PY) -m pytest -q -n 2

typecheck: $(TYPINGS)/.stamp
	$(PY) -m mypy --config-file mypy-firmware.ini

# the HIL scenario library on virtual Picos, with the HTML report (docs/hil.md)
hil: $(STAMP)
	$(VENV)/bin/itbpump-hil run hil/scenarios --jobs 2 --report hil/reports

bench: $(STAMP)
	$(PY) bench/run_all.py

soak: $(STAMP)
	$(PY) -m pytest -q -m soak

clean:
	rm -rf $(VENV) $(TYPINGS) .pytest_cache .mypy_cache hil/reports
