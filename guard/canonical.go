package guard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// AppendCanonical appends the bytes a machine signs to dst and returns the
// extended slice: METHOD ":" PATH ":" TIMESTAMP ":" NONCE ":" hex(sha256(body)).
// TIMESTAMP and NONCE are the header values exactly as sent, and PATH is the
// raw request path without a query. An empty body hashes to the SHA-256 of
// the empty string. With a dst of enough capacity the call does not allocate.
func AppendCanonical(dst, method, path, timestamp, nonce, body []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, ':')
	dst = append(dst, path...)
	dst = append(dst, ':')
	dst = append(dst, timestamp...)
	dst = append(dst, ':')
	dst = append(dst, nonce...)
	dst = append(dst, ':')
	sum := sha256.Sum256(body)
	return hex.AppendEncode(dst, sum[:])
}

// AppendCanonicalDigest is AppendCanonical for a caller that already holds
// the body's SHA-256 (bodySHA256, 32 bytes) and the header values as
// strings, so that the body is not hashed twice. With a dst of enough
// capacity the call does not allocate.
func AppendCanonicalDigest(dst, method []byte, path, timestamp, nonce string, bodySHA256 []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, ':')
	dst = append(dst, path...)
	dst = append(dst, ':')
	dst = append(dst, timestamp...)
	dst = append(dst, ':')
	dst = append(dst, nonce...)
	dst = append(dst, ':')
	return hex.AppendEncode(dst, bodySHA256)
}

// CheckPath rejects a request path that is not in the one canonical form
// that both signer and server use, so that the bytes verified are the bytes
// routed. It returns ErrBadPath for a path that is empty, lacks a leading
// '/', contains a query ('?') or fragment ('#'), contains an empty segment
// ("//"), a dot segment ("/./", "/../", trailing "/." or "/..") in plain or
// percent-encoded form, a malformed percent escape, or a byte outside
// printable ASCII.
func CheckPath(path []byte) error {
	if len(path) == 0 {
		return fmt.Errorf("%w: empty path", ErrBadPath)
	}
	if path[0] != '/' {
		return fmt.Errorf("%w: %q does not start with '/'", ErrBadPath, clip(path))
	}
	if err := checkPathBytes(path); err != nil {
		return err
	}
	return checkSegments(path)
}

// checkPathBytes rejects bytes that cannot appear in a canonical path.
func checkPathBytes(path []byte) error {
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '?':
			return fmt.Errorf("%w: %q has a query string; signed requests carry none",
				ErrBadPath, clip(path))
		case c == '#':
			return fmt.Errorf("%w: %q has a fragment", ErrBadPath, clip(path))
		case c <= 0x20 || c >= 0x7f:
			return fmt.Errorf("%w: %q has byte 0x%02x outside printable ASCII",
				ErrBadPath, clip(path), c)
		case c == '%':
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				return fmt.Errorf("%w: %q has a malformed percent escape",
					ErrBadPath, clip(path))
			}
		}
	}
	return nil
}

// checkSegments rejects empty and dot segments. A trailing '/' (an empty
// last segment) is allowed, so "/" itself is a valid path. A dot segment
// written as "%2e" is rejected too, because a proxy or router that decodes
// it would resolve a different resource from the one that was signed.
func checkSegments(path []byte) error {
	start := 1
	for i := 1; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}

		segment := path[start:i]
		if len(segment) == 0 && i < len(path) {
			return fmt.Errorf("%w: %q has an empty segment (\"//\")", ErrBadPath, clip(path))
		}
		if isDotSegment(segment) {
			return fmt.Errorf("%w: %q has a dot segment", ErrBadPath, clip(path))
		}
		start = i + 1
	}
	return nil
}

// isDotSegment reports whether segment is "." or "..", with each dot
// written literally or as "%2e" in either case.
func isDotSegment(segment []byte) bool {
	dots := 0
	for i := 0; i < len(segment); {
		switch {
		case segment[i] == '.':
			i++
		case i+2 < len(segment) && segment[i] == '%' && segment[i+1] == '2' &&
			(segment[i+2] == 'e' || segment[i+2] == 'E'):
			i += 3
		default:
			return false
		}
		dots++
	}
	return dots == 1 || dots == 2
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// maxQuoted bounds how much of an input value an error message repeats.
const maxQuoted = 80

// clip shortens an input value for an error message, so that a huge or
// hostile value does not end up in full in logs and responses.
func clip(b []byte) string {
	if len(b) <= maxQuoted {
		return string(b)
	}
	return string(b[:maxQuoted]) + "..."
}
