# hopcheck: build, test and benchmark. Most targets need root (network
# namespaces, iptables, BPF); run them as root or with sudo.

GO       ?= go
BIN      := bin/hopcheck
PKGS     := ./...
# VM names the Multipass instance for the vm-* targets and `make test VM=...`.
VM       ?= hopcheck
IMAGE    ?= 24.04

.PHONY: all build deps cni-plugins crictl test unit library bench soak lint generate vm vm-shell vm-destroy vm-test kernel-matrix clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/hopcheck

# deps: what building scenarios and the tests need beyond Go, installed with
# apt-get only when missing: iptables (scenario rules and checks),
# iproute2 (tests compare hopcheck's build with the tutorials' ip recipe),
# and for `run --kernel` qemu-system-x86 and busybox-static (the guest's
# shell and modprobe).
deps:
	@if ! command -v iptables >/dev/null || ! command -v ip >/dev/null || ! command -v nft >/dev/null || \
	    ! command -v qemu-system-x86_64 >/dev/null || ! command -v busybox >/dev/null; then \
		command -v apt-get >/dev/null || { echo "make deps: install iptables, iproute2, nftables, qemu-system-x86 and busybox-static with your package manager" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iptables iproute2 nftables qemu-system-x86 busybox-static >/dev/null; \
	fi

# test: the project's tests (unit + privileged integration, race detector),
# then the scenario library end to end. With VM=NAME the library runs in that
# Multipass VM instead (see README).
ifeq ($(origin VM),command line)
test: build
	$(BIN) run --vm $(VM) --keep-vm scenarios/
else
test: deps build cni-plugins crictl
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(BIN) run scenarios/
endif

# cni-plugins: the CNI reference plugins (pinned in internal/realnode) that
# the real-runtime tests drive, built once into the user's cache directory
# (or $HOPCHECK_CNI_PLUGINS); tests build them themselves when missing.
cni-plugins:
	$(GO) run ./internal/realnode/cniplugins

# crictl: crictl from cri-tools (pinned in internal/realnode), which the
# CRI node's tests run and hopcheck's cri:NAME is tested with, built once
# into the user's cache directory (or $HOPCHECK_CRICTL); tests build it
# themselves when missing.
crictl:
	$(GO) run ./internal/realnode/crictlbuild

# unit: the tests that need no root.
unit:
	$(GO) test -count=1 -short $(PKGS)

# library: the scenario library with a report (the main job).
library: deps build
	$(BIN) run scenarios/

# bench: the speed goals of issue 2 and the tracing overhead of issue 3,
# each benchmark once (a few minutes on 2 cores; the N = 500 shell recipe
# is most of it), then the table of figures and goals. Needs root, ip and
# ping (iputils-ping). Everything it makes lives in its own namespaces and
# temporary files, removed when it ends.
bench: build
	@out=$$(mktemp) && trap 'rm -f "$$out" "$$out.rc"' EXIT && \
	{ $(GO) test -run '^$$' -bench . -benchtime=1x -count=1 -timeout 60m \
		./harness/runner/ ./trace/ 2>&1; echo $$? >"$$out.rc"; } | tee "$$out" && \
	awk -f harness/runner/testdata/benchtable.awk "$$out" && \
	exit $$(cat "$$out.rc")

# soak: the library traced SOAK_ROUNDS times, SOAK_AT_ONCE runs at once,
# with a CPU hog on every core (stress-ng when installed): any FAIL is a
# false one, and fails the soak. Prints incomplete traces and lost events.
SOAK_ROUNDS  ?= 20
SOAK_AT_ONCE ?= 3
soak: build
	harness/runner/testdata/soak.sh $(SOAK_ROUNDS) $(SOAK_AT_ONCE)

lint:
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 $(PKGS)

# generate: rebuild the BPF objects (needs clang, llvm, libbpf-dev, bpftool).
generate:
	$(GO) generate ./bpf/...

vm: build
	$(BIN) vm up $(VM) --image $(IMAGE)

vm-shell:
	$(BIN) vm shell $(VM)

vm-destroy:
	$(BIN) vm down $(VM)

# vm-test: the library against a real Multipass VM (needs multipass; not
# part of CI here).
vm-test: build
	$(BIN) run --vm $(VM) --image $(IMAGE) scenarios/

# kernel-matrix: the library, traced, under Debian's cloud kernels 5.10,
# 6.1 and 6.12 in qemu (run --kernel), on each tc attach path they have,
# with a table. The kernels are fetched once through a private apt state
# into .cache/kernels (KERNEL_CACHE) and reused from there.
kernel-matrix: deps build
	multipass/qemu/kernel-matrix.sh

clean:
	rm -rf bin
