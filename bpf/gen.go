package bpf

// One little-endian object serves amd64 and arm64 (and every other
// little-endian GOARCH). -type event generates TraceEvent, the Go mirror of
// struct event, so the reader can check its layout against the C one.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -type event Trace trace.c -- -I.
