package bundle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// jsonList is a JSON document around one array, encoded element by element
// as it is written: index.json and manifest.json grow with the number of
// images, and a bundle of thousands would otherwise hold both encoded in
// memory beside everything else. The bytes are those json.Marshal gives
// for the whole document. Its size is counted by encoding it once first,
// since a tar header comes before the data; item must give the same
// value both times.
type jsonList struct {
	prefix, suffix []byte
	n              int
	item           func(i int) (any, error)
	size           int64
}

func newJSONList(prefix, suffix []byte, n int, item func(i int) (any, error)) (*jsonList, error) {
	l := &jsonList{prefix: prefix, suffix: suffix, n: n, item: item}
	var c byteCounter
	if err := l.writeTo(&c); err != nil {
		return nil, err
	}
	l.size = c.n
	return l, nil
}

// indexList is index.json: index, with n entries made by item as its
// manifests.
func indexList(index v1.IndexManifest, n int, item func(i int) (any, error)) (*jsonList, error) {
	index.Manifests = []v1.Descriptor{}
	empty, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	at := bytes.Index(empty, []byte(`"manifests":[]`))
	if at < 0 {
		return nil, fmt.Errorf("encoding %s: no manifests array in %s", IndexFile, empty)
	}
	at += len(`"manifests":[`)
	return newJSONList(empty[:at], empty[at:], n, item)
}

func (l *jsonList) writeTo(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.Write(l.prefix)
	for i := range l.n {
		if i > 0 {
			bw.WriteByte(',')
		}
		v, err := l.item(i)
		if err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		bw.Write(b)
	}
	bw.Write(l.suffix)
	return bw.Flush()
}

type byteCounter struct{ n int64 }

func (c *byteCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
