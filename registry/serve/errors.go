package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error codes of the distribution spec that a read-only registry answers.
const (
	codeNameUnknown     = "NAME_UNKNOWN"
	codeManifestUnknown = "MANIFEST_UNKNOWN"
	codeBlobUnknown     = "BLOB_UNKNOWN"
	codeDigestInvalid   = "DIGEST_INVALID"
	codeUnsupported     = "UNSUPPORTED"
	codeUnknown         = "UNKNOWN"
	codePagination      = "PAGINATION_NUMBER_INVALID"
	codeTooMany         = "TOOMANYREQUESTS"
)

type specError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError answers with the spec's error body:
// {"errors":[{"code":…,"message":…,"detail":…}]}.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string, detail any) {
	body, _ := json.Marshal(struct {
		Errors []specError `json:"errors"`
	}{[]specError{{Code: code, Message: msg, Detail: detail}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
