// Package slowfs mounts a FUSE passthrough of a host directory whose fsync
// calls can be delayed at run time, so that tests can run a Keyward node
// on a disk that stalls on every flush.
//
// It serves the test process's own mount with github.com/hanwen/go-fuse/v2
// and needs root and /dev/fuse. Every other operation goes
// straight to the backing directory. It is test-only: nothing in the
// server imports it.
package slowfs
