package platform

import (
	"strings"
	"testing"
)

func TestReadTargetList(t *testing.T) {
	ts, err := ReadTargetList(strings.NewReader("# platforms\nlinux/amd64\n\nwindows/amd64:1809 # rke2\nlinux/arm64,windows/amd64:ltsc2022\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, t := range ts {
		got = append(got, t.String())
	}
	if s := strings.Join(got, " "); s != "linux/amd64 windows/amd64:10.0.17763 linux/arm64 windows/amd64:10.0.20348" {
		t.Fatalf("got %s", s)
	}
	if _, err := ReadTargetList(strings.NewReader("linux/amd64\nwindows/amd64:95\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: %v", err)
	}
}
