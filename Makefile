# `make up` runs the product; `make test` runs the whole suite. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up test install bench clean browser

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(VENV)/bin/brain up $(ARGS)

test: $(STAMP) browser
	bash tests/run.sh

# The dashboard test drives Debian's chromium. Installed when we may (root with apt-get);
# otherwise that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the dashboard test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not installed: the dashboard browser test will be skipped"; fi; }

bench: $(STAMP)
	$(VENV)/bin/brain bench bus --json

clean:
	rm -rf $(VENV) .brain-test
