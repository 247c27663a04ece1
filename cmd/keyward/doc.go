// Command keyward is the one binary of Keyward: it runs a cluster node
// (keyward server), offers the operator commands of the admin API, and the
// machine-side commands that register a host and read secrets with signed
// requests.
//
// Operator commands talk to --addr (default http://127.0.0.1:8200, the port
// a node listens on unless --http-addr sets another) with the admin token
// from --token, --token-file or KEYWARD_TOKEN. Every flag can also be set
// through KEYWARD_ and its name in upper snake case, for example
// KEYWARD_TOKEN_FILE for --token-file; the command line wins. --output json
// prints the API objects as JSON on every command that prints data.
//
// Errors go to stderr as "keyward: error: …", often followed by
// "keyward: hint: …" lines. The exit code is 0 on success, 1 on an error and
// 2 on a usage mistake (unknown command or flag, wrong arguments).
//
//	keyward server --dev                       # a single local node
//	keyward vault create prod --token-file keyward-data/root-token
//	keyward temp issue --vault vault_… --name pentest --lifetime 30d --ip 203.0.113.0/24
//	keyward register TOKEN --api-url http://127.0.0.1:8200 --temp --vault vault_…
//	keyward get sk_…                           # as the registered machine
package main
