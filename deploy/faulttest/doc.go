// Package faulttest checks a three-node Keyward cluster in Docker containers
// under network partitions, killed nodes and rolling restarts.
//
// The tests build the image with deploy/build-image.sh, start the nodes with
// the docker CLI on networks they create, and talk to each node through a
// port published on 127.0.0.1. They need a Docker daemon. Without one they
// fail and name the missing daemon, unless KEYWARD_FAULT_TESTS=off is set.
// DESIGN.md explains the workloads and the linearizability model.
package faulttest
