package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestConfig_VotersOddFromOneToSeven(t *testing.T) {
	for _, n := range []int{1, 3, 5, 7} {
		cfg := validConfig()
		cfg.Voters = n
		if err := cfg.Validate(); err != nil {
			t.Errorf("voters %d: Validate() = %v, want nil", n, err)
		}
	}
	rejected := map[int]string{2: "is even", 4: "is even", 6: "is even", 8: "outside 1..7", 9: "outside 1..7", -1: "outside 1..7"}
	for n, want := range rejected {
		cfg := validConfig()
		cfg.Voters = n
		err := cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("voters %d: Validate() = %v, want ErrInvalidConfig", n, err)
			continue
		}
		if !strings.Contains(err.Error(), "voters:") || !strings.Contains(err.Error(), want) {
			t.Errorf("voters %d: Validate() = %q, want it to name voters and say %q", n, err, want)
		}
	}
}
