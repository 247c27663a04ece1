#!/bin/sh
# Creates the Docker volume that contains the secrets of the Compose cluster:
# the root key, a CA, a certificate for each of node1, node2 and node3 (for
# the HTTPS API and mutual TLS between nodes) and the gossip encryption key.
#
#   deploy/cluster-secrets.sh [VOLUME] [IMAGE]
#
# VOLUME defaults to $KEYWARD_SECRETS_VOLUME or keyward-secrets, IMAGE to
# $KEYWARD_IMAGE or keyward:latest. KEYWARD_TLS_HOSTS lists the addresses
# the node certificates cover besides localhost and 127.0.0.1 (default: the
# node addresses in compose.yaml). The CA certificate is copied to
# $KEYWARD_CA_OUT (default ./keyward-ca.pem) so that clients on the host can
# verify the nodes: keyward --ca-file keyward-ca.pem --addr https://127.0.0.1:8201
#
# The files are generated inside the image, so they belong to the image's
# user (65532) with mode 0600, which the server requires of the root key.
# Every node mounts the whole volume, CA key included: this suits one
# Docker host. For production, keep ca-key.pem offline and give each node
# only its own certificate and key.
#
# Back the root key up outside Docker, because with the volume alone,
# losing the Docker host loses every secret:
#   docker create --name keyward-backup -v keyward-secrets:/data keyward:latest
#   docker cp keyward-backup:/data/root-key ./root-key.backup
#   docker rm keyward-backup
set -eu

volume=${1:-${KEYWARD_SECRETS_VOLUME:-keyward-secrets}}
image=${2:-${KEYWARD_IMAGE:-keyward:latest}}
hosts=${KEYWARD_TLS_HOSTS:-172.28.0.11,172.28.0.12,172.28.0.13}
ca_out=${KEYWARD_CA_OUT:-./keyward-ca.pem}

if docker volume inspect "$volume" >/dev/null 2>&1; then
	echo "cluster-secrets.sh: error: volume $volume already exists; a new root key would make every stored secret unreadable" >&2
	echo "hint: to start over, remove the cluster and the volume: docker volume rm $volume" >&2
	exit 1
fi

docker volume create "$volume" >/dev/null
# Mounting the new volume on the image's /data gives it that folder's owner
# (65532) and mode.
docker run --rm --volume "$volume:/data" "$image" root-key new /data/root-key
docker run --rm --volume "$volume:/data" "$image" cluster tls-init \
	--out /data/tls --nodes node1,node2,node3 --hosts "$hosts"

helper=$(docker create --volume "$volume:/data" "$image")
docker cp "$helper:/data/tls/ca.pem" "$ca_out"
docker rm "$helper" >/dev/null
echo "secrets volume: $volume; CA certificate: $ca_out"
