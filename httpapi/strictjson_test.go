package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
)

// strictBody has the shapes the decoder must follow: a nested struct
// behind a pointer, a map, a slice of structs, raw JSON and an embedded
// struct.
type strictBody struct {
	Name       string            `json:"name"`
	Duration   *string           `json:"duration"`
	Guardrails *guard.Guardrails `json:"guardrails"`
	Fields     map[string]string `json:"fields"`
	Items      []strictItem      `json:"items"`
	Watch      []json.RawMessage `json:"watch"`
	Ignored    string            `json:"-"`
	strictEmbedded
}

type strictItem struct {
	ID string `json:"id"`
}

type strictEmbedded struct {
	Label string `json:"label"`
}

func TestDecodeJSON_AcceptsExactNames(t *testing.T) {
	body := `{"name":"a","duration":"1h","guardrails":{"countries":{"codes":["DK"]}},` +
		`"fields":{"User":"x","user":"y"},"items":[{"id":"1"},{"id":"2"}],` +
		`"watch":["sk_1",{"id":"sk_2","version":3}],"label":"l"}`
	var v strictBody
	if err := decodeJSON([]byte(body), &v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if v.Name != "a" || v.Duration == nil || *v.Duration != "1h" || v.Label != "l" {
		t.Errorf("decoded %+v", v)
	}
	if len(v.Fields) != 2 {
		t.Errorf("fields = %v, want two keys that differ only in case", v.Fields)
	}
	if len(v.Items) != 2 || v.Items[1].ID != "2" {
		t.Errorf("items = %+v", v.Items)
	}
}

func TestDecodeJSON_RejectsRepeatedFields(t *testing.T) {
	cases := []struct {
		name, body, field string
	}{
		{"top level", `{"duration":"1h","duration":"9999h"}`, `"duration"`},
		{"escaped repeat", `{"name":"a","\u006eame":"b"}`, `"name"`},
		{"nested struct", `{"guardrails":{"countries":{"codes":["DK"],"codes":["SE"]}}}`, `"guardrails.countries.codes"`},
		{"map key", `{"fields":{"user":"a","user":"b"}}`, `"fields.user"`},
		{"inside an array", `{"items":[{"id":"1"},{"id":"2","id":"3"}]}`, `"items[1].id"`},
		{"inside raw JSON", `{"watch":[{"id":"sk_1","id":"sk_2"}]}`, `"watch[0].id"`},
		{"repeated object", `{"guardrails":{},"guardrails":{}}`, `"guardrails"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v strictBody
			err := decodeJSON([]byte(tc.body), &v)
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v, want ErrBadRequest", err)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "more than once") {
				t.Errorf("error %q does not say that %s appears more than once", err, tc.field)
			}
		})
	}
}

func TestDecodeJSON_RejectsOtherLetterCase(t *testing.T) {
	cases := []struct {
		name, body, bad, use string
	}{
		{"top level", `{"Duration":"1h"}`, `"Duration"`, `"duration"`},
		{"all capitals", `{"NAME":"a"}`, `"NAME"`, `"name"`},
		{"nested struct", `{"guardrails":{"Countries":{"codes":["DK"]}}}`, `"guardrails.Countries"`, `"guardrails.countries"`},
		{"array element", `{"items":[{"ID":"1"}]}`, `"items[0].ID"`, `"items[0].id"`},
		{"embedded struct", `{"Label":"l"}`, `"Label"`, `"label"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v strictBody
			err := decodeJSON([]byte(tc.body), &v)
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v, want ErrBadRequest", err)
			}
			if !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("error %q does not name %s", err, tc.bad)
			}
			if !strings.Contains(err.Error(), "use "+tc.use) {
				t.Errorf("error %q does not suggest %s", err, tc.use)
			}
		})
	}
}

func TestDecodeJSON_KeepsUnknownFieldErrors(t *testing.T) {
	for _, body := range []string{`{"nmae":"a"}`, `{"Ignored":"a"}`, `{"-":"a"}`} {
		var v strictBody
		err := decodeJSON([]byte(body), &v)
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%s: error %v, want an unknown field 400", body, err)
		}
	}
}

func TestDecodeJSON_RejectsInvalidUTF8(t *testing.T) {
	cases := map[string][]byte{
		"invalid byte in a value": []byte("{\"name\":\"a\xffb\"}"),
		"truncated sequence":      []byte("{\"name\":\"\xe2\x80\"}"),
		"invalid byte in a key":   []byte("{\"na\xc0me\":\"a\"}"),
		"encoded surrogate":       []byte("{\"name\":\"\xed\xa0\x80\"}"),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			var v strictBody
			err := decodeJSON(body, &v)
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatalf("error %v, want a 400 saying the body is not valid UTF-8", err)
			}
		})
	}
}

func TestDecodeJSON_SurrogateEscapes(t *testing.T) {
	rejected := map[string]string{
		"lone high":          `{"name":"a\ud800b"}`,
		"lone low":           `{"name":"\udc00"}`,
		"high at the end":    `{"name":"a\uD83D"}`,
		"two highs":          `{"name":"\ud83d\ud83d"}`,
		"high then letter":   `{"name":"\ud83d\u0041"}`,
		"lone high in a key": `{"fields":{"\ud800":"x"}}`,
	}
	for name, body := range rejected {
		t.Run(name, func(t *testing.T) {
			var v strictBody
			err := decodeJSON([]byte(body), &v)
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "surrogate") {
				t.Fatalf("error %v, want a 400 about a surrogate escape", err)
			}
		})
	}

	accepted := map[string]string{
		`{"name":"\ud83d\ude00"}`:     "\U0001F600",
		`{"name":"\\ud800"}`:          `\ud800`,
		`{"name":"\"\\\ud83d\ude00"}`: "\"\\\U0001F600",
		`{"name":"\u00e6"}`:           "æ",
	}
	for body, want := range accepted {
		var v strictBody
		if err := decodeJSON([]byte(body), &v); err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if v.Name != want {
			t.Errorf("%s: name %q, want %q", body, v.Name, want)
		}
	}
}

func TestCheckText_RejectsInvisibleCharacters(t *testing.T) {
	cases := []struct {
		name, text, code string
	}{
		{"right-to-left override", "invoice\u202Etxt.exe", "U+202E"},
		{"left-to-right embedding", "a\u202Ab", "U+202A"},
		{"right-to-left isolate", "a\u2067b", "U+2067"},
		{"zero-width space", "pay\u200Broll", "U+200B"},
		{"byte order mark", "a\uFEFFb", "U+FEFF"},
		{"bell", "a\u0007b", "U+0007"},
		{"delete", "a\u007Fb", "U+007F"},
		{"C1 control", "a\u0085b", "U+0085"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkName("name", tc.text, 100)
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v, want ErrBadRequest", err)
			}
			if !strings.HasPrefix(err.Error(), "name ") || !strings.Contains(err.Error(), tc.code) {
				t.Errorf("error %q does not name the field and %s", err, tc.code)
			}
		})
	}
	for _, ok := range []string{"payments", "Zahlungen für Kunden", "支払い", "db-primary_01", "a b"} {
		if err := checkName("name", ok, 100); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestStrictJSON_AdminRoutes(t *testing.T) {
	e := sharedEnv(t)
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	e.clock.freeze(t, now)
	vault := e.newVault(t)
	m, out := e.tempMachine(t, vault, map[string]any{"name": "etl", "lifetime": map[string]int{"days": 2}})

	reject := func(t *testing.T, method, path string, body []byte, want string) {
		t.Helper()
		before := e.sm.AppliedIndex()
		resp := e.admin(t, method, path, body)
		expectStatus(t, resp, http.StatusBadRequest)
		var eb errorBody
		if err := json.Unmarshal(resp.body, &eb); err != nil {
			t.Fatalf("error body %s: %v", resp.body, err)
		}
		if !strings.Contains(eb.Error, want) {
			t.Errorf("error %q does not mention %q", eb.Error, want)
		}
		if after := e.sm.AppliedIndex(); after != before {
			t.Errorf("applied index moved from %d to %d on a rejected request", before, after)
		}
	}

	t.Run("extend with a repeated duration", func(t *testing.T) {
		reject(t, "POST", e.machinePath(m)+"/extend", []byte(`{"duration":"1h","duration":"48h","reason":"x"}`), `"duration"`)
		if got := e.machine(t, m).ExpiresAt; got != out.ExpiresAt {
			t.Errorf("expiresAt = %d after a rejected extension, want %d", got, out.ExpiresAt)
		}
	})

	t.Run("extend with a capitalised field", func(t *testing.T) {
		reject(t, "POST", e.machinePath(m)+"/extend", []byte(`{"Duration":"1h","reason":"x"}`), `use "duration"`)
	})

	t.Run("vault name with invalid UTF-8", func(t *testing.T) {
		reject(t, "POST", "/v1/admin/vaults", []byte("{\"name\":\"a\xffb\"}"), "not valid UTF-8")
	})

	t.Run("vault name with a right-to-left override", func(t *testing.T) {
		reject(t, "POST", "/v1/admin/vaults", []byte(`{"name":"backup\u202Egpj.exe"}`), "name contains the invisible format character U+202E")
	})

	t.Run("temp token purpose with a zero-width space", func(t *testing.T) {
		body := []byte(`{"name":"etl","purpose":"inc\u200Bident","lifetime":{"hours":2}}`)
		reject(t, "POST", "/v1/admin/vaults/"+vault+"/temp-tokens", body, "purpose contains the invisible format character U+200B")
	})
}

func TestStrictJSON_MachinePlaneSDKShapes(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)

	bodies := []struct {
		name, path, body string
	}{
		{"list", "/v1/secrets/list", `{"projectId":"` + f.project + `"}`},
		{"export empty", "/v1/secrets/export", ``},
		{"export project", "/v1/secrets/export", `{"projectId":"` + f.project + `"}`},
		{"poll ids", "/v1/secrets/poll", `{"watch":["` + f.secret + `","` + f.structured + `"]}`},
		{"poll versions", "/v1/secrets/poll", `{"watch":[{"id":"` + f.secret + `","version":1}]}`},
		{"verify access", "/v1/verify-access", `{"projectId":"` + f.project + `"}`},
	}
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			var body []byte
			if b.body != "" {
				body = []byte(b.body)
			}
			expectStatus(t, e.signed(t, defaultSource, m, "POST", b.path, body), http.StatusOK)
		})
	}

	t.Run("repeated projectId", func(t *testing.T) {
		body := []byte(`{"projectId":"` + f.project + `","projectId":"proj_0000000000"}`)
		resp := e.signed(t, defaultSource, m, "POST", "/v1/secrets/list", body)
		expectStatus(t, resp, http.StatusBadRequest)
		if msg := machineError(t, resp); !strings.Contains(msg, `"projectId" appears more than once`) {
			t.Errorf("error %q does not name the repeated field", msg)
		}
	})
}

func TestAdminMachines_UpperCaseID(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	m := e.newMachine(t, vault)
	upper := "/v1/admin/vaults/" + vault + "/machines/" + strings.ToUpper(m.id)

	var v machineView
	e.adminOK(t, http.StatusOK, "GET", upper, nil, &v)
	if v.ID != m.id {
		t.Errorf("machine id %q, want %q", v.ID, m.id)
	}
	e.adminOK(t, http.StatusOK, "POST", upper+"/approve", map[string]any{}, nil)
	if got := e.machine(t, m).Status; got != "active" {
		t.Errorf("status after approve by upper-case id = %q, want active", got)
	}
}

func TestExpiryWarnings_OffsetMessages(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	path := "/v1/admin/vaults/" + vault + "/alerts/expiry-warnings"
	cases := []struct {
		offset, want string
	}{
		{"400d", `offset "400d" is out of range; use 1m to 366d`},
		{"0d", `offset "0d" is out of range`},
		{"30s", `offset "30s" is out of range`},
		{"9000h", `offset "9000h" is out of range`},
		{"-1h", `offset "-1h" is out of range`},
		{"soon", `offset "soon" is not a duration`},
		{"1.5d", `offset "1.5d" is not a duration`},
	}
	for _, tc := range cases {
		t.Run(tc.offset, func(t *testing.T) {
			resp := e.admin(t, "PUT", path, map[string][]string{"offsets": {tc.offset}})
			expectStatus(t, resp, http.StatusBadRequest)
			var eb errorBody
			_ = json.Unmarshal(resp.body, &eb)
			if !strings.Contains(eb.Error, tc.want) {
				t.Errorf("error %q, want it to contain %q", eb.Error, tc.want)
			}
		})
	}
	e.adminOK(t, http.StatusOK, "PUT", path, map[string][]string{"offsets": {"366d", "1m", "36h"}}, nil)
}

func TestPoll_WatchEntryFieldCase(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	body := []byte(`{"watch":[{"ID":"` + f.secret + `","version":1}]}`)
	resp := e.signed(t, defaultSource, m, "POST", "/v1/secrets/poll", body)
	expectStatus(t, resp, http.StatusBadRequest)
	if msg := machineError(t, resp); !strings.Contains(msg, "watch[0]") || !strings.Contains(msg, `use "id"`) {
		t.Errorf("error %q, want it to name watch[0] and the field id", msg)
	}
	ok := []byte(`{"watch":[{"id":"` + f.secret + `","version":1}]}`)
	expectStatus(t, e.signed(t, defaultSource, m, "POST", "/v1/secrets/poll", ok), http.StatusOK)
}
