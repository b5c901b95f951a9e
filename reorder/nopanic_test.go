package reorder_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/rancher/ferry/reorder"
)

func oneEntryTar(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "a", Size: 1, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("x"))
	tw.Close()
	return b.Bytes()
}

// Each case once panicked or was accepted and misbehaved; now it is an error.
func TestReorderRefusesBadArguments(t *testing.T) {
	in := oneEntryTar(t)
	stream := func() io.Reader { return io.MultiReader(bytes.NewReader(in)) }
	cases := map[string]func() error{
		"nil destination": func() error { _, err := reorder.Reorder(context.Background(), nil, bytes.NewReader(in)); return err },
		"nil source":      func() error { _, err := reorder.Reorder(context.Background(), io.Discard, nil); return err },
		"nil option": func() error {
			_, err := reorder.Reorder(context.Background(), io.Discard, bytes.NewReader(in), nil)
			return err
		},
		"zero max entries": func() error {
			_, err := reorder.Reorder(context.Background(), io.Discard, bytes.NewReader(in), reorder.WithMaxEntries(0))
			return err
		},
		"negative max metadata": func() error {
			_, err := reorder.Reorder(context.Background(), io.Discard, bytes.NewReader(in), reorder.WithMaxMetadata(-1))
			return err
		},
		"reopen gives no reader": func() error {
			_, err := reorder.Reorder(context.Background(), io.Discard, stream(), reorder.WithReopen(func() (io.ReadCloser, error) { return nil, nil }))
			return err
		},
	}
	for what, run := range cases {
		if err := run(); !errors.Is(err, reorder.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", what, err)
		}
	}
}
