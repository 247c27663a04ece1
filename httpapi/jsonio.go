package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// internalErrorBody is sent when a response cannot be encoded.
var internalErrorBody = []byte(`{"error":"Internal server error"}`)

// writeJSON writes v as the JSON body of the response. SetBody copies the
// bytes, so nothing here refers to a buffer after the call.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = fasthttp.StatusInternalServerError, internalErrorBody
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// decodeJSON decodes a required JSON object body into v. It rejects with a
// 400 that names the problem: a body that is not an object or not UTF-8,
// trailing data, and unknown, repeated or wrongly capitalised fields. A \u
// escape of half a surrogate pair is rejected too.
func decodeJSON(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return fail(ErrBadRequest, "Request body is empty; send a JSON object")
	}
	return decodeObject(trimmed, v)
}

// decodeOptionalJSON is decodeJSON for routes whose body may be empty; an
// empty body leaves v unchanged.
func decodeOptionalJSON(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	return decodeObject(trimmed, v)
}

// decodeObject decodes with encoding/json and then checks what it lets
// pass: it replaces invalid UTF-8 and lone surrogates with U+FFFD, matches
// field names in any letter case and keeps the last of repeated fields.
func decodeObject(body []byte, v any) error {
	if body[0] != '{' {
		return fail(ErrBadRequest, "Request body must be a JSON object")
	}
	if !utf8.Valid(body) {
		return fail(ErrBadRequest, "Request body is not valid UTF-8 (invalid byte at offset %d); encode the text as UTF-8",
			invalidUTF8Offset(body))
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(ErrBadRequest, "%s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(ErrBadRequest, "Invalid JSON: unexpected data after the JSON object")
	}
	if err := checkSurrogateEscapes(body); err != nil {
		return err
	}
	return checkFieldNames(body, reflect.TypeOf(v))
}

// invalidUTF8Offset returns the offset of the first byte of body that does
// not start a valid UTF-8 sequence.
func invalidUTF8Offset(body []byte) int {
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(body)
}

// checkSurrogateEscapes rejects a \u escape of a UTF-16 surrogate that is
// not half of a high-low pair. body must be valid JSON.
func checkSurrogateEscapes(body []byte) error {
	inString := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString:
			high, ok := surrogateEscape(body, i)
			if !ok {
				i++ // Skip the escaped byte, which may be a quote.
				continue
			}
			low, pair := surrogateEscape(body, i+6)
			if high >= 0xDC00 || !pair || low < 0xDC00 {
				return fail(ErrBadRequest, "Invalid JSON: the escape %s at byte %d is half of a UTF-16 surrogate pair; "+
					"send the whole pair or the character itself", body[i:i+6], i)
			}
			i += 11 // The last byte of the pair; the loop steps past it.
		}
	}
	return nil
}

// surrogateEscape returns the code unit of a \uXXXX escape at body[i:]
// when it is a UTF-16 surrogate (U+D800 to U+DFFF).
func surrogateEscape(body []byte, i int) (uint16, bool) {
	if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
	if err != nil || n < 0xD800 || n > 0xDFFF {
		return 0, false
	}
	return uint16(n), true
}

// checkFieldNames walks the tokens of a body that decoded into a value of
// type t, next to t. It rejects a field repeated in one object, and a key
// that matches a struct field's JSON name only in another letter case.
// Values that decode through json.Unmarshaler or into an interface are
// checked for repeats only.
func checkFieldNames(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	w := fieldWalker{dec: dec}
	return w.value(t, "")
}

type fieldWalker struct {
	dec *json.Decoder
}

// value walks one JSON value at path, which decodes into t (nil when
// unknown).
func (w *fieldWalker) value(t reflect.Type, path string) error {
	tok, err := w.dec.Token()
	if err != nil {
		return fail(ErrBadRequest, "%s", describeJSONError(err))
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	t = walkTarget(t)
	if delim == '[' {
		return w.array(t, path)
	}
	return w.object(t, path)
}

func (w *fieldWalker) object(t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFieldsOf(t)
	} else if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
	}

	seen := make(map[string]struct{})
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return fail(ErrBadRequest, "%s", describeJSONError(err))
		}
		key, _ := tok.(string)
		keyPath := joinFieldPath(path, key)
		if _, repeated := seen[key]; repeated {
			return fail(ErrBadRequest, "Invalid JSON: field %q appears more than once; send each field once", keyPath)
		}
		seen[key] = struct{}{}

		child := elem
		if fields != nil {
			fieldType, found := fields[key]
			if !found {
				return unknownFieldError(fields, path, key)
			}
			child = fieldType
		}
		if err := w.value(child, keyPath); err != nil {
			return err
		}
	}
	_, err := w.dec.Token() // the closing '}'
	return err
}

func (w *fieldWalker) array(t reflect.Type, path string) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	for i := 0; w.dec.More(); i++ {
		if err := w.value(elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	_, err := w.dec.Token() // the closing ']'
	return err
}

// unknownFieldError names key and, when it differs from a field name only
// in letter case, the field name to use instead.
func unknownFieldError(fields map[string]reflect.Type, path, key string) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fail(ErrBadRequest, "Invalid JSON: unknown field %q; field names are case-sensitive, use %q",
				joinFieldPath(path, key), joinFieldPath(path, name))
		}
	}
	return fail(ErrBadRequest, "Invalid JSON: unknown field %q; remove it", joinFieldPath(path, key))
}

func joinFieldPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// walkTarget returns the type whose fields a JSON value fills, after
// pointers, or nil when the value decodes through json.Unmarshaler or into
// an interface, which have no fixed field names.
func walkTarget(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		return nil
	}
	return t
}

// jsonFieldCache maps a struct type to its jsonFieldsOf result.
var jsonFieldCache sync.Map

// jsonFieldsOf returns the JSON names of the fields that encoding/json
// decodes into struct type t, with their types. Fields of embedded structs
// without a name tag count as fields of t unless t has a field of that name.
func jsonFieldsOf(t reflect.Type) map[string]reflect.Type {
	if cached, ok := jsonFieldCache.Load(t); ok {
		return cached.(map[string]reflect.Type)
	}
	fields := make(map[string]reflect.Type)
	collectJSONFields(t, fields, map[reflect.Type]bool{})
	jsonFieldCache.Store(t, fields)
	return fields
}

func collectJSONFields(t reflect.Type, fields map[string]reflect.Type, visited map[reflect.Type]bool) {
	visited[t] = true
	var embedded []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		fieldType := f.Type
		for fieldType.Kind() == reflect.Pointer {
			fieldType = fieldType.Elem()
		}
		if f.Anonymous && name == "" && fieldType.Kind() == reflect.Struct {
			embedded = append(embedded, fieldType)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	// Outer fields hide the fields of embedded structs that have the same
	// name, so embedded structs are read after the outer fields.
	for _, e := range embedded {
		if visited[e] {
			continue
		}
		inner := make(map[string]reflect.Type)
		collectJSONFields(e, inner, visited)
		for name, fieldType := range inner {
			if _, taken := fields[name]; !taken {
				fields[name] = fieldType
			}
		}
	}
}

// describeJSONError turns a decoding error into a sentence that names the
// field or the byte offset.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("Malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		return fmt.Sprintf("Invalid JSON: field %q must be %s, not %s", field, jsonTypeName(typeErr.Type), typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "Malformed JSON: the body ends before the JSON object does"
	}

	// encoding/json reports unknown fields only as text, for example
	// `json: unknown field "x"`.
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field ") {
		return "Invalid JSON: " + msg + "; remove it"
	}
	return "Invalid JSON: " + msg
}

// jsonTypeName names the JSON type that decodes into t.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonTypeName(t.Elem())
	}
	return "a different type"
}
