package tarscan_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/rancher/ferry/reorder/tarscan"
)

type ent struct {
	name, link string
	typ        byte
	data       string
	pax        map[string]string
}

func build(t *testing.T, es ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data)), PAXRecords: e.pax}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: e.typ, PAXRecords: e.pax}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func scanAll(r io.Reader, size int64) ([]tarscan.Entry, error) {
	s := tarscan.NewScanner(r, size, tarscan.Limits{})
	for {
		_, err := s.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return s.Entries(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func scanAt(ra io.ReaderAt, size int64) ([]tarscan.Entry, error) {
	s := tarscan.NewReaderAtScanner(ra, size, tarscan.Limits{})
	for {
		_, err := s.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return s.Entries(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func TestScannerVerdicts(t *testing.T) {
	ok := ent{name: "index.json", data: "{}"}
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"valid", build(t, ok, ent{name: "blobs/", typ: tar.TypeDir}, ent{name: "blobs/a", data: "x"}, ent{name: "l", typ: tar.TypeLink, link: "blobs/a"}), nil},
		{"backslash dot-dot", build(t, ok, ent{name: `..\..\evil.dll`, data: "x"}), tarscan.ErrUnsafePath},
		{"drive letter", build(t, ok, ent{name: `C:\Windows\System32\evil.dll`, data: "x"}), tarscan.ErrUnsafePath},
		{"absolute", build(t, ok, ent{name: "/etc/passwd", data: "x"}), tarscan.ErrUnsafePath},
		{"dot-dot inside", build(t, ok, ent{name: "a/../../b", data: "x"}), tarscan.ErrUnsafePath},
		{"long name", build(t, ok, ent{name: strings.Repeat("a", 2000), data: "x"}), tarscan.ErrUnsafePath},
		{"duplicate", build(t, ok, ok), tarscan.ErrDuplicate},
		{"duplicate after cleaning", build(t, ok, ent{name: "./index.json", data: "{}"}), tarscan.ErrDuplicate},
		{"symlink out", build(t, ok, ent{name: "a/l", typ: tar.TypeSymlink, link: "../../x"}), tarscan.ErrUnsafeLink},
		{"symlink with backslashes", build(t, ok, ent{name: "l", typ: tar.TypeSymlink, link: `..\x`}), tarscan.ErrUnsafeLink},
		{"hard link forward", build(t, ok, ent{name: "l", typ: tar.TypeLink, link: "later"}, ent{name: "later", data: "x"}), tarscan.ErrUnsafeLink},
		{"device", build(t, ok, ent{name: "dev", typ: tar.TypeChar}), tarscan.ErrUnsupportedType},
		{"fifo", build(t, ok, ent{name: "p", typ: tar.TypeFifo}), tarscan.ErrUnsupportedType},
		{"PAX global header", build(t, ent{name: "g", typ: tar.TypeXGlobalHeader, pax: map[string]string{"path": "evil"}}, ok), tarscan.ErrUnsupportedType},
		{"no end marker", build(t, ok)[:1024], tarscan.ErrTruncated},
		{"cut in data", build(t, ent{name: "a", data: strings.Repeat("x", 2000)})[:1200], tarscan.ErrTruncated},
		{"empty stream", nil, tarscan.ErrTruncated},
		{"not a tar", bytes.Repeat([]byte("garbage!"), 200), tarscan.ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Streamed and seekable input must get the same verdict.
			for _, r := range []io.Reader{bytes.NewBuffer(c.data), bytes.NewReader(c.data)} {
				_, err := scanAll(r, -1)
				if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
					t.Errorf("%T: got %v, want %v", r, err, c.want)
				}
			}
			_, err := scanAt(bytes.NewReader(c.data), -1)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("ReaderAt: got %v, want %v", err, c.want)
			}
		})
	}
}

func TestScannerRangesAndBudget(t *testing.T) {
	data := build(t, ent{name: "a", data: "hello"}, ent{name: "b/", typ: tar.TypeDir}, ent{name: "c", data: strings.Repeat("z", 700)})
	es, err := scanAll(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	at, err := scanAt(bytes.NewReader(data), int64(len(data)))
	if err != nil || len(at) != 3 || len(es) != 3 {
		t.Fatalf("%d and %d entries, %v", len(es), len(at), err)
	}
	for i := range at {
		if at[i].Name != es[i].Name || at[i].DataOffset != es[i].DataOffset || at[i].End != es[i].End {
			t.Errorf("ReaderAt scan differs: %+v vs %+v", at[i], es[i])
		}
	}
	for _, e := range es {
		got := data[e.DataOffset : e.DataOffset+e.Size()]
		if e.Name == "c" && string(got) != strings.Repeat("z", 700) || e.Name == "a" && string(got) != "hello" {
			t.Errorf("%s: range %d..%d holds %q", e.Name, e.DataOffset, e.End, got)
		}
		if e.End%512 != 0 || e.End < e.DataOffset+e.Size() {
			t.Errorf("%s: end %d", e.Name, e.End)
		}
	}
	// The buffered budget spans all entries.
	s := tarscan.NewScanner(bytes.NewReader(data), -1, tarscan.Limits{Buffered: 600})
	if _, err := s.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := s.ReadAll(nil); err != nil || string(b) != "hello" {
		t.Fatalf("ReadAll: %q %v", b, err)
	}
	s.Next(context.Background())
	s.Next(context.Background())
	if _, err := s.ReadAll(nil); !errors.Is(err, tarscan.ErrLimit) {
		t.Fatalf("over budget: %v", err)
	}
	// A declared size beyond the stream's known size is truncation.
	if _, err := scanAll(bytes.NewReader(data[:1024]), 1024); !errors.Is(err, tarscan.ErrTruncated) {
		t.Fatalf("short: %v", err)
	}
}

func TestScannerEntryLimit(t *testing.T) {
	var es []ent
	for i := 0; i < 10; i++ {
		es = append(es, ent{name: strings.Repeat("n", i+1), data: ""})
	}
	s := tarscan.NewScanner(bytes.NewReader(build(t, es...)), -1, tarscan.Limits{Entries: 5})
	var err error
	for err == nil {
		_, err = s.Next(context.Background())
	}
	if !errors.Is(err, tarscan.ErrLimit) {
		t.Fatalf("got %v", err)
	}
}
