package audit

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestAddressPolicy_CheckAddr(t *testing.T) {
	cases := []struct {
		addr                   string
		public, private, devOK bool
	}{
		{"203.0.113.10", true, true, true},
		{"2001:db8::1", true, true, true},
		{"127.0.0.1", false, true, true},
		{"::1", false, true, true},
		{"::ffff:127.0.0.1", false, true, true},
		{"10.1.2.3", false, true, false},
		{"172.20.0.1", false, true, false},
		{"192.168.1.1", false, true, false},
		{"100.64.0.1", false, true, false},
		{"fd12::1", false, true, false},
		{"169.254.169.254", false, false, false},
		{"::ffff:169.254.169.254", false, false, false},
		{"64:ff9b::a9fe:a9fe", false, false, false},
		{"fd00:ec2::254", false, false, false},
		{"fe80::1", false, false, false},
		{"0.0.0.0", false, false, false},
		{"224.0.0.1", false, false, false},
		{"100.100.100.200", false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.addr)
			for _, p := range []struct {
				name   string
				policy AddressPolicy
				want   bool
			}{
				{"public only", AddressPolicy{}, tc.public},
				{"allow private", AddressPolicy{AllowPrivate: true}, tc.private},
				{"dev", AddressPolicy{AllowLoopback: true}, tc.devOK},
			} {
				err := p.policy.CheckAddr(ip)
				if (err == nil) != p.want {
					t.Errorf("%s: CheckAddr = %v, want allowed %v", p.name, err, p.want)
				}
				if err != nil && !errors.Is(err, ErrAddressNotAllowed) {
					t.Errorf("%s: error %v does not wrap ErrAddressNotAllowed", p.name, err)
				}
			}
		})
	}
}

func TestAddressPolicy_CheckURL(t *testing.T) {
	cases := []struct {
		name   string
		policy AddressPolicy
		url    string
		want   error
	}{
		{"https public name", AddressPolicy{}, "https://hooks.example.com/x", nil},
		{"http refused", AddressPolicy{}, "http://hooks.example.com/x", ErrInsecureURL},
		{"http with private allowed", AddressPolicy{AllowPrivate: true}, "http://10.0.0.5/x", nil},
		{"literal metadata", AddressPolicy{AllowPrivate: true}, "https://169.254.169.254/latest", ErrAddressNotAllowed},
		{"literal loopback", AddressPolicy{}, "https://127.0.0.1:8443/x", ErrAddressNotAllowed},
		{"dev loopback http", AddressPolicy{AllowLoopback: true}, "http://127.0.0.1:9000/x", nil},
		{"dev localhost http", AddressPolicy{AllowLoopback: true}, "http://localhost:9000/x", nil},
		{"dev public http", AddressPolicy{AllowLoopback: true}, "http://hooks.example.com/x", ErrInsecureURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.CheckURL(tc.url)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("CheckURL(%s) = %v, want %v", tc.url, err, tc.want)
			}
		})
	}
}

func TestConfig_ValidateNamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		field string
	}{
		{"recorder without node", DefaultRecorderConfig().Validate(), "node-id"},
		{"recorder batch", func() error {
			c := DefaultRecorderConfig()
			c.NodeID, c.BatchSize = "n", 5000
			return c.Validate()
		}(), "audit-batch-size"},
		{"delivery attempts", func() error {
			c := DefaultDeliveryConfig()
			c.NodeID, c.MaxAttempts = "n", 0
			return c.Validate()
		}(), "webhook-max-attempts"},
		{"smtp without from", func() error {
			c := DefaultDeliveryConfig()
			c.NodeID, c.SMTP.Addr = "n", "127.0.0.1:25"
			return c.Validate()
		}(), "smtp-from"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, ErrInvalidConfig) || !strings.Contains(tc.err.Error(), tc.field) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig naming %s", tc.err, tc.field)
			}
		})
	}
}
