package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

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

// decodeJSON decodes a required JSON object body into v. Unknown fields,
// trailing data and a body that is not an object are rejected with a 400
// that names the problem.
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

func decodeObject(body []byte, v any) error {
	if body[0] != '{' {
		return fail(ErrBadRequest, "Request body must be a JSON object")
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(ErrBadRequest, "%s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(ErrBadRequest, "Invalid JSON: unexpected data after the JSON object")
	}
	return nil
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
