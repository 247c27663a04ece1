#!/bin/sh
# Builds the Keyward container image from this checkout.
#
#   deploy/build-image.sh [TAG]        TAG defaults to keyward:latest
#
# The binary is compiled on the host and copied into a temporary build
# context, because the image starts FROM scratch and no Go toolchain image
# is needed. KEYWARD_CA_BUNDLE names the CA bundle to copy into the image
# (default /etc/ssl/certs/ca-certificates.crt, from Debian's ca-certificates).
set -eu

tag=${1:-keyward:latest}
repo=$(cd "$(dirname "$0")/.." && pwd)
ca_bundle=${KEYWARD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if [ ! -r "$ca_bundle" ]; then
	echo "build-image.sh: error: CA bundle $ca_bundle not found" >&2
	echo "hint: install ca-certificates, or set KEYWARD_CA_BUNDLE to a PEM bundle" >&2
	exit 1
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT INT TERM

(cd "$repo" && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" \
	-o "$context/keyward" ./cmd/keyward)
cp "$ca_bundle" "$context/ca-certificates.crt"
mkdir -m 0700 "$context/data"
cp "$repo/deploy/Dockerfile" "$context/Dockerfile"

docker build --tag "$tag" "$context"
