package bundle

import (
	"bytes"
	"strconv"
	"strings"
)

// scanManifest reads an image manifest's config and layers (digests as
// written, sizes) the way encoding/json would decode them into
// parseListManifest's struct, for manifests as registries and ferry
// write them: ASCII strings without escapes, integer sizes, each field
// once. On anything else it reports false and the caller decodes with
// encoding/json, so it is a shortcut and never a second definition:
// FuzzScanManifest checks that whatever it accepts decodes the same.
// encoding/json is most of the cost of listing thousands of images; this
// walks each byte once and allocates only the digests.
func scanManifest(raw []byte) (config manifestBlob, layers []manifestBlob, ok bool) {
	s := jsonScan{b: raw}
	var seenConfig, seenLayers bool
	ok = s.object(func(key string) bool {
		switch {
		case key == "config" && !seenConfig:
			seenConfig = true
			return s.blob(&config)
		case key == "layers" && !seenLayers:
			seenLayers = true
			layers = []manifestBlob{}
			return s.array(func() bool {
				layers = append(layers, manifestBlob{})
				return s.blob(&layers[len(layers)-1])
			})
		case strings.EqualFold(key, "config") || strings.EqualFold(key, "layers"):
			return false // a repeat, or a spelling encoding/json also matches
		}
		return s.skip(0)
	})
	s.space()
	return config, layers, ok && s.i == len(s.b)
}

// manifestBlob is a descriptor's digest and size as a manifest writes them.
type manifestBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// maxScanDepth bounds the nesting scanManifest skips over; deeper input
// goes to encoding/json.
const maxScanDepth = 32

// jsonScan is a cursor over JSON text; every method reports false for
// input it leaves to encoding/json, valid or not.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end.
func (s *jsonScan) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// object reads {"key": value, ...}; field reads each value.
func (s *jsonScan) object(field func(key string) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.str()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !field(key) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// array reads [value, ...]; elem reads each value.
func (s *jsonScan) array(elem func() bool) bool {
	if s.peek() != '[' {
		return false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// str reads a string of printable ASCII without escapes.
func (s *jsonScan) str() (string, bool) {
	if s.peek() != '"' {
		return "", false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return string(s.b[start:j]), true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

// blob reads a descriptor's digest and size, skipping its other fields.
func (s *jsonScan) blob(to *manifestBlob) bool {
	var seenDigest, seenSize bool
	return s.object(func(key string) bool {
		switch {
		case key == "digest" && !seenDigest:
			seenDigest = true
			d, ok := s.str()
			to.Digest = d
			return ok
		case key == "size" && !seenSize:
			seenSize = true
			n, ok := s.integer()
			to.Size = n
			return ok
		case strings.EqualFold(key, "digest") || strings.EqualFold(key, "size"):
			return false
		}
		return s.skip(1)
	})
}

// integer reads a JSON number that is an integer fitting int64.
func (s *jsonScan) integer() (int64, bool) {
	s.space()
	start := s.i
	if !s.number() {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScan) number() bool {
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *jsonScan) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// skip reads any value the caller does not keep, checking it is JSON.
func (s *jsonScan) skip(depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '{':
		return s.object(func(string) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return true
		}
	}
	return false
}
