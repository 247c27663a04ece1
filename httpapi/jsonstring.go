package httpapi

import (
	"sync"
	"unicode/utf8"
)

// maxJSONStringGrowth is the maximum number of bytes appendJSONString
// writes per input byte. A control byte, '<', '>', '&' or a byte of
// invalid UTF-8 becomes six.
const maxJSONStringGrowth = 6

// appendJSONString appends s as a quoted JSON string, byte for byte as
// encoding/json.Marshal encodes a string. A backslash precedes '"' and
// '\\', and \b, \f, \n, \r and \t are written by name. Other control
// bytes and '<', '>', '&' become \u00XX (lower-case hex), U+2028 and U+2029
// become \u2028 and \u2029, and each byte of invalid UTF-8 becomes \ufffd.
// It takes bytes as well as strings, so a secret value is encoded without
// being copied into a string.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			esc := jsonEscapes[c]
			if esc == 0 {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			if esc == 'u' {
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			} else {
				dst = append(dst, '\\', esc)
			}
			i++
			start = i
			continue
		}

		r, size := decodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// decodeRune is utf8.DecodeRune for either form of text. A string is
// converted only in pieces of at most utf8.UTFMax bytes, which the compiler
// keeps on the stack.
func decodeRune[T string | []byte](s T) (rune, int) {
	return utf8.DecodeRuneInString(string(s[:min(len(s), utf8.UTFMax)]))
}

// jsonEscapes maps each ASCII byte to how appendJSONString writes it: 0 for
// itself, 'u' for \u00XX, or the letter that follows the backslash.
var jsonEscapes = func() [utf8.RuneSelf]byte {
	var t [utf8.RuneSelf]byte
	for c := range 0x20 {
		t[c] = 'u'
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = 'b', 'f', 'n', 'r', 't'
	t['"'], t['\\'] = '"', '\\'
	t['<'], t['>'], t['&'] = 'u', 'u', 'u'
	return t
}()

// valueBuffer holds the plaintext of a secret and the response body that
// carries it, for one request.
type valueBuffer struct {
	plain, body []byte
}

// valueBufferSize fits a 12 KiB secret value and its JSON encoding in the
// common case. Larger encodings grow the buffer.
const valueBufferSize = 16 << 10

// maxPooledValueBuffer bounds the buffers kept for reuse, so that one
// heavily escaped value does not pin a large buffer.
const maxPooledValueBuffer = 128 << 10

var valueBuffers = sync.Pool{New: func() any {
	return &valueBuffer{plain: make([]byte, 0, valueBufferSize), body: make([]byte, 0, valueBufferSize)}
}}

func acquireValueBuffer() *valueBuffer {
	return valueBuffers.Get().(*valueBuffer)
}

// releaseValueBuffer clears the plaintext and the encoded body, so that no
// secret stays in a pooled buffer, and returns buf to the pool. fasthttp
// copied the body into its own response buffer before this runs. Users
// store what they wrote back into buf, so clearing up to the length covers
// every byte written.
func releaseValueBuffer(buf *valueBuffer) {
	clear(buf.plain)
	clear(buf.body)
	if cap(buf.plain) > maxPooledValueBuffer || cap(buf.body) > maxPooledValueBuffer {
		return
	}
	buf.plain, buf.body = buf.plain[:0], buf.body[:0]
	valueBuffers.Put(buf)
}
