# txctdb: setup, tests and a demo on a fresh Debian 12 machine (run as root).
#
#   make install   system packages + .venv with the project (idempotent, quiet)
#   make lint      ruff check, ruff format --check, mypy and the import
#                  contracts of pyproject.toml (quiet when clean)
#   make test      lint, the unit tests under trial, then the whole test
#                  suite under pytest
#   make demo      a 3-node cluster on 127.0.0.1-3, driven by Samba's ctdb tool
#   make clean     remove build debris (keeps .venv; `make distclean` removes it)

PYTHON ?= python3
VENV ?= .venv
DEMO_DIR ?= demo-cluster

APT_PACKAGES := libtdb1 libtdb-dev tdb-tools ctdb tshark iproute2 samba smbclient samba-testsuite \
    tmux jq curl nftables gcc libibverbs1 librdmacm1 libibverbs-dev librdmacm-dev
PIP_PACKAGES := twisted zope.interface pyroute2 prometheus_client rich pytest \
    hypothesis smbprotocol treq ruff mypy mypy-zope import-linter matplotlib \
    cffi types-cffi
LINT_PATHS := ctdb tests bench scripts twisted setup.py
# Every test package and top-level test module but the integration suite's,
# whose modules take pytest fixtures that start real clusters: these run
# under trial as well as pytest (tests/test_layout.py checks that they can).
UNIT_TEST_DIRS := $(filter-out tests/integration/,$(sort $(dir \
    $(wildcard tests/*/test_*.py))))
UNIT_TESTS := $(subst /,.,$(patsubst %/,%,$(UNIT_TEST_DIRS)) \
    $(basename $(wildcard tests/test_*.py)))
STAMP := $(VENV)/.txctdb-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all install system-packages lint test demo clean distclean

all: install

install: system-packages $(STAMP)

# Install only what is missing; say nothing when everything is there.  Service
# starts are refused while installing (a temporary policy-rc.d), so that
# Debian's samba package starts no smbd bound to every address's port 445.
system-packages:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" \
	        || missing="$$missing $$p"; \
	done; \
	if ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	    missing="$$missing python3-venv"; \
	fi; \
	if [ -n "$$missing" ]; then \
	    echo "installing system packages:$$missing"; \
	    echo "wireshark-common wireshark-common/install-setuid boolean false" \
	        | $(SUDO) debconf-set-selections; \
	    norc=""; \
	    if [ ! -e /usr/sbin/policy-rc.d ]; then \
	        printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
	        $(SUDO) chmod 755 /usr/sbin/policy-rc.d; norc=1; \
	    fi; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        $$missing; \
	    status=$$?; \
	    if [ -n "$$norc" ]; then $(SUDO) rm -f /usr/sbin/policy-rc.d; fi; \
	    [ $$status = 0 ] || exit $$status; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Editable install in "compat" mode: the default import-hook mode hides
# twisted/plugins/ctdb_plugin.py from twistd (STYLE.md, fact 2).  The
# Makefile is a prerequisite because PIP_PACKAGES lives in it.  The install
# also builds the compiled half of the libtdb binding in place
# (ctdb/database/_tdbc*.so, from _tdbc_build.py, against libtdb-dev).
$(STAMP): setup.cfg setup.py pyproject.toml Makefile ctdb/database/_tdbc_build.py \
        | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q $(PIP_PACKAGES)
	$(VENV)/bin/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@touch $@

# Each tool says nothing when all is well, and every problem otherwise.
lint: install
	@$(VENV)/bin/ruff check --quiet $(LINT_PATHS)
	@$(VENV)/bin/ruff format --check --quiet $(LINT_PATHS)
	@$(VENV)/bin/mypy --no-error-summary ctdb tests
	@$(VENV)/bin/lint-imports --no-cache >/dev/null || $(VENV)/bin/lint-imports --no-cache

test: lint
	$(VENV)/bin/trial --reporter=text $(UNIT_TESTS)
	$(VENV)/bin/python -m pytest -q tests

demo: install
	VENV=$(VENV) DEMO_DIR=$(DEMO_DIR) scripts/demo.sh
	$(SUDO) $(VENV)/bin/python scripts/demo_failover.py

clean:
	@if [ -f $(DEMO_DIR)/cluster.json ] && [ -x $(VENV)/bin/ctdb-cluster ]; then \
	    $(VENV)/bin/ctdb-cluster --dir $(DEMO_DIR) stop; fi
	rm -rf $(DEMO_DIR) build _trial_temp .hypothesis .pytest_cache \
	    .mypy_cache .ruff_cache twisted/plugins/dropin.cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print \
	    | xargs rm -rf

distclean: clean
	rm -rf $(VENV) ctdb/database/_tdbc*.so
