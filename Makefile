# Two commands for a newcomer: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
APT    := DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: setup demo test tshark chromium bench clean samples fuzz

setup: $(STAMP) tshark

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# pyshark and the conformance tests need Debian's tshark.
tshark:
	@if command -v tshark >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's tshark"; \
		echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
		$(APT) update -qq && $(APT) install -y -qq tshark >/dev/null; \
	else \
		echo "tshark is missing: run 'sudo apt-get install tshark' (Debian/Ubuntu) and try again" >&2; exit 1; \
	fi

# The report test renders report.html in Debian's headless Chromium and looks at it.
chromium:
	@if command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium"; \
		$(APT) update -qq && $(APT) install -y -qq chromium >/dev/null; \
	else \
		echo "chromium is missing: run 'sudo apt-get install chromium' (Debian/Ubuntu) and try again" >&2; exit 1; \
	fi

demo: setup
	$(BIN)/apnstrace analyze sample_pcaps/sequences_site.pcap --mdm-host mdm.example.com:8443 -o demo-report

test: setup chromium
	$(BIN)/python -m pytest -q

samples: $(STAMP)
	$(BIN)/python sample_pcaps/generate.py

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/bench_engine.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache

# Coverage-guided fuzzing (atheris) of the reader and the payload parsers, FUZZ_SECONDS per
# target (not part of `make test`); findings land in fuzz/out/<target>/ (fuzz/README.md).
FUZZ_SECONDS ?= 60
fuzz: setup
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	$(BIN)/python fuzz/seeds.py
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)
