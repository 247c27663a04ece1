package fsm

// Response is what Apply returns for each log entry, on every node. It must
// be deterministic: the same entry yields the same Response everywhere, so
// that the node which proposed an entry and the leader that applied it agree.
// Body is the JSON result of a successful command; Code names an fsm error
// (see ErrorFromCode) when the command was rejected by the state.
type Response struct {
	Body    []byte `json:"body,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}
