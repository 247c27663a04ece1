package client

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
)

// recordedRequest is one request as the fake API received it, with the
// request-target exactly as it came on the request line.
type recordedRequest struct {
	Method     string
	RequestURI string
	Header     http.Header
	Body       []byte
}

// fakeAPI is an HTTP server that records every request and responds to
// each with a fixed status and body. It replaces the Keyward server so that
// the tests can check the exact wire format the client produces.
type fakeAPI struct {
	server *httptest.Server

	mu       sync.Mutex
	requests []recordedRequest
	status   int
	response string
	header   http.Header
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{status: http.StatusOK, response: "{}"}
	f.server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.server.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)

	f.mu.Lock()
	f.requests = append(f.requests, recordedRequest{
		Method:     r.Method,
		RequestURI: r.RequestURI,
		Header:     r.Header.Clone(),
		Body:       body,
	})
	status, response, header := f.status, f.response, f.header
	f.mu.Unlock()

	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, response)
}

// respond sets the status and body of the following responses.
func (f *fakeAPI) respond(status int, response string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.response = status, response
}

func (f *fakeAPI) url() string { return f.server.URL }

// last returns the most recent request and fails the test when there is
// none.
func (f *fakeAPI) last(t *testing.T) recordedRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("the fake API received no request")
	}
	return f.requests[len(f.requests)-1]
}

func (f *fakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// assertJSONEqual fails unless got and want hold the same JSON value;
// want "" means no body at all.
func assertJSONEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	if want == "" {
		if len(got) != 0 {
			t.Errorf("body = %s, want no body", got)
		}
		return
	}
	var gotValue, wantValue any
	if err := json.Unmarshal(got, &gotValue); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &wantValue); err != nil {
		t.Fatalf("want %q is not JSON: %v", want, err)
	}
	if !reflect.DeepEqual(gotValue, wantValue) {
		t.Errorf("body = %s, want %s", got, want)
	}
}
