// Package hostfault runs Keyward server processes on this host and injects
// the disk faults that containers cannot: a data directory behind a FUSE
// layer whose fsync takes seconds, a size-limited tmpfs that fills up, and
// many restarts of a node.
//
// The tests need root, for the mounts, and the FUSE tests also need
// /dev/fuse. Without them a test skips and names what is missing. They
// build cmd/keyward once per run and talk to the nodes over loopback.
package hostfault
