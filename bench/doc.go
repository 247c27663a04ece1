// Package bench measures Keyward as a user would: it drives signed machine
// reads, admin writes and registrations against a running cluster (or one
// it starts), and builds large states in-process to measure memory,
// snapshots and restarts.
//
// Every scenario also measures the host's own floor in the same run. The
// floor is the CPU time of one Ed25519 verification (crypto/ed25519,
// curve25519-voi, and curve25519-voi with an expanded public key, which is
// the server's path) and the fsync time of the data disk. Results are
// reported as ratios to that floor, so figures from different machines
// compare.
//
// Latency is recorded in HDR histograms. Closed-loop load runs a fixed
// number of connections back to back. Open-loop load sends at a fixed
// rate and measures each request from the moment it was scheduled to be
// sent, not from when a free connection sent it, so a stalled server is
// charged for every request that waited behind the stall (the correction
// for coordinated omission).
package bench
