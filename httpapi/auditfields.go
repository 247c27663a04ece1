package httpapi

import (
	"encoding/json"
	"strconv"
)

// maxDirectAuditFields is the maximum number of fields auditFieldsJSON
// encodes without a map. Events with more go through encoding/json.
const maxDirectAuditFields = 16

// auditField is one key and value of an event's structured fields. The
// value is text, unless value is set.
type auditField struct {
	key   string
	text  string
	value any
}

// auditFieldsJSON returns the structured fields of ev together with its
// request id, method, path, body hash and proxy, as one JSON object. The
// bytes are those encoding/json.Marshal gives for the same map, with the
// keys sorted and the request's own values replacing fields of the same
// name. Secret reads and
// authentication failures, whose fields are strings, integers and booleans,
// are encoded without a map or reflection, which keeps the audit record of
// every successful read cheap. Other events go through encoding/json.
func auditFieldsJSON(ev *AuditEvent) []byte {
	var buf [maxDirectAuditFields]auditField
	fields := buf[:0]
	add := func(f auditField) bool {
		for i := range fields {
			if fields[i].key == f.key {
				fields[i] = f
				return true
			}
		}
		if len(fields) == len(buf) {
			return false
		}
		fields = append(fields, f)
		return true
	}

	direct := true
	for k, v := range ev.Fields {
		if !directJSONValue(v) || !add(auditField{key: k, value: v}) {
			direct = false
			break
		}
	}
	direct = direct && add(auditField{key: "requestId", text: ev.RequestID}) &&
		add(auditField{key: "method", text: ev.Method}) && add(auditField{key: "path", text: ev.Path})
	if direct && ev.BodySHA256 != "" {
		direct = add(auditField{key: "bodySha256", text: ev.BodySHA256})
	}
	if direct && ev.ProxyIP != "" {
		direct = add(auditField{key: "proxyIp", text: ev.ProxyIP})
	}
	if !direct {
		return auditFieldsViaMap(ev)
	}

	// An insertion sort suffices for at most maxDirectAuditFields keys.
	for i := 1; i < len(fields); i++ {
		for j := i; j > 0 && fields[j].key < fields[j-1].key; j-- {
			fields[j], fields[j-1] = fields[j-1], fields[j]
		}
	}
	// Room for the usual case, in which nothing needs escaping. A number
	// takes at most 20 digits.
	size := 2
	for _, f := range fields {
		size += len(f.key) + len(f.text) + 6 + 20
	}
	out := make([]byte, 0, size)
	out = append(out, '{')
	for i, f := range fields {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, f.key)
		out = append(out, ':')
		if f.value == nil {
			out = appendJSONString(out, f.text)
		} else {
			out = appendDirectJSONValue(out, f.value)
		}
	}
	return append(out, '}')
}

// directJSONValue reports whether appendDirectJSONValue encodes v as
// encoding/json does.
func directJSONValue(v any) bool {
	switch v.(type) {
	case string, bool, int, int32, int64, uint, uint32, uint64:
		return true
	}
	return false
}

func appendDirectJSONValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendJSONString(dst, v)
	case bool:
		return strconv.AppendBool(dst, v)
	case int:
		return strconv.AppendInt(dst, int64(v), 10)
	case int32:
		return strconv.AppendInt(dst, int64(v), 10)
	case int64:
		return strconv.AppendInt(dst, v, 10)
	case uint:
		return strconv.AppendUint(dst, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(dst, v, 10)
	}
	panic("httpapi: appendDirectJSONValue called with a value directJSONValue rejects")
}

// auditFieldsViaMap is the general form of auditFieldsJSON.
func auditFieldsViaMap(ev *AuditEvent) []byte {
	fields := make(map[string]any, len(ev.Fields)+5)
	for k, v := range ev.Fields {
		fields[k] = v
	}
	fields["requestId"], fields["method"], fields["path"] = ev.RequestID, ev.Method, ev.Path
	if ev.BodySHA256 != "" {
		fields["bodySha256"] = ev.BodySHA256
	}
	if ev.ProxyIP != "" {
		fields["proxyIp"] = ev.ProxyIP
	}
	raw, _ := json.Marshal(fields)
	return raw
}
