#!/usr/bin/env bash
# kernel-matrix: run the scenario library, traced, under Debian's cloud
# kernels 5.10 (bullseye), 6.1 (bookworm) and 6.12 (trixie) in throwaway
# qemu VMs (hopcheck run --kernel), on every tc attach path each kernel has,
# and print a table. `make kernel-matrix` runs it; it needs root, qemu
# (qemu-system-x86), busybox-static, iptables, dpkg-deb, and the Debian
# archive keyring.
#
# The kernels are fetched with apt-get download through a private sources
# list, state and cache directory under $KERNEL_CACHE (never the system's
# apt configuration) and kept there: later runs use the cached packages
# and touch no network. KERNEL_MIRROR overrides the Debian mirror, which is
# otherwise the one the system's sources use (or deb.debian.org).
#
# `kernel-matrix.sh fetch SUITE...` only fetches and prints the kernels'
# vmlinuz paths (the run --kernel tests use it).
set -euo pipefail

BIN=${BIN:-bin/hopcheck}
CACHE=${KERNEL_CACHE:-.cache/kernels}
SCENARIOS=${SCENARIOS:-scenarios/}
SUITES=${SUITES:-bullseye bookworm trixie}
KEYRING=${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
APT="$CACHE/apt"

# mirror: KERNEL_MIRROR, else the Debian mirror of the system's sources.
mirror() {
	if [ -n "${KERNEL_MIRROR:-}" ]; then echo "$KERNEL_MIRROR"; return; fi
	local m
	m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -v '^[[:space:]]*#' | grep -oE 'https?://[^[:space:]]+/debian/?' | grep -v security | head -n1 || true)
	echo "${m:-http://deb.debian.org/debian}"
}

apt_opts() {
	echo -o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/sources.list.d" \
		-o "Dir::State=$APT/state" -o "Dir::Cache=$APT/cache" \
		-o "Dir::Etc::Preferences=$APT/preferences" -o "Dir::Etc::PreferencesParts=$APT/preferences.d" \
		-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Acquire::Languages=none \
		-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false \
		-o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false \
		-o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false
}

updated=
apt_update() {
	[ -n "$updated" ] && return
	[ -r "$KEYRING" ] || { echo "kernel-matrix: $KEYRING missing: install debian-archive-keyring" >&2; exit 1; }
	mkdir -p "$APT/sources.list.d" "$APT/preferences.d" "$APT/state/lists/partial" "$APT/cache/archives/partial"
	local m s
	m=$(mirror)
	: >"$APT/sources.list"
	for s in $SUITES; do
		echo "deb [signed-by=$KEYRING] $m $s main" >>"$APT/sources.list"
	done
	echo "kernel-matrix: apt-get update ($m: $SUITES), private state in $APT" >&2
	# shellcheck disable=SC2046
	apt-get $(apt_opts) -qq update
	updated=1
}

# fetch SUITE: fetches and unpacks the suite's cloud kernel package once.
fetch() {
	local suite=$1 deb root
	deb=$(ls "$CACHE/$suite"/linux-image-*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		apt_update
		local pkg
		# shellcheck disable=SC2046
		pkg=$(apt-cache $(apt_opts) show "linux-image-cloud-amd64/$suite" |
			sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' | head -n1)
		[ -n "$pkg" ] || { echo "kernel-matrix: no linux-image-cloud-amd64 in $suite" >&2; exit 1; }
		mkdir -p "$CACHE/$suite"
		echo "kernel-matrix: apt-get download $pkg ($suite)" >&2
		# shellcheck disable=SC2046
		(cd "$CACHE/$suite" && apt-get $(apt_opts) -qq download "$pkg/$suite" >&2)
		deb=$(ls "$CACHE/$suite"/linux-image-*.deb | head -n1)
	fi
	root="$CACHE/$suite/root"
	if [ ! -d "$root/boot" ]; then
		rm -rf "$root.tmp" && mkdir -p "$root.tmp"
		dpkg-deb -x "$deb" "$root.tmp" && mv "$root.tmp" "$root"
	fi
}

# kernel SUITE: prints the path of the suite's fetched vmlinuz.
kernel() {
	ls "$CACHE/$1"/root/boot/vmlinuz-* | head -n1
}

# attach_paths RELEASE: clsact everywhere, TCX from 6.6 on.
attach_paths() {
	local major minor
	IFS=. read -r major minor _ <<<"$1"
	if [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 6 ]; }; then
		echo "tcx clsact"
	else
		echo "clsact"
	fi
}

if [ "${1:-}" = fetch ]; then
	shift
	SUITES="$*"
	for suite in $SUITES; do
		fetch "$suite" >&2
		kernel "$suite"
	done
	exit 0
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for suite in $SUITES; do
	fetch "$suite"
done
rows=()
for suite in $SUITES; do
	vmlinuz=$(kernel "$suite")
	rel=${vmlinuz##*/vmlinuz-}
	for attach in $(attach_paths "$rel"); do
		for try in 1 2; do
			report="$out/$suite-$attach.json"
			rm -f "$report"
			echo "kernel-matrix: $rel ($suite), tc attach $attach"
			start=$SECONDS
			rc=0
			timeout "$RUN_TIMEOUT" "$BIN" run --kernel "$vmlinuz" --trace always --tc-attach "$attach" \
				--json "$report" "$SCENARIOS" >"$out/log" 2>&1 || rc=$?
			secs=$((SECONDS - start))
			tail -n 6 "$out/log"
			# A guest kernel panic is the guest's, not the scenarios': one
			# more try, and the table says so.
			if grep -q "the guest kernel panicked" "$out/log" && [ "$try" = 1 ]; then
				echo "kernel-matrix: the guest kernel panicked; trying once more"
				label="$suite $rel (after a panic)"
				continue
			fi
			label=${label:-"$suite $rel"}
			[ "$rc" = 0 ] || cat "$out/log"
			break
		done
		rows+=("$label" "$attach" "$secs" "$report")
		label=
	done
done
echo
go run ./multipass/qemu/internal/kmatrix "${rows[@]}"
