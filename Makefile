# The two README commands: `make demo` and `make test`. Each sets up .venv/ on a fresh machine first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.p2med-installed
DEMO_OUT ?= runs/demo
# Debian packages the tests use (installed only when missing; needs root or sudo)
# chromium: the clinician page's test (Playwright); postgresql: the serving store's PostgreSQL test
DEB_PACKAGES ?= chromium postgresql
# Debian's Orthanc + DICOMweb plugin unpacked (apt-get download + dpkg -x): de-identification oracle, serving's PACS
ORTHANC_DIR ?= .cache/orthanc

.PHONY: demo test test-fast install sysdeps orthanc fonts clean

demo: $(STAMP) fonts
	$(VENV)/bin/p2med demo --out $(DEMO_OUT)

test: $(STAMP) sysdeps orthanc fonts
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# the CPU build of torch lies on this machine's disk; an unpinned torch would pull a multi-GB CUDA build
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[all,dev]'
	touch $(STAMP)

sysdeps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

orthanc:
	sh tests/fetch_orthanc.sh $(ORTHANC_DIR)

# a font with Chinese glyphs for the figures (data card, evaluation report), unpacked without root
fonts: .cache/fonts/wqy-microhei.ttc

.cache/fonts/wqy-microhei.ttc:
	mkdir -p .cache/fonts/deb && cd .cache/fonts/deb && apt-get download fonts-wqy-microhei >/dev/null
	dpkg -x .cache/fonts/deb/fonts-wqy-microhei_*.deb .cache/fonts/deb/root
	cp .cache/fonts/deb/root/usr/share/fonts/truetype/wqy/wqy-microhei.ttc $@.tmp && mv $@.tmp $@
	rm -rf .cache/fonts/deb

clean:
	rm -rf $(VENV) runs build src/*.egg-info .cache
