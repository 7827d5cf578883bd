#!/usr/bin/env bash
# Regenerates skjold.pb.go and skjold_grpc.pb.go from skjold.proto.
# The protoc plugins are pinned and installed into plugins/proto/.bin when missing or of another version.
# protoc itself comes from the system (Debian: protobuf-compiler, which also ships
# /usr/include/google/protobuf/timestamp.proto).
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$here/.bin"
mkdir -p "$bin"

need() { # need BINARY VERSION PACKAGE
	local b="$bin/$1" want="${2#v}"
	if [[ -x "$b" ]] && "$b" --version 2>/dev/null | grep -q "[ v]$want\$"; then
		return
	fi
	echo "installing $3@$2" >&2
	GOBIN="$bin" GOFLAGS=-mod=mod go install "$3@$2"
}
need protoc-gen-go "$PROTOC_GEN_GO_VERSION" google.golang.org/protobuf/cmd/protoc-gen-go
need protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION" google.golang.org/grpc/cmd/protoc-gen-go-grpc

command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }

include=()
for d in /usr/include /usr/local/include; do
	[[ -f "$d/google/protobuf/timestamp.proto" ]] && include+=("-I$d")
done

cd "$here"
PATH="$bin:$PATH" protoc -I. "${include[@]}" \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	skjold.proto
echo "generated $(ls "$here"/*.pb.go | xargs -n1 basename | tr '\n' ' ')" >&2
