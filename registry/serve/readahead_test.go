package serve

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
)

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestReadAhead(t *testing.T) {
	data := make([]byte, 1<<20+12345)
	rand.New(rand.NewSource(1)).Read(data)
	broken := errors.New("disk gone")
	for _, tc := range []struct {
		name string
		src  io.Reader
		want []byte
		err  error
	}{
		{"whole", bytes.NewReader(data), data, nil},
		{"short reads", iotest.HalfReader(bytes.NewReader(data)), data, nil},
		{"empty", bytes.NewReader(nil), nil, nil},
		{"error after data", io.MultiReader(bytes.NewReader(data[:700<<10]), iotest.ErrReader(broken)), data[:700<<10], broken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &closeCounter{Reader: tc.src}
			ra := newReadAhead(src)
			got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(ra, 4096)))
			if err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(ra)
			got = append(got, rest...)
			if !errors.Is(err, tc.err) || !bytes.Equal(got, tc.want) {
				t.Fatalf("read %d of %d bytes, error %v, want %v", len(got), len(tc.want), err, tc.err)
			}
			if err := ra.Close(); err != nil || ra.Close() != nil || src.closed != 1 {
				t.Fatalf("close: %v, source closed %d times", err, src.closed)
			}
		})
	}
	t.Run("close before the end", func(t *testing.T) {
		src := &closeCounter{Reader: bytes.NewReader(data)}
		ra := newReadAhead(src)
		if _, err := io.ReadFull(ra, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		if err := ra.Close(); err != nil || src.closed != 1 {
			t.Fatalf("close: %v, source closed %d times", err, src.closed)
		}
	})
}
