package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

// Ranges of the server flags that would otherwise weaken a node without a
// word.
const (
	minTimestampWindow = time.Second
	maxTimestampWindow = time.Hour
	maxVoters          = 7
	minDeadNodeTimeout = time.Minute
	// Reverse proxies use a few addresses, so a trusted proxy prefix
	// shorter than these is almost always a mistake such as 0.0.0.0/0.
	minTrustedProxyBitsIPv4 = 8
	minTrustedProxyBitsIPv6 = 32
)

// checkFlags rejects server flags that are out of range before anything is
// created, with an error that names the flag, the value and the range. It
// logs a warning for each broad --trusted-proxies prefix that
// --allow-broad-trusted-proxies lets through.
func (o *serverOptions) checkFlags(logger *slog.Logger) error {
	checks := []func() error{
		o.checkTimestampWindow,
		o.checkVoters,
		o.checkDeadNodeTimeout,
		o.checkStaleness,
		o.checkMachineCache,
		o.checkPprofAddr,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return o.checkTrustedProxies(logger)
}

func (o *serverOptions) checkTimestampWindow() error {
	if o.timestampWindow < minTimestampWindow || o.timestampWindow > maxTimestampWindow {
		return fmt.Errorf("invalid --timestamp-window %s: use %s to %s; it bounds how far a signed request's X-Timestamp may be from this node's clock",
			o.timestampWindow, minTimestampWindow, maxTimestampWindow)
	}
	return nil
}

// checkVoters requires an odd count, because a quorum of n voters is
// n/2+1: n+1 voters, for an odd n, survive no more failures than n do.
func (o *serverOptions) checkMachineCache() error {
	if o.machineCache < 1 || o.machineCache > fsm.MaxMachineCacheEntries {
		return fmt.Errorf("invalid --machine-cache-entries %d: use 1 to %d machines, such as the default %d", o.machineCache, fsm.MaxMachineCacheEntries, fsm.DefaultMachineCacheEntries)
	}
	return nil
}

func (o *serverOptions) checkVoters() error {
	n := o.voters
	switch {
	case n < 1 || n > maxVoters:
		return fmt.Errorf("invalid --voters %d: use an odd number from 1 to %d; further nodes join as non-voters that serve reads",
			n, maxVoters)
	case n%2 == 0:
		return fmt.Errorf("invalid --voters %d: use an odd number from 1 to %d. An even count adds no fault tolerance: "+
			"%d voters need %d for a quorum, so they survive %s, no more than %s",
			n, maxVoters, n, n/2+1, countOf((n-1)/2, "failure"), countOf(n-1, "voter"))
	}
	return nil
}

// countOf writes n and noun, in the plural unless n is 1.
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func (o *serverOptions) checkDeadNodeTimeout() error {
	switch d := o.deadNodeTimeout; {
	case d < 0:
		return fmt.Errorf("invalid --dead-node-timeout %s: use 0 to never remove nodes, or at least %s", d, minDeadNodeTimeout)
	case d > 0 && d < minDeadNodeTimeout:
		return fmt.Errorf("invalid --dead-node-timeout %s: use 0 to never remove nodes, or at least %s; "+
			"a shorter timeout would remove a node from the Raft configuration while it restarts",
			d, minDeadNodeTimeout)
	}
	return nil
}

func (o *serverOptions) checkStaleness() error {
	if o.maxStaleness <= 0 {
		return fmt.Errorf("invalid --max-staleness %s: use a positive duration such as 5s", o.maxStaleness)
	}
	if o.maxClockSkew < 0 {
		return fmt.Errorf("invalid --max-clock-skew %s: use 0 to turn the check off, or a positive duration such as 5s", o.maxClockSkew)
	}
	return nil
}

// checkTrustedProxies rejects a --trusted-proxies prefix shorter than /8
// (IPv4) or /32 (IPv6) unless --allow-broad-trusted-proxies is set: every
// client inside a trusted prefix chooses, through X-Forwarded-For, the
// address that IP allowlists, guardrails and lockout see.
func (o *serverOptions) checkTrustedProxies(logger *slog.Logger) error {
	prefixes, err := guard.ParseCIDRs(o.trustedProxies)
	if err != nil {
		return fmt.Errorf("invalid --trusted-proxies: %w", err)
	}
	for _, prefix := range prefixes {
		minBits := minTrustedProxyBitsIPv6
		if prefix.Addr().Is4() {
			minBits = minTrustedProxyBitsIPv4
		}
		if prefix.Bits() >= minBits {
			continue
		}
		if !o.allowBroadTrustedProxies {
			return withHints(fmt.Errorf("invalid --trusted-proxies %s: the prefix is shorter than /%d, so any client inside it "+
				"could choose the address that IP allowlists and lockout see", prefix, minBits),
				"list only the addresses of your reverse proxies, with prefixes of at least /8 for IPv4 and /32 for IPv6, "+
					"or pass --allow-broad-trusted-proxies to accept this one")
		}
		logger.Warn("broad trusted proxy prefix accepted: clients inside it can choose the address that IP allowlists and lockout see",
			"prefix", prefix.String(), "flag", "--allow-broad-trusted-proxies")
	}
	return nil
}
