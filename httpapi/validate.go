package httpapi

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward/fsm"
)

// Length limits of names, free text and lists. They are the limits that
// the state machine enforces, checked here first so that a bad value gets
// a 400 naming the field before anything is proposed.
const (
	maxVaultNameLength   = fsm.MaxVaultNameChars
	maxProjectNameLength = fsm.MaxProjectNameChars
	maxSecretNameLength  = fsm.MaxSecretNameChars
	maxMachineNameLength = fsm.MaxMachineNameChars
	maxHostnameLength    = fsm.MaxHostnameChars
	maxTokenNameLength   = fsm.MaxTokenNameChars
	maxPurposeLength     = fsm.MaxPurposeChars
	maxReasonLength      = fsm.MaxReasonChars
	maxLabelLength       = fsm.MaxLabelChars
	maxFieldNameLength   = fsm.MaxSecretNameChars
	maxStructuredFields  = fsm.MaxFieldNames
	maxAllowlistEntries  = fsm.MaxAllowlistEntries
	maxGrantIDs          = fsm.MaxGrants
	maxTokenScopeVaults  = 100
)

// checkName validates a required name of 1 to max characters.
func checkName(field, name string, max int) error {
	if name == "" {
		return fail(ErrBadRequest, "%s is required", field)
	}
	return checkText(field, name, max)
}

// checkText validates optional text of at most max characters: valid
// UTF-8, no leading or trailing white space, and no control (Cc) or format
// (Cf) characters. Format characters include the bidirectional controls
// such as U+202E, which make a name display differently from what it is,
// and the zero-width characters, which make two names look the same.
func checkText(field, text string, max int) error {
	if !utf8.ValidString(text) {
		return fail(ErrBadRequest, "%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(text); n > max {
		return fail(ErrBadRequest, "%s is %d characters long; the maximum is %d", field, n, max)
	}
	if strings.TrimSpace(text) != text {
		return fail(ErrBadRequest, "%s %q has leading or trailing white space; remove it", field, clip(text))
	}
	for i, r := range text {
		switch {
		case unicode.Is(unicode.Cc, r):
			return fail(ErrBadRequest, "%s contains the control character %U at byte %d; remove it", field, r, i)
		case unicode.Is(unicode.Cf, r):
			return fail(ErrBadRequest, "%s contains the invisible format character %U at byte %d; remove it", field, r, i)
		}
	}
	return nil
}
